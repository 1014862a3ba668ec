"""What is new in a run: the early and late windows, the baseline each pair's density must exceed, and bond
counts against the start's own noise (module docstring of :mod:`cellsim.products.match`, rule 1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.analysis.peaks import smooth
from cellsim.products.scores import (
    COMPARE_SIGMA,
    SHELL_HALF_WIDTH,
    PairNew,
    r2,
    radial_grid,
    raw_density,
    reference_density,
)

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from cellsim.analysis.analyze import AnalysisResult
    from cellsim.config.study import MatchSpec
    from cellsim.references.reactants import Reactants

EARLY_FRACTION = 0.05
EARLY_MAX_PS = 0.1
BOOTSTRAP = 200


@dataclass
class Windows:
    """The early and late time windows of an analysis, and their bootstrap resamples."""

    early: np.ndarray
    late: np.ndarray
    boot: list[tuple[np.ndarray, np.ndarray]]
    early_ps: float  # the early part of the run ends here (also for the environments' samples)


def time_windows(res: AnalysisResult, late_fraction: float, seed: int) -> Windows:
    """The first ``EARLY_FRACTION`` of the windows (at least those within ``EARLY_MAX_PS``) and the last
    ``late_fraction``, never overlapping, with ``BOOTSTRAP`` seeded resamples of both."""
    # the baseline is the start of the run only (never the diagnostics' equilibration time: a reaction that
    # drifts the energy would be swallowed into it); relaxation contacts are told from products by the
    # environments (amounts.py), not by discarding time
    nw = len(res.window_frames)
    early_ps = max(EARLY_MAX_PS, EARLY_FRACTION * float(res.t_end[-1]))
    k_early = max(1, int(np.sum(res.t_end <= early_ps + 1e-9)))
    k_early = min(k_early, max(1, nw - 1))
    k_late = max(1, min(nw - k_early, round(late_fraction * nw)))
    early, late = np.arange(k_early), np.arange(nw - k_late, nw)
    rng = np.random.default_rng(seed)
    boot = [(rng.choice(early, k_early), rng.choice(late, k_late)) for _ in range(BOOTSTRAP)]
    return Windows(early, late, boot, early_ps)


def sample_windows(times_ps: np.ndarray, early_ps: float, late_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the early and the late samples of the environments (at least one each, never overlapping)."""
    ns = len(times_ps)
    e_idx = np.flatnonzero(times_ps <= early_ps + 1e-9)
    if len(e_idx) == 0:
        e_idx = np.arange(1)
    e_idx = e_idx[: max(1, ns - 1)]
    l_idx = np.arange(max(int(e_idx[-1]) + 1, ns - max(1, round(late_fraction * ns))), ns)
    return e_idx, l_idx


def new_density(
    n: np.ndarray,
    early_idx: np.ndarray,
    late_idx: np.ndarray,
    floor: np.ndarray | None,
    r: np.ndarray,
    limit: float,
    spec: MatchSpec,
    dr: float,
    scale: float = 1.0,
    bonds_rose: bool = True,
    reactant_pair: bool = False,
) -> PairNew:
    """The late density of a pair above its baseline (early windows, and the reactant ``floor``)."""
    # the baseline is the largest early density at each r: a relaxation or equilibration that moves atoms in
    # the first windows (Li of Li6PS5Cl leaving 24g for 48h-like sites) is then baseline, not product
    early = np.max([smooth(n[k], COMPARE_SIGMA / dr) for k in early_idx], axis=0)
    late = smooth(n[late_idx].mean(axis=0), COMPARE_SIGMA / dr)
    base = early if floor is None else np.maximum(early, floor)
    dn = np.clip(late - base, 0.0, None)
    inside = r <= limit
    k = int(np.argmax(np.where(inside, dn, -1.0)))
    peak = float(r[k])
    win = np.abs(r - peak) <= SHELL_HALF_WIDTH
    new = float(dn[win].sum())
    late_shell = float(late[win].sum())
    # per atom of the minority partner (``scale`` = N_A / min(N_A, N_B)): 21 new Li-P bonds are 0.1 per Li
    # of a Li anode but 1.3 per P, and it is the P that reacted
    # of a reactant pair (Li-S next to Li6PS5Cl) the late density holds the reactant's own bonds: the new part
    # is judged against the start's noise (``bonds_rose``), not as a fraction of them
    enough = reactant_pair or new >= spec.min_new_fraction * late_shell
    has_new = bonds_rose and new * scale >= spec.min_new and enough
    return PairNew(dn, peak if has_new else None, new, late_shell, has_new)


def bond_change(res: AnalysisResult, pair: str) -> dict[str, Any]:
    """Bond count of ``pair`` at the start against the end, with the start's own noise.

    The baseline is the first frames (:func:`~cellsim.analysis.analyze.baseline_frames`); the count *rose*
    (*fell*) when the mean of the last third is more than ``max(3 sd, 2 bonds, 10 %)`` above (below) it, the
    margin of :func:`~cellsim.analysis.peaks.departure_time` that also dates the change.
    """
    from cellsim.analysis.analyze import baseline_frames
    from cellsim.analysis.peaks import departure_time

    counts = np.asarray(res.bonds.get(pair, np.zeros(0)), dtype=float)
    if len(counts) == 0:
        return {"rose": False, "fell": False, "change": 0.0}
    ev = departure_time(res.frame_times[: len(counts)], counts, baseline_frames(res))
    change = float(ev["late_mean"] - ev["baseline_mean"])
    return {
        **ev,
        "change": round(change, 1),
        "rose": bool(change > ev["margin"]),
        "fell": bool(-change > ev["margin"]),
    }


def pair_kind(pair: str, holders: list[str], react_structs: dict[str, Structure]) -> str:
    """How a pair relates to the reactants: bonded in one, between two (the interface), or in neither."""
    if holders:
        return "reactant pair"
    a, b = pair.split("-")
    has = [{el.symbol for el in s.composition} for s in react_structs.values()]
    if not has:
        return "pair (reactants unknown)"
    if any({a, b} <= h for h in has):
        return "not bonded in the reactants"
    return "interfacial pair"


def reactant_floor(
    res: AnalysisResult,
    pair: str,
    holders: list[str],
    reactants: Reactants,
    react_structs: dict[str, Structure],
    thermal: dict[str, dict[str, np.ndarray]],
    sigma: float,
) -> np.ndarray:
    """The reactants' own density of ``pair`` per A atom of the whole trajectory: each reactant that holds the
    pair contributes by its share of the A atoms (Li6PS5Cl's Li next to a Li anode), with its thermal density
    from a reactant NVT when there is one, else its crystal broadened to the run's temperature."""
    r = res.r
    dr, rmax = radial_grid(r)
    a_el = pair.split("-")[0]
    n_a_all = max(1, res.element_counts.get(a_el, 0))
    floor = np.zeros(len(r))
    for h in holders:
        units = float(reactants.phases.get(h, 0.0))
        share = units * float(react_structs[h].composition.reduced_composition[a_el]) / n_a_all
        dens = thermal.get(h, {}).get(pair)
        if dens is None or len(dens) != len(r):
            dens = reference_density(react_structs[h], pair, rmax, dr, sigma)
        floor += min(1.0, share or 1.0) * dens
    return smooth(floor, COMPARE_SIGMA / dr)


def pair_changes(
    res: AnalysisResult,
    spec: MatchSpec,
    reactants: Reactants,
    react_structs: dict[str, Structure],
    thermal: dict[str, dict[str, np.ndarray]],
    win: Windows,
    sigma: float,
) -> tuple[dict[str, dict[str, Any]], dict[str, PairNew], dict[str, list[PairNew]]]:
    """Per analysed pair: the table of match.json ``pairs``, its new density, and that of every resample."""
    r = res.r
    dr, _ = radial_grid(r)
    pairs: dict[str, dict[str, Any]] = {}
    pair_new: dict[str, PairNew] = {}
    boot_new: dict[str, list[PairNew]] = {}
    for pair in res.settings.pairs:
        limit = res.cutoffs[pair] + SHELL_HALF_WIDTH
        holders = [name for name, s in react_structs.items() if raw_density(s, pair, limit, dr).sum() > 0]
        floor = reactant_floor(res, pair, holders, reactants, react_structs, thermal, sigma) if holders else None
        n = res.n_per_atom[pair]
        a, b = pair.split("-")
        n_a, n_b = res.element_counts.get(a, 0), res.element_counts.get(b, 0)
        scale = n_a / max(1, min(n_a, n_b)) if a != b else 1.0
        ev = bond_change(res, pair)
        held = bool(holders)
        pn = new_density(n, win.early, win.late, floor, r, limit, spec, dr, scale, ev["rose"], held)
        pair_new[pair] = pn
        boot_new[pair] = [
            new_density(n, e, lt, floor, r, limit, spec, dr, scale, ev["rose"], held) for e, lt in win.boot
        ]
        support = float(np.mean([b.has_new for b in boot_new[pair]]))
        if not holders:
            baseline = "first windows"
        elif all(pair in thermal.get(h, {}) for h in holders):
            baseline = "max(first windows, reactant NVT at T)"
        else:
            baseline = "max(first windows, reactant crystal broadened to T)"
        pairs[pair] = {
            "kind": pair_kind(pair, holders, react_structs),
            "reactants_with_pair": holders,
            "baseline": baseline,
            "md_peak_r": r2(pn.peak) if pn.peak is not None else None,
            "new": round(pn.new, 3),
            "new_per_minority_atom": round(pn.new * scale, 3),
            "minority": (a if n_a <= n_b else b),
            "new_bonds": round(pn.new * n_a / (2.0 if a == b else 1.0), 1),
            "new_fraction": round(pn.new / pn.late_shell, 3) if pn.late_shell > 0 else 0.0,
            "has_new": pn.has_new,
            "bootstrap_support": round(support, 2),
            "bond_cutoff": res.cutoffs[pair],
            "bonds": ev,
        }
    return pairs, pair_new, boot_new
