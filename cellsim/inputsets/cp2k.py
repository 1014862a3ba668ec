"""CP2K NVT AIMD inputs of the study's segments (``cellsim inputs --code cp2k``), and their outputs as VASP files.

Settings chain: ``templates/cp2k/pbe.yaml`` -> the study's ``engine.cp2k`` mapping (the same chain as the
embedded ``engine: cp2k`` and the PBE reference; :func:`cellsim.engines.cp2k.input_tree` writes the
electronic part) -> the MD from the study's ``md`` section: ``RUN_TYPE MD``, ``ENSEMBLE NVT``, a Nose-Hoover
chain of length 3 with the time constant ``engine.tdamp_fs`` (default 40 steps, VASP's SMASS = 0), the study's
temperature and time step, ``STEPS`` = the segment's length from the segment plan, a trajectory frame and an
energy line every ``md.nblock`` steps. Interfaces use the Gamma point (as the VASP inputs do).

Every segment folder gets a ``cp2k.inp``. The first starts from the interface POSCAR with velocities drawn
by CP2K at the temperature (``engine.seed``); each later one reads the previous segment's
``cellsim-1.restart`` (``EXT_RESTART``: positions, velocities, thermostat and the wavefunction extrapolation
history) with its step counter reset, so every segment's files count from step 1. Written by hand, not
through :mod:`pymatgen.io.cp2k.sets`: the electronic settings must be the same as those of the reference
single points, which come from the same YAML file.

:func:`to_vasp_files` converts a finished segment's ``cellsim-pos-1.xyz`` and ``cellsim-1.ener`` into the
XDATCAR and OSZICAR every later stage reads.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.config.rundir import RunDir, SegmentPlan
from cellsim.core.errors import CellsimError, RunDirError
from cellsim.core.files import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from ase import Atoms

    from cellsim.config.study import Study

INPUT_NAME = "cp2k.inp"
PROJECT = "cellsim"
RESTART_NAME = f"{PROJECT}-1.restart"
TRAJECTORY_NAME = f"{PROJECT}-pos-1.xyz"
ENERGY_NAME = f"{PROJECT}-1.ener"
_HARTREE_EV = 27.211386245988


class Cp2kInputsError(CellsimError):
    """The CP2K inputs cannot be written or a segment's output cannot be converted."""


@dataclass
class Cp2kInputsReport:
    segment_dirs: list[Path]
    steps: list[int]
    settings: dict[str, Any]
    md: dict[str, Any] = field(default_factory=dict)


def md_section(study: Study, steps: int) -> dict[str, Any]:
    """CP2K's ``MOTION`` section for one NVT segment of ``steps`` steps."""
    md, eng = study.md, study.engine
    tdamp = eng.tdamp_fs or 40 * md.timestep_fs
    every = {"EACH": {"MD": md.nblock}}
    return {
        "MD": {
            "ENSEMBLE": "NVT",
            "STEPS": steps,
            "TIMESTEP": md.timestep_fs,
            "TEMPERATURE": md.temperature,
            "THERMOSTAT": {"TYPE": "NOSE", "REGION": "GLOBAL", "NOSE": {"LENGTH": 3, "TIMECON": tdamp}},
        },
        "PRINT": {
            "TRAJECTORY": {"_": "ON", "FORMAT": "XYZ", **every},
            "RESTART": {"_": "ON", "BACKUP_COPIES": 0, "EACH": {"MD": 1}},
            "RESTART_HISTORY": {"_": "OFF"},
        },
    }


def segment_input(atoms: Atoms, study: Study, settings: dict[str, Any], steps: int, restart: str | None) -> str:
    """The whole ``cp2k.inp`` of one segment (``restart``: the previous segment's restart file, relative)."""
    from cellsim.inputsets.cp2k_input import emit_tree, input_tree

    tree = copy.deepcopy(input_tree(atoms, settings))
    tree["GLOBAL"].update({"PROJECT": PROJECT, "RUN_TYPE": "MD", "SEED": study.engine.seed + 1})
    feval = tree["FORCE_EVAL"]
    feval.pop("PRINT", None)  # forces are not needed per step; energies go to the .ener file
    # MD reuses the previous steps' wavefunctions: restart files of the SCF are worth keeping per segment
    feval["DFT"]["SCF"]["PRINT"] = {"RESTART": {"_": "ON", "BACKUP_COPIES": 0}, "RESTART_HISTORY": {"_": "OFF"}}
    tree["MOTION"] = md_section(study, steps)
    if restart is not None:
        tree["EXT_RESTART"] = {"RESTART_FILE_NAME": restart, "RESTART_COUNTERS": False}
    return emit_tree(tree)


def write_inputs(run_dir: Path, study: Study, force: bool = False) -> Cp2kInputsReport:
    """``cp2k.inp`` of every segment of the plan; refuses to overwrite a segment that has CP2K output."""
    from cellsim.inputsets.cp2k_settings import resolve_settings
    from cellsim.io.poscar import read_poscar_atoms

    rd = RunDir(run_dir)
    poscar = rd.interface_poscar
    if not poscar.is_file():
        raise RunDirError(f"{poscar}: no interface yet; run `cellsim build STUDY -o {run_dir}` first")
    atoms = read_poscar_atoms(poscar)
    # interfaces and other big cells: Gamma point, as the VASP inputs (a mesh only if the study asks for one)
    settings = resolve_settings({"kpoints": {"mesh": [1, 1, 1]}}, study.engine.cp2k or None)
    plan = SegmentPlan.from_study(study)
    dirs = []
    for k, steps in enumerate(plan.nsw):
        seg = rd.segment_dir(k)
        if (seg / TRAJECTORY_NAME).exists() and not force:
            raise RunDirError(f"{seg}: this segment already has CP2K output; use --force to rewrite its inputs")
        seg.mkdir(parents=True, exist_ok=True)
        restart = None if k == 0 else f"../{rd.segment_dir(k - 1).name}/{RESTART_NAME}"
        atomic_write_text(seg / INPUT_NAME, segment_input(atoms, study, settings, steps, restart))
        dirs.append(seg)
    md: dict[str, Any] = {"ensemble": "NVT", "thermostat": "Nose-Hoover chain (CP2K NOSE, length 3)"}
    md["timecon_fs"] = study.engine.tdamp_fs or 40 * study.md.timestep_fs
    atomic_write_json(
        rd.plan_file,
        {
            "engine": "cp2k",
            "segments": len(plan.nsw),
            "nsw": plan.nsw,
            "timestep_fs": study.md.timestep_fs,
            "total_time_ps": study.md.total_time_ps,
            "input": INPUT_NAME,
        },
    )
    return Cp2kInputsReport(dirs, list(plan.nsw), settings, md)


def to_vasp_files(seg: Path, atoms: Atoms, title: str = "cellsim cp2k") -> int:
    """XDATCAR and OSZICAR of a finished CP2K segment (from its xyz trajectory and .ener file); returns frames.

    ``atoms`` gives the cell and the species order (the interface POSCAR). The xyz file's first frame is
    the start (step 0) and is left out, as VASP's XDATCAR starts after the first step.
    """
    import numpy as np
    from ase.io import read

    from cellsim.io.vaspfiles import oszicar_line, species_blocks, xdatcar_frame, xdatcar_header

    traj, ener = seg / TRAJECTORY_NAME, seg / ENERGY_NAME
    if not traj.is_file() or not ener.is_file():
        raise Cp2kInputsError(f"{seg}: no {TRAJECTORY_NAME} / {ENERGY_NAME}; has CP2K run this segment?")
    frames = read(traj, index=":", format="xyz")
    frames = frames if isinstance(frames, list) else [frames]
    symbols = atoms.get_chemical_symbols()
    if any(f.get_chemical_symbols() != symbols for f in frames):
        raise Cp2kInputsError(f"{traj}: species differ from the interface POSCAR's")
    rows = np.loadtxt(ener, ndmin=2)  # step, time fs, kinetic, temperature, potential, conserved (Hartree)
    names, counts = species_blocks(symbols)
    inv = np.linalg.inv(atoms.cell.array)
    parts = [xdatcar_header(names, counts, atoms.cell.array, title)]
    kept = frames[1:]
    for n, f in enumerate(kept, start=1):
        parts.append(xdatcar_frame(n, (f.get_positions() @ inv) % 1.0))
    lines = []
    for row in rows:
        step = int(row[0])
        if step == 0:
            continue
        e_kin, e_pot = row[2] * _HARTREE_EV, row[4] * _HARTREE_EV
        lines.append(oszicar_line(step, float(row[3]), e_pot + e_kin, e_pot, e_kin))
    atomic_write_text(seg / "XDATCAR", "".join(parts))
    atomic_write_text(seg / "OSZICAR", "".join(lines))
    return len(kept)
