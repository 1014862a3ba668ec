"""Relaxed energies and short NVT densities of reactant phases with an engine (for the matching)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator
    from pymatgen.core import Structure

from cellsim.engines.check.compute import _atoms, _langevin, _repeats, structure_digest
from cellsim.engines.check.settings import CheckSettings, Progress, Row
from cellsim.engines.check.tasks import _Tasks


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
    tasks = _Tasks(model, load_calculator, settings, True, progress)
    out: dict[str, float] = {}
    missing: list[str] = []
    for name, s in structures.items():
        if not cached_only:
            out[name] = tasks.relaxed_energy(name, s)
            continue
        hit = tasks.cached("relax", name, {"phase": structure_digest(s), **tasks.relax_params})
        if hit is None:
            missing.append(name)
        else:
            out[name] = float(hit["energy_per_atom"])
    return out, missing


def model_rows(model: Any, elements: set[str], reactants: tuple[str, str] | None = None) -> list[Row]:
    """:func:`formation_rows` for one model of the registry (``ModelInfo``), its relaxations cached as the engine
    check's (``cellsim engines check`` computes the same rows among its others)."""
    from cellsim.engines.check.formation import formation_rows
    from cellsim.engines.registry import load_calculator

    tasks = _Tasks(model, load_calculator, CheckSettings(), True, None)
    return formation_rows(model.key, tasks.relaxed_energy, elements, reactants)


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
