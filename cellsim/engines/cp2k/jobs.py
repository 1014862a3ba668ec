"""CP2K jobs: one folder per structure + settings hash, run once, parsed, stored atomically and reused.

The job loop is :func:`cellsim.engines.singlepoint.cached_single_point` (shared with GPAW); CP2K's parts of it
are :class:`Cp2kCode`. The result record and the job names (``Cp2kResult``, ``job_key``, ``job_dir``,
``load_result``) live there and are importable from here as before.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms
    from pymatgen.core import Structure

from cellsim.engines.singlepoint import (
    Cp2kResult,
    _physics,
    _result,
    cached_single_point,
    job_dir,
    load_result,
)
from cellsim.engines.singlepoint import (
    job_key as job_key,  # re-exported: cellsim.engines.cp2k.job_key
)
from cellsim.inputsets.cp2k_input import kpoint_mesh, write_input
from cellsim.inputsets.cp2k_settings import (
    _BOHR_A,
    _GPA_EV_A3,
    _HARTREE_EV,
    Cp2kError,
    find_cp2k,
    kinds,
    resolve_settings,
)

# --------------------------------------------------------------------------- jobs and cache


def as_atoms(structure: Structure | Atoms) -> Atoms:
    """An ASE Atoms copy of a pymatgen Structure or ASE Atoms."""
    from ase import Atoms

    if isinstance(structure, Atoms):
        return structure.copy()
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_atoms(structure)


def refresh_result(folder: str | os.PathLike[str]) -> Cp2kResult | None:
    """Re-read a finished job's ``job.out`` into its ``result.json`` (after a parser change); CP2K does not run.

    Returns ``None`` when the folder has no result yet.
    """
    from cellsim.core.files import atomic_write_json

    old = load_result(folder)
    if old is None:
        return None
    fresh = parse_output(Path(folder) / "job.out", int(old.data["natoms"]), "stress_GPa_cp2k" in old.data)
    data = {**old.data, **fresh}
    atomic_write_json(Path(folder) / "result.json", data)
    return _result(Path(folder), data, cached=True)


def parse_output(out: Path, natoms: int, stress: bool) -> dict[str, Any]:
    """Energy (eV), forces (eV/A), stress and SCF facts of a finished CP2K output file.

    Raises
    ------
    Cp2kError
        CP2K did not end normally, or a block is missing (the message names the file).
    """
    from pymatgen.io.cp2k.outputs import Cp2kOutput

    text = out.read_text(errors="replace")
    if "PROGRAM ENDED AT" not in text:
        tail = " | ".join(line.strip() for line in text.splitlines()[-6:] if line.strip())
        raise Cp2kError(f"{out}: CP2K did not end normally (last lines: {tail[-400:]})")
    steps = [int(n) for n in re.findall(r"SCF run converged in\s+(\d+)\s+steps", text)]
    converged = bool(steps) and "SCF run NOT converged" not in text
    parsed = Cp2kOutput(str(out), auto_load=False)
    parsed.parse_energies()
    parsed.parse_forces()
    forces = parsed.data.get("forces") or []
    if not parsed.data.get("total_energy") or not forces or len(forces[-1]) != natoms:
        raise Cp2kError(f"{out}: no total energy or no forces for {natoms} atoms in the CP2K output")
    energy = float(parsed.data["total_energy"][-1])  # pymatgen converts Hartree -> eV
    # with smearing CP2K's total energy is the free energy E - TS; E(sigma -> 0) ~ E - TS/2
    ts = re.findall(r"Electronic entropic energy:\s+(-?\d+\.\d+(?:[eE][-+]?\d+)?)", text)
    entropic = float(ts[-1]) * _HARTREE_EV if ts else 0.0
    data: dict[str, Any] = {
        "energy_eV": energy,
        "entropic_energy_eV": entropic,
        "energy_sigma0_eV": energy - entropic / 2,
        "forces_eV_A": (np.asarray(forces[-1], dtype=float) * _HARTREE_EV / _BOHR_A).tolist(),
        "scf_converged": converged,
        "scf_steps": steps[-1] if steps else None,
        "cp2k_version": parsed.cp2k_version,
    }
    if stress:
        parsed.parse_stresses()
        tensors = parsed.data.get("stress_tensor") or []
        if not tensors:
            raise Cp2kError(f"{out}: no stress tensor in the CP2K output (STRESS_TENSOR ANALYTICAL was asked)")
        gpa = np.asarray(tensors[-1], dtype=float)
        data["stress_GPa_cp2k"] = gpa.tolist()  # CP2K's sign: compression positive
        data["stress_eV_A3"] = (-gpa * _GPA_EV_A3).tolist()
    return data


def find_matching(
    atoms: Atoms, settings: Mapping[str, Any], stress: bool, folders: Sequence[Path], tol: float = 1e-5
) -> Cp2kResult | None:
    """A finished job under ``folders`` with these settings and a structure equal to ``atoms`` within ``tol`` A."""
    from ase.io import read

    physics = json.loads(json.dumps(_physics(settings)))
    prefix = f"{atoms.get_chemical_formula(mode='metal')}-"
    for root in folders:
        for job in sorted(root.glob(f"{prefix}*/result.json")) if root.is_dir() else []:
            try:
                data = json.loads(job.read_text())
                if data.get("settings") != physics or ("stress_eV_A3" in data) != bool(stress):
                    continue
                other = read(job.parent / "structure.json")
            except (OSError, ValueError, KeyError):
                continue
            assert not isinstance(other, list)
            if (
                other.get_chemical_symbols() == atoms.get_chemical_symbols()
                and np.allclose(np.asarray(other.cell), np.asarray(atoms.cell), atol=tol)
                and np.allclose(other.positions, atoms.positions, atol=tol)
            ):
                return _result(job.parent, data, cached=True)
    return None


class Cp2kCode:
    """CP2K's parts of a cached single point (:class:`cellsim.engines.singlepoint.SinglePointCode`).

    ``cp2k.psmp -i job.inp -o job.out`` in the job folder; the input comes from :func:`write_input`, the
    output is read by :func:`parse_output`, and a job of the same settings whose structure matches within
    1e-5 A is reused (:func:`find_matching`).
    """

    name = "CP2K"
    error = Cp2kError
    log = "job.out"
    stale = ("job.out", "job-RESTART.kp", "job-RESTART.wfn")

    def __init__(self, atoms: Atoms, settings: Mapping[str, Any], stress: bool) -> None:
        self.atoms = atoms
        self.full = dict(settings)
        self.stress = stress
        self.threads = self.full["threads"]
        self.timeout = self.full.get("timeout")
        self.settings = _physics(self.full)
        self._exe: Path | None = None
        self._text = ""

    def nearby(self, folders: Sequence[Path]) -> Cp2kResult | None:
        # the same structure read back from a file can round to another hash (positions within 1e-8 A of a
        # rounding boundary): a finished job of the same settings whose structure matches within 1e-5 A is it
        return find_matching(self.atoms, self.full, self.stress, folders)

    def prepare(self) -> tuple[list[str], dict[str, str]]:
        self._exe = find_cp2k(self.full["command"])
        self._text = write_input(self.atoms, self.full, self.stress)
        env = dict(os.environ, OMP_NUM_THREADS=str(self.full["threads"]))
        return [str(self._exe), "-i", "job.inp", "-o", "job.out"], env

    def write_inputs(self, folder: Path) -> None:
        from cellsim.core.files import atomic_write_text

        atomic_write_text(folder / "job.inp", self._text)

    def parse(self, folder: Path, proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
        out = folder / "job.out"
        if proc.returncode != 0 and not out.is_file():
            raise Cp2kError(f"{folder}: CP2K exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
        data = parse_output(out, len(self.atoms), self.stress)
        scf = self.full["scf"]
        if not data["scf_converged"] and scf.get("require_converged", True):
            raise Cp2kError(
                f"{out}: the SCF did not converge in {scf['max_scf']} steps "
                f"(raise scf.max_scf, lower scf.mixing.alpha, or set scf.require_converged: false)"
            )
        return data

    def record(self, data: Mapping[str, Any]) -> dict[str, Any]:
        mesh = kpoint_mesh(self.atoms, self.full)
        used = kinds(sorted(set(self.atoms.get_chemical_symbols())), self.full)
        return {
            "kpoints": list(mesh) if mesh else "gamma",
            "kinds": {el: list(v) for el, v in used.items()},
            "command": str(self._exe),
        }

    def cleanup(self, folder: Path) -> None:
        return None


def single_point(
    structure: Structure | Atoms,
    cache: str | os.PathLike[str],
    settings: Mapping[str, Any] | None = None,
    *,
    stress: bool = False,
    label: str | None = None,
    meta: Mapping[str, Any] | None = None,
    labels: Sequence[str | os.PathLike[str]] = (),
) -> Cp2kResult:
    """PBE energy + forces (+ stress) of one structure with CP2K, reusing a stored result when present.

    Parameters
    ----------
    structure
        A pymatgen Structure or ASE Atoms, periodic in 3D.
    cache
        Folder holding one sub-folder per job.
    settings
        Complete settings from :func:`resolve_settings` (default: the shipped ones).
    stress
        Also compute the analytical stress tensor.
    label, meta
        Stored in ``result.json`` (a name for the structure and any provenance the caller wants kept).
    labels
        Read-only job folders searched first (e.g. :func:`stored_labels`): a job found there is not rerun.

    Returns
    -------
    Cp2kResult
        The energy, forces and stress; ``cached`` tells whether CP2K ran.

    Raises
    ------
    Cp2kNotFoundError
        No CP2K executable (with the install command).
    Cp2kError
        CP2K failed, timed out or did not converge (the message names the job's output file).
    """
    settings = dict(settings) if settings is not None else resolve_settings()
    atoms = as_atoms(structure)
    folder = job_dir(Path(cache), atoms, settings, stress)
    return cached_single_point(Cp2kCode(atoms, settings, stress), atoms, folder, label=label, meta=meta, labels=labels)


def single_points(
    structures: Mapping[str, Structure | Atoms],
    cache: str | os.PathLike[str],
    settings: Mapping[str, Any] | None = None,
    *,
    stress: bool = False,
    labels: Sequence[str | os.PathLike[str]] = (),
    progress: Any = None,
) -> dict[str, Cp2kResult]:
    """:func:`single_point` on each named structure in turn (one CP2K job at a time; resumable).

    ``progress(name, result)`` is called after each job, if given.
    """
    settings = dict(settings) if settings is not None else resolve_settings()
    out: dict[str, Cp2kResult] = {}
    for name, structure in structures.items():
        out[name] = single_point(structure, cache, settings, stress=stress, label=name, labels=labels)
        if progress is not None:
            progress(name, out[name])
    return out


def label_set(
    configs: Sequence[tuple[str, Atoms, Mapping[str, Any], Mapping[str, Any]]],
    root: str | os.PathLike[str],
    *,
    max_new: int | None = None,
    list_only: bool = False,
) -> dict[str, str]:
    """Label named configurations with CP2K (energy and forces) into ``root/jobs``, a stored label set
    (data/pbe/*), by :func:`cellsim.engines.labelling.label_set`.

    ``configs``: (name, atoms, settings overrides for :func:`resolve_settings`, meta) in labelling order.
    Returns the index.
    """
    from cellsim.engines.labelling import label_set as label_loop

    def folder(jobs: Path, atoms: Atoms, over: Mapping[str, Any]) -> Path:
        return job_dir(jobs, atoms, resolve_settings(over))

    def run(jobs: Path, name: str, atoms: Atoms, over: Mapping[str, Any], meta: Mapping[str, Any]) -> Cp2kResult:
        return single_point(atoms, jobs, resolve_settings(over), label=name, meta=meta)

    return label_loop(configs, root, folder, run, max_new=max_new, list_only=list_only)
