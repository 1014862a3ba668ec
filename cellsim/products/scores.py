"""Pair scores: how well the new neighbour density of a pair fits a candidate crystal's.

A crystal's A-B neighbour density per A atom (every image within ``rmax`` counts), its distinct first-sphere
shells, and the score of one candidate for one pair: the cosine similarity of the two densities over a window
that spans the MD peak and the candidate's whole first sphere, times a Gaussian penalty on the distance from
the MD peak to the candidate's nearest shell (module docstring of :mod:`cellsim.products.match`, rule 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cellsim.analysis.peaks import smooth

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from cellsim.products.candidates import Candidate

SHELL_HALF_WIDTH = 0.6  # A either side of the MD peak: the shell whose new neighbours count
COMPARE_SIGMA = 0.1  # A: the common resolution early, late and reactant densities are compared at


def radial_grid(r: np.ndarray) -> tuple[float, float]:
    """``(dr, rmax)`` of an analysis' bin centres ``r``: the bin width and the outer edge of the last bin."""
    dr = float(r[1] - r[0]) if len(r) > 1 else 0.02
    return dr, float(r[-1] + dr / 2)


def r2(x: float | None) -> float | None:
    """The one rounding of scores and intervals (two decimals)."""
    return None if x is None else round(float(x) + 0.0, 2)


@dataclass
class PairNew:
    """The new neighbour density of a pair (late minus its baseline) and whether it counts as new bonds."""

    dn: np.ndarray
    peak: float | None
    new: float
    late_shell: float
    has_new: bool


@dataclass
class PairMatch:
    """One candidate scored for one pair: a row of products.csv."""

    pair: str
    candidate: str
    formula: str
    spacegroup: str
    source: str
    md_peak_r: float | None
    ref_peak_r: float | None
    delta_r: float | None
    similarity: float
    score: float
    score_lo: float = 0.0
    score_hi: float = 0.0
    rank: int = 0


def reference_density(structure: Structure, pair: str, rmax: float, dr: float, sigma: float) -> np.ndarray:
    """Broadened A-B neighbour density per A atom (per bin) of a crystal; every image within rmax counts."""
    raw = raw_density(structure, pair, rmax, dr)
    return smooth(raw, sigma / dr)


def raw_density(structure: Structure, pair: str, rmax: float, dr: float) -> np.ndarray:
    """Unbroadened A-B neighbour counts per A atom in bins of ``dr`` up to ``rmax``."""
    from cellsim.analysis.rdf import pair_histogram

    a, b = pair.split("-")
    sym = np.array([site.specie.symbol for site in structure])
    ia, ib = np.flatnonzero(sym == a), np.flatnonzero(sym == b)
    nb = round(rmax / dr)
    hist = np.zeros(nb, dtype=np.int64)
    if len(ia) == 0 or len(ib) == 0:
        return hist.astype(float)
    frac = structure.frac_coords[None] % 1.0
    cells = structure.lattice.matrix[None]
    pair_histogram(frac, cells, ia, ib, a == b, rmax, dr, 0.0, hist, np.zeros(1, dtype=np.int64))
    return hist * (2.0 if a == b else 1.0) / max(len(ia), 1)


def shells(raw: np.ndarray, r: np.ndarray, limit: float, merge: float = 0.06) -> list[tuple[float, float]]:
    """Distinct neighbour shells ``(r, neighbours per A atom)`` of an unbroadened density up to ``limit``."""
    groups: list[list[int]] = []
    for k in np.flatnonzero((raw > 1e-9) & (r <= limit)):
        if groups and r[k] - r[groups[-1][-1]] <= merge:
            groups[-1].append(int(k))
        else:
            groups.append([int(k)])
    return [(round(float((raw[g] * r[g]).sum() / raw[g].sum()), 3), round(float(raw[g].sum()), 3)) for g in groups]


def cosine(x: np.ndarray, y: np.ndarray) -> float:
    """Cosine similarity of two vectors (0 when either is zero)."""
    d = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y / d) if d > 0 else 0.0


def pair_score(
    dn: np.ndarray, peak: float, n_ref: np.ndarray, ref_shells: list[tuple[float, float]], r: np.ndarray, tol: float
) -> tuple[float, float, float, float]:
    """(score, similarity, nearest shell r, delta) of one candidate for one pair."""
    lo, hi = peak - SHELL_HALF_WIDTH, peak + SHELL_HALF_WIDTH
    if ref_shells:
        lo = min(lo, ref_shells[0][0] - 0.4)
        hi = max(hi, ref_shells[-1][0] + 0.4)
    win = (r >= lo) & (r <= hi)
    sim = cosine(dn[win], n_ref[win])
    if ref_shells:
        near = min(ref_shells, key=lambda s: abs(s[0] - peak))[0]
    else:
        near = float(r[int(np.argmax(n_ref))])
    delta = abs(near - peak)
    return sim * math.exp(-(delta**2) / (2 * tol**2)), sim, near, delta


def score_candidate(
    c: Candidate,
    pair_new: dict[str, PairNew],
    boot_new: dict[str, list[PairNew]],
    cutoffs: dict[str, float],
    r: np.ndarray,
    sigma: float,
    tol: float,
) -> tuple[list[PairMatch], dict[str, np.ndarray]]:
    """Rows of one candidate for every pair whose elements it holds (score with its 5-95 % bootstrap interval),
    and its broadened reference densities by pair."""
    dr, rmax = radial_grid(r)
    rows: list[PairMatch] = []
    refs: dict[str, np.ndarray] = {}
    for pair, pn in pair_new.items():
        a, b = pair.split("-")
        if a not in c.elements or b not in c.elements:
            continue
        n_ref = reference_density(c.structure, pair, rmax, dr, sigma)
        refs[pair] = n_ref
        if not pn.has_new or n_ref.max() <= 0 or pn.peak is None:
            rows.append(PairMatch(pair, c.name, c.formula, c.spacegroup, c.source, None, None, None, 0.0, 0.0))
            continue
        limit = cutoffs[pair] + SHELL_HALF_WIDTH
        ref_shells = shells(raw_density(c.structure, pair, limit + 0.05, dr), r[: round((limit + 0.05) / dr)], limit)
        score, sim, near, delta = pair_score(pn.dn, pn.peak, n_ref, ref_shells, r, tol)
        bs = [
            pair_score(b_new.dn, b_new.peak, n_ref, ref_shells, r, tol)[0]
            if b_new.has_new and b_new.peak is not None
            else 0.0
            for b_new in boot_new[pair]
        ]
        lo, hi = np.percentile(bs, [5, 95])
        rows.append(
            PairMatch(
                pair,
                c.name,
                c.formula,
                c.spacegroup,
                c.source,
                r2(pn.peak),
                round(near, 3),
                round(delta, 3),
                round(sim, 3),
                r2(score) or 0.0,
                r2(lo) or 0.0,
                r2(hi) or 0.0,
            )
        )
    return rows, refs
