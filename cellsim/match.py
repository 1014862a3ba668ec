"""Stage 5: name the new RDF peaks. Compare the MD's new pair density with reference phases.

For each analysed pair A-B (e.g. In-S):

* MD side: ``n_late(r)`` is the mean ``n_per_atom`` of the late windows (the last ``match.late_fraction``
  of them), ``n_base(r)`` that of the as-built interface (``interface/POSCAR``, stored by the analysis
  of a run directory) or else of the first window; both are smoothed to a common 0.1 A resolution and
  the *new* neighbour density is ``dn(r) = max(n_late - n_base, 0)``. ``md_peak_r`` is its maximum
  within the first shells (r <= bond cutoff + 0.6 A). A pair whose new density, integrated over
  ``md_peak_r +/- 0.6 A``, is below ``match.min_new`` neighbours per A atom, or below
  ``match.min_new_fraction`` of the late density there (an existing peak that only broadens with thermal
  motion, like P-S in PS4), has no new bonds: every candidate scores 0 for it.
* Reference side: the A-B neighbour density ``n_ref(r)`` of each candidate crystal (all periodic images),
  broadened by a Gaussian of width ``sigma`` (default ``0.08 A * sqrt(T / 300 K)``: harmonic thermal
  motion, variance proportional to T). ``ref_peak_r`` is the reference peak nearest to ``md_peak_r``.
* Score (0-1) = shape similarity x position agreement, where shape similarity is the cosine similarity
  of ``dn`` and ``n_ref`` over ``md_peak_r +/- 0.6 A`` and position agreement is
  ``exp(-delta_r^2 / (2 * position_tolerance^2))``, ``delta_r = |md_peak_r - ref_peak_r|``.
* Overall: the sum of a candidate's pair scores, so a phase that explains both In-S and In-Cl peaks ranks
  above one that explains one. A score >= ``match.threshold`` counts as a match.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.analysis.peaks import find_peaks, smooth
from cellsim.errors import CellsimError, RunDirError
from cellsim.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from cellsim.study import Study

SHELL_HALF_WIDTH = 0.6
COMPARE_SIGMA = 0.1


@dataclass
class Candidate:
    name: str
    formula: str
    spacegroup: str
    source: str
    structure: Structure
    elements: frozenset[str] = field(default_factory=frozenset)


@dataclass
class PairMatch:
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
    rank: int = 0


@dataclass
class MatchResult:
    pairs: dict[str, dict[str, Any]]
    rows: list[PairMatch]
    overall: list[dict[str, Any]]
    references: dict[str, dict[str, np.ndarray]]
    notes: list[str]
    threshold: float


def _library_candidates() -> list[Candidate]:
    from cellsim.references.library import library

    out = []
    for p in library().values():
        s = p.structure()
        mp = f", {p.mp_id}" if p.mp_id else ""
        out.append(
            Candidate(
                p.name,
                s.composition.reduced_formula,
                p.spacegroup,
                f"library:{p.key}{mp}",
                s,
                frozenset(el.symbol for el in s.composition),
            )
        )
    return out


def _mp_candidates(study: Study, elements: set[str], notes: list[str]) -> list[Candidate]:
    from cellsim.references import mp

    if not study.match.use_mp:
        return []
    try:
        mp.fetch("-".join(sorted(elements)), study.match.energy_above_hull)
    except mp.MPUnavailable as exc:
        notes.append(f"Materials Project not used ({exc}); offline library and MP cache only")
    out = []
    for p in mp.cached():
        if p.energy_above_hull > study.match.energy_above_hull:
            continue
        s = p.structure()
        out.append(
            Candidate(
                p.name,
                p.formula,
                p.spacegroup,
                f"MP:{p.material_id} (E_hull {p.energy_above_hull:.3f} eV/atom)",
                s,
                frozenset(el.symbol for el in s.composition),
            )
        )
    return out


def reference_density(structure: Structure, pair: str, rmax: float, dr: float, sigma: float) -> np.ndarray:
    """Broadened A-B neighbour density per A atom (per bin) of a crystal; every image within rmax counts."""
    from cellsim.analysis.rdf import pair_histogram

    a, b = pair.split("-")
    sym = np.array([site.specie.symbol for site in structure])
    ia, ib = np.flatnonzero(sym == a), np.flatnonzero(sym == b)
    nb = round(rmax / dr)
    hist = np.zeros(nb, dtype=np.int64)
    frac = structure.frac_coords[None] % 1.0
    cells = structure.lattice.matrix[None]
    pair_histogram(frac, cells, ia, ib, a == b, rmax, dr, 0.0, hist, np.zeros(1, dtype=np.int64))
    n = hist * (2.0 if a == b else 1.0) / max(len(ia), 1)
    return smooth(n, sigma / dr)


def _md_density(rdf: dict[str, Any], pair: str, late_fraction: float) -> tuple[np.ndarray, np.ndarray, str]:
    """Baseline and late neighbour densities; the baseline is the as-built interface when known."""
    n = rdf["n_per_atom"][pair]
    nw = len(n)
    k = max(1, round(late_fraction * nw))
    late = n[max(1, nw - k) :] if nw > 1 else n
    base = rdf.get("baseline", {}).get(pair)
    if base is not None:
        return base, late.mean(axis=0), "as-built interface"
    return n[0], late.mean(axis=0), "first window"


def match_run(run_dir: Path, study: Study, candidates: list[Candidate] | None = None) -> MatchResult:
    """Rank candidate products for every analysed pair of ``run_dir/analysis``."""
    from cellsim.analysis.analyze import load_rdf

    npz = run_dir / "analysis" / "rdf.npz"
    if not npz.is_file():
        raise RunDirError(f"{npz}: no analysis yet; run `cellsim analyze {run_dir}` first")
    rdf = load_rdf(npz)
    r = rdf["r"]
    dr = float(r[1] - r[0]) if len(r) > 1 else 0.02
    rmax = float(r[-1] + dr / 2)
    ms = study.match
    sigma = ms.sigma or 0.08 * math.sqrt(study.md.temperature / 300.0)
    notes: list[str] = []
    cutoffs = dict(study.analysis.bond_cutoffs)

    # MD new density per pair
    pairs: dict[str, dict[str, Any]] = {}
    for pair in rdf["pairs"]:
        first, late, base_label = _md_density(rdf, pair, ms.late_fraction)
        # both at a common 0.1 A resolution, so that a peak that only broadens (a cold start warming up)
        # leaves little difference, while a shifted or new peak stays
        late_s = smooth(late, COMPARE_SIGMA / dr)
        dn = np.clip(late_s - smooth(first, COMPARE_SIGMA / dr), 0.0, None)
        limit = cutoffs.get(pair, 3.0) + SHELL_HALF_WIDTH
        inside = r <= limit
        k = int(np.argmax(np.where(inside, dn, -1.0)))
        md_peak = float(r[k])
        win = np.abs(r - md_peak) <= SHELL_HALF_WIDTH
        new = float(dn[win].sum())
        late_shell = float(late_s[win].sum())
        has_new = new >= ms.min_new and new >= ms.min_new_fraction * late_shell
        pairs[pair] = {
            "dn": dn,
            "n_first": first,
            "n_late": late,
            "md_peak_r": md_peak if has_new else None,
            "new": new,
            "new_fraction": new / late_shell if late_shell > 0 else 0.0,
            "baseline": base_label,
            "has_new": has_new,
            "window": win,
        }

    # candidates
    new_pairs = [p for p, d in pairs.items() if d["has_new"]]
    if candidates is None:
        if ms.candidates is not None:
            candidates = _named_candidates(ms.candidates, run_dir)
        else:
            from cellsim.references.library import resolve_phase

            allowed = {el for p in new_pairs for el in p.split("-")}
            for side in (study.interface.metal, study.interface.electrolyte):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    _, s = resolve_phase(side.phase)
                allowed |= {el.symbol for el in s.composition}
            pool = _library_candidates() + _mp_candidates(
                study, {el for p in new_pairs for el in p.split("-")} or allowed, notes
            )
            wanted = new_pairs or list(pairs)
            # a candidate must hold both elements of a pair with new bonds, and nothing beyond the
            # elements of those bonds, the metal and the electrolyte
            candidates = [
                c for c in pool if c.elements <= allowed and any(set(p.split("-")) <= c.elements for p in wanted)
            ]
            candidates = _unique(candidates)
    if not new_pairs:
        notes.append("no pair gained neighbours: nothing reacted within the analysed time, no product is matched")

    rows: list[PairMatch] = []
    refs: dict[str, dict[str, np.ndarray]] = {}
    for pair, d in pairs.items():
        a, b = pair.split("-")
        pair_rows = []
        for c in candidates:
            if a not in c.elements or b not in c.elements:
                continue
            n_ref = reference_density(c.structure, pair, rmax, dr, sigma)
            refs.setdefault(c.name, {})[pair] = n_ref
            if not d["has_new"] or n_ref.max() <= 0:
                pair_rows.append(PairMatch(pair, c.name, c.formula, c.spacegroup, c.source, None, None, None, 0.0, 0.0))
                continue
            peaks = [k for k, _ in find_peaks(n_ref, 0.05 * float(n_ref.max()))] or [int(np.argmax(n_ref))]
            kref = min(peaks, key=lambda k: abs(r[k] - d["md_peak_r"]))
            ref_peak = float(r[kref])
            delta = abs(ref_peak - d["md_peak_r"])
            w = d["window"]
            x, y = d["dn"][w], n_ref[w]
            denom = float(np.linalg.norm(x) * np.linalg.norm(y))
            sim = float(x @ y / denom) if denom > 0 else 0.0
            score = sim * math.exp(-(delta**2) / (2 * ms.position_tolerance**2))
            pair_rows.append(
                PairMatch(pair, c.name, c.formula, c.spacegroup, c.source, d["md_peak_r"], ref_peak, delta, sim, score)
            )
        pair_rows.sort(key=lambda m: -m.score)
        for i, m in enumerate(pair_rows, 1):
            m.rank = i
        rows += pair_rows

    totals: dict[str, dict[str, Any]] = {}
    for m in rows:
        t = totals.setdefault(
            m.candidate,
            {
                "candidate": m.candidate,
                "formula": m.formula,
                "spacegroup": m.spacegroup,
                "source": m.source,
                "score": 0.0,
                "pairs_matched": [],
            },
        )
        t["score"] += m.score
        if m.score >= ms.threshold:
            t["pairs_matched"].append(m.pair)
    overall = sorted(totals.values(), key=lambda t: (-t["score"], t["candidate"]))
    for i, t in enumerate(overall, 1):
        t["rank"] = i
    keep = ("md_peak_r", "new", "new_fraction", "baseline", "has_new")
    summary = {p: {k: v for k, v in d.items() if k in keep} for p, d in pairs.items()}
    return MatchResult(summary, rows, overall, refs, notes, ms.threshold)


def _unique(cands: list[Candidate]) -> list[Candidate]:
    seen, out = set(), []
    for c in cands:
        if c.name not in seen:
            seen.add(c.name)
            out.append(c)
    return out


def _named_candidates(names: list[str], run_dir: Path) -> list[Candidate]:
    from cellsim.references.library import get_phase, resolve_phase

    out = []
    for n in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            label, s = resolve_phase(n, run_dir, "match.candidates")
        phase = get_phase(n)
        source = (
            f"library:{phase.key}" + (f", {phase.mp_id}" if phase and phase.mp_id else "") if phase else f"file:{n}"
        )
        sg = phase.spacegroup if phase else s.get_space_group_info(symprec=0.1)[0]
        out.append(
            Candidate(label, s.composition.reduced_formula, sg, source, s, frozenset(e.symbol for e in s.composition))
        )
    return out


def write_products(result: MatchResult, run_dir: Path) -> dict[str, Path]:
    """analysis/products.csv (per pair and overall), analysis/match.json and analysis/ref_rdf.npz."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["pair", "candidate", "formula", "space_group", "source", "md_peak_r", "ref_peak_r", "delta_r", "score", "rank"]
    )

    def f(x: float | None) -> str:
        return "" if x is None else f"{x:.3f}"

    for m in result.rows:
        w.writerow(
            [
                m.pair,
                m.candidate,
                m.formula,
                m.spacegroup,
                m.source,
                f(m.md_peak_r),
                f(m.ref_peak_r),
                f(m.delta_r),
                f"{m.score:.4f}",
                m.rank,
            ]
        )
    for t in result.overall:
        w.writerow(
            [
                "overall",
                t["candidate"],
                t["formula"],
                t["spacegroup"],
                t["source"],
                "",
                "",
                "",
                f"{t['score']:.4f}",
                t["rank"],
            ]
        )
    out = run_dir / "analysis"
    paths = {"products_csv": atomic_write_text(out / "products.csv", buf.getvalue())}
    paths["match_json"] = atomic_write_json(
        out / "match.json",
        {
            "threshold": result.threshold,
            "pairs": result.pairs,
            "notes": result.notes,
            "overall": result.overall,
            "score_definition": "cosine similarity of new MD neighbour density and broadened reference density over "
            "md_peak_r +/- 0.6 A, times exp(-delta_r^2 / (2 tol^2)); overall = sum over pairs",
        },
    )
    arrays: dict[str, Any] = {f"{c}|{p}": v for c, d in result.references.items() for p, v in d.items()}
    npz = io.BytesIO()
    np.savez(npz, **arrays)
    paths["ref_rdf"] = atomic_write_bytes(out / "ref_rdf.npz", npz.getvalue())
    return paths


def load_match(run_dir: Path) -> dict[str, Any]:
    p = run_dir / "analysis" / "match.json"
    if not p.is_file():
        raise CellsimError(f"{p}: no match yet; run `cellsim match {run_dir}`")
    data: dict[str, Any] = json.loads(p.read_text())
    return data
