"""Plane-wave PBE single points with GPAW: the reference for a metal's lattice where Gaussian bases fall short.

Why a second DFT code: CP2K's Gaussian basis (DZVP/TZV2P-MOLOPT, GTH-q13) puts In's body-centred tetragonal
and fcc cells within 0.8 meV/atom of each other along the whole Bain path at converged k-meshes, while
plane-wave PBE has bct 5-6 meV/atom below fcc (data/pbe/README.md). The tetragonal distortion is a
meV-scale band-structure effect that a small atom-centred basis does not resolve; plane waves converge
systematically with one number (the cutoff), so the metal's c/a is read from them.

GPAW is run as a separate process, one job per structure, by the same job loop as CP2K
(:mod:`cellsim.engines.singlepoint`; GPAW's parts are :class:`GpawCode`):
``<cache>/<formula>-<hash>/`` holds ``structure.json``, ``params.json`` (the GPAW parameters), ``job.py``
(the script that ran: ``python3 job.py`` reruns it by hand), GPAW's log ``job.txt`` and, once it ended
well, ``result.json`` (written atomically; never rerun). GPAW is often installed for another Python than
cellsim's (Debian's ``python3-gpaw`` runs under ``/usr/bin/python3`` only), so the interpreter is found by
asking each candidate to import it: ``$CELLSIM_GPAW_PYTHON``, this Python, then ``python3`` on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.core.errors import CellsimError
from cellsim.core.resources import cache_root
from cellsim.engines.singlepoint import Cp2kResult, cached_single_point, job_dir

if TYPE_CHECKING:
    from ase import Atoms

INSTALL_HINT = (
    "install it with `apt-get install gpaw` (Debian/Ubuntu, as root; `make system-deps` does it) or "
    "`pip install gpaw` with its setups, or set CELLSIM_GPAW_PYTHON to a Python that imports gpaw"
)

# PBE, PAW (GPAW's setups: 13 valence electrons for In), 450 eV, Marzari-Vanderbilt 0.1 eV. The k-mesh is
# per structure (Gamma-centred): 14^3 on the 1-atom bct cell resolves In's Bain path to ~0.3 meV/atom
# (audits/science-2.md: a density-8 mesh, 2100 irreducible points, gave the same curve at 7x the cost).
DEFAULT_SETTINGS: dict[str, Any] = {
    "xc": "PBE",
    "ecut_eV": 450.0,
    "kpts": [14, 14, 14],
    "smearing": {"name": "marzari-vanderbilt", "width": 0.1},
    "threads": 1,
    "timeout": None,
}


class GpawError(CellsimError):
    """GPAW is missing or a job ended without a usable result."""


class GpawNotFoundError(GpawError):
    """No Python on this machine imports gpaw."""


@lru_cache(maxsize=4)
def _probe(python: str) -> str | None:
    """GPAW's version under ``python``, or ``None`` when it does not import there."""
    try:
        proc = subprocess.run(
            [python, "-c", "import gpaw, ase; print(gpaw.__version__)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def find_gpaw_python() -> tuple[str, str]:
    """The interpreter that imports GPAW and GPAW's version there.

    Raises
    ------
    GpawNotFoundError
        No candidate imports it (the message says how to install it).
    """
    env = os.environ.get("CELLSIM_GPAW_PYTHON")
    candidates = [env] if env else [sys.executable, shutil.which("python3") or "", "/usr/bin/python3"]
    for cand in dict.fromkeys(c for c in candidates if c):
        version = _probe(cand)
        if version:
            return cand, version
    where = f"CELLSIM_GPAW_PYTHON={env}" if env else ", ".join(c for c in candidates if c)
    raise GpawNotFoundError(f"GPAW does not import under {where}: {INSTALL_HINT}")


def resolve_settings(*overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The default settings overridden in order by each mapping (unknown keys are an error)."""
    out = json.loads(json.dumps(DEFAULT_SETTINGS))
    for over in overrides:
        for key, value in (over or {}).items():
            if key not in out:
                raise GpawError(f"plane-wave setting {key!r}: expected one of {', '.join(sorted(out))}")
            out[key] = value
    mesh = out["kpts"]
    if not (isinstance(mesh, list | tuple) and len(mesh) == 3 and all(isinstance(k, int) and k > 0 for k in mesh)):
        raise GpawError(f"plane-wave setting kpts: expected three positive integers, got {mesh!r}")
    return out


def _physics(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k not in ("threads", "timeout")}


def cache_dir() -> Path:
    """``$CELLSIM_CACHE/gpaw`` (default ``~/.cache/cellsim/gpaw``)."""
    return cache_root() / "gpaw"


def stored_labels() -> list[Path]:
    """The plane-wave job folders kept with cellsim (``data/pbe/*_pw/jobs``), if this install has them."""
    from cellsim.core.resources import shipped_dir

    try:
        root = shipped_dir("data") / "pbe"
    except FileNotFoundError:
        return []
    return sorted(p for p in root.glob("*_pw/jobs") if p.is_dir())


# The job script, run under GPAW's Python: reads structure.json + params.json, writes raw.json. Kept small
# and self-contained (it cannot import cellsim: that Python may not have it).
_SCRIPT = """\
import json
import os
import time

from ase.io import read
from gpaw import GPAW, PW, __version__
with open("params.json") as fh:
    p = json.load(fh)
atoms = read("structure.json")
atoms.calc = GPAW(mode=PW(p["ecut_eV"]), xc=p["xc"], kpts={"size": p["kpts"], "gamma": True},
                  occupations=p["smearing"], txt="job.txt")
t0 = time.time()
free = atoms.get_potential_energy(force_consistent=True)
out = {"energy_eV": free, "energy_sigma0_eV": atoms.get_potential_energy(),
       "forces_eV_A": atoms.get_forces().tolist(), "gpaw_version": __version__,
       "iterations": atoms.calc.get_number_of_iterations(),
       "irreducible_kpoints": len(atoms.calc.get_ibz_k_points())}
if p["stress"]:
    out["stress_eV_A3"] = atoms.get_stress(voigt=False).tolist()
out["compute_s"] = round(time.time() - t0, 2)
with open("raw.json.tmp", "w") as fh:
    json.dump(out, fh)
os.replace("raw.json.tmp", "raw.json")
"""


class GpawCode:
    """GPAW's parts of a cached single point (:class:`cellsim.engines.singlepoint.SinglePointCode`).

    ``python job.py`` (:data:`_SCRIPT`) under the Python that imports GPAW, reading ``structure.json`` and
    ``params.json`` and writing ``raw.json``, which becomes ``result.json``.
    """

    name = "GPAW"
    error = GpawError
    log = "job.txt"
    stale = ("raw.json", "job.txt")

    def __init__(self, atoms: Atoms, settings: Mapping[str, Any], stress: bool) -> None:
        self.atoms = atoms
        self.full = dict(settings)
        self.stress = stress
        self.threads = self.full["threads"]
        self.timeout = self.full.get("timeout")
        self.settings = _physics(self.full)
        self._python = ""
        self._version = ""

    def nearby(self, folders: Sequence[Path]) -> Cp2kResult | None:
        return None  # jobs are found by name only

    def prepare(self) -> tuple[list[str], dict[str, str]]:
        self._python, self._version = find_gpaw_python()
        threads = str(self.threads)
        return [self._python, "job.py"], dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)

    def write_inputs(self, folder: Path) -> None:
        from cellsim.core.files import atomic_write_json, atomic_write_text

        atomic_write_json(folder / "params.json", {**self.settings, "stress": bool(self.stress)})
        atomic_write_text(folder / "job.py", _SCRIPT)

    def parse(self, folder: Path, proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
        raw = folder / "raw.json"
        if proc.returncode != 0 or not raw.is_file():
            raise GpawError(f"{folder}: GPAW exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
        data: dict[str, Any] = json.loads(raw.read_text())
        forces = np.asarray(data["forces_eV_A"], dtype=float)
        if forces.shape != (len(self.atoms), 3) or not np.isfinite(forces).all():
            raise GpawError(f"{raw}: no finite forces for {len(self.atoms)} atoms")
        return data

    def record(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "code": "gpaw",
            "kpoints": list(self.full["kpts"]),
            "command": f"{self._python} job.py",
            "gpaw_version": data.get("gpaw_version", self._version),
        }

    def cleanup(self, folder: Path) -> None:
        (folder / "raw.json").unlink(missing_ok=True)


def single_point(
    atoms: Atoms,
    cache: str | os.PathLike[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    *,
    stress: bool = False,
    label: str | None = None,
    meta: Mapping[str, Any] | None = None,
    labels: Sequence[str | os.PathLike[str]] = (),
) -> Any:
    """Plane-wave PBE energy + forces (+ stress) of one periodic structure, reusing a stored result.

    Parameters
    ----------
    atoms
        ASE Atoms, periodic in 3D (small cells: plane waves with k-points cost ~N^3 in atoms).
    cache
        Folder of job folders (default :func:`cache_dir`).
    settings
        From :func:`resolve_settings` (default: the shipped ones).
    stress, label, meta, labels
        As for :func:`cellsim.engines.cp2k.single_point` (``labels``: read-only job folders searched first).

    Returns
    -------
    cellsim.engines.cp2k.Cp2kResult
        The same result record as a CP2K job (energy = free energy, with ``data["energy_sigma0_eV"]``).

    Raises
    ------
    GpawNotFoundError
        No Python here imports gpaw.
    GpawError
        GPAW failed or timed out (the message names the job's log).
    """
    settings = resolve_settings(settings)
    folder = job_dir(Path(cache) if cache is not None else cache_dir(), atoms, _physics(settings), stress)
    return cached_single_point(GpawCode(atoms, settings, stress), atoms, folder, label=label, meta=meta, labels=labels)


def primitive_bct_cell(element: str, c_a: float, volume: float) -> Atoms:
    """The 1-atom primitive body-centred tetragonal cell (c/a = sqrt(2) is fcc) of ``volume`` A^3/atom.

    The same crystal as :func:`cellsim.engines.cp2k.bain_cell` with half the atoms (plane-wave cost falls
    with them, and the k-mesh samples the primitive Brillouin zone evenly).
    """
    from ase import Atoms

    a = (2 * volume / c_a) ** (1 / 3)
    c = c_a * a
    cell = [[-a / 2, a / 2, c / 2], [a / 2, -a / 2, c / 2], [a / 2, a / 2, -c / 2]]
    return Atoms(element, cell=cell, scaled_positions=[[0, 0, 0]], pbc=True)


def label_set(
    configs: Sequence[tuple[str, Atoms, Mapping[str, Any], Mapping[str, Any]]],
    root: str | os.PathLike[str],
    *,
    max_new: int | None = None,
    list_only: bool = False,
) -> dict[str, str]:
    """Label named configurations with GPAW (energy, forces, stress) into ``root/jobs``, a stored label set
    (data/pbe/*_pw), by :func:`cellsim.engines.labelling.label_set`.

    ``configs``: (name, atoms, settings overrides, meta) in labelling order. Returns the index.
    """
    from cellsim.engines.labelling import label_set as label_loop

    version = None if list_only else find_gpaw_python()[1]

    def folder(jobs: Path, atoms: Atoms, over: Mapping[str, Any]) -> Path:
        return job_dir(jobs, atoms, _physics(resolve_settings(over)), True)

    def run(jobs: Path, name: str, atoms: Atoms, over: Mapping[str, Any], meta: Mapping[str, Any]) -> Any:
        settings = resolve_settings(over)
        return single_point(atoms, jobs, settings, stress=True, label=name, meta={**meta, "gpaw": version})

    return label_loop(configs, root, folder, run, max_new=max_new, list_only=list_only)
