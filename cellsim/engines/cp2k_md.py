"""CP2K as an embedded MD engine (``engine: cp2k``): PBE forces per step through ASE's ``cp2k_shell`` driver.

The MD itself (segments, XDATCAR/OSZICAR/CONTCAR, checkpoints, resume) is the embedded engine's
(:func:`cellsim.engines.mlip.run_mlip`); only the calculator differs. One ``cp2k.psmp --shell`` process
stays up for the whole call and receives each step's positions, so CP2K starts once and reuses the previous
step's wavefunction as its SCF guess (the QS ``EXTRAPOLATION`` setting, CP2K's default unless the study
sets it). The input is the one :func:`cellsim.engines.cp2k.input_tree` writes for single points, from
``templates/cp2k/pbe.yaml`` overridden by the study's ``engine.cp2k`` mapping, minus what the driver sets
per step (coordinates, cell, project name). The whole input is kept as ``md/cp2k/cp2k.inp`` beside
CP2K's output ``md/cp2k/cp2k.out``.

Resume: a killed run continues from the checkpoint's positions and momenta. With wavefunction
extrapolation the first step after a restart starts its SCF from the atomic guess instead of the previous
steps' wavefunctions, so the continued trajectory agrees with an uninterrupted one to the SCF tolerance;
with ``engine.cp2k: {input: {FORCE_EVAL: {DFT: {QS: {EXTRAPOLATION: USE_GUESS}}}}}`` every step starts
from the same guess and the two are identical.
"""

from __future__ import annotations

import copy
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ase import Atoms
    from ase.calculators.calculator import Calculator

    from cellsim.config.study import Study

# what ASE's CP2K calculator would add by itself: all off, the input below says everything
_ASE_OFF: dict[str, Any] = {
    "basis_set": None,
    "basis_set_file": None,
    "potential_file": None,
    "pseudo_potential": None,
    "cutoff": None,
    "max_scf": None,
    "xc": None,
    "force_eval_method": None,
    "stress_tensor": False,
    "print_level": None,
    "poisson_solver": None,
    "charge": 0,
}


def md_settings(study: Study) -> dict[str, Any]:
    """The CP2K settings of a study's MD: the shipped defaults overridden by ``engine.cp2k``."""
    from cellsim.engines.cp2k import resolve_settings

    return resolve_settings(study.engine.cp2k or None)


def md_input(atoms: Atoms, settings: dict[str, Any]) -> str:
    """The CP2K input for the shell driver: the single-point input without coordinates, cell and project."""
    from cellsim.engines.cp2k import Cp2kError, emit_tree, input_tree

    if not all(atoms.pbc):
        raise Cp2kError("engine cp2k: the cell must be periodic in all three directions")
    tree = copy.deepcopy(input_tree(atoms, settings))
    tree["GLOBAL"].pop("PROJECT", None)
    feval = tree["FORCE_EVAL"]
    feval["SUBSYS"].pop("COORD", None)
    feval["SUBSYS"].pop("CELL", None)
    feval.pop("PRINT", None)  # forces come back through the shell, not printed every step
    return emit_tree(tree)


def md_calculator(atoms: Atoms, study: Study, workdir: Path) -> tuple[Calculator, dict[str, Any]]:
    """ASE's CP2K calculator on a ``cp2k.psmp --shell`` process, and a description for engine.json."""
    from ase.calculators.cp2k import CP2K

    from cellsim.engines.cp2k import cp2k_version, find_cp2k, kinds, kpoint_mesh

    settings = md_settings(study)
    exe = find_cp2k(settings["command"])
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    text = md_input(atoms, settings)
    from cellsim.core.files import atomic_write_text

    atomic_write_text(workdir / "cp2k.inp", text)
    # the shell runs in the work folder (CP2K refuses a PROJECT name over 80 characters, so the label stays
    # relative; ASE writes the input through the shell) with OMP_NUM_THREADS for the child only
    command = (
        f"cd {shlex.quote(str(workdir))} && OMP_NUM_THREADS={int(settings['threads'])} "
        f"exec {shlex.quote(str(exe))} --shell"
    )
    calc = CP2K(command=command, label="cp2k", inp=text, **_ASE_OFF)
    mesh = kpoint_mesh(atoms, settings)
    used = kinds(sorted(set(atoms.get_chemical_symbols())), settings)
    info = {
        "engine": "cp2k",
        "model": f"PBE ({cp2k_version(settings['command'])}, {settings['basis_set']}, {settings['cutoff']} Ry, "
        f"{'k ' + 'x'.join(map(str, mesh)) if mesh else 'Gamma'})",
        "device": "cpu",
        "cp2k_input": str(workdir / "cp2k.inp"),
        "cp2k_kinds": {el: list(v) for el, v in used.items()},
    }
    return calc, info
