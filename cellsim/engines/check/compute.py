"""What the engine check computes with one engine: relaxations, bulk NVT, speed; the on-disk cache."""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms
    from ase.calculators.calculator import Calculator
    from pymatgen.core import Structure

from cellsim.core.resources import cache_root
from cellsim.engines.check.settings import CheckSettings

# --------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    return cache_root() / "engine-check"


def _key_hash(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:60]


def structure_digest(structure: Structure) -> str:
    """Hash of lattice, species and fractional coordinates (rounded): the cache key of a phase."""
    data = {
        "lattice": np.round(structure.lattice.matrix, 5).tolist(),
        "species": [str(s.specie) for s in structure],
        "frac": np.round(structure.frac_coords % 1.0, 5).tolist(),
    }
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- computations (one engine)


def _atoms(structure: Structure) -> Atoms:
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_atoms(structure)


def _repeats(cell: np.ndarray, natoms: int, min_atoms: int) -> tuple[int, int, int]:
    """Near-cubic repeats giving at least ``min_atoms`` atoms."""
    lengths = np.linalg.norm(cell, axis=1)
    target = float(lengths.min())
    while True:
        reps = tuple(max(1, round(target / x)) for x in lengths)
        if natoms * math.prod(reps) >= min_atoms:
            return (int(reps[0]), int(reps[1]), int(reps[2]))
        target += 0.5


def relax(calc: Calculator, structure: Structure, settings: CheckSettings) -> dict[str, Any]:
    """Cell + position relaxation with the space group kept; lattice reported in the input's setting.

    The primitive cell is relaxed (4x fewer atoms for F-centred cells) and mapped back to the input
    (conventional) cell through the integer matrix between the two.
    """
    from ase import units
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    prim = structure.get_primitive_structure()
    m = structure.lattice.matrix @ np.linalg.inv(prim.lattice.matrix)
    if np.abs(m - np.round(m)).max() > 1e-3:
        prim, m = structure, np.eye(3)
    atoms = _atoms(prim)
    atoms.calc = calc
    atoms.set_constraint(FixSymmetry(atoms, symprec=0.01))
    opt = BFGS(FrechetCellFilter(atoms), logfile=None, maxstep=0.1)  # type: ignore[arg-type]  # ASE accepts filters
    # an explicit stress criterion: the filter's own (virial / atoms) lets a 1-atom In cell stop at 0.3 GPa,
    # half-way along In's very flat c/a path
    stress_tol = settings.relax_stress_gpa * units.GPa
    converged = False
    with warnings.catch_warnings():
        # scipy's logm (the Frechet filter's cell log) warns "logm result may be inaccurate" on near-identity
        # deformations, where the result is fine: 58 such lines made the demo's console unreadable
        warnings.filterwarnings("ignore", message="logm result may be inaccurate", category=RuntimeWarning)
        for _ in opt.irun(fmax=0.0, steps=settings.relax_steps):
            forces, stress = np.abs(atoms.get_forces()).max(), np.abs(atoms.get_stress()).max()
            if forces < settings.relax_fmax and stress < stress_tol:
                converged = True
                break
    n = len(atoms)
    return {
        "cell": (np.round(m) @ atoms.cell.array).tolist(),
        "energy_per_atom": float(atoms.get_potential_energy()) / n,
        "volume_per_atom": float(atoms.get_volume()) / n,
        "natoms": n,
        "steps": int(opt.nsteps),
        "converged": converged,
    }


def _langevin(atoms: Atoms, temperature: float, dt_fs: float, settings: CheckSettings) -> Any:
    from ase.constraints import FixCom
    from ase.md import velocitydistribution as vd
    from ase.md.langevin import Langevin
    from ase.units import fs

    rng = np.random.default_rng(settings.seed)
    # ASE >= 3.29 names it thermalize_momenta; MaxwellBoltzmannDistribution before
    thermalize = getattr(vd, "thermalize_momenta", None) or vd.MaxwellBoltzmannDistribution
    thermalize(atoms, temperature_K=temperature, rng=rng)
    vd.Stationary(atoms)
    # the centre of mass stays put (a drifting crystal would read as displacement); ASE >= 3.28 wants FixCom
    # rather than Langevin(fixcm=True)
    atoms.set_constraint(FixCom())
    return Langevin(
        atoms,
        timestep=dt_fs * fs,
        temperature_K=temperature,
        friction=settings.friction_per_fs / fs,
        fixcm=False,
        rng=rng,
    )


def metal_timestep(symbols: Sequence[str], study_dt_fs: float) -> float:
    """Time step of the bulk-metal NVT: 2 fs for Li, longer for heavy atoms (periods scale as sqrt(mass))."""
    from ase.data import atomic_masses, atomic_numbers

    m_min = min(float(atomic_masses[atomic_numbers[s]]) for s in symbols)
    return float(min(5.0, max(study_dt_fs, 2.0 * math.sqrt(m_min / 6.94))))


def metal_md(
    calc: Calculator,
    structure: Structure,
    temperature: float,
    dt_fs: float,
    settings: CheckSettings,
    start_rms: float | None = None,
) -> dict[str, Any]:
    """NVT of bulk metal at the reference lattice: RMS displacement about the lattice sites.

    Displacements are taken from the ideal sites after removing the centre-of-mass drift. With
    ``start_rms`` (the Debye value) the atoms start displaced by a Gaussian of that RMS, so a crystal that
    behaves as expected is in equilibrium from the first step and a half-ps run shows a model's excess
    instead of the heating-up. The RMS reported is that of the last 40 % of the run.
    """
    atoms = _atoms(structure)
    atoms = atoms.repeat(_repeats(atoms.cell.array, len(atoms), settings.metal_min_atoms))
    atoms.calc = calc
    steps = max(10, round(settings.metal_md_ps * 1000.0 / dt_fs))
    every = max(1, steps // 50)
    sites = atoms.get_positions().copy()
    masses = atoms.get_masses()
    samples: list[tuple[int, float]] = []
    dyn = _langevin(atoms, temperature, dt_fs, settings)
    if start_rms:
        rng = np.random.default_rng(settings.seed + 1)
        atoms.set_positions(sites + rng.normal(0.0, start_rms / math.sqrt(3.0), sites.shape))

    def sample() -> None:
        d = atoms.get_positions() - sites
        d -= (masses[:, None] * d).sum(axis=0) / masses.sum()
        samples.append((dyn.nsteps, float(np.mean(np.sum(d * d, axis=1)))))

    dyn.attach(sample, interval=every)
    t0 = time.perf_counter()
    dyn.run(steps)
    seconds = time.perf_counter() - t0
    late = [u2 for n, u2 in samples if n >= 0.6 * steps]
    early = [u2 for n, u2 in samples if 0.2 * steps <= n < 0.4 * steps]
    return {
        "rms": math.sqrt(float(np.mean(late))),
        "rms_early": math.sqrt(float(np.mean(early))) if early else None,
        "start_rms": start_rms,
        "natoms": len(atoms),
        "steps": steps,
        "dt_fs": dt_fs,
        "s_per_step": seconds / steps,
    }


def unit_centres(structure: Structure, bonds: dict[str, float]) -> list[tuple[str, str, float]]:
    """Anion units to watch: (centre, ligand, cutoff) pairs from ``bonds`` whose species the phase holds."""
    present = {str(e) for e in structure.composition.elements}
    out = []
    for pair, cutoff in bonds.items():
        a, b = pair.split("-")
        if a in present and b in present:
            out.append((a, b, float(cutoff)))
    return out


def _coordination(atoms: Atoms, centre: str, ligand: str, cutoff: float) -> np.ndarray:
    from ase.neighborlist import neighbor_list

    sym = np.array(atoms.get_chemical_symbols())
    i, j = neighbor_list("ij", atoms, cutoff)
    keep = (sym[i] == centre) & (sym[j] == ligand)
    counts = np.bincount(i[keep], minlength=len(atoms))
    return np.asarray(counts[sym == centre])


def electrolyte_md(
    calc: Calculator,
    structure: Structure,
    temperature: float,
    dt_fs: float,
    units: list[tuple[str, str, float]],
    settings: CheckSettings,
) -> dict[str, Any]:
    """NVT of the electrolyte cell: fraction of anion units with their reference coordination."""
    atoms = _atoms(structure)
    atoms = atoms.repeat(_repeats(atoms.cell.array, len(atoms), settings.electrolyte_min_atoms))
    atoms.calc = calc
    steps = max(10, round(settings.electrolyte_md_ps * 1000.0 / dt_fs))
    every = max(1, steps // 30)
    ref = {u: _coordination(atoms, *u) for u in units}
    fractions: dict[tuple[str, str, float], list[tuple[int, float]]] = {u: [] for u in units}
    dyn = _langevin(atoms, temperature, dt_fs, settings)

    def sample() -> None:
        for u in units:
            fractions[u].append((dyn.nsteps, float(np.mean(_coordination(atoms, *u) == ref[u]))))

    dyn.attach(sample, interval=every)
    t0 = time.perf_counter()
    dyn.run(steps)
    seconds = time.perf_counter() - t0
    out = []
    for u in units:
        late = [f for n, f in fractions[u] if n >= steps // 2]
        out.append(
            {
                "centre": u[0],
                "ligand": u[1],
                "cutoff": u[2],
                "coordination": int(np.median(ref[u])) if len(ref[u]) else 0,
                "n_units": len(ref[u]),
                "intact_mean": float(np.mean(late)),
                "intact_final": fractions[u][-1][1],
            }
        )
    return {"units": out, "natoms": len(atoms), "steps": steps, "dt_fs": dt_fs, "s_per_step": seconds / steps}


def speed(calc: Calculator, atoms: Atoms, temperature: float, dt_fs: float, settings: CheckSettings) -> dict[str, Any]:
    """Seconds per MD step on ``atoms`` (one untimed step first: graph building, allocations)."""
    atoms = atoms.copy()
    atoms.calc = calc
    dyn = _langevin(atoms, temperature, dt_fs, settings)
    dyn.run(1)
    t0 = time.perf_counter()
    dyn.run(settings.speed_steps)
    return {"natoms": len(atoms), "s_per_step": (time.perf_counter() - t0) / settings.speed_steps}


def speed_cell(structure: Structure, max_atoms: int) -> Atoms:
    """The largest near-cubic supercell of ``structure`` with at most ``max_atoms`` atoms."""
    atoms = _atoms(structure)
    lengths = np.linalg.norm(atoms.cell.array, axis=1)
    best: tuple[float, float, tuple[int, int, int]] | None = None
    for reps in ((i, j, k) for i in range(1, 7) for j in range(1, 7) for k in range(1, 7)):
        n = len(atoms) * math.prod(reps)
        if n > max_atoms:
            continue
        sides = lengths * np.array(reps)
        aspect = float(sides.max() / sides.min())
        if aspect > 2.05 and n > len(atoms):  # a long thin cell times differently from an interface slab
            continue
        score = (float(n), -aspect)
        if best is None or score > best[:2]:
            best = (*score, reps)
    return atoms.repeat(best[2] if best else (1, 1, 1))
