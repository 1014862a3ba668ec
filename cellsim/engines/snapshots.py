"""Interface snapshots for the PBE parity check: what a CP2K single point costs here, the study's interface
built smaller by its own builder, a short engine MD of it (cached), frames of a run, and the plan that picks
between them under a time budget."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.core.errors import CellsimError
from cellsim.core.resources import cache_root

if TYPE_CHECKING:
    from ase import Atoms
    from pymatgen.core import Structure

    from cellsim.config.study import Study
    from cellsim.engines.registry import ModelInfo


# the measured cost of one CP2K PBE single point on one core (this machine, default settings, Gamma point):
# seconds ~ REF_SECONDS * (valence electrons / REF_ELECTRONS) ** COST_EXPONENT. Two points measured here
# (default settings, Gamma, one core): the 95-atom Li6PS5Cl/In interface, 760 electrons, 31 min; the 46-atom
# reduced one (data/pbe/li6ps5cl_in_parity), 380 electrons, 30 SCF steps, ~15 min of CPU (41.5 min of wall
# at load 5). Between them the cost grows as electrons^1.0-1.5: at these sizes the grids (collocation,
# FFTs) cost more than the cubic diagonalisation. 1.5 is used: the smaller models come out slightly cheap
REF_ELECTRONS = 760
REF_SECONDS = 1860.0
COST_EXPONENT = 1.5

# what a reduced interface may change in the study's builder settings, largest model first
_REDUCTIONS: tuple[dict[str, Any], ...] = (
    {"electrolyte_layers": 2, "metal_thickness": 8.0},
    {"electrolyte_layers": 1, "metal_thickness": 8.0},
    {"electrolyte_layers": 1, "metal_thickness": 4.0},
)
REDUCED_VACUUM = 6.0  # A: enough to separate the slab's faces, cheap on CP2K's grids


class ParityError(CellsimError):
    """The parity check cannot run (no snapshots, nothing fits the budget, CP2K missing)."""


# --------------------------------------------------------------------------- cost and snapshots


def valence_electrons(atoms: Atoms, settings: Mapping[str, Any]) -> int:
    """Valence electrons CP2K treats with these settings (from the pseudopotentials' -qN names)."""
    from cellsim.engines.cp2k import kinds

    names = kinds(sorted(set(atoms.get_chemical_symbols())), settings)
    return sum(int(names[s][1].rsplit("-q", 1)[1]) for s in atoms.get_chemical_symbols())


def estimate_seconds(atoms: Atoms, settings: Mapping[str, Any]) -> float:
    """Estimated time of one CP2K single point on a free core (see :data:`REF_SECONDS`), per k-point and thread
    (a loaded machine takes longer: the 46-atom point took 41.5 min of wall for ~15 min of CPU at load 5)."""
    from cellsim.engines.cp2k import kpoint_mesh

    mesh = kpoint_mesh(atoms, settings)
    nk = 1 if mesh is None else max(1, math.prod(mesh) // 2)
    scale = (valence_electrons(atoms, settings) / REF_ELECTRONS) ** COST_EXPONENT
    return REF_SECONDS * scale * nk / max(1, int(settings.get("threads") or 1))


def reduced_interfaces(study: Study, base_dir: Path | None = None) -> list[tuple[dict[str, Any], Structure]]:
    """The study's interface built smaller by the same builder, largest first (one per reduction that builds)."""
    from cellsim.build.interface import build_interface
    from cellsim.core.errors import BuildError

    out: list[tuple[dict[str, Any], Structure]] = []
    seen: set[int] = set()
    for red in _REDUCTIONS:
        spec = study.interface.model_copy(deep=True)
        spec.min_atoms, spec.min_lateral = 1, 0.0
        spec.vacuum = min(spec.vacuum, REDUCED_VACUUM) if spec.vacuum > 0 else 0.0
        spec.electrolyte.layers = red["electrolyte_layers"]
        spec.metal.layers = None
        spec.metal.min_thickness = min(red["metal_thickness"], spec.min_thickness("metal"))
        try:
            model = build_interface(spec, base_dir)
        except BuildError:
            continue
        if len(model.structure) in seen:
            continue
        seen.add(len(model.structure))
        out.append(({**red, "vacuum": spec.vacuum, "natoms": len(model.structure)}, model.structure))
    return out


def stored_snapshot_dirs() -> list[Path]:
    """The snapshot folders of the PBE labels kept with cellsim (``data/pbe/*/snapshots``), if present."""
    from cellsim.engines.cp2k import stored_labels

    return [d.parent / "snapshots" for d in stored_labels() if (d.parent / "snapshots").is_dir()]


def _snapshot_cache() -> Path:
    return cache_root() / "parity-snapshots"


def _digest(atoms: Atoms) -> str:
    data = {
        "cell": np.round(np.asarray(atoms.cell), 5).tolist(),
        "symbols": atoms.get_chemical_symbols(),
        "pos": np.round(atoms.get_positions(), 5).tolist(),
    }
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]


def langevin(
    atoms: Atoms, calc: Any, temperature: float, dt_fs: float, seed: int, relax_steps: int = 30
) -> tuple[Atoms, Any]:
    """A copy of ``atoms`` on ``calc``, relaxed by ``relax_steps`` of FIRE (fmax 0.1 eV/A), with seeded
    Maxwell-Boltzmann velocities, and ASE's Langevin NVT on it (friction 0.01/fs, centre of mass fixed): the short
    MD of the snapshot and active-learning explorations."""
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from ase.optimize import FIRE
    from ase.units import fs

    work = atoms.copy()
    work.calc = calc
    if relax_steps > 0:
        FIRE(work, logfile=None).run(fmax=0.1, steps=relax_steps)
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(work, temperature_K=temperature, rng=rng)
    Stationary(work)
    work.set_constraint([*work.constraints, FixCom()])  # ASE >= 3.28: FixCom, not Langevin(fixcm=True)
    dyn = Langevin(work, timestep=dt_fs * fs, temperature_K=temperature, friction=0.01 / fs, fixcm=False, rng=rng)
    return work, dyn


def engine_md_snapshots(
    atoms: Atoms,
    model: ModelInfo,
    k: int,
    temperature: float,
    dt_fs: float,
    steps: int = 100,
    relax_steps: int = 30,
    seed: int = 0,
    cache: Path | None = None,
) -> list[Atoms]:
    """K frames, evenly spaced over the second half of a short Langevin NVT (after a short FIRE relaxation).

    Cached by the start structure, engine, and MD settings, so the same snapshots are labelled on a rerun.
    """
    from ase.io import read, write

    from cellsim.engines.registry import load_calculator

    key = f"{_digest(atoms)}-{model.key}-{k}-{temperature:g}-{dt_fs:g}-{steps}-{relax_steps}-{seed}"
    folder = cache or _snapshot_cache()
    name = f"{atoms.get_chemical_formula(mode='metal')}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.extxyz"
    path = folder / name
    # the snapshots kept with cellsim's stored labels (data/pbe/*/snapshots) are the ones labelled there
    for found in (path, *(d / name for d in stored_snapshot_dirs())):
        if found.is_file():
            frames = read(found, index=":")
            return list(frames) if isinstance(frames, list) else [frames]
    constraints = list(atoms.constraints)
    work, dyn = langevin(atoms, load_calculator(model), temperature, dt_fs, seed, relax_steps)
    half = steps // 2
    picks = {half + round(i * (steps - half) / k) for i in range(1, k + 1)}
    frames = []
    for step in range(1, steps + 1):
        dyn.run(1)
        if step in picks:
            snap = work.copy()
            snap.calc = None
            snap.set_constraint(constraints)
            frames.append(snap)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.extxyz")
    write(tmp, frames, format="extxyz")
    tmp.replace(path)
    return frames


def run_snapshots(run_dir: Path, k: int) -> list[Atoms]:
    """K frames evenly spaced over the second half of a run's trajectory (all segments)."""
    from ase.io import read

    from cellsim.config.rundir import RunDir

    frames: list[Atoms] = []
    for f in RunDir(run_dir).trajectory_files():
        if f.suffix in (".xz", ".gz", ".bz2"):
            continue
        got = read(f, index=":", format="vasp-xdatcar" if "XDATCAR" in f.name else None)
        frames.extend(got if isinstance(got, list) else [got])
    if not frames:
        return []
    half = len(frames) // 2
    idx = sorted({half + round(i * (len(frames) - 1 - half) / max(1, k - 1)) for i in range(k)})
    return [frames[i] for i in idx]


@dataclass
class SnapshotPlan:
    """Where the snapshots come from and what they cost."""

    source: str
    frames: list[Atoms]
    estimate_s: float
    notes: list[str]


def plan_snapshots(
    study: Study,
    model: ModelInfo,
    settings: Mapping[str, Any],
    k: int,
    budget_s: float,
    run_dir: Path | None = None,
    base_dir: Path | None = None,
    md_steps: int = 100,
    reduced: bool | None = None,
    snapshot_cache: Path | None = None,
) -> SnapshotPlan:
    """Snapshots of the run when they fit ``budget_s``, else of the largest reduced interface that fits.

    ``reduced=True`` always uses a reduced interface, ``False`` never (then the budget is only reported).
    """
    from pymatgen.io.ase import AseAtomsAdaptor

    notes: list[str] = []
    if run_dir is not None and reduced is not True:
        frames = run_snapshots(run_dir, k)
        if frames:
            est = k * estimate_seconds(frames[0], settings)
            if est <= budget_s or reduced is False:
                return SnapshotPlan(f"run trajectory ({run_dir})", frames, est, notes)
            notes.append(
                f"the run's {len(frames[0])}-atom interface needs ~{est / 60:.0f} min for {k} snapshots, over the "
                f"budget of {budget_s / 60:.0f} min: a reduced interface of the same builder is labelled instead"
            )
        else:
            notes.append(f"{run_dir}: no readable frames; snapshots from a short MD of a reduced interface")
    candidates = reduced_interfaces(study, base_dir)
    if not candidates:
        raise ParityError("the builder made no reduced interface of this study (no snapshot to label)")
    for red, structure in candidates:
        atoms = AseAtomsAdaptor.get_atoms(structure)
        est = k * estimate_seconds(atoms, settings)
        if est <= budget_s or red is candidates[-1][0]:
            if est > budget_s:
                notes.append(f"even the smallest reduced interface ({len(atoms)} atoms) needs ~{est / 60:.0f} min")
            frames = engine_md_snapshots(
                atoms, model, k, study.md.temperature, study.md.timestep_fs, md_steps, cache=snapshot_cache
            )
            desc = (
                f"reduced interface ({len(atoms)} atoms: {red['electrolyte_layers']} electrolyte layer(s), metal "
                f">= {red['metal_thickness']:g} A, vacuum {red['vacuum']:g} A; {md_steps} steps of {model.key} "
                f"Langevin NVT at {study.md.temperature:g} K)"
            )
            return SnapshotPlan(desc, frames, est, notes)
    raise AssertionError("unreachable")
