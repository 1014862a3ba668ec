"""Is a machine-learned potential fit for a study's interface? Checks on the study's own reactants.

For each engine, on the metal and electrolyte phases the study names (library phases or CIF files):

* relaxed lattice (cell + positions, space group kept) vs the reference cell: a, b, c by crystal system,
  ``c/a`` for tetragonal and hexagonal cells, volume per atom;
* bulk metal at the study temperature (short Langevin NVT at the reference lattice): RMS displacement
  about the lattice sites vs a classical Debye-model value, and the Lindemann ratio;
* electrolyte at the study temperature (short NVT, the study's time step): fraction of anion units
  (PS4 for a thiophosphate) that stay whole;
* energies of 2-4 balanced reactions among library phases made of the study's elements, with a sign
  reference where a known fact fixes it (e.g. LiIn is a stable compound, so Li + In -> LiIn is downhill);
* speed: seconds per MD step on a cell of interface size, and ps/day at the study's time step.

Every number is cached on disk (``$CELLSIM_CACHE/engine-check``, default ``~/.cache/cellsim/engine-check``)
under a key of engine weights, structure, temperature and the check's settings; a repeated check does not
even load the model. Verdicts are recomputed from the cached numbers, so thresholds can change freely.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.config.rundir import RunDir
from cellsim.core.errors import CellsimError
from cellsim.core.files import atomic_write_json

if TYPE_CHECKING:
    from ase import Atoms
    from ase.calculators.calculator import Calculator
    from pymatgen.core import Structure

    from cellsim.config.study import Study
    from cellsim.engines.registry import ModelInfo

# bump when a task's computation changes: old cache entries are then ignored
CHECK_VERSION = 1

# relative-error thresholds (ok up to the first, warn up to the second, fail beyond)
LATTICE_TOL = (0.02, 0.04)
CA_TOL = (0.02, 0.04)
# PBE-trained models overestimate volumes by a few % routinely; 3x the length tolerance
VOLUME_TOL = (0.06, 0.12)
# MD RMS displacement / Debye expectation (the low-temperature Theta_D and anharmonicity make the real
# value at room temperature some 10-20 % larger; SevenNet-0 gives ~1.0-1.5x for In, CHGNet 0.3.0 ~2.3x)
RMS_RATIO_TOL = (1.25, 1.6)
# 3-D RMS displacement / nearest-neighbour distance; crystals melt near 0.10-0.15 (Lindemann criterion)
LINDEMANN_TOL = (0.12, 0.15)
# fraction of anion units (PS4) intact: ok from the first, warn from the second
INTACT_MIN = (0.98, 0.90)
# a reaction energy of the wrong sign but smaller than this (eV/atom) is within MLIP error: warn, not fail
SIGN_TOLERANCE = 0.01

# Debye temperatures (K) and melting points (K) of common anode metals. Theta_D: low-temperature values
# of C. Kittel, Introduction to Solid State Physics (8th ed.), ch. 5, Table 1; melting points: CRC
# Handbook of Chemistry and Physics. Used for the classical Debye RMS displacement (debye_rms).
DEBYE_K: dict[str, tuple[float, float]] = {
    "Li": (344.0, 453.7),
    "Na": (158.0, 371.0),
    "K": (91.0, 336.5),
    "Mg": (400.0, 923.0),
    "Al": (428.0, 933.5),
    "Zn": (327.0, 692.7),
    "Ga": (320.0, 302.9),
    "In": (108.0, 429.7),
    "Sn": (200.0, 505.1),
    "Pb": (105.0, 600.6),
    "Bi": (119.0, 544.6),
    "Cu": (343.0, 1357.8),
    "Ag": (225.0, 1234.9),
    "Au": (165.0, 1337.3),
}

_HBAR = 1.054571817e-34  # J s
_KB = 1.380649e-23  # J / K
_AMU = 1.66053906660e-27  # kg
_SQRT2 = math.sqrt(2.0)

# Candidate reactions (reactants, products, expected sign of the reaction energy or None, why), in order of
# preference; the first ones whose phases are all in the library and whose elements the study holds are
# used. A sign is given only where a well-established fact fixes it.
REACTIONS: tuple[tuple[tuple[str, ...], tuple[str, ...], str | None, str], ...] = (
    (
        ("InCl",),
        ("In", "InCl3"),
        ">",
        "InCl is a stable compound of the In-Cl phase diagram: it must not disproportionate into In + InCl3",
    ),
    (
        ("Li", "InCl"),
        ("LiCl", "In"),
        "<",
        "Li reduces In(I) chloride (standard potentials: Li+/Li -3.04 V, In+/In -0.14 V)",
    ),
    (
        ("Li", "InS"),
        ("Li2S", "In"),
        "<",
        "Li reduces indium sulfide (Li is by far the more electropositive metal)",
    ),
    (
        ("Li", "In"),
        ("LiIn",),
        "<",
        "LiIn is a stable intermetallic of the Li-In phase diagram",
    ),
    (
        ("InS",),
        ("In", "In2S3"),
        ">",
        "InS is a stable compound of the In-S phase diagram: it must not disproportionate into In + In2S3",
    ),
    (
        ("Li6PS5Cl",),
        ("Li3PS4", "Li2S", "LiCl"),
        None,
        "no offline reference; the library's Li6PS5Cl is an ordered model (Li on 24g) of a disordered phase",
    ),
    (
        ("Li3PS4", "Li"),
        ("Li3P", "Li2S"),
        "<",
        "thiophosphates are reduced by Li metal (Li3PS4 + 8 Li -> Li3P + 4 Li2S)",
    ),
)

MP_NOTE = (
    "no reference value offline; Materials Project reaction energies need `cellsim refs fetch` with an MP "
    "API key (formation energies are not in cellsim's MP cache)"
)


# --------------------------------------------------------------------------- settings and results


@dataclass(frozen=True)
class CheckSettings:
    """Sizes of the checks (part of every cache key).

    Attributes
    ----------
    relax_fmax, relax_stress_gpa, relax_steps
        Force (eV/A) and stress (GPa) thresholds and step bound of the cell + position relaxations.
    metal_md_ps, electrolyte_md_ps
        Simulated time of the two NVT checks.
    metal_min_atoms, electrolyte_min_atoms
        Smallest supercells of the NVT checks.
    friction_per_fs
        Langevin friction (1/fs); 0.02 brings a cold-started crystal to temperature within ~50 fs.
    speed_steps, speed_max_atoms
        MD steps timed for the speed estimate, and the largest cell timed.
    max_reactions
        Number of reactions evaluated.
    seed
        Seed of velocities and Langevin noise.
    """

    relax_fmax: float = 0.03
    relax_stress_gpa: float = 0.01
    relax_steps: int = 150
    metal_md_ps: float = 0.5
    electrolyte_md_ps: float = 0.15
    metal_min_atoms: int = 54
    electrolyte_min_atoms: int = 40
    friction_per_fs: float = 0.02
    speed_steps: int = 3
    speed_max_atoms: int = 300
    max_reactions: int = 4
    seed: int = 0

    @classmethod
    def quick(cls) -> CheckSettings:
        """A smoke-test size: a few dozen steps per check, two reactions."""
        return cls(
            relax_fmax=0.05,
            relax_stress_gpa=0.05,
            relax_steps=40,
            metal_md_ps=0.1,
            electrolyte_md_ps=0.04,
            metal_min_atoms=32,
            speed_steps=2,
            speed_max_atoms=120,
            max_reactions=2,
        )


@dataclass
class Row:
    """One line of the report: a quantity of a phase (or reaction), its reference and the verdict."""

    engine: str
    phase: str
    quantity: str
    value: float | None
    reference: float | str | None
    verdict: str  # ok | warn | fail | n/a
    unit: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EngineReport:
    """All rows of one engine, with its speed and the wall time the check took."""

    engine: str
    model: str
    loaded: bool
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    s_per_step: float | None = None  # estimated, at the study's interface size
    ps_per_day: float | None = None
    error: str = ""

    def count(self, verdict: str) -> int:
        return sum(1 for r in self.rows if r.verdict == verdict)


@dataclass(frozen=True)
class Phase:
    """A reactant or library phase: label, structure and a hash of the structure (cache key)."""

    label: str
    structure: Structure
    digest: str
    note: str = ""


Progress = Callable[[str, str, float, bool], None]
CalculatorFactory = Callable[["ModelInfo"], "Calculator"]


# --------------------------------------------------------------------------- verdict logic (pure)


def relative_error(value: float, reference: float) -> float:
    return (value - reference) / reference


def tolerance_verdict(value: float, reference: float, tol: tuple[float, float]) -> str:
    """``ok`` / ``warn`` / ``fail`` by the relative error against (ok, warn) thresholds."""
    err = abs(relative_error(value, reference))
    return "ok" if err <= tol[0] else "warn" if err <= tol[1] else "fail"


def lattice_verdict(value: float, reference: float) -> str:
    return tolerance_verdict(value, reference, LATTICE_TOL)


def volume_verdict(value: float, reference: float) -> str:
    return tolerance_verdict(value, reference, VOLUME_TOL)


def ca_verdict(value: float, reference: float, centring: str = "I") -> tuple[str, str]:
    """Verdict and explanation for a relaxed c/a.

    For a body-centred tetragonal cell, fcc is the same lattice with c/a = sqrt(2) and bcc with c/a = 1; a
    c/a that moved toward one of them is named (In's 1.52 pulled to ~1.42 means the potential turns
    In into a near-fcc metal).
    """
    verdict = tolerance_verdict(value, reference, CA_TOL)
    err = relative_error(value, reference)
    note = f"c/a {value:.3f} vs {reference:.3f} ({100 * err:+.1f} %)"
    if centring == "I" and verdict != "ok":
        target, name = min(((_SQRT2, "fcc"), (1.0, "bcc")), key=lambda t: abs(value - t[0]))
        if abs(value - target) < abs(reference - target) and (value - reference) * (target - reference) > 0:
            note += (
                f": pulled toward {name} (c/a = {target:.3f} for a body-centred tetragonal cell); "
                "the potential does not hold the tetragonal distortion"
            )
    return verdict, note


def debye_rms(mass_amu: float, theta_d: float, temperature: float) -> float:
    """3-D RMS displacement (A) of an atom in a classical Debye solid.

    Per Cartesian axis <u_x^2> = 3 hbar^2 T / (m k_B Theta_D^2), the T >> Theta_D limit of the Debye model,
    which is exact for classical (MD) harmonic vibrations at any T; the 3-D mean square is three times
    that: <u^2> = 9 hbar^2 T / (m k_B Theta_D^2).
    """
    m = mass_amu * _AMU
    u2_axis = 3.0 * _HBAR**2 * temperature / (m * _KB * theta_d**2)
    return math.sqrt(3.0 * u2_axis) * 1e10


def rms_verdict(value: float, expected: float) -> str:
    ratio = value / expected
    return "ok" if ratio <= RMS_RATIO_TOL[0] else "warn" if ratio <= RMS_RATIO_TOL[1] else "fail"


def lindemann_verdict(ratio: float) -> str:
    return "ok" if ratio <= LINDEMANN_TOL[0] else "warn" if ratio <= LINDEMANN_TOL[1] else "fail"


def intact_verdict(fraction: float) -> str:
    return "ok" if fraction >= INTACT_MIN[0] else "warn" if fraction >= INTACT_MIN[1] else "fail"


def sign_verdict(value: float, sign: str | None) -> str:
    """``n/a`` without a reference; ``ok`` on the expected sign, ``warn`` when wrong but within noise."""
    if sign is None:
        return "n/a"
    right = value < 0 if sign == "<" else value > 0
    if right:
        return "ok"
    return "warn" if abs(value) <= SIGN_TOLERANCE else "fail"


# --------------------------------------------------------------------------- reactions


def _composition(formula: str) -> dict[str, float]:
    parts = re.findall(r"([A-Z][a-z]?)(\d*\.?\d*)", formula)
    if not parts or "".join(e + n for e, n in parts) != formula:
        raise CellsimError(f"'{formula}': not a plain chemical formula")
    comp: dict[str, float] = {}
    for el, n in parts:
        comp[el] = comp.get(el, 0.0) + (float(n) if n else 1.0)
    return comp


def balance(reactants: Sequence[str], products: Sequence[str]) -> tuple[list[int], list[int]]:
    """Smallest positive integer coefficients of ``reactants -> products`` (formulas).

    The coefficients span the null space of the element-by-species matrix (products counted negative);
    a reaction with no or more than one independent balance is refused.
    """
    species = [*reactants, *products]
    comps = [_composition(s) for s in species]
    elements = sorted({e for c in comps for e in c})
    a = np.array([[c.get(e, 0.0) * (1 if i < len(reactants) else -1) for i, c in enumerate(comps)] for e in elements])
    _, sv, vt = np.linalg.svd(a)
    rank = int(np.sum(sv > 1e-9))
    if len(species) - rank != 1:
        raise CellsimError(f"{' + '.join(reactants)} -> {' + '.join(products)}: no unique balance")
    v = vt[-1]
    v = v / v[np.argmax(np.abs(v))]
    if np.any(v <= 1e-9):
        raise CellsimError(f"{' + '.join(reactants)} -> {' + '.join(products)}: cannot be balanced with these sides")
    fracs = [Fraction(float(x)).limit_denominator(60) for x in v]
    lcm = math.lcm(*(f.denominator for f in fracs))
    ints = [int(f * lcm) for f in fracs]
    g = math.gcd(*ints)
    ints = [i // g for i in ints]
    if np.abs(a @ np.array(ints, dtype=float)).max() > 1e-6:
        raise CellsimError(f"{' + '.join(reactants)} -> {' + '.join(products)}: balance failed")
    return ints[: len(reactants)], ints[len(reactants) :]


def reaction_label(reactants: Sequence[str], products: Sequence[str], coeffs: tuple[list[int], list[int]]) -> str:
    def side(names: Sequence[str], c: list[int]) -> str:
        return " + ".join(f"{k} {n}" if k != 1 else n for n, k in zip(names, c, strict=True))

    return f"{side(reactants, coeffs[0])} -> {side(products, coeffs[1])}"


def reaction_energy(
    reactants: Sequence[str],
    products: Sequence[str],
    coeffs: tuple[list[int], list[int]],
    energy_per_atom: dict[str, float],
) -> float:
    """Reaction energy per atom (eV/atom) from each phase's energy per atom."""
    atoms = {s: sum(_composition(s).values()) for s in (*reactants, *products)}
    e_r = sum(k * atoms[s] * energy_per_atom[s] for s, k in zip(reactants, coeffs[0], strict=True))
    e_p = sum(k * atoms[s] * energy_per_atom[s] for s, k in zip(products, coeffs[1], strict=True))
    n = sum(k * atoms[s] for s, k in zip(reactants, coeffs[0], strict=True))
    return (e_p - e_r) / n


def pick_reactions(
    elements: set[str], available: set[str], limit: int
) -> list[tuple[tuple[str, ...], tuple[str, ...], str | None, str]]:
    """The first ``limit`` candidate reactions among ``available`` phases made of ``elements`` only."""
    out = []
    for reac, prod, sign, why in REACTIONS:
        names = (*reac, *prod)
        els = {e for n in names for e in _composition(n)}
        if els <= elements and all(n in available for n in names):
            out.append((reac, prod, sign, why))
        if len(out) >= limit:
            break
    return out


# --------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    root = os.environ.get("CELLSIM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "cellsim")
    return Path(root) / "engine-check"


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
    for _ in opt.irun(fmax=0.0, steps=settings.relax_steps):
        if np.abs(atoms.get_forces()).max() < settings.relax_fmax and np.abs(atoms.get_stress()).max() < stress_tol:
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


# --------------------------------------------------------------------------- the check


@dataclass
class CheckInput:
    """What the check needs from a study (and, optionally, its run directory)."""

    study: Study
    metal: Phase
    electrolyte: Phase
    library: dict[str, Phase]
    interface: Atoms | None = None  # the run directory's interface, when there is one

    @property
    def temperature(self) -> float:
        return float(self.study.md.temperature)


def _phase(spec: str, base_dir: Path | None, field_name: str) -> Phase:
    from cellsim.references.library import get_phase, resolve_phase

    label, structure = resolve_phase(spec, base_dir, field_name)
    lib = get_phase(spec)
    note = ""
    if lib is not None and lib.origin == "constructed" and "Cell+positions relaxed with CHGNet" in lib.source:
        note = "reference cell is itself a CHGNet 0.3.0 relaxation (PBE-like): agreement for chgnet is circular"
    elif lib is not None:
        note = f"reference: library cell ({lib.origin})"
    return Phase(label, structure, structure_digest(structure), note)


def prepare(study: Study, base_dir: Path | None = None, run_dir: Path | None = None) -> CheckInput:
    """Resolve the study's metal and electrolyte phases and the library phases reactions may use."""
    from cellsim.references.library import library

    metal = _phase(study.interface.metal.phase, base_dir, "interface.metal.phase")
    electrolyte = _phase(study.interface.electrolyte.phase, base_dir, "interface.electrolyte.phase")
    lib = {}
    for name, p in library().items():
        s = p.structure()
        lib[name] = Phase(name, s, structure_digest(s))
    interface = None
    poscar = RunDir(run_dir).interface_poscar if run_dir is not None else None
    if poscar is not None and poscar.is_file():
        from ase.io import read

        read_atoms = read(poscar, format="vasp")
        interface = read_atoms if not isinstance(read_atoms, list) else None
    return CheckInput(study, metal, electrolyte, lib, interface)


class _LoadError(CellsimError):
    """The model of an engine does not load."""


class _Tasks:
    """Cached computations for one engine; the model is loaded only when something is not cached."""

    def __init__(
        self,
        model: ModelInfo,
        factory: CalculatorFactory,
        settings: CheckSettings,
        use_cache: bool,
        progress: Progress | None,
    ) -> None:
        self.model = model
        self.identity = model.identity()
        self.factory = factory
        self.settings = settings
        self.use_cache = use_cache
        self.progress = progress
        self.calc: Calculator | None = None

    def calculator(self) -> Calculator:
        if self.calc is None:
            try:
                self.calc = self.factory(self.model)
            except Exception as exc:  # any load failure (missing weights, torch, bad file) ends this engine
                raise _LoadError(f"{type(exc).__name__}: {exc}") from exc
        return self.calc

    def cached(self, task: str, label: str, params: dict[str, Any]) -> Any:
        """The cached result of a task, or None (never computes)."""
        key = {"version": CHECK_VERSION, "task": task, "model": self.identity, **params}
        path = cache_dir() / _safe(self.model.key) / f"{task}-{_safe(label)}-{_key_hash(key)}.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data["result"] if data.get("key") == key else None

    def run(self, task: str, label: str, params: dict[str, Any], fn: Callable[[Calculator], dict[str, Any]]) -> Any:
        key = {"version": CHECK_VERSION, "task": task, "model": self.identity, **params}
        path = cache_dir() / _safe(self.model.key) / f"{task}-{_safe(label)}-{_key_hash(key)}.json"
        if self.use_cache and path.is_file():
            try:
                data = json.loads(path.read_text())
                if data.get("key") == key:
                    if self.progress:
                        self.progress(self.model.key, f"{task} {label}", 0.0, True)
                    return data["result"]
            except (OSError, ValueError):
                pass  # a damaged cache entry is recomputed
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            # CHGNet's calculator converts the atoms to pymatgen each call, which warns about FixCom/FixSymmetry
            warnings.filterwarnings("ignore", message="Only FixAtoms and FixCartesian", category=UserWarning)
            result = fn(self.calculator())
        dt = time.perf_counter() - t0
        atomic_write_json(path, {"key": key, "result": result, "seconds": dt, "engine": self.model.key})
        if self.progress:
            self.progress(self.model.key, f"{task} {label}", dt, False)
        return result


def _lattice_rows(engine: str, phase: Phase, res: dict[str, Any]) -> list[Row]:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    ref = phase.structure
    sga = SpacegroupAnalyzer(ref, symprec=0.1)
    system = sga.get_crystal_system()
    centring = sga.get_space_group_symbol()[0]
    cell = np.array(res["cell"])
    got = np.linalg.norm(cell, axis=1)
    want = np.array(ref.lattice.abc)
    axes = {"cubic": [0], "tetragonal": [0, 2], "hexagonal": [0, 2], "trigonal": [0, 2]}.get(system, [0, 1, 2])
    unconverged = "" if res.get("converged", True) else f"not converged in {res['steps']} steps"
    note = "; ".join(x for x in (unconverged, phase.note) if x)
    rows = []
    for i in axes:
        verdict = lattice_verdict(got[i], want[i])
        why = "; ".join(x for x in (f"{100 * relative_error(got[i], want[i]):+.1f} %", note) if x)
        rows.append(Row(engine, phase.label, "abc"[i], float(got[i]), float(want[i]), verdict, "A", why))
    if system in ("tetragonal", "hexagonal", "trigonal"):
        ca, ca_ref = float(got[2] / got[0]), float(want[2] / want[0])
        verdict, why = ca_verdict(ca, ca_ref, centring if system == "tetragonal" else "P")
        rows.append(Row(engine, phase.label, "c/a", ca, ca_ref, verdict, "", why))
    v, v_ref = float(res["volume_per_atom"]), float(ref.volume / len(ref))
    why = "; ".join(x for x in (f"{100 * relative_error(v, v_ref):+.1f} %", note) if x)
    rows.append(Row(engine, phase.label, "V/atom", v, v_ref, volume_verdict(v, v_ref), "A^3", why))
    return rows


def expected_rms(structure: Structure, temperature: float) -> float | None:
    """Debye-model RMS displacement of an elemental metal below its melting point; None otherwise."""
    from ase.data import atomic_masses, atomic_numbers

    elements = [str(e) for e in structure.composition.elements]
    if len(elements) != 1 or elements[0] not in DEBYE_K:
        return None
    theta, t_melt = DEBYE_K[elements[0]]
    if temperature >= t_melt:
        return None
    return debye_rms(float(atomic_masses[atomic_numbers[elements[0]]]), theta, temperature)


def _nn_distance(structure: Structure) -> float:
    return float(min(n.nn_distance for site in structure for n in structure.get_neighbors(site, 6.0)))


def _metal_rows(engine: str, phase: Phase, res: dict[str, Any], temperature: float) -> list[Row]:
    s = phase.structure
    rms = float(res["rms"])
    lind = rms / _nn_distance(s)
    elements = [str(e) for e in s.composition.elements]
    what = f"RMS displacement {temperature:g} K"
    run = (
        f"last 40 % of {res['steps']} x {res['dt_fs']:g} fs Langevin NVT, {res['natoms']} atoms at the reference "
        "lattice" + (", started from Debye-sized displacements" if res.get("start_rms") else "")
    )
    drift = ""
    if res.get("rms_early") and rms > 1.15 * float(res["rms_early"]):
        drift = f"; still rising ({res['rms_early']:.2f} -> {rms:.2f} A within the run)"
    if len(elements) == 1 and elements[0] in DEBYE_K:
        theta, t_melt = DEBYE_K[elements[0]]
        if temperature >= t_melt:
            rows = [Row(engine, phase.label, what, rms, None, "n/a", "A", f"T is above the melting point ({t_melt} K)")]
            return [*rows, Row(engine, phase.label, "Lindemann ratio", lind, None, "n/a", "", "liquid expected")]
        expected = expected_rms(s, temperature)
        assert expected is not None
        rows = [
            Row(
                engine,
                phase.label,
                what,
                rms,
                expected,
                rms_verdict(rms, expected),
                "A",
                f"Debye model, Theta_D {theta:g} K; {run}{drift}",
            ),
        ]
        lind_ref: float | None = expected / _nn_distance(s)
    else:
        rows = [Row(engine, phase.label, what, rms, None, "n/a", "A", f"no Debye temperature for {s.formula}; {run}")]
        lind_ref = None
    rows.append(
        Row(
            engine,
            phase.label,
            "Lindemann ratio",
            lind,
            lind_ref,
            lindemann_verdict(lind),
            "",
            f"RMS / nearest-neighbour distance; crystals melt near {LINDEMANN_TOL[0]}-{LINDEMANN_TOL[1]}",
        )
    )
    return rows


def _engine_rows(
    model: ModelInfo,
    inp: CheckInput,
    settings: CheckSettings,
    factory: CalculatorFactory,
    use_cache: bool,
    progress: Progress | None,
) -> EngineReport:
    name = model.key
    report = EngineReport(engine=name, model=model.description, loaded=True)
    tasks = _Tasks(model, factory, settings, use_cache, progress)
    temperature = inp.temperature
    study_dt = float(inp.study.md.timestep_fs)
    relax_params = {"fmax": settings.relax_fmax, "stress": settings.relax_stress_gpa, "steps": settings.relax_steps}
    rows = report.rows

    def guarded(what: str, phase: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except _LoadError:
            raise  # the model itself does not load: no point in trying the other checks
        except Exception as exc:  # an engine that crashes on a structure fails that check, not the whole run
            rows.append(Row(name, phase, what, None, None, "fail", "", f"{type(exc).__name__}: {exc}"[:200]))

    def relaxed(phase: Phase) -> dict[str, Any]:
        res: dict[str, Any] = tasks.run(
            "relax", phase.label, {"phase": phase.digest, **relax_params}, lambda c: relax(c, phase.structure, settings)
        )
        return res

    # 1. lattices of the study's reactants
    for ph in (inp.metal, inp.electrolyte):

        def lattice(ph: Phase = ph) -> None:
            rows.extend(_lattice_rows(name, ph, relaxed(ph)))

        guarded("lattice", ph.label, lattice)

    # 2. bulk metal at the study temperature
    metal = inp.metal

    def metal_check() -> None:
        symbols = [str(e) for e in metal.structure.composition.elements]
        dt = metal_timestep(symbols, study_dt)
        start = expected_rms(metal.structure, temperature)
        params = {
            "start_rms": start,
            "phase": metal.digest,
            "T": temperature,
            "dt": dt,
            "ps": settings.metal_md_ps,
            "min_atoms": settings.metal_min_atoms,
            "friction": settings.friction_per_fs,
            "seed": settings.seed,
        }
        res = tasks.run(
            "md-metal", metal.label, params, lambda c: metal_md(c, metal.structure, temperature, dt, settings, start)
        )
        rows.extend(_metal_rows(name, metal, res, temperature))

    guarded(f"RMS displacement {temperature:g} K", metal.label, metal_check)

    # 3. electrolyte anion units at the study temperature
    el = inp.electrolyte
    bonds = inp.study.interface.intact_bonds or {"P-S": 2.3}
    units = unit_centres(el.structure, bonds)

    def electrolyte_check() -> None:
        params = {
            "phase": el.digest,
            "T": temperature,
            "dt": study_dt,
            "ps": settings.electrolyte_md_ps,
            "min_atoms": settings.electrolyte_min_atoms,
            "friction": settings.friction_per_fs,
            "seed": settings.seed,
            "units": [list(u) for u in units],
        }
        res = tasks.run(
            "md-electrolyte",
            el.label,
            params,
            lambda c: electrolyte_md(c, el.structure, temperature, study_dt, units, settings),
        )
        for u in res["units"]:
            unit = f"{u['centre']}{u['ligand']}{u['coordination']}"
            rows.append(
                Row(
                    name,
                    el.label,
                    f"{unit} intact {temperature:g} K",
                    u["intact_mean"],
                    1.0,
                    intact_verdict(u["intact_mean"]),
                    "fraction",
                    f"{u['n_units']} {unit} units, {u['centre']}-{u['ligand']} <= {u['cutoff']:g} A; "
                    f"{res['natoms']} atoms, {res['steps']} x {res['dt_fs']:g} fs NVT (study time step); "
                    f"final frame {u['intact_final']:.2f}",
                )
            )

    if units:
        guarded("anion units intact", el.label, electrolyte_check)

    # 4. reaction energies among library phases of the study's elements
    elements = {str(e) for p in (inp.metal, inp.electrolyte) for e in p.structure.composition.elements}
    for reac, prod, sign, why in pick_reactions(elements, set(inp.library), settings.max_reactions):
        coeffs = balance(reac, prod)
        label = reaction_label(reac, prod, coeffs)

        def reaction(
            reac: tuple[str, ...] = reac,
            prod: tuple[str, ...] = prod,
            rx: tuple[str | None, str] = (sign, why),
            coeffs: tuple[list[int], list[int]] = coeffs,
            label: str = label,
        ) -> None:
            # library phases by name: the study's own metal/electrolyte hit the same cache entries
            energies = {n: float(relaxed(inp.library[n])["energy_per_atom"]) for n in (*reac, *prod)}
            de = reaction_energy(reac, prod, coeffs, energies)
            sign, why = rx
            ref = f"{sign} 0" if sign else None
            note = why if sign else f"{why}; {MP_NOTE}"
            rows.append(Row(name, label, "reaction energy", de, ref, sign_verdict(de, sign), "eV/atom", note))

        guarded("reaction energy", label, reaction)

    # 5. speed at the size of the study's interface
    def speed_check() -> None:
        if inp.interface is not None:
            cell, what = inp.interface, "study's interface"
            n_target = len(inp.interface)
        else:
            cell, what = speed_cell(el.structure, settings.speed_max_atoms), f"{el.label} supercell"
            n_target = (inp.study.interface.min_atoms + inp.study.interface.max_atoms) // 2
        digest = hashlib.sha256(
            np.round(cell.get_positions(), 4).tobytes() + np.round(cell.cell.array, 4).tobytes()
        ).hexdigest()[:16]
        res = tasks.run(
            "speed",
            f"{len(cell)}atoms",
            {"cell": digest, "steps": settings.speed_steps},
            lambda c: speed(c, cell, temperature, study_dt, settings),
        )
        measured = float(res["s_per_step"])
        est = measured * n_target / res["natoms"]  # message passing on a fixed cutoff: cost ~ number of atoms
        report.s_per_step = est
        report.ps_per_day = 86400.0 / est * study_dt / 1000.0
        rows.append(Row(name, f"{what} ({res['natoms']} atoms)", "time per MD step", measured, None, "n/a", "s"))
        scaled = "" if n_target == res["natoms"] else f"scaled linearly from {res['natoms']} atoms; "
        rows.append(
            Row(
                name,
                f"interface ({n_target} atoms)",
                "MD speed",
                report.ps_per_day,
                None,
                "n/a",
                "ps/day",
                f"{scaled}{est:.3g} s/step at {study_dt:g} fs, 1 thread",
            )
        )

    guarded("time per MD step", "speed", speed_check)
    return report


def check_engines(
    inp: CheckInput,
    models: Sequence[ModelInfo],
    settings: CheckSettings | None = None,
    factory: CalculatorFactory | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> list[EngineReport]:
    """Run every check for every model.

    Parameters
    ----------
    inp
        The study's phases (see :func:`prepare`).
    models
        Models to check (:func:`cellsim.engines.registry.select`).
    settings
        Check sizes; default :class:`CheckSettings`.
    factory
        Builds a model's calculator (default: :func:`~cellsim.engines.registry.load_calculator`);
        called at most once per model, and not at all when every result is cached.
    use_cache
        Read cached results (they are always written).
    progress
        Called after each task with (engine, task, seconds, from cache).
    """
    from cellsim.engines.registry import load_calculator

    settings = settings or CheckSettings()
    make = factory or load_calculator
    reports = []
    for model in models:
        t0 = time.perf_counter()
        try:
            report = _engine_rows(model, inp, settings, make, use_cache, progress)
        except _LoadError as exc:  # the model did not load: one failing row, and the next engine
            msg = f"{type(exc).__name__}: {exc}"[:300]
            report = EngineReport(model.key, model.description, loaded=False, error=msg)
            report.rows.append(Row(model.key, "-", "model loads", None, None, "fail", "", msg))
        report.seconds = time.perf_counter() - t0
        reports.append(report)
    return reports


def rows_json(reports: Sequence[EngineReport]) -> list[dict[str, Any]]:
    """Every row of every engine as plain dicts (engine, phase, quantity, value, reference, verdict, unit, note)."""
    return [r.as_dict() for rep in reports for r in rep.rows]


def write_json(path: str | os.PathLike[str], reports: Sequence[EngineReport]) -> Path:
    return atomic_write_json(path, rows_json(reports))


def recommend(reports: Sequence[EngineReport]) -> tuple[str | None, str]:
    """The engine with the fewest failures, then warnings, then the fastest; and why, in words."""
    usable = [r for r in reports if r.loaded]
    if not usable:
        return None, "no engine loaded"

    def key(r: EngineReport) -> tuple[int, int, float]:
        return (r.count("fail"), r.count("warn"), r.s_per_step if r.s_per_step is not None else math.inf)

    ranked = sorted(usable, key=key)
    best = ranked[0]
    nf, nw = best.count("fail"), best.count("warn")
    words = [f"{best.engine}: {nf} fail, {nw} warn"]
    if len(ranked) > 1:
        tied = [r for r in ranked[1:] if key(r)[:2] == key(best)[:2]]
        if tied:
            others = ", ".join(r.engine for r in tied)
            speed_txt = f" ({best.s_per_step:.3g} s/step)" if best.s_per_step is not None else ""
            words.append(f"tied with {others} on failures and warnings; fastest of them{speed_txt}")
        else:
            words.append(f"the fewest failures and warnings of {len(ranked)} engines")
    bad = [f"{r.phase} {r.quantity} {r.verdict}" for r in best.rows if r.verdict in ("fail", "warn")]
    if bad:
        words.append("its weak points: " + "; ".join(bad[:4]) + ("; ..." if len(bad) > 4 else ""))
    shared = _shared_failures(usable)
    if shared:
        words.append("every engine fails " + ", ".join(shared) + ": treat those results with caution")
    return best.engine, ". ".join(words)


def _shared_failures(reports: Sequence[EngineReport]) -> list[str]:
    if len(reports) < 2:
        return []
    sets = [{(r.phase, r.quantity) for r in rep.rows if r.verdict == "fail"} for rep in reports]
    common = set.intersection(*sets)
    return [f"{p} {q}" for p, q in sorted(common)]


@functools.cache
def cached_speeds() -> dict[str, tuple[float, int]]:
    """Newest cached speed of each engine key: (s/step, atoms) (for ``cellsim engines``)."""
    out: dict[str, tuple[float, int, float]] = {}
    root = cache_dir()
    for f in root.glob("*/speed-*.json") if root.is_dir() else []:
        try:
            data = json.loads(f.read_text())
            res, mtime = data["result"], f.stat().st_mtime
        except (OSError, ValueError, KeyError):
            continue
        engine = str(data.get("engine", f.parent.name))
        if engine not in out or mtime > out[engine][2]:
            out[engine] = (float(res["s_per_step"]), int(res["natoms"]), mtime)
    return {k: (v[0], v[1]) for k, v in out.items()}


def relaxed_structure(structure: Structure, engine: str, settings: CheckSettings | None = None) -> Structure:
    """``structure`` with the lattice ``engine`` relaxes it to (positions relaxed too), cached on disk.

    The cell relaxation of the engine check (:func:`relax`), so a build at the engine's lattice and the
    check agree; the result is cached by engine, structure and settings.
    """
    from pymatgen.core import Lattice, Structure

    from cellsim.engines.registry import load_calculator, select

    settings = settings or CheckSettings()
    key = {
        "kind": "relaxed-structure",
        "engine": engine,
        "structure": structure_digest(structure),
        "fmax": settings.relax_fmax,
        "stress": settings.relax_stress_gpa,
        "steps": settings.relax_steps,
    }
    path = cache_dir() / f"relaxed-{_safe(engine)}-{_key_hash(key)}.json"
    if path.is_file():
        return Structure.from_dict(json.loads(path.read_text()))
    (model,) = select([engine])
    res = relax(load_calculator(model), structure, settings)
    # keep the input's fractional positions: symmetry is kept by the relaxation, the lattice is what changes
    out = Structure(Lattice(res["cell"]), structure.species, structure.frac_coords)
    atomic_write_json(path, out.as_dict())
    return out


# --------------------------------------------------------------------------- PBE reference (CP2K): the Bain path


@dataclass
class BainReference:
    """The metal's energy along the Bain path (bct, fixed volume) from PBE and from each engine.

    Attributes
    ----------
    element, volume
        The metal and the volume per atom (A^3) of every cell.
    c_a
        The c/a values (sqrt(2) = fcc).
    curves
        Name (``"PBE (CP2K)"`` first, then engine keys) -> E - E(fcc) in meV/atom at each c/a.
    minima
        Name -> (parabola-fit c/a of the minimum or None, whether the scan brackets it).
    pbe_jobs, pbe_wall_s
        The CP2K job folders (stored labels or the cache) and their total CP2K wall time.
    errors
        Engine key -> why its curve is missing (the model did not load).
    """

    element: str
    volume: float
    c_a: list[float]
    curves: dict[str, list[float]] = field(default_factory=dict)
    minima: dict[str, tuple[float | None, bool]] = field(default_factory=dict)
    pbe_jobs: list[str] = field(default_factory=list)
    pbe_wall_s: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)


PBE_LABEL = "PBE (CP2K)"


def bain_reference(
    metal: Phase,
    models: Sequence[ModelInfo],
    factory: CalculatorFactory | None = None,
    cp2k_settings: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> BainReference:
    """PBE (CP2K) and every engine's E(c/a) on the same 2-atom bct cells of the study's metal.

    The PBE points come from the labels stored with cellsim (``data/pbe``) when they match the cells and
    settings, else CP2K computes them (one job per cell, cached in ``$CELLSIM_CACHE/cp2k``; minutes each).

    Raises
    ------
    CellsimError
        The metal is not one element, or CP2K is missing and the labels are not stored.
    """
    from cellsim.engines import cp2k
    from cellsim.engines.registry import load_calculator

    elements = sorted({str(s.specie) for s in metal.structure})
    if len(elements) != 1:
        raise CellsimError(f"Bain path reference: the metal {metal.label} is not one element ({elements})")
    el = elements[0]
    volume = cp2k.BAIN_VOLUME.get(el, metal.structure.volume / len(metal.structure))
    settings = cp2k.resolve_settings(cp2k.BAIN_SETTINGS, cp2k_settings)
    cas = list(cp2k.BAIN_CA)
    cells = [cp2k.bain_cell(el, ca, volume) for ca in cas]
    ref = BainReference(el, float(volume), cas)
    pbe = []
    for ca, atoms in zip(cas, cells, strict=True):
        res = cp2k.single_point(
            atoms, cp2k.cache_dir(), settings, stress=True, label=f"{el} bct c/a={ca}", labels=cp2k.stored_labels()
        )
        if progress:
            progress(PBE_LABEL, f"Bain c/a {ca}", float(res.data.get("wall_s", 0.0)), res.cached)
        pbe.append(res.energy / len(atoms))
        ref.pbe_jobs.append(str(res.job_dir))
        ref.pbe_wall_s += float(res.data.get("wall_s", 0.0))
    ref.curves[PBE_LABEL] = [1000 * (e - pbe[0]) for e in pbe]
    make = factory or load_calculator
    for model in models:
        t0 = time.perf_counter()
        try:
            calc = make(model)
        except Exception as exc:  # a model that does not load gets no curve; the others still do
            ref.errors[model.key] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        es = []
        for atoms in cells:
            a = atoms.copy()
            a.calc = calc
            es.append(float(a.get_potential_energy()) / len(a))
        ref.curves[model.key] = [1000 * (e - es[0]) for e in es]
        if progress:
            progress(model.key, "Bain path", time.perf_counter() - t0, False)
    from cellsim.engines.cp2k import parabola_minimum

    ref.minima = {name: parabola_minimum(cas, ys) for name, ys in ref.curves.items()}
    return ref


def plot_bain(ref: BainReference, path: str | os.PathLike[str]) -> Path:
    """One figure of E(c/a) - E(fcc) for PBE and every engine, written atomically as PNG."""
    import io

    from matplotlib.figure import Figure

    from cellsim.core.files import atomic_write_bytes

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for name, ys in ref.curves.items():
        if name == PBE_LABEL:
            ax.plot(ref.c_a, ys, label=name, color="black", lw=2.5, marker="o")
        else:
            ax.plot(ref.c_a, ys, label=name, lw=1.2, marker="s")
    ax.axvline(math.sqrt(2), color="grey", ls=":", lw=1)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("c/a (bct; fcc = 1.414)")
    ax.set_ylabel("E - E(fcc) (meV/atom)")
    ax.set_title(f"{ref.element} Bain path at {ref.volume:g} A$^3$/atom")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    return atomic_write_bytes(path, buf.getvalue())


def relaxed_energies(
    engine: str,
    structures: dict[str, Structure],
    cached_only: bool = False,
    settings: CheckSettings | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, float], list[str]]:
    """Energy per atom (eV) of each relaxed structure with ``engine``: the engine check's relaxations, cached.

    Returns the energies found and the names missing (``cached_only``: nothing is computed and the model is
    never loaded; a phase not in the cache is missing).
    """
    from cellsim.engines.registry import load_calculator, select

    settings = settings or CheckSettings()
    model = select([engine])[0]
    relax_params = {"fmax": settings.relax_fmax, "stress": settings.relax_stress_gpa, "steps": settings.relax_steps}
    tasks = _Tasks(model, load_calculator, settings, True, progress)
    out: dict[str, float] = {}
    missing: list[str] = []
    for name, s in structures.items():
        params = {"phase": structure_digest(s), **relax_params}
        if cached_only:
            hit = tasks.cached("relax", name, params)
            if hit is None:
                missing.append(name)
            else:
                out[name] = float(hit["energy_per_atom"])
            continue

        def do_relax(c: Calculator, s: Structure = s) -> dict[str, Any]:
            return relax(c, s, settings)

        res = tasks.run("relax", name, params, do_relax)
        out[name] = float(res["energy_per_atom"])
    return out, missing


# short NVT of a bulk reactant for the matching baseline: long enough for Li to leave ordered sites
REACTANT_MD_PS = 0.2
REACTANT_MIN_ATOMS = 48


def reactant_md(
    calc: Calculator,
    structure: Structure,
    temperature: float,
    dt_fs: float,
    pairs: Sequence[str],
    rmax: float,
    dr: float,
    settings: CheckSettings,
) -> dict[str, Any]:
    """NVT of a bulk reactant: its A-B neighbour densities per A atom (per bin) over the second half."""
    from cellsim.analysis.rdf import pair_histogram

    atoms = _atoms(structure)
    atoms = atoms.repeat(_repeats(atoms.cell.array, len(atoms), REACTANT_MIN_ATOMS))
    atoms.calc = calc
    steps = max(20, round(REACTANT_MD_PS * 1000.0 / dt_fs))
    every = max(1, steps // 40)
    sym = np.array(atoms.get_chemical_symbols())
    nb = round(rmax / dr)
    hists = {p: np.zeros(nb, dtype=np.int64) for p in pairs}
    frames = [0]
    dyn = _langevin(atoms, temperature, dt_fs, settings)

    def sample() -> None:
        if dyn.nsteps < steps // 2:
            return
        frac = atoms.get_scaled_positions(wrap=True)[None]
        cell = atoms.cell.array[None]
        for p in pairs:
            a, b = p.split("-")
            ia, ib = np.flatnonzero(sym == a), np.flatnonzero(sym == b)
            if len(ia) and len(ib):
                pair_histogram(frac, cell, ia, ib, a == b, rmax, dr, 0.0, hists[p], np.zeros(1, dtype=np.int64))
        frames[0] += 1

    dyn.attach(sample, interval=every)
    t0 = time.perf_counter()
    dyn.run(steps)
    out = {}
    for p in pairs:
        a, b = p.split("-")
        n_a = int((sym == a).sum())
        if n_a and frames[0]:
            out[p] = (hists[p] * (2.0 if a == b else 1.0) / (n_a * frames[0])).tolist()
    return {
        "densities": out,
        "natoms": len(atoms),
        "steps": steps,
        "frames": frames[0],
        "seconds": time.perf_counter() - t0,
    }


def reactant_densities(
    engine: str,
    structures: dict[str, Structure],
    temperature: float,
    dt_fs: float,
    pairs: Sequence[str],
    rmax: float,
    dr: float,
    cached_only: bool = False,
) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
    """Thermal A-B densities of each bulk reactant under ``engine`` at ``temperature`` (:func:`reactant_md`),
    cached like the engine check; ``cached_only`` never loads the model. Returns densities and the missing."""
    from cellsim.engines.registry import load_calculator, select

    settings = CheckSettings()
    model = select([engine])[0]
    tasks = _Tasks(model, load_calculator, settings, True, None)
    out: dict[str, dict[str, np.ndarray]] = {}
    missing: list[str] = []
    for name, s in structures.items():
        params = {
            "phase": structure_digest(s),
            "T": round(float(temperature), 1),
            "dt": float(dt_fs),
            "pairs": sorted(pairs),
            "rmax": float(rmax),
            "dr": float(dr),
            "ps": REACTANT_MD_PS,
        }
        res = tasks.cached("reactant-md", name, params)
        if res is None and not cached_only:

            def do_md(c: Calculator, s: Structure = s) -> dict[str, Any]:
                return reactant_md(c, s, temperature, dt_fs, sorted(pairs), rmax, dr, settings)

            res = tasks.run("reactant-md", name, params, do_md)
        if res is None:
            missing.append(name)
            continue
        out[name] = {p: np.asarray(v) for p, v in res["densities"].items()}
    return out, missing
