"""CP2K jobs: one folder per structure + settings hash, run once, parsed, stored atomically and reused."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms
    from pymatgen.core import Structure

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


@dataclass(frozen=True)
class Cp2kResult:
    """One CP2K single point.

    Attributes
    ----------
    energy
        Total energy in eV (with smearing: CP2K's free energy, E - TS, which the forces belong to;
        ``data["energy_sigma0_eV"]`` is the zero-smearing estimate E - TS/2).
    forces
        (N, 3) forces in eV/A, atoms in the input order.
    stress
        (3, 3) stress in eV/A^3 with ASE's sign (tensile positive), or ``None`` when not computed.
    job_dir
        The job's folder (``job.inp``, ``job.out``, ``result.json``).
    key
        The hash naming the job (structure + settings).
    data
        The whole ``result.json``.
    cached
        True when the result was read from disk and CP2K did not run.
    """

    energy: float
    forces: np.ndarray
    stress: np.ndarray | None
    job_dir: Path
    key: str
    data: dict[str, Any]
    cached: bool


def as_atoms(structure: Structure | Atoms) -> Atoms:
    """An ASE Atoms copy of a pymatgen Structure or ASE Atoms."""
    from ase import Atoms

    if isinstance(structure, Atoms):
        return structure.copy()
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_atoms(structure)


def _physics(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that change the numbers (not how or where CP2K runs)."""
    return {k: v for k, v in settings.items() if k not in ("command", "threads", "timeout", "data_dir")}


def job_key(atoms: Atoms, settings: Mapping[str, Any], stress: bool = False) -> str:
    """A 16-hex hash of the structure (positions to 1e-6 A) and the settings that change the result."""
    payload = {
        "symbols": atoms.get_chemical_symbols(),
        "cell": np.round(np.asarray(atoms.cell), 6).tolist(),
        "positions": np.round(atoms.positions, 6).tolist(),
        "settings": _physics(settings),
        "stress": bool(stress),
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).replace("-0.0,", "0.0,")
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def job_dir(cache: Path, atoms: Atoms, settings: Mapping[str, Any], stress: bool = False) -> Path:
    """The job folder of ``atoms`` under ``cache``: ``<formula>-<hash>``."""
    return Path(cache) / f"{atoms.get_chemical_formula(mode='metal')}-{job_key(atoms, settings, stress)}"


def _result(folder: Path, data: dict[str, Any], cached: bool) -> Cp2kResult:
    stress = data.get("stress_eV_A3")
    return Cp2kResult(
        energy=float(data["energy_eV"]),
        forces=np.asarray(data["forces_eV_A"], dtype=float),
        stress=None if stress is None else np.asarray(stress, dtype=float),
        job_dir=folder,
        key=str(data["key"]),
        data=data,
        cached=cached,
    )


def load_result(folder: str | os.PathLike[str]) -> Cp2kResult | None:
    """The finished result stored in a job folder, or ``None`` when it has none."""
    path = Path(folder) / "result.json"
    if not path.is_file():
        return None
    try:
        return _result(Path(folder), json.loads(path.read_text()), cached=True)
    except (ValueError, KeyError) as exc:
        raise Cp2kError(f"{path}: unreadable CP2K result ({exc}); delete it to recompute") from None


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
    from ase.io import write

    from cellsim.core.files import BusyError, WriterLock, atomic_write_json, atomic_write_text

    settings = dict(settings) if settings is not None else resolve_settings()
    atoms = as_atoms(structure)
    folder = job_dir(Path(cache), atoms, settings, stress)
    for where in (folder, *(Path(d) / folder.name for d in labels)):
        done = load_result(where)
        if done is not None:
            return done
    # the same structure read back from a file can round to another hash (positions within 1e-8 A of a
    # rounding boundary): a finished job of the same settings whose structure matches within 1e-5 A is it
    done = find_matching(atoms, settings, stress, [Path(cache), *map(Path, labels)])
    if done is not None:
        return done
    exe = find_cp2k(settings["command"])
    text = write_input(atoms, settings, stress)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with WriterLock(folder / ".lock", f"CP2K job {folder}"):
            done = load_result(folder)  # another process may have finished it while we waited
            if done is not None:
                return done
            atomic_write_text(folder / "job.inp", text)
            write(folder / "structure.json", atoms, format="json")
            for stale in ("job.out", "job-RESTART.kp", "job-RESTART.wfn"):
                (folder / stale).unlink(missing_ok=True)
            env = dict(os.environ, OMP_NUM_THREADS=str(settings["threads"]))
            t0 = time.time()
            try:
                proc = subprocess.run(
                    [str(exe), "-i", "job.inp", "-o", "job.out"],
                    cwd=folder,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=settings.get("timeout"),
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise Cp2kError(f"{folder / 'job.out'}: CP2K ran past the timeout of {settings['timeout']} s") from None
            wall = time.time() - t0
            out = folder / "job.out"
            if proc.returncode != 0 and not out.is_file():
                raise Cp2kError(f"{folder}: CP2K exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
            data = parse_output(out, len(atoms), stress)
            if not data["scf_converged"] and settings["scf"].get("require_converged", True):
                raise Cp2kError(
                    f"{out}: the SCF did not converge in {settings['scf']['max_scf']} steps "
                    f"(raise scf.max_scf, lower scf.mixing.alpha, or set scf.require_converged: false)"
                )
            mesh = kpoint_mesh(atoms, settings)
            used = kinds(sorted(set(atoms.get_chemical_symbols())), settings)
            data.update(
                {
                    "key": folder.name.rsplit("-", 1)[1],
                    "label": label,
                    "formula": atoms.get_chemical_formula(mode="metal"),
                    "natoms": len(atoms),
                    "kpoints": list(mesh) if mesh else "gamma",
                    "kinds": {el: list(v) for el, v in used.items()},
                    "wall_s": round(wall, 2),
                    "threads": settings["threads"],
                    "command": str(exe),
                    "settings": _physics(settings),
                    "meta": dict(meta or {}),
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
            )
            atomic_write_json(folder / "result.json", data)
            # a finished job is never rerun (result.json is read first), so its lock file is no longer needed
            (folder / ".lock").unlink(missing_ok=True)
    except BusyError as exc:
        raise Cp2kError(str(exc)) from None
    return _result(folder, data, cached=False)


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
