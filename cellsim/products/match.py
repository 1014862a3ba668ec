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

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.products.answer import answer_of, electrolyte_motifs
from cellsim.products.baseline import pair_changes, sample_windows, time_windows
from cellsim.products.candidates import Candidate, candidate_pool, named_candidates, uncovered_pairs
from cellsim.products.result import MatchError, MatchResult
from cellsim.products.scores import PairMatch, PairNew, radial_grid, score_candidate
from cellsim.products.verdicts import CandidateVerdict, judge_candidate, one_verdict_per_group, rank_verdicts

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from cellsim.analysis.analyze import AnalysisResult
    from cellsim.config.study import MatchSpec
    from cellsim.products.amounts import Amounts
    from cellsim.references.reactants import Reactants

# the names other modules and the package root read from here
__all__ = [
    "Candidate",
    "CandidateVerdict",
    "MatchError",
    "MatchResult",
    "PairMatch",
    "match_analysis",
    "named_candidates",
]


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

    dr, rmax = radial_grid(res.r)
    sigma = spec.sigma or 0.08 * math.sqrt(res.temperature_K / 300.0)
    notes: list[str] = []
    if len(res.window_frames) < 2:
        raise MatchError(
            f"{res.out_dir}: the analysis has one time window; matching compares early and late windows "
            f"(re-run `cellsim analyze` with a --window shorter than the run, "
            f"{res.n_frames * res.settings.dt_fs / 1000:.3f} ps)"
        )
    win = time_windows(res, spec.late_fraction, seed)
    react_structs = reactant_structures(reactants)
    thermal: dict[str, dict[str, np.ndarray]] = {}
    if reactant_md is not None and react_structs:
        thermal = reactant_md(react_structs, list(res.settings.pairs), rmax, dr)
    pairs, pair_new, boot_new = pair_changes(res, spec, reactants, react_structs, thermal, win, sigma)
    new_pairs = [p for p, d in pair_new.items() if d.has_new]
    if not new_pairs:
        notes.append("no pair gained neighbours beyond the reactants' and the first frames'")
    if candidates is None:
        run_elements = set(res.element_counts)
        candidates = candidate_pool(
            spec, reactants, react_structs, new_pairs, list(pairs), run_elements, base_dir, notes
        )
    uncovered_pairs(pairs, candidates, spec, notes)

    env = res.environments
    amounts = None
    if env is not None and len(env.times_ps) >= 2:
        from cellsim.products.amounts import product_amounts

        e_idx, l_idx = sample_windows(env.times_ps, win.early_ps, spec.late_fraction)
        amounts = product_amounts(env, candidates, react_structs, e_idx, l_idx, seed)
    rows, refs, verdicts = _judge(res, spec, candidates, pair_new, boot_new, amounts, sigma)
    result = MatchResult(
        pairs,
        rows,
        verdicts,
        refs,
        notes,
        spec.threshold,
        reactants.to_dict(),
        _centre_environments(res, spec),
        electrolyte_motifs(env),
        res.meta.id,
        amounts=amounts.to_dict() if amounts is not None else {},
    )
    if thermo is not None and react_structs:
        result.thermo = thermo(react_structs, {c.name: c.structure for c in candidates})
    result.answer = answer_of(result, res)
    if result.answer.kind == "none":
        notes.append("nothing reacted")
    return result


def _centre_environments(res: AnalysisResult, spec: MatchSpec) -> dict[str, Any]:
    """The late environments of each analysed pair's centre element (``match.json: environments``)."""
    env = res.environments
    if env is None:
        return {}
    return {
        centre: env.summary(centre, spec.late_fraction)
        for centre in dict.fromkeys([p.split("-")[0] for p in res.settings.pairs])
    }


def _judge(
    res: AnalysisResult,
    spec: MatchSpec,
    candidates: list[Candidate],
    pair_new: dict[str, PairNew],
    boot_new: dict[str, list[PairNew]],
    amounts: Amounts | None,
    sigma: float,
) -> tuple[list[PairMatch], dict[str, dict[str, np.ndarray]], list[CandidateVerdict]]:
    """Every candidate scored on every pair and judged: the rows ranked within each pair (pairs in the analysis'
    order), the candidates' reference densities, and the verdicts, one per group of look-alikes, ranked."""
    rows: list[PairMatch] = []
    refs: dict[str, dict[str, np.ndarray]] = {}
    verdicts: list[CandidateVerdict] = []
    for c in candidates:
        cand_rows, cand_refs = score_candidate(
            c, pair_new, boot_new, res.cutoffs, res.r, sigma, spec.position_tolerance
        )
        if cand_refs:
            refs[c.name] = cand_refs
        rows += cand_rows
        verdicts.append(judge_candidate(c, cand_rows, amounts, spec.threshold))
    if amounts is not None:
        one_verdict_per_group(verdicts, amounts.group_of, spec.threshold)
    for pair in res.settings.pairs:
        pr = sorted([m for m in rows if m.pair == pair], key=lambda m: (-m.score, m.candidate))
        for i, m in enumerate(pr, 1):
            m.rank = i
    rows.sort(key=lambda m: (res.settings.pairs.index(m.pair), m.rank))
    rank_verdicts(verdicts)
    return rows, refs, verdicts
