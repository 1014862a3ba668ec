"""Verdicts: *formed*, *possible* or *not seen* per candidate, from its best pair score with its interval
and, where the environments can see the candidate, the amount of atoms that resemble it (module docstring
of :mod:`cellsim.products.match`, rule 5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cellsim.products.amounts import MIN_ATOMS
from cellsim.products.baseline import BOOTSTRAP
from cellsim.products.scores import PairMatch, r2

if TYPE_CHECKING:
    from cellsim.products.amounts import Amounts
    from cellsim.products.candidates import Candidate

FORMED_LOWER = 0.8
POSSIBLE_FRACTION = 0.6
# pair scores closer than this cannot rank two candidates whose environments look alike
GROUP_SCORE_GAP = 0.1
VERDICTS = ("formed", "possible", "not seen")
# the rules as match.json states them
RULES = {
    "score": "cosine similarity of the new MD neighbour density and the candidate's broadened density over "
    "the MD peak +/- 0.6 A and the candidate's whole first sphere, x exp(-delta^2 / (2 tol^2)), delta = "
    "distance to the nearest first-sphere shell; overall = sum over pairs",
    "interval": f"5-95 % of {BOOTSTRAP} bootstrap resamples of the early and late windows",
    "verdict": f"formed: score >= threshold, interval low >= {FORMED_LOWER} x threshold and, where the "
    f"environments see the candidate, a firm amount (>= {MIN_ATOMS:g} atoms at the interval's low end); "
    f"possible: score or interval high >= threshold, or score >= {POSSIBLE_FRACTION} x threshold, or a firm "
    "amount alone; not seen: otherwise",
}


@dataclass
class CandidateVerdict:
    """One candidate's verdict: its best pair, all its pair scores summed, and the environments' amount."""

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


def pair_possible(score: float, hi: float, thr: float) -> bool:
    """The distances alone make a candidate possible: the score or its interval reaches the threshold, or the
    score is most of the way there."""
    return score >= thr or hi >= thr or score >= POSSIBLE_FRACTION * thr


def verdict_of(score: float, lo: float, hi: float, amount: dict[str, Any] | None, thr: float) -> str:
    """formed / possible / not seen from the pair score and, where the environments can see it, the amount."""
    pair_formed = score >= thr and lo >= FORMED_LOWER * thr
    possible = pair_possible(score, hi, thr)
    if amount is None:  # not countable by environments (or none sampled): the distances decide
        return "formed" if pair_formed else "possible" if possible else "not seen"
    if pair_formed and amount["firm"]:
        return "formed"
    if possible or amount["atoms"] >= MIN_ATOMS:
        return "possible"
    return "not seen"


def amount_of(amounts: Amounts | None, name: str) -> dict[str, Any] | None:
    """The amount of the group a candidate belongs to (None: the environments cannot see it)."""
    if amounts is None or name not in amounts.group_of:
        return None
    return dict(amounts.amounts.get(amounts.group_of[name]) or {}) or None


def judge_candidate(c: Candidate, rows: list[PairMatch], amounts: Amounts | None, thr: float) -> CandidateVerdict:
    """The verdict of candidate ``c`` from its pair rows and the amounts of the changed atoms."""
    # environments: the share of the counting element's reacted atoms that resemble this candidate's group
    amount = amount_of(amounts, c.name)
    agree = None
    if amount is not None:
        reacted = amounts.centres.get(amount["element"], {}).get("reacted", 0) if amounts else 0
        agree = r2(amount["atoms"] / reacted) if reacted else 0.0
    best = max(rows, key=lambda m: m.score, default=None)
    if best is None:
        verdict = verdict_of(0.0, 0.0, 0.0, amount, thr)
        return CandidateVerdict(
            c.name, c.formula, c.spacegroup, c.source, 0.0, None, 0.0, 0.0, 0.0, agree, verdict, amount=amount
        )
    return CandidateVerdict(
        c.name,
        c.formula,
        c.spacegroup,
        c.source,
        r2(sum(m.score for m in rows)) or 0.0,
        best.pair if best.score > 0 else None,
        best.score,
        best.score_lo,
        best.score_hi,
        agree,
        verdict_of(best.score, best.score_lo, best.score_hi, amount, thr),
        [m.pair for m in rows if m.score >= thr],
        amount=amount,
    )


def one_verdict_per_group(verdicts: list[CandidateVerdict], group_of: dict[str, str], thr: float) -> None:
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
            if v.verdict == "formed" and top.best_score - v.best_score > GROUP_SCORE_GAP:
                v.verdict = "possible"
            elif v.verdict == "possible" and not pair_possible(v.best_score, v.best_hi, thr):
                v.verdict = "not seen"


def rank_verdicts(verdicts: list[CandidateVerdict]) -> None:
    """Sort by verdict, then by summed score (then name), and number them from 1."""
    order = {v: i for i, v in enumerate(VERDICTS)}
    verdicts.sort(key=lambda v: (order[v.verdict], -v.score, v.candidate))
    for i, v in enumerate(verdicts, 1):
        v.rank = i
