"""Stage 5: into what did it react? New neighbour densities and local environments against candidate phases.

The rules (docs/matching.md gives them with examples):

1. **What is new.** For each analysed pair A-B, ``early`` is the largest neighbour density ``n_per_atom``
   (at each r) among the first windows (the first ``EARLY_FRACTION`` of them and every window that starts
   before the equilibration time of the diagnostics, at least one) and ``late`` the mean of the last
   ``match.late_fraction``; both are compared at a common 0.1 A resolution (a peak that only broadens
   leaves little difference).

   * A pair that no reactant has (In-S, In-Cl for In on Li6PS5Cl) is interfacial:
     ``dn = max(late - early, 0)``. Contacts made before the MD (the pre-relaxation) are in ``early``,
     so they are not a reaction.
   * A pair a reactant has (Li-S, Li-Cl, P-S, In-In) must also exceed the reactant's own thermal
     distribution: ``dn = max(late - max(early, n_reactant), 0)``, with ``n_reactant`` the reactant
     crystal's A-B density broadened to the run's temperature. The early MD is the same engine at the same
     temperature, so whatever the reactant does thermally (Li of Li6PS5Cl leaving its 24g site for the
     48h-like site at Li-Cl 2.5 A) is in ``early`` already.

   A pair has new bonds when ``dn`` integrated over ``md_peak_r +/- 0.6 A`` is at least ``match.min_new``
   neighbours per A atom and at least ``match.min_new_fraction`` of the late density there.
2. **Pair score** (0-1) of a candidate: cosine similarity of ``dn`` and the candidate's broadened A-B
   density over a window that spans both the MD peak (+/- 0.6 A) and the candidate's whole first
   coordination sphere (every shell up to the bond cutoff + 0.6 A, so InCl's 2.92 and 3.17 A shells both
   count), times ``exp(-delta^2 / (2 tol^2))`` with ``delta`` the distance from the MD peak to the
   candidate's nearest first-sphere shell (a shell, never a merged maximum).
3. **Environments.** The late environment of the A atoms that changed (mean number of each partner
   element within the cutoffs) is compared with the candidate's A sites: ``env_agreement = 1 - L1/2`` of
   the partner-element fractions (1 = same mix of S and Cl around In, 0 = disjoint).
4. **Confidence.** Every score comes with a 90 % interval from a bootstrap over time windows (early and
   late windows resampled with replacement, ``BOOTSTRAP`` times, seeded).
5. **Verdict** per candidate (its best pair): *formed* when the score is >= ``match.threshold``, the
   interval's lower end is >= 0.8 x threshold and the environments agree (>= 0.5); *possible* when the
   score or the interval's upper end reaches the threshold, or the score is >= 0.6 x threshold; *not
   seen* otherwise. Scores are rounded to two decimals once, where they are made, and that value is used
   everywhere (terminal, CSV, JSON, report).
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.analysis.peaks import smooth
from cellsim.errors import CellsimError

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from cellsim.analysis.analyze import AnalysisResult
    from cellsim.references.reactants import Reactants
    from cellsim.study import MatchSpec

SHELL_HALF_WIDTH = 0.6
COMPARE_SIGMA = 0.1
EARLY_FRACTION = 0.15
BOOTSTRAP = 200
FORMED_LOWER = 0.8
POSSIBLE_FRACTION = 0.6
ENV_AGREE = 0.5
VERDICTS = ("formed", "possible", "not seen")


class MatchError(CellsimError):
    """Matching cannot run on this analysis."""


def r2(x: float | None) -> float | None:
    """The one rounding of scores and intervals (two decimals)."""
    return None if x is None else round(float(x) + 0.0, 2)


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
    score_lo: float = 0.0
    score_hi: float = 0.0
    rank: int = 0


@dataclass
class CandidateVerdict:
    candidate: str
    formula: str
    spacegroup: str
    source: str
    score: float  # sum of pair scores
    best_pair: str | None
    best_score: float
    best_lo: float
    best_hi: float
    env_agreement: float | None
    verdict: str
    pairs_matched: list[str] = field(default_factory=list)
    rank: int = 0


@dataclass
class MatchResult:
    """The answer of the matching stage; :meth:`save` / :meth:`load` round-trip it."""

    pairs: dict[str, dict[str, Any]]
    rows: list[PairMatch]
    candidates: list[CandidateVerdict]
    references: dict[str, dict[str, np.ndarray]]
    notes: list[str]
    threshold: float
    reactants: dict[str, Any] = field(default_factory=dict)
    environments: dict[str, Any] = field(default_factory=dict)
    electrolyte: dict[str, Any] = field(default_factory=dict)
    analysis_id: str | None = None
    # with replicas: per candidate, how many replicas gave each verdict, and their best scores
    replicas: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def formed(self) -> list[CandidateVerdict]:
        return [c for c in self.candidates if c.verdict == "formed"]

    @property
    def overall(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.candidates]

    def to_dataframe(self) -> Any:
        """The products.csv table as a pandas DataFrame."""
        import pandas as pd

        return pd.read_csv(io.StringIO(products_csv(self)))

    def save(self, folder: str | Path) -> dict[str, Path]:
        return write_products(self, Path(folder))

    @classmethod
    def load(cls, folder: str | Path) -> MatchResult:
        return load_match(Path(folder))


# --------------------------------------------------------------------------- candidates


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


def _mp_candidates(spec: MatchSpec, elements: set[str], notes: list[str]) -> list[Candidate]:
    from cellsim.references import mp

    if not spec.use_mp:
        return []
    try:
        mp.fetch("-".join(sorted(elements)), spec.energy_above_hull)
    except mp.MPUnavailable as exc:
        notes.append(f"Materials Project not used ({exc}); offline library and MP cache only")
    out = []
    for p in mp.cached():
        if p.energy_above_hull > spec.energy_above_hull:
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


def named_candidates(names: list[str], base_dir: Path | None = None) -> list[Candidate]:
    """Candidates named by the user: library names or structure files (relative to ``base_dir``)."""
    from cellsim.references.library import get_phase, resolve_phase

    out = []
    for n in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            label, s = resolve_phase(n, base_dir, "match.candidates")
        phase = get_phase(n)
        source = (
            f"library:{phase.key}" + (f", {phase.mp_id}" if phase and phase.mp_id else "") if phase else f"file:{n}"
        )
        sg = phase.spacegroup if phase else s.get_space_group_info(symprec=0.1)[0]
        out.append(
            Candidate(label, s.composition.reduced_formula, sg, source, s, frozenset(e.symbol for e in s.composition))
        )
    return out


def _unique(cands: list[Candidate]) -> list[Candidate]:
    seen, out = set(), []
    for c in cands:
        if c.name not in seen:
            seen.add(c.name)
            out.append(c)
    return out


# --------------------------------------------------------------------------- densities


def reference_density(structure: Structure, pair: str, rmax: float, dr: float, sigma: float) -> np.ndarray:
    """Broadened A-B neighbour density per A atom (per bin) of a crystal; every image within rmax counts."""
    raw = _raw_density(structure, pair, rmax, dr)
    return smooth(raw, sigma / dr)


def _raw_density(structure: Structure, pair: str, rmax: float, dr: float) -> np.ndarray:
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


def _cosine(x: np.ndarray, y: np.ndarray) -> float:
    d = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y / d) if d > 0 else 0.0


# --------------------------------------------------------------------------- the matching


@dataclass
class _PairNew:
    dn: np.ndarray
    peak: float | None
    new: float
    late_shell: float
    has_new: bool


def _new_density(
    n: np.ndarray,
    early_idx: np.ndarray,
    late_idx: np.ndarray,
    floor: np.ndarray | None,
    r: np.ndarray,
    limit: float,
    spec: MatchSpec,
    dr: float,
) -> _PairNew:
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
    has_new = new >= spec.min_new and new >= spec.min_new_fraction * late_shell
    return _PairNew(dn, peak if has_new else None, new, late_shell, has_new)


def _pair_score(
    dn: np.ndarray, peak: float, n_ref: np.ndarray, ref_shells: list[tuple[float, float]], r: np.ndarray, tol: float
) -> tuple[float, float, float, float]:
    """(score, similarity, nearest shell r, delta) of one candidate for one pair."""
    lo, hi = peak - SHELL_HALF_WIDTH, peak + SHELL_HALF_WIDTH
    if ref_shells:
        lo = min(lo, ref_shells[0][0] - 0.4)
        hi = max(hi, ref_shells[-1][0] + 0.4)
    win = (r >= lo) & (r <= hi)
    sim = _cosine(dn[win], n_ref[win])
    if ref_shells:
        near = min(ref_shells, key=lambda s: abs(s[0] - peak))[0]
    else:
        near = float(r[int(np.argmax(n_ref))])
    delta = abs(near - peak)
    return sim * math.exp(-(delta**2) / (2 * tol**2)), sim, near, delta


def _env_fraction(counts: dict[str, float], partners: list[str]) -> np.ndarray | None:
    v = np.array([max(0.0, counts.get(p, 0.0)) for p in partners])
    return v / v.sum() if v.sum() > 0 else None


def match_analysis(
    res: AnalysisResult,
    spec: MatchSpec,
    reactants: Reactants,
    candidates: list[Candidate] | None = None,
    base_dir: Path | None = None,
    seed: int = 0,
) -> MatchResult:
    """Rank candidate products for every analysed pair of an analysis (see the module docstring)."""
    from cellsim.analysis.environments import crystal_environments
    from cellsim.references.reactants import reactant_structures

    r = res.r
    dr = float(r[1] - r[0]) if len(r) > 1 else 0.02
    rmax = float(r[-1] + dr / 2)
    temperature = res.temperature_K
    sigma = spec.sigma or 0.08 * math.sqrt(temperature / 300.0)
    notes: list[str] = []
    nw = len(res.window_frames)
    if nw < 2:
        raise MatchError(
            f"{res.out_dir}: the analysis has one time window; matching compares early and late windows "
            f"(re-run `cellsim analyze` with a --window shorter than the run, "
            f"{res.n_frames * res.settings.dt_fs / 1000:.3f} ps)"
        )
    t_eq = float(res.info.get("equilibration_ps") or 0.0)
    k_early = max(1, round(EARLY_FRACTION * nw), int(np.sum(res.t_start < t_eq)))
    k_early = min(k_early, max(1, nw - 1))
    k_late = max(1, min(nw - k_early, round(spec.late_fraction * nw)))
    early_idx = np.arange(k_early)
    late_idx = np.arange(nw - k_late, nw)
    rng = np.random.default_rng(seed)
    boot = [(rng.choice(early_idx, k_early), rng.choice(late_idx, k_late)) for _ in range(BOOTSTRAP)]

    react_structs = reactant_structures(reactants)
    pairs: dict[str, dict[str, Any]] = {}
    pair_new: dict[str, _PairNew] = {}
    boot_new: dict[str, list[_PairNew]] = {}
    for pair in res.settings.pairs:
        limit = res.cutoffs[pair] + SHELL_HALF_WIDTH
        holders = [name for name, s in react_structs.items() if _raw_density(s, pair, limit, dr).sum() > 0]
        floor = None
        if holders:
            floor = np.max([reference_density(react_structs[h], pair, rmax, dr, sigma) for h in holders], axis=0)
            floor = smooth(floor, COMPARE_SIGMA / dr)
        n = res.n_per_atom[pair]
        pn = _new_density(n, early_idx, late_idx, floor, r, limit, spec, dr)
        pair_new[pair] = pn
        boot_new[pair] = [_new_density(n, e, lt, floor, r, limit, spec, dr) for e, lt in boot]
        support = float(np.mean([b.has_new for b in boot_new[pair]]))
        pairs[pair] = {
            "kind": "reactant pair" if holders else "interfacial pair",
            "reactants_with_pair": holders,
            "baseline": "max(early windows, reactant crystal at T)" if holders else "early windows",
            "md_peak_r": r2(pn.peak) if pn.peak is not None else None,
            "new": round(pn.new, 3),
            "new_fraction": round(pn.new / pn.late_shell, 3) if pn.late_shell > 0 else 0.0,
            "has_new": pn.has_new,
            "bootstrap_support": round(support, 2),
            "bond_cutoff": res.cutoffs[pair],
        }
    new_pairs = [p for p, d in pair_new.items() if d.has_new]
    if not new_pairs:
        notes.append("no pair gained neighbours beyond the reactants' and the early MD's: nothing reacted")

    # candidates
    allowed = {el for p in new_pairs for el in p.split("-")}
    for s in react_structs.values():
        allowed |= {el.symbol for el in s.composition}
    if not react_structs:
        allowed |= set(res.element_counts)
    if candidates is None:
        if spec.candidates is not None:
            candidates = named_candidates(spec.candidates, base_dir)
        else:
            pool = _library_candidates() + _mp_candidates(spec, {el for p in new_pairs for el in p.split("-")}, notes)
            wanted = new_pairs or list(pairs)
            candidates = _unique(
                [
                    c
                    for c in pool
                    if c.elements <= allowed
                    and any(set(p.split("-")) <= c.elements for p in wanted)
                    and c.name not in reactants.phases
                ]
            )

    # environments of the reacting centres
    env = res.environments
    env_info: dict[str, Any] = {}
    partners_of: dict[str, list[str]] = {}
    for p in new_pairs:
        a, b = p.split("-")
        partners_of.setdefault(a, []).append(b)
    if env is not None:
        for centre in dict.fromkeys([p.split("-")[0] for p in res.settings.pairs]):
            env_info[centre] = env.summary(centre, spec.late_fraction)

    rows: list[PairMatch] = []
    refs: dict[str, dict[str, np.ndarray]] = {}
    verdicts: list[CandidateVerdict] = []
    for c in candidates:
        cand_rows: list[PairMatch] = []
        for pair in res.settings.pairs:
            a, b = pair.split("-")
            if a not in c.elements or b not in c.elements:
                continue
            n_ref = reference_density(c.structure, pair, rmax, dr, sigma)
            refs.setdefault(c.name, {})[pair] = n_ref
            pn = pair_new[pair]
            if not pn.has_new or n_ref.max() <= 0 or pn.peak is None:
                cand_rows.append(PairMatch(pair, c.name, c.formula, c.spacegroup, c.source, None, None, None, 0.0, 0.0))
                continue
            limit = res.cutoffs[pair] + SHELL_HALF_WIDTH
            ref_shells = shells(
                _raw_density(c.structure, pair, limit + 0.05, dr), r[: round((limit + 0.05) / dr)], limit
            )
            score, sim, near, delta = _pair_score(pn.dn, pn.peak, n_ref, ref_shells, r, spec.position_tolerance)
            bs = []
            for b_new in boot_new[pair]:
                if b_new.has_new and b_new.peak is not None:
                    bs.append(_pair_score(b_new.dn, b_new.peak, n_ref, ref_shells, r, spec.position_tolerance)[0])
                else:
                    bs.append(0.0)
            lo, hi = np.percentile(bs, [5, 95])
            cand_rows.append(
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
        rows += cand_rows
        # environment agreement of the reacting centre with the candidate's sites
        agree = None
        best = max(cand_rows, key=lambda m: m.score, default=None)
        if best is not None and best.score > 0 and env is not None:
            centre = best.pair.split("-")[0]
            partners = partners_of.get(centre, [])
            summ = env_info.get(centre) or {}
            if partners and summ.get("changed_atoms"):
                md_late = summ["changed_late_mean"]
                md_early = summ["changed_early_mean"]
                gained = {p: max(0.0, md_late.get(p, 0.0) - md_early.get(p, 0.0)) for p in partners}
                f_md = _env_fraction(gained, partners)
                sites = crystal_environments(c.structure, centre, env.elements, env.cutoffs)
                if len(sites) and f_md is not None:
                    mean_site = {el: float(sites[:, k].mean()) for k, el in enumerate(env.elements)}
                    f_c = _env_fraction(mean_site, partners)
                    agree = 0.0 if f_c is None else round(1.0 - 0.5 * float(np.abs(f_md - f_c).sum()), 2)
        total = r2(sum(m.score for m in cand_rows)) or 0.0
        if best is None:
            verdicts.append(
                CandidateVerdict(c.name, c.formula, c.spacegroup, c.source, 0.0, None, 0.0, 0.0, 0.0, None, "not seen")
            )
            continue
        verdicts.append(
            CandidateVerdict(
                c.name,
                c.formula,
                c.spacegroup,
                c.source,
                total,
                best.pair if best.score > 0 else None,
                best.score,
                best.score_lo,
                best.score_hi,
                agree,
                _verdict(best.score, best.score_lo, best.score_hi, agree, spec.threshold),
                [m.pair for m in cand_rows if m.score >= spec.threshold],
            )
        )
    for pair in res.settings.pairs:
        pr = sorted([m for m in rows if m.pair == pair], key=lambda m: (-m.score, m.candidate))
        for i, m in enumerate(pr, 1):
            m.rank = i
    rows.sort(key=lambda m: (res.settings.pairs.index(m.pair), m.rank))
    order = {v: i for i, v in enumerate(VERDICTS)}
    verdicts.sort(key=lambda v: (order[v.verdict], -v.score, v.candidate))
    for i, v in enumerate(verdicts, 1):
        v.rank = i
    return MatchResult(
        pairs,
        rows,
        verdicts,
        refs,
        notes,
        spec.threshold,
        reactants.to_dict(),
        env_info,
        electrolyte_motifs(env),
        res.info.get("id"),
    )


def _verdict(score: float, lo: float, hi: float, agree: float | None, thr: float) -> str:
    if score >= thr and lo >= FORMED_LOWER * thr and (agree is None or agree >= ENV_AGREE):
        return "formed"
    if score >= thr or hi >= thr or score >= POSSIBLE_FRACTION * thr:
        return "possible"
    return "not seen"


def electrolyte_motifs(env: Any) -> dict[str, Any]:
    """Electrolyte breakdown in words and numbers: PS4 losing S, S without P, Cl leaving its Li cage."""
    if env is None:
        return {}
    m = env.motifs()
    out: dict[str, Any] = {}
    n = len(m["times_ps"])
    if n < 2:
        return out
    k = max(1, n // 5)

    def change(series: list[float]) -> tuple[float, float]:
        return float(np.mean(series[:k])), float(np.mean(series[-k:]))

    if "PS4_intact_fraction" in m:
        a, b = change(m["PS4_intact_fraction"])
        out["PS4_intact_fraction"] = {"early": round(a, 3), "late": round(b, 3)}
        sa, sb = change(m["S_without_P"])
        out["S_without_P"] = {"early": round(sa, 2), "late": round(sb, 2)}
        if b < a - 0.05:
            out.setdefault("points_to", []).append("PS4 units lose S (P-S bonds break): P-S fragments, Li3P")
        if sb > sa + 1.0:
            out.setdefault("points_to", []).append("sulfur without P grows: sulfides (Li2S or metal sulfides)")
    if "Cl_mean_nLi" in m:
        a, b = change(m["Cl_mean_nLi"])
        out["Cl_mean_nLi"] = {"early": round(a, 2), "late": round(b, 2)}
        if b < a - 0.5:
            out.setdefault("points_to", []).append("Cl leaves its Li cage: chlorides of the metal (or LiCl)")
    return out


# --------------------------------------------------------------------------- files


def products_csv(result: MatchResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "pair",
            "candidate",
            "formula",
            "space_group",
            "source",
            "md_peak_r",
            "ref_shell_r",
            "delta_r",
            "score",
            "score_lo",
            "score_hi",
            "verdict",
            "rank",
        ]
    )

    def f(x: float | None, nd: int = 3) -> str:
        return "" if x is None else f"{x:.{nd}f}"

    for m in result.rows:
        w.writerow(
            [
                m.pair,
                m.candidate,
                m.formula,
                m.spacegroup,
                m.source,
                f(m.md_peak_r, 2),
                f(m.ref_peak_r),
                f(m.delta_r),
                f(m.score, 2),
                f(m.score_lo, 2),
                f(m.score_hi, 2),
                "",
                m.rank,
            ]
        )
    for v in result.candidates:
        w.writerow(
            [
                "overall",
                v.candidate,
                v.formula,
                v.spacegroup,
                v.source,
                "",
                "",
                "",
                f(v.score, 2),
                f(v.best_lo, 2),
                f(v.best_hi, 2),
                v.verdict,
                v.rank,
            ]
        )
    return buf.getvalue()


def write_products(result: MatchResult, folder: Path) -> dict[str, Path]:
    """products.csv, ref_rdf.npz and match.json, committed as one set (:func:`cellsim.fileio.commit_files`)."""
    from cellsim.fileio import commit_files

    arrays: dict[str, Any] = {f"{c}|{p}": v for c, d in result.references.items() for p, v in d.items()}
    npz = io.BytesIO()
    np.savez(npz, **arrays)
    doc = {
        "format": "cellsim-match",
        "analysis_id": result.analysis_id,
        "threshold": result.threshold,
        "reactants": result.reactants,
        "pairs": result.pairs,
        "notes": result.notes,
        "candidates": [asdict(c) for c in result.candidates],
        "rows": [asdict(m) for m in result.rows],
        "environments": result.environments,
        "electrolyte": result.electrolyte,
        "replicas": result.replicas,
        "rules": {
            "score": "cosine similarity of the new MD neighbour density and the candidate's broadened density over "
            "the MD peak +/- 0.6 A and the candidate's whole first sphere, x exp(-delta^2 / (2 tol^2)), delta = "
            "distance to the nearest first-sphere shell; overall = sum over pairs",
            "interval": f"5-95 % of {BOOTSTRAP} bootstrap resamples of the early and late windows",
            "verdict": f"formed: score >= threshold, interval low >= {FORMED_LOWER} x threshold, environments "
            f"agree >= {ENV_AGREE}; possible: score or interval high >= threshold, or score >= "
            f"{POSSIBLE_FRACTION} x threshold; not seen: otherwise",
        },
    }
    paths = commit_files(
        folder,
        {
            "products.csv": products_csv(result).encode(),
            "ref_rdf.npz": npz.getvalue(),
            "match.json": (json.dumps(doc, indent=2) + "\n").encode(),
        },
    )
    return {"products_csv": paths["products.csv"], "ref_rdf": paths["ref_rdf.npz"], "match_json": paths["match.json"]}


def load_match(folder: Path) -> MatchResult:
    """A :class:`MatchResult` from ``folder/match.json`` (and ref_rdf.npz)."""
    from cellsim.fileio import recover_files

    recover_files(folder)
    p = folder / "match.json"
    if not p.is_file():
        raise MatchError(f"{p}: no match yet; run `cellsim match {folder}`")
    try:
        d = json.loads(p.read_text())
    except ValueError as exc:
        raise MatchError(f"{p}: damaged ({exc}); run `cellsim match` again") from None
    if d.get("format") != "cellsim-match":
        raise MatchError(f"{p}: written by an older cellsim; run `cellsim match` again")
    refs: dict[str, dict[str, np.ndarray]] = {}
    if (folder / "ref_rdf.npz").is_file():
        with np.load(folder / "ref_rdf.npz") as z:
            for k in z.files:
                c, pair = k.split("|", 1)
                refs.setdefault(c, {})[pair] = z[k]
    return MatchResult(
        d["pairs"],
        [PairMatch(**m) for m in d["rows"]],
        [CandidateVerdict(**c) for c in d["candidates"]],
        refs,
        d["notes"],
        d["threshold"],
        d.get("reactants", {}),
        d.get("environments", {}),
        d.get("electrolyte", {}),
        d.get("analysis_id"),
        d.get("replicas", {}),
    )
