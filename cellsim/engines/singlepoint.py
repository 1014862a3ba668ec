"""The cached single point every DFT code here shares: one job folder per structure + settings, run once.

A job is ``<cache>/<formula>-<hash>/`` (:func:`job_dir`): the code's inputs, ``structure.json``, the code's own
output and, once it ended well, ``result.json`` (written atomically). A folder with a ``result.json`` is never
run again, so a killed batch resumes where it stopped and a second call on the same structure costs nothing;
read-only copies of job folders (the stored labels under ``data/pbe/*/jobs``) are searched by the same name.

:func:`cached_single_point` is that loop, once. What differs between the codes (the inputs written, the
command run, how its output is read, the code's own fields of ``result.json``) is a :class:`SinglePointCode`:
:class:`cellsim.engines.cp2k.jobs.Cp2kCode` (CP2K) and :class:`cellsim.engines.planewave.GpawCode` (GPAW).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from cellsim.core.errors import CellsimError
from cellsim.inputsets.cp2k_settings import Cp2kError

if TYPE_CHECKING:
    from ase import Atoms


@dataclass(frozen=True)
class Cp2kResult:
    """One DFT single point (named for the first code; GPAW's jobs give the same record).

    Attributes
    ----------
    energy
        Total energy in eV (with smearing: the free energy, E - TS, which the forces belong to;
        ``data["energy_sigma0_eV"]`` is the zero-smearing estimate E - TS/2).
    forces
        (N, 3) forces in eV/A, atoms in the input order.
    stress
        (3, 3) stress in eV/A^3 with ASE's sign (tensile positive), or ``None`` when not computed.
    job_dir
        The job's folder (the code's inputs and output, ``structure.json``, ``result.json``).
    key
        The hash naming the job (structure + settings).
    data
        The whole ``result.json``.
    cached
        True when the result was read from disk and the code did not run.
    """

    energy: float
    forces: np.ndarray
    stress: np.ndarray | None
    job_dir: Path
    key: str
    data: dict[str, Any]
    cached: bool


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


def _physics(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that change the numbers (not how or where the code runs)."""
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


class SinglePointCode(Protocol):
    """The code-specific parts of one cached single point (one object per job: it knows the atoms and settings).

    Attributes
    ----------
    name
        The code's name in messages and in the job lock's description (``CP2K``, ``GPAW``).
    error
        The error raised when the job fails.
    log
        The code's output file in the job folder, named when the job times out.
    stale
        Outputs of an earlier, unfinished try, removed before the code runs.
    threads, timeout
        OpenMP threads (``result.json``'s ``threads``) and the time limit in seconds (``None``: none).
    settings
        The settings that change the numbers (``result.json``'s ``settings``).
    """

    @property
    def name(self) -> str: ...
    @property
    def error(self) -> type[CellsimError]: ...
    @property
    def log(self) -> str: ...
    @property
    def stale(self) -> tuple[str, ...]: ...
    @property
    def threads(self) -> Any: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def settings(self) -> dict[str, Any]: ...

    def nearby(self, folders: Sequence[Path]) -> Cp2kResult | None:
        """A finished job of the same structure stored under another name, if the code looks for one."""
        ...

    def prepare(self) -> tuple[list[str], dict[str, str]]:
        """Find the program and make the inputs (an error here leaves no job folder behind).

        Returns the command (program and arguments, run in the job folder) and its environment.
        """
        ...

    def write_inputs(self, folder: Path) -> None:
        """Write the inputs :meth:`prepare` made into the job folder (``structure.json`` is the caller's)."""
        ...

    def parse(self, folder: Path, proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
        """The result fields of a finished process (energy_eV, forces_eV_A, ...); ``error`` when there are none."""
        ...

    def record(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The code's own fields of ``result.json`` (placed by :data:`RECORD_ORDER`)."""
        ...

    def cleanup(self, folder: Path) -> None:
        """Remove what the finished job no longer needs."""
        ...


# the fields a finished job adds to its parsed output, in this order (fields a code does not give are left out;
# one the parsed output already has keeps its place there): result.json reads the same for every code
RECORD_ORDER = (
    "key",
    "code",
    "label",
    "formula",
    "natoms",
    "kpoints",
    "kinds",
    "wall_s",
    "threads",
    "command",
    "gpaw_version",
    "settings",
    "meta",
    "finished",
)


def cached_single_point(
    code: SinglePointCode,
    atoms: Atoms,
    folder: Path,
    *,
    label: str | None = None,
    meta: Mapping[str, Any] | None = None,
    labels: Sequence[str | os.PathLike[str]] = (),
) -> Cp2kResult:
    """The single point of ``atoms`` in job folder ``folder``: a stored result, else ``code`` run there once.

    Parameters
    ----------
    code
        The code's parts for this job (:class:`SinglePointCode`).
    atoms
        The structure (written as ``structure.json``).
    folder
        The job folder (:func:`job_dir`); its parent is the cache.
    label, meta
        Stored in ``result.json``.
    labels
        Read-only folders of job folders, searched (by the job's name) before anything runs.

    Raises
    ------
    CellsimError
        ``code.error`` when the code fails, times out or another process holds the job; whatever
        ``code.prepare`` raises when the code is not installed or the inputs cannot be made.
    """
    from ase.io import write

    from cellsim.core.files import BusyError, WriterLock, atomic_write_json

    for where in (folder, *(Path(d) / folder.name for d in labels)):
        done = load_result(where)
        if done is not None:
            return done
    done = code.nearby([folder.parent, *map(Path, labels)])
    if done is not None:
        return done
    argv, env = code.prepare()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with WriterLock(folder / ".lock", f"{code.name} job {folder}"):
            done = load_result(folder)  # another process may have finished it while we waited
            if done is not None:
                return done
            code.write_inputs(folder)
            write(folder / "structure.json", atoms, format="json")
            for stale in code.stale:
                (folder / stale).unlink(missing_ok=True)
            t0 = time.time()
            try:
                proc = subprocess.run(
                    argv, cwd=folder, env=env, capture_output=True, text=True, timeout=code.timeout, check=False
                )
            except subprocess.TimeoutExpired:
                raise code.error(f"{folder / code.log}: {code.name} ran past the timeout of {code.timeout} s") from None
            wall = time.time() - t0
            data = code.parse(folder, proc)
            common = {
                "key": folder.name.rsplit("-", 1)[1],
                "label": label,
                "formula": atoms.get_chemical_formula(mode="metal"),
                "natoms": len(atoms),
                "wall_s": round(wall, 2),
                "threads": code.threads,
                "settings": code.settings,
                "meta": dict(meta or {}),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            fields = {**common, **code.record(data)}
            data.update({k: fields[k] for k in RECORD_ORDER if k in fields})
            atomic_write_json(folder / "result.json", data)
            code.cleanup(folder)
            # a finished job is never rerun (result.json is read first), so its lock file is no longer needed
            (folder / ".lock").unlink(missing_ok=True)
    except BusyError as exc:
        raise code.error(str(exc)) from None
    return _result(folder, data, cached=False)
