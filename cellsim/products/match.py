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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.analysis.peaks import smooth
from cellsim.core.errors import CellsimError
from cellsim.products.amounts import MIN_ATOMS

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from cellsim.analysis.analyze import AnalysisResult
    from cellsim.config.study import MatchSpec
    from cellsim.references.reactants import Reactants

SHELL_HALF_WIDTH = 0.6
COMPARE_SIGMA = 0.1
EARLY_FRACTION = 0.05
EARLY_MAX_PS = 0.1
BOOTSTRAP = 200
FORMED_LOWER = 0.8
POSSIBLE_FRACTION = 0.6
# pair scores closer than this cannot rank two candidates whose environments look alike
GROUP_SCORE_GAP = 0.1
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
    # from the per-atom assignment (amounts.py): atoms of the counting element, interval, formula units, group
    amount: dict[str, Any] | None = None


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
    # per-atom assignment of the changed atoms (amounts.Amounts.to_dict)
    amounts: dict[str, Any] = field(default_factory=dict)
    # the one answer from all the evidence (:func:`answer_of`)
    answer: dict[str, Any] = field(default_factory=dict)
    # what the phase diagram of the engine's energies expects (:mod:`cellsim.products.thermo`)
    thermo: dict[str, Any] = field(default_factory=dict)

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


def mp_key_set() -> bool:
    import os

    return bool(os.environ.get("MP_API_KEY"))


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
    scale: float = 1.0,
    bonds_rose: bool = True,
    reactant_pair: bool = False,
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
    # per atom of the minority partner (``scale`` = N_A / min(N_A, N_B)): 21 new Li-P bonds are 0.1 per Li
    # of a Li anode but 1.3 per P, and it is the P that reacted
    # of a reactant pair (Li-S next to Li6PS5Cl) the late density holds the reactant's own bonds: the new part
    # is judged against the start's noise (``bonds_rose``), not as a fraction of them
    enough = reactant_pair or new >= spec.min_new_fraction * late_shell
    has_new = bonds_rose and new * scale >= spec.min_new and enough
    return _PairNew(dn, peak if has_new else None, new, late_shell, has_new)


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


def _pair_kind(pair: str, holders: list[str], react_structs: dict[str, Structure]) -> str:
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


def match_analysis(
    res: AnalysisResult,
    spec: MatchSpec,
    reactants: Reactants,
    candidates: list[Candidate] | None = None,
    base_dir: Path | None = None,
    seed: int = 0,
    thermo: Callable[[dict[str, Structure], dict[str, Structure]], dict[str, Any]] | None = None,
    reactant_md: Callable[[dict[str, Structure], list[str], float, float], dict[str, dict[str, np.ndarray]]]
    | None = None,
) -> MatchResult:
    """Rank candidate products for every analysed pair of an analysis (see the module docstring).

    ``thermo`` (reactant structures, candidate structures) -> the phase-diagram cross-check
    (:func:`cellsim.products.thermo.cross_check` with the engine's energies), stored beside the verdicts.
    ``reactant_md`` (reactant structures, pairs, rmax, dr) -> per reactant and pair the thermal neighbour
    density of a short NVT of the bulk reactant with the run's engine at its temperature
    (:func:`cellsim.engines.check.reactant_densities`): the reactant floor then is what the reactant
    does at T under that engine (Li of Li6PS5Cl leaving 24g), not its crystal broadened harmonically.
    """
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
    # the baseline is the start of the run only (never the diagnostics' equilibration time: a reaction that
    # drifts the energy would be swallowed into it); relaxation contacts are told from products by the
    # environments (amounts.py), not by discarding time
    run_ps = float(res.t_end[-1])
    k_early = max(1, int(np.sum(res.t_end <= max(EARLY_MAX_PS, EARLY_FRACTION * run_ps) + 1e-9)))
    k_early = min(k_early, max(1, nw - 1))
    k_late = max(1, min(nw - k_early, round(spec.late_fraction * nw)))
    early_idx = np.arange(k_early)
    late_idx = np.arange(nw - k_late, nw)
    rng = np.random.default_rng(seed)
    boot = [(rng.choice(early_idx, k_early), rng.choice(late_idx, k_late)) for _ in range(BOOTSTRAP)]

    react_structs = reactant_structures(reactants)
    thermal: dict[str, dict[str, np.ndarray]] = {}
    if reactant_md is not None and react_structs:
        thermal = reactant_md(react_structs, list(res.settings.pairs), rmax, dr)
    pairs: dict[str, dict[str, Any]] = {}
    pair_new: dict[str, _PairNew] = {}
    boot_new: dict[str, list[_PairNew]] = {}
    for pair in res.settings.pairs:
        limit = res.cutoffs[pair] + SHELL_HALF_WIDTH
        holders = [name for name, s in react_structs.items() if _raw_density(s, pair, limit, dr).sum() > 0]
        floor = None
        if holders:
            # per A atom of the whole trajectory: a reactant holding a share of the A atoms (Li6PS5Cl's Li next
            # to a Li anode) contributes that share of its density
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
            floor = smooth(floor, COMPARE_SIGMA / dr)
        n = res.n_per_atom[pair]
        a, b = pair.split("-")
        n_a, n_b = res.element_counts.get(a, 0), res.element_counts.get(b, 0)
        scale = n_a / max(1, min(n_a, n_b)) if a != b else 1.0
        ev = bond_change(res, pair)
        held = bool(holders)
        pn = _new_density(n, early_idx, late_idx, floor, r, limit, spec, dr, scale, ev["rose"], held)
        pair_new[pair] = pn
        boot_new[pair] = [_new_density(n, e, lt, floor, r, limit, spec, dr, scale, ev["rose"], held) for e, lt in boot]
        support = float(np.mean([b.has_new for b in boot_new[pair]]))
        pairs[pair] = {
            "kind": _pair_kind(pair, holders, react_structs),
            "reactants_with_pair": holders,
            "baseline": (
                (
                    "max(first windows, reactant NVT at T)"
                    if all(pair in thermal.get(h, {}) for h in holders)
                    else "max(first windows, reactant crystal broadened to T)"
                )
                if holders
                else "first windows"
            ),
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
    new_pairs = [p for p, d in pair_new.items() if d.has_new]
    if not new_pairs:
        notes.append("no pair gained neighbours beyond the reactants' and the first frames'")

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

    # pairs that changed (or could: interfacial) but have no candidate to compare with: never "not seen" for
    # phases nobody looked for
    for pair, info in pairs.items():
        holding = [c.name for c in candidates if set(pair.split("-")) <= c.elements]
        info["candidates"] = holding
        if not holding and (info["has_new"] or info["kind"] == "interfacial pair"):
            info["no_candidates"] = (
                f"no candidate phase holds {pair} (offline library"
                + (", Materials Project" if spec.use_mp and mp_key_set() else "")
                + "): nothing was looked for; set MP_API_KEY (`cellsim refs fetch "
                + "-".join(sorted(set(pair.split("-"))))
                + "`) or give candidate structures (`--candidate FILE.cif`, `match.candidates`)"
            )
            notes.append(info["no_candidates"])

    # environments of the reacting centres
    env = res.environments
    env_info: dict[str, Any] = {}
    if env is not None:
        for centre in dict.fromkeys([p.split("-")[0] for p in res.settings.pairs]):
            env_info[centre] = env.summary(centre, spec.late_fraction)

    amounts = None
    if env is not None and len(env.times_ps) >= 2:
        from cellsim.products.amounts import product_amounts

        t_early = max(EARLY_MAX_PS, EARLY_FRACTION * run_ps)
        ns = len(env.times_ps)
        e_idx = np.flatnonzero(env.times_ps <= t_early + 1e-9)
        if len(e_idx) == 0:
            e_idx = np.arange(1)
        e_idx = e_idx[: max(1, ns - 1)]
        l_idx = np.arange(max(int(e_idx[-1]) + 1, ns - max(1, round(spec.late_fraction * ns))), ns)
        amounts = product_amounts(env, candidates, react_structs, e_idx, l_idx, seed)

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
        # environments: the share of the counting element's reacted atoms that resemble this candidate's group
        amount = _amount_of(amounts, c.name)
        agree = None
        if amount is not None:
            reacted = amounts.centres.get(amount["element"], {}).get("reacted", 0) if amounts else 0
            agree = r2(amount["atoms"] / reacted) if reacted else 0.0
        best = max(cand_rows, key=lambda m: m.score, default=None)
        total = r2(sum(m.score for m in cand_rows)) or 0.0
        if best is None:
            verdicts.append(
                CandidateVerdict(
                    c.name,
                    c.formula,
                    c.spacegroup,
                    c.source,
                    0.0,
                    None,
                    0.0,
                    0.0,
                    0.0,
                    agree,
                    _verdict(0.0, 0.0, 0.0, amount, spec.threshold),
                    amount=amount,
                )
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
                _verdict(best.score, best.score_lo, best.score_hi, amount, spec.threshold),
                [m.pair for m in cand_rows if m.score >= spec.threshold],
                amount=amount,
            )
        )
    if amounts is not None:
        _one_verdict_per_group(verdicts, amounts.group_of, spec.threshold)
    for pair in res.settings.pairs:
        pr = sorted([m for m in rows if m.pair == pair], key=lambda m: (-m.score, m.candidate))
        for i, m in enumerate(pr, 1):
            m.rank = i
    rows.sort(key=lambda m: (res.settings.pairs.index(m.pair), m.rank))
    order = {v: i for i, v in enumerate(VERDICTS)}
    verdicts.sort(key=lambda v: (order[v.verdict], -v.score, v.candidate))
    for i, v in enumerate(verdicts, 1):
        v.rank = i
    result = MatchResult(
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
        amounts=amounts.to_dict() if amounts is not None else {},
    )
    if thermo is not None and react_structs:
        result.thermo = thermo(react_structs, {c.name: c.structure for c in candidates})
    result.answer = answer_of(result, res)
    if result.answer["kind"] == "none":
        notes.append("nothing reacted")
    return result


def _one_verdict_per_group(verdicts: list[CandidateVerdict], group_of: dict[str, str], thr: float) -> None:
    """Candidates whose environments look alike share one amount; the distances decide between them.

    The member with the best pair score keeps its verdict; another keeps "formed" only when its score is within
    :data:`GROUP_SCORE_GAP` of the best (then nothing separates them), and the group's amount alone makes
    only the best member "possible".
    """
    by_group: dict[str, list[CandidateVerdict]] = {}
    for v in verdicts:
        if v.candidate in group_of:
            by_group.setdefault(group_of[v.candidate], []).append(v)
    for members in by_group.values():
        top = max(members, key=lambda v: (v.best_score, v.candidate == members[0].candidate))
        for v in members:
            if v is top:
                continue
            pair_possible = _pair_possible(v.best_score, v.best_hi, thr)
            if v.verdict == "formed" and top.best_score - v.best_score > GROUP_SCORE_GAP:
                v.verdict = "possible"
            elif v.verdict == "possible" and not pair_possible:
                v.verdict = "not seen"


def _pair_possible(score: float, hi: float, thr: float) -> bool:
    """The distances alone make a candidate possible: the score or its interval reaches the threshold, or the
    score is most of the way there."""
    return score >= thr or hi >= thr or score >= POSSIBLE_FRACTION * thr


def _amount_of(amounts: Any, name: str) -> dict[str, Any] | None:
    if amounts is None or name not in amounts.group_of:
        return None
    return dict(amounts.amounts.get(amounts.group_of[name]) or {}) or None


def _verdict(score: float, lo: float, hi: float, amount: dict[str, Any] | None, thr: float) -> str:
    """formed / possible / not seen from the pair score and, where the environments can see it, the amount."""
    pair_formed = score >= thr and lo >= FORMED_LOWER * thr
    pair_possible = _pair_possible(score, hi, thr)
    if amount is None:  # not countable by environments (or none sampled): the distances decide
        return "formed" if pair_formed else "possible" if pair_possible else "not seen"
    if pair_formed and amount["firm"]:
        return "formed"
    if pair_possible or amount["atoms"] >= MIN_ATOMS:
        return "possible"
    return "not seen"


# fewer frames or windows than this cannot show a change against the start's own noise
JUDGE_MIN_FRAMES = 20
JUDGE_MIN_WINDOWS = 3
# ions that hop between sites at room temperature: their bond counts to the anions change without a reaction
MOBILE_IONS = frozenset({"Li", "Na", "K", "Ag", "Cu"})
MOTIF_LOSS = 0.05  # fraction of PS4 units lost: decomposition rather than a bond flickering past the cutoff


def _bond_text(pair: str, d: dict[str, Any]) -> str:
    b = d["bonds"]
    return f"{pair} {b['baseline_mean']:.1f} -> {b['late_mean']:.1f}"


def answer_of(result: MatchResult, res: AnalysisResult) -> dict[str, Any]:
    """One answer from all the evidence: products, new and broken bonds, lost motifs, energy, assumptions.

    Kinds: ``products`` (a candidate formed), ``reaction`` (bonds formed or broke beyond the start's noise or
    PS4 units were lost, no product formed yet), ``none`` (nothing left its noise), ``too short``. The
    sentence never says "no product formed" while the bond table shows a change: both come from the same
    bond counts (:func:`bond_change`).
    """
    run_ps = res.n_frames * res.settings.dt_fs / 1000.0
    assumptions: list[str] = []
    if res.info.get("dt_source") == "default":
        assumptions.append(f"time step assumed {res.settings.dt_fs:g} fs between frames (none given or found)")
    check = res.info.get("dt_check") or {}
    implausible = check.get("status") == "implausible"
    if implausible:
        lo, hi = ([*(check.get("implied_dt_fs") or []), None, None])[:2]
        implied = (
            f" (the atoms' moves between frames imply {lo:.3g}-{hi:.3g} fs)"
            if lo and hi
            else f" (the atoms' moves between frames imply at least {lo:.3g} fs)"
            if lo
            else ""
        )
        dt_flag = f"the time step of {res.settings.dt_fs:g} fs is implausible{implied}: times and rates are wrong"
        assumptions.append(dt_flag)
    if res.info.get("temperature_source") == "default":
        assumptions.append(f"temperature assumed {res.temperature_K:g} K (none given or found)")
    evidence: list[str] = []
    formed_bonds, broken_bonds, times = [], [], []
    for pair, d in result.pairs.items():
        b = d.get("bonds") or {}
        a, c = pair.split("-")
        if d.get("has_new") or (b.get("rose") and d.get("kind") != "reactant pair"):
            formed_bonds.append(pair)
            evidence.append(f"{_bond_text(pair, d)} bonds (+{b['change']:.1f}, noise margin {b['margin']:.1f})")
            if b.get("formation_ps") is not None:
                times.append(b["formation_ps"])
        framework = d.get("kind") == "reactant pair" and not ({a, c} & MOBILE_IONS) and a != c
        if b.get("fell") and not framework:
            why = (
                "Li/Na hopping between sites"
                if {a, c} & MOBILE_IONS
                else "the metal's own bonds: see the diagnostics"
                if a == c
                else "contacts of the interface lost, not a reaction"
            )
            evidence.append(f"{_bond_text(pair, d)} bonds fewer ({b['change']:.1f}): {why}")
        if b.get("fell") and framework:
            broken_bonds.append(pair)
            evidence.append(f"{_bond_text(pair, d)} bonds broken ({b['change']:.1f}, noise margin {b['margin']:.1f})")
            if b.get("break_ps") is not None:
                times.append(b["break_ps"])
    ps4: dict[str, float] = (result.electrolyte or {}).get("PS4_intact_fraction") or {}
    motif_lost = bool(ps4 and ps4["early"] - ps4["late"] > MOTIF_LOSS)
    diag = res.diagnostics
    unit = diag.check("PS4 integrity") if diag is not None and hasattr(diag, "check") else None
    if unit is not None:
        # the diagnostics printed beside the answer judged the same units: their verdict is the answer's
        start = diag.summary.get("PS4_intact_start")
        end = diag.summary.get("PS4_intact_end")
        motif_lost = unit.status != "ok"
        if start is not None and end is not None:
            ps4 = {"early": float(start), "late": float(end)}
    if motif_lost:
        evidence.append(f"PS4 intact {100 * ps4['early']:.0f} % -> {100 * ps4['late']:.0f} %")
    drift = getattr(diag, "summary", {}).get("potential_drift_eV_per_ps") if diag is not None else None
    drift_check = diag.check("potential energy drift") if diag is not None and hasattr(diag, "check") else None
    if drift is not None and drift < 0 and drift_check is not None and drift_check.status != "ok":
        evidence.append(f"potential energy falling {drift:+.3g} eV/ps (energy released or still relaxing)")
    th = result.thermo or {}
    if th.get("reaction") and th.get("reactants_react") is False:
        evidence.append(
            f"phase diagram ({th['source']}): no reaction between {' and '.join(th['reactants'])}"
            + "".join(f"; on its own: {x}" for x in th.get("reactant_decomposes", []))
        )
    elif th.get("reaction"):
        evidence.append(
            f"phase diagram ({th['source']}): {th['reaction']}, {th['energy_eV_per_atom']:+.3f} eV/atom"
            + ("" if th.get("exergonic") else " (no exergonic reaction: the interface is stable)")
            + "".join(f"; on its own: {x}" for x in th.get("reactant_decomposes", []))
        )
    elif th.get("skipped"):
        evidence.append(f"phase diagram: {th['skipped']}")
    formed = [c for c in result.candidates if c.verdict == "formed"]
    possible = [c for c in result.candidates if c.verdict == "possible"]
    unseen = [c.candidate for c in result.candidates if c.verdict == "not seen"]
    start = f" from {min(times):.3g} ps" if times else ""

    def amount_text(c: CandidateVerdict) -> str:
        a = c.amount or {}
        if not a:
            return c.candidate
        others = [m for m in a["members"] if m != c.candidate]
        group = f"; environments alike in {' / '.join(others)}" if others else ""
        return f"{c.candidate} (~{a['atoms']:g} {a['element']} atoms [{a['atoms_lo']:g}-{a['atoms_hi']:g}]{group})"

    if res.n_frames < JUDGE_MIN_FRAMES or len(res.window_frames) < JUDGE_MIN_WINDOWS:
        kind = "too short"
        sentence = (
            f"Too short to judge: {res.n_frames} frames ({run_ps:.3g} ps) in {len(res.window_frames)} window(s); "
            f"at least {JUDGE_MIN_FRAMES} frames in {JUDGE_MIN_WINDOWS} windows are needed to tell a change from "
            "noise, and reactions at these interfaces take 0.1-several ps"
        )
    elif formed:
        kind = "products"
        sentence = f"Reaction{start}: " + "; ".join(amount_text(c) + " formed" for c in formed)
        if possible:
            sentence += "; possible " + ", ".join(amount_text(c) for c in possible)
    elif formed_bonds or broken_bonds or motif_lost:
        kind = "reaction"
        parts = [f"{p} breaking" for p in broken_bonds] + [f"{p} forming" for p in formed_bonds]
        if motif_lost and ps4:
            parts.append(f"PS4 units lost ({100 * ps4['early']:.0f} -> {100 * ps4['late']:.0f} % intact)")
        sentence = f"Reaction in progress{start}: " + ", ".join(parts) + "; "
        sentence += (
            "products not identified yet (possible: " + ", ".join(amount_text(c) for c in possible) + ")"
            if possible
            else "products not identified yet"
        )
    else:
        kind = "none"
        sentence = (
            "No reaction seen: no bonds formed beyond the noise of the first frames, no framework bond broke and no "
            "electrolyte unit was lost"
        )
        if possible:
            sentence += "; weak, unconfirmed matches: " + ", ".join(c.candidate for c in possible)
    if unseen and kind in ("products", "reaction"):
        sentence += "; not seen: " + ", ".join(unseen)
    if implausible:
        # a verdict on times that cannot be right is no verdict: the flag leads
        sentence = f"Time step implausible: {dt_flag}. As read: " + sentence
    for group in {tuple(c.amount["members"]): c.amount for c in formed + possible if c.amount}.values():
        if len(group["members"]) > 1:
            evidence.append(
                f"{' / '.join(group['members'])}: not distinguishable by first-shell environments "
                f"({group.get('sites', '')}); their shared amount is {group['atoms']:g} {group['element']} atoms and "
                "the distances rank them"
            )
    bare = [p for p, d in result.pairs.items() if d.get("no_candidates") and p in formed_bonds + broken_bonds]
    if bare and kind in ("products", "reaction"):
        sentence += "; no candidate phase holds " + ", ".join(bare) + " (none looked for: see notes)"
    return {
        "kind": kind,
        "sentence": sentence,
        "evidence": evidence,
        "assumptions": assumptions,
        "run_ps": round(run_ps, 4),
        "formed": [c.candidate for c in formed],
        "possible": [c.candidate for c in possible],
    }


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
    """products.csv, ref_rdf.npz and match.json, committed as one set (:func:`cellsim.core.files.commit_files`)."""
    from cellsim.core.files import commit_files

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
        "amounts": result.amounts,
        "answer": result.answer,
        "thermo": result.thermo,
        "rules": {
            "score": "cosine similarity of the new MD neighbour density and the candidate's broadened density over "
            "the MD peak +/- 0.6 A and the candidate's whole first sphere, x exp(-delta^2 / (2 tol^2)), delta = "
            "distance to the nearest first-sphere shell; overall = sum over pairs",
            "interval": f"5-95 % of {BOOTSTRAP} bootstrap resamples of the early and late windows",
            "verdict": f"formed: score >= threshold, interval low >= {FORMED_LOWER} x threshold and, where the "
            f"environments see the candidate, a firm amount (>= {MIN_ATOMS:g} atoms at the interval's low end); "
            f"possible: score or interval high >= threshold, or score >= {POSSIBLE_FRACTION} x threshold, or a firm "
            "amount alone; not seen: otherwise",
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
    from cellsim.core.files import recover_files

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
        d.get("amounts", {}),
        d.get("answer", {}),
        d.get("thermo", {}),
    )
