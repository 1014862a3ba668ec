"""Force and energy parity of the engines against PBE (CP2K) on snapshots of the study's own interface.

Snapshots come from the run's trajectory when a run directory with frames is given and its size fits the
time budget; otherwise from a short MD, with the study's engine, of a *reduced* interface: the same
builder and phases at a smaller size (one electrolyte layer, a thinner metal, any lateral size), the
largest such model whose K CP2K single points are estimated to fit the budget. Each snapshot is one CP2K
job (:func:`cellsim.engines.cp2k.single_point`: one folder per structure + settings hash, kept), so an
interrupted check resumes and a repeated one costs nothing; the snapshots themselves are cached too, so a
rerun labels the very same structures.

Numbers per engine: force MAE and RMSE over Cartesian components (eV/A), the mean cosine between the
engine's and PBE's force vectors on atoms where PBE's force is above :data:`COSINE_MIN_FORCE`, per element
and over all atoms; and the energy differences between snapshots (each snapshot's energy relative to the
snapshots' mean, engine vs PBE, meV/atom), which need two snapshots or more. Verdicts use the thresholds
:data:`FORCE_MAE_TOL`, :data:`COSINE_TOL` and :data:`ENERGY_DIFF_TOL` (ok below the first value, warn
below the second, fail beyond).

Snapshots and their cost: :mod:`cellsim.engines.snapshots` (re-exported here).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from cellsim.engines.registry import ModelInfo
from cellsim.engines.snapshots import ParityError, SnapshotPlan, estimate_seconds

PARITY_VERSION = 1
# force component MAE, eV/A: ok below 0.10, warn below 0.20 (universal potentials on bulk test sets sit
# near 0.03-0.07; an interface off by more than 0.2 eV/A moves its atoms differently from DFT)
FORCE_MAE_TOL = (0.10, 0.20)
# mean cosine between force vectors: ok above 0.90, warn above 0.80
COSINE_TOL = (0.90, 0.80)
# atoms whose PBE force is smaller than this (eV/A) have no meaningful direction and are left out of the cosine
COSINE_MIN_FORCE = 0.1
# MAE of snapshot energy differences, meV/atom: ok below 5, warn below 15
ENERGY_DIFF_TOL = (5.0, 15.0)

# interface snapshots are labelled at the Gamma point, as the AIMD they stand for is run (the study's VASP
# inputs and the paper's AIMD: Gamma only); the defaults would give a small reduced cell a k-mesh
PARITY_SETTINGS: dict[str, Any] = {"kpoints": {"mesh": [1, 1, 1]}}

PARITY_FILE = "engine-parity.json"


# --------------------------------------------------------------------------- statistics and verdicts


def _verdict_below(value: float | None, tol: tuple[float, float]) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return "ok" if value <= tol[0] else "warn" if value <= tol[1] else "fail"


def _verdict_above(value: float | None, tol: tuple[float, float]) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return "ok" if value >= tol[0] else "warn" if value >= tol[1] else "fail"


def force_stats(engine: np.ndarray, reference: np.ndarray) -> dict[str, float | int | None]:
    """MAE and RMSE over components (eV/A) and mean cosine of (n, 3) force arrays."""
    e, r = np.asarray(engine, dtype=float).reshape(-1, 3), np.asarray(reference, dtype=float).reshape(-1, 3)
    diff = e - r
    norm_r, norm_e = np.linalg.norm(r, axis=1), np.linalg.norm(e, axis=1)
    keep = (norm_r > COSINE_MIN_FORCE) & (norm_e > 0)
    cos = (np.sum(e[keep] * r[keep], axis=1) / (norm_e[keep] * norm_r[keep])) if keep.any() else np.array([])
    return {
        "n_atoms": len(r),
        "mae": float(np.mean(np.abs(diff))) if len(r) else None,
        "rmse": float(np.sqrt(np.mean(diff**2))) if len(r) else None,
        "cosine": float(np.mean(cos)) if len(cos) else None,
        "n_cosine": int(keep.sum()),
        "ref_mean_abs": float(np.mean(np.abs(r))) if len(r) else None,
    }


def energy_difference_mae(engine: Sequence[float], reference: Sequence[float], natoms: int) -> float | None:
    """MAE (meV/atom) of the snapshots' energies relative to their mean, engine vs reference (None below 2)."""
    if len(engine) < 2:
        return None
    e, r = np.asarray(engine, dtype=float), np.asarray(reference, dtype=float)
    return float(np.mean(np.abs((e - e.mean()) - (r - r.mean()))) / natoms * 1000.0)


@dataclass
class EngineParity:
    """One engine against PBE on every snapshot."""

    engine: str
    model: str
    overall: dict[str, Any]
    per_element: dict[str, dict[str, Any]]
    energy_diff_mae_meV_atom: float | None
    energies_eV: list[float]
    verdicts: dict[str, str] = field(default_factory=dict)


@dataclass
class ParityResult:
    """What :func:`parity` measured; saved as JSON (:meth:`save`) and read back by :func:`load`."""

    source: str  # "run trajectory" or "reduced interface"
    formula: str
    natoms: int
    snapshots: list[dict[str, Any]]  # per snapshot: job folder, CP2K wall, energy, label
    reference: str
    engines: list[EngineParity]
    thresholds: dict[str, Any]
    version: int = PARITY_VERSION
    notes: list[str] = field(default_factory=list)

    @property
    def cp2k_wall_s(self) -> float:
        return float(sum(s.get("wall_s") or 0.0 for s in self.snapshots))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | os.PathLike[str]) -> Path:
        from cellsim.core.files import atomic_write_json

        atomic_write_json(Path(path), self.to_json())
        return Path(path)


def load(path: str | os.PathLike[str]) -> ParityResult | None:
    """A saved parity result, or None when the file is absent or from another version."""
    p = Path(path)
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
        if data.get("version") != PARITY_VERSION:
            return None
        data["engines"] = [EngineParity(**e) for e in data["engines"]]
        return ParityResult(**data)
    except (ValueError, TypeError, KeyError):
        return None


def thresholds() -> dict[str, Any]:
    return {
        "force_mae_eV_A": list(FORCE_MAE_TOL),
        "cosine": list(COSINE_TOL),
        "cosine_min_force_eV_A": COSINE_MIN_FORCE,
        "energy_diff_meV_atom": list(ENERGY_DIFF_TOL),
    }


def compare(
    engine: str,
    model: str,
    symbols: Sequence[str],
    engine_results: Sequence[tuple[float, np.ndarray]],
    reference_results: Sequence[tuple[float, np.ndarray]],
) -> EngineParity:
    """Per-element and overall parity of one engine's (energy, forces) on each snapshot with the reference's."""
    fe = np.concatenate([np.asarray(f, dtype=float) for _, f in engine_results])
    fr = np.concatenate([np.asarray(f, dtype=float) for _, f in reference_results])
    sym = np.array(list(symbols) * len(engine_results))
    overall = force_stats(fe, fr)
    per_el = {el: force_stats(fe[sym == el], fr[sym == el]) for el in sorted(set(symbols))}
    e_eng = [float(e) for e, _ in engine_results]
    de = energy_difference_mae(e_eng, [float(e) for e, _ in reference_results], len(symbols))
    verdicts = {
        "force_mae": _verdict_below(overall["mae"], FORCE_MAE_TOL),
        "cosine": _verdict_above(overall["cosine"], COSINE_TOL),
        "energy_diff": _verdict_below(de, ENERGY_DIFF_TOL),
    }
    for el, st in per_el.items():
        verdicts[f"force_mae_{el}"] = _verdict_below(st["mae"], FORCE_MAE_TOL)
    return EngineParity(engine, model, overall, per_el, de, e_eng, verdicts)


# --------------------------------------------------------------------------- the check


def parity(
    plan: SnapshotPlan,
    models: Sequence[ModelInfo],
    settings: Mapping[str, Any],
    cache: str | os.PathLike[str],
    labels: Sequence[str | os.PathLike[str]] = (),
    progress: Callable[[str, int, int, Any], None] | None = None,
) -> ParityResult:
    """Label each snapshot with CP2K (cached, one job each), then compare every engine on them.

    ``progress(what, i, n, info)`` is called before each CP2K job (``info`` = its estimate, s) and after it
    (``info`` = its result).
    """
    from cellsim.engines.cp2k import single_point
    from cellsim.engines.registry import load_calculator

    frames = plan.frames
    if not frames:
        raise ParityError("no snapshots to label")
    refs = []
    snaps: list[dict[str, Any]] = []
    n = len(frames)
    for i, atoms in enumerate(frames):
        if progress is not None:
            progress("cp2k-start", i, n, estimate_seconds(atoms, settings))
        res = single_point(
            atoms, cache, settings, label=f"parity snapshot {i}", meta={"source": plan.source}, labels=labels
        )
        if progress is not None:
            progress("cp2k-done", i, n, res)
        refs.append((res.energy, res.forces))
        snaps.append(
            {
                "index": i,
                "job": res.job_dir.name,
                "wall_s": res.data.get("wall_s"),
                "energy_eV": res.energy,
                "scf_steps": res.data.get("scf_steps"),
                "cached": res.cached,
            }
        )
    symbols = frames[0].get_chemical_symbols()
    out: list[EngineParity] = []
    for m in models:
        calc = load_calculator(m)
        got = []
        for atoms in frames:
            work = atoms.copy()
            work.calc = calc
            got.append((float(work.get_potential_energy()), np.asarray(work.get_forces(), dtype=float)))
        out.append(compare(m.key, f"{m.family} {m.version}", symbols, got, refs))
        if progress is not None:
            progress("engine", len(out), len(models), m.key)
    return ParityResult(
        source=plan.source,
        formula=frames[0].get_chemical_formula(mode="metal"),
        natoms=len(frames[0]),
        snapshots=snaps,
        reference=f"PBE (CP2K, {settings['basis_set']}, {settings['cutoff']} Ry)",
        engines=out,
        thresholds=thresholds(),
        notes=list(plan.notes),
    )


# --------------------------------------------------------------------------- what the report says


def trust_lines(result: ParityResult | None, study_ref: str = "STUDY") -> list[str]:
    """Sentences for a report's trust section: each engine's forces on the interface vs PBE, or why none.

    Call with :func:`load` of ``RUN/engine-parity.json`` (:data:`PARITY_FILE`); ``None`` gives the sentence
    saying the numbers do not exist and how to make them.
    """
    if result is None:
        return [
            "No DFT check of the forces on this interface: run "
            f"`cellsim engines check {study_ref} --reference cp2k --parity 3` (CP2K PBE on a few snapshots)."
        ]
    lines = []
    where = (
        f"{len(result.snapshots)} snapshot(s) of the {result.natoms}-atom "
        f"{'interface' if result.source.startswith('run') else 'reduced interface'}"
    )
    for e in result.engines:
        per = ", ".join(f"{el} {st['mae']:.2f}" for el, st in e.per_element.items() if st["mae"] is not None)
        ov = e.overall
        cos = f", cosine {ov['cosine']:.2f}" if ov.get("cosine") is not None else ""
        de = (
            f", energy differences {e.energy_diff_mae_meV_atom:.1f} meV/atom"
            if e.energy_diff_mae_meV_atom is not None
            else ""
        )
        lines.append(
            f"{e.model} forces on this interface vs {result.reference} ({where}): MAE {ov['mae']:.2f} eV/A "
            f"({per}){cos}{de}; verdict {e.verdicts.get('force_mae', 'n/a')}{_failing(e)}."
        )
    return lines


def _failing(e: EngineParity) -> str:
    """' (fail: In, P)': the elements whose own force MAE fails, if any."""
    bad = [k.removeprefix("force_mae_") for k, v in e.verdicts.items() if k.startswith("force_mae_") and v == "fail"]
    return f" (fail: {', '.join(bad)})" if bad else ""


def worst(verdicts: Mapping[str, str]) -> str:
    order = {"fail": 3, "warn": 2, "ok": 1, "n/a": 0}
    return max(verdicts.values(), key=lambda v: order.get(v, 0), default="n/a")


def table_rows(result: ParityResult) -> list[dict[str, Any]]:
    """One row per engine and element (plus 'all'): MAE, RMSE, cosine, energy differences, verdict."""
    rows = []
    for e in result.engines:
        for el, st in [("all", e.overall), *e.per_element.items()]:
            rows.append(
                {
                    "engine": e.engine,
                    "element": el,
                    "n_atoms": st["n_atoms"],
                    "mae_eV_A": st["mae"],
                    "rmse_eV_A": st["rmse"],
                    "cosine": st["cosine"],
                    "energy_diff_meV_atom": e.energy_diff_mae_meV_atom if el == "all" else None,
                    "verdict": e.verdicts.get("force_mae" if el == "all" else f"force_mae_{el}", "n/a"),
                }
            )
    return rows
