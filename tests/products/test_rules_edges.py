"""The matching rules at their edges: every threshold of the verdicts and the pair scores, just below and just
above, one outcome per assert (docs/matching.md, rules 2 and 5).

The threshold of a study is 0.5 by default; with it every boundary below is exact in binary floating point
(0.8 x 0.5 = 0.4, 0.6 x 0.5 = 0.3), so the rules' ``>=`` are pinned at the boundary itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cellsim.config.study import MatchSpec
from cellsim.products import scores, verdicts
from cellsim.products.amounts import MIN_ATOMS, Amounts
from cellsim.products.scores import PairMatch, cosine, pair_score, r2, radial_grid, shells
from cellsim.products.verdicts import (
    CandidateVerdict,
    judge_candidate,
    one_verdict_per_group,
    pair_possible,
    rank_verdicts,
    verdict_of,
)

THR = 0.5
BELOW = 1e-9  # "just below" a boundary: far above the rounding of a sum, far below any physical difference


def test_the_rules_constants() -> None:
    # docs/matching.md states these numbers (tests/core/test_docs.py compares the text); here they are pinned
    assert verdicts.FORMED_LOWER == 0.8
    assert verdicts.POSSIBLE_FRACTION == 0.6
    assert verdicts.GROUP_SCORE_GAP == 0.1
    assert MIN_ATOMS == 2.0
    assert scores.SHELL_HALF_WIDTH == 0.6
    assert scores.COMPARE_SIGMA == 0.1
    spec = MatchSpec()
    assert spec.threshold == THR
    assert spec.position_tolerance == 0.2
    assert spec.min_new == 0.05
    assert spec.min_new_fraction == 0.3
    assert spec.late_fraction == 0.34


# --- pair_possible: score >= thr, or interval high >= thr, or score >= 0.6 thr -------------------------------


def test_possible_when_the_interval_high_reaches_the_threshold() -> None:
    assert pair_possible(0.0, 0.5, THR) is True


def test_not_possible_when_the_interval_high_is_just_below() -> None:
    assert pair_possible(0.0, 0.5 - BELOW, THR) is False


def test_possible_at_six_tenths_of_the_threshold() -> None:
    assert pair_possible(0.3, 0.0, THR) is True


def test_not_possible_just_below_six_tenths() -> None:
    assert pair_possible(0.3 - BELOW, 0.0, THR) is False


def test_possible_at_the_threshold_with_a_low_interval() -> None:
    assert pair_possible(0.5, 0.0, THR) is True


# --- verdict_of without an amount: the distances decide -------------------------------------------------------


def test_formed_at_the_threshold_with_the_interval_low_at_eight_tenths() -> None:
    assert verdict_of(0.5, 0.4, 0.6, None, THR) == "formed"


def test_possible_when_the_interval_low_is_just_below_eight_tenths() -> None:
    assert verdict_of(0.5, 0.4 - BELOW, 0.6, None, THR) == "possible"


def test_possible_when_the_score_is_just_below_the_threshold() -> None:
    assert verdict_of(0.5 - BELOW, 0.45, 0.6, None, THR) == "possible"


def test_formed_needs_the_score_not_only_the_interval() -> None:
    # a high interval (hi >= thr) makes "possible", never "formed"
    assert verdict_of(0.45, 0.45, 0.9, None, THR) == "possible"


def test_not_seen_below_six_tenths_with_the_interval_below_the_threshold() -> None:
    assert verdict_of(0.3 - BELOW, 0.0, 0.5 - BELOW, None, THR) == "not seen"


def test_possible_at_six_tenths() -> None:
    assert verdict_of(0.3, 0.0, 0.4, None, THR) == "possible"


def test_possible_from_the_interval_high_alone() -> None:
    assert verdict_of(0.1, 0.0, 0.5, None, THR) == "possible"


# --- verdict_of with the environments' amount -------------------------------------------------------------------


def _amount(atoms: float, firm: bool) -> dict[str, object]:
    return {"element": "In", "atoms": atoms, "firm": firm}


def test_formed_needs_a_firm_amount_where_the_environments_see_the_candidate() -> None:
    assert verdict_of(0.5, 0.4, 0.6, _amount(2.0, True), THR) == "formed"


def test_formed_distances_with_an_amount_that_is_not_firm_are_possible() -> None:
    assert verdict_of(0.5, 0.4, 0.6, _amount(1.0, False), THR) == "possible"


def test_a_firm_amount_without_formed_distances_is_possible() -> None:
    assert verdict_of(0.5 - BELOW, 0.4, 0.6, _amount(5.0, True), THR) == "possible"


def test_an_amount_of_two_atoms_alone_makes_possible() -> None:
    assert verdict_of(0.0, 0.0, 0.0, _amount(2.0, False), THR) == "possible"


def test_an_amount_just_below_two_atoms_alone_is_not_seen() -> None:
    assert verdict_of(0.0, 0.0, 0.0, _amount(2.0 - BELOW, False), THR) == "not seen"


def test_possible_distances_with_no_atoms_stay_possible() -> None:
    assert verdict_of(0.3, 0.0, 0.0, _amount(0.0, False), THR) == "possible"


# --- judge_candidate: best pair, summed score, agreement, matched pairs ----------------------------------------


class _Cand:
    def __init__(self, name: str) -> None:
        self.name, self.formula, self.spacegroup, self.source = name, f"{name}2S3", "R-3m", "library"


def _row(pair: str, score: float, lo: float = 0.0, hi: float = 0.0, cand: str = "X") -> PairMatch:
    return PairMatch(pair, cand, cand, "P1", "test", 2.5, 2.5, 0.0, 1.0, score, lo, hi)


def test_judge_takes_the_best_pair_and_sums_the_scores() -> None:
    v = judge_candidate(_Cand("X"), [_row("In-S", 0.3, 0.2, 0.4), _row("In-Cl", 0.6, 0.45, 0.7)], None, THR)
    assert v.best_pair == "In-Cl"
    assert v.best_score == 0.6
    assert (v.best_lo, v.best_hi) == (0.45, 0.7)
    assert v.score == 0.9
    assert v.verdict == "formed"
    assert v.env_agreement is None


def test_judge_lists_the_pairs_at_or_above_the_threshold() -> None:
    rows = [_row("In-S", 0.5, 0.4, 0.6), _row("In-Cl", 0.5 - BELOW, 0.4, 0.6), _row("S-Cl", 0.9, 0.8, 1.0)]
    assert judge_candidate(_Cand("X"), rows, None, THR).pairs_matched == ["In-S", "S-Cl"]


def test_judge_names_no_best_pair_when_every_score_is_zero() -> None:
    v = judge_candidate(_Cand("X"), [_row("In-S", 0.0)], None, THR)
    assert v.best_pair is None
    assert v.verdict == "not seen"


def test_judge_without_rows_is_decided_by_the_amount() -> None:
    amounts = Amounts(["In", "S"], [], amounts={"g": {"element": "In", "atoms": 3.0, "firm": True}})
    amounts.group_of = {"X": "g"}
    amounts.centres = {"In": {"reacted": 4}}
    v = judge_candidate(_Cand("X"), [], amounts, THR)
    assert v.verdict == "possible"
    assert v.best_pair is None
    assert v.env_agreement == 0.75  # 3 of the 4 reacted In resemble it


def test_judge_agreement_is_zero_without_reacted_atoms() -> None:
    amounts = Amounts(["In", "S"], [], amounts={"g": {"element": "In", "atoms": 0.0, "firm": False}})
    amounts.group_of = {"X": "g"}
    amounts.centres = {"In": {"reacted": 0}}
    assert judge_candidate(_Cand("X"), [_row("In-S", 0.5, 0.4, 0.6)], amounts, THR).env_agreement == 0.0


def test_judge_with_a_candidate_the_environments_cannot_see_uses_the_distances() -> None:
    amounts = Amounts(["In", "S"], [], amounts={"g": {"element": "In", "atoms": 0.0, "firm": False}})
    amounts.group_of = {"Other": "g"}
    v = judge_candidate(_Cand("X"), [_row("In-S", 0.5, 0.4, 0.6)], amounts, THR)
    assert v.verdict == "formed"
    assert v.amount is None


# --- one_verdict_per_group: the best pair score keeps its verdict; the gap 0.1 ---------------------------------


def _v(name: str, best: float, verdict: str, hi: float = 0.0) -> CandidateVerdict:
    return CandidateVerdict(name, name, "P1", "test", best, "In-S", best, 0.0, hi, None, verdict)


def test_a_formed_member_within_the_gap_of_the_best_stays_formed() -> None:
    top, other = _v("A", 0.9, "formed"), _v("B", 0.8, "formed")  # gap 0.10 (as scores are rounded, 2 decimals)
    one_verdict_per_group([top, other], {"A": "g", "B": "g"}, THR)
    assert other.verdict == "formed"


def test_a_formed_member_just_beyond_the_gap_becomes_possible() -> None:
    top, other = _v("A", 0.91, "formed"), _v("B", 0.8, "formed")  # gap 0.11
    one_verdict_per_group([top, other], {"A": "g", "B": "g"}, THR)
    assert other.verdict == "possible"
    assert top.verdict == "formed"


def test_a_possible_member_only_by_the_groups_amount_becomes_not_seen() -> None:
    top, other = _v("A", 0.9, "formed"), _v("B", 0.3 - BELOW, "possible", hi=0.5 - BELOW)
    one_verdict_per_group([top, other], {"A": "g", "B": "g"}, THR)
    assert other.verdict == "not seen"


def test_a_possible_member_by_its_own_distances_stays_possible() -> None:
    top, other = _v("A", 0.9, "formed"), _v("B", 0.3, "possible")
    one_verdict_per_group([top, other], {"A": "g", "B": "g"}, THR)
    assert other.verdict == "possible"


def test_the_best_member_keeps_a_possible_verdict_from_the_amount_alone() -> None:
    top, other = _v("A", 0.2, "possible"), _v("B", 0.1, "possible")
    one_verdict_per_group([top, other], {"A": "g", "B": "g"}, THR)
    assert top.verdict == "possible"
    assert other.verdict == "not seen"


def test_a_tie_keeps_the_first_member_as_the_best() -> None:
    first, second = _v("A", 0.2, "possible"), _v("B", 0.2, "possible")
    one_verdict_per_group([first, second], {"A": "g", "B": "g"}, THR)
    assert first.verdict == "possible"
    assert second.verdict == "not seen"


def test_members_of_different_groups_do_not_demote_each_other() -> None:
    a, b = _v("A", 0.9, "formed"), _v("B", 0.6, "formed")
    one_verdict_per_group([a, b], {"A": "g", "B": "h"}, THR)
    assert b.verdict == "formed"


def test_a_candidate_in_no_group_is_left_alone() -> None:
    a, b = _v("A", 0.9, "formed"), _v("B", 0.6, "formed")
    one_verdict_per_group([a, b], {"A": "g"}, THR)
    assert b.verdict == "formed"


def test_rank_orders_by_verdict_then_summed_score_then_name() -> None:
    vs = [_v("C", 0.9, "possible"), _v("B", 0.4, "formed"), _v("A", 0.4, "formed"), _v("D", 0.1, "not seen")]
    vs[2].score = vs[1].score = 0.4
    vs[0].score, vs[3].score = 0.95, 1.0
    rank_verdicts(vs)
    assert [(v.candidate, v.rank) for v in vs] == [("A", 1), ("B", 2), ("C", 3), ("D", 4)]


# --- scores.py --------------------------------------------------------------------------------------------------

DR = 0.02
R = (np.arange(400) + 0.5) * DR  # bin centres as an analysis stores them


def _bump(r0: float, width: float = 0.05, height: float = 1.0) -> np.ndarray:
    return height * np.exp(-0.5 * ((R - r0) / width) ** 2)


def test_radial_grid_is_bin_width_and_outer_edge() -> None:
    dr, rmax = radial_grid(R)
    assert dr == pytest.approx(0.02, abs=1e-15)
    assert rmax == pytest.approx(8.0, abs=1e-12)


def test_radial_grid_of_a_single_bin_defaults_to_two_hundredths() -> None:
    assert radial_grid(np.array([1.0])) == (0.02, 1.01)


def test_r2_rounds_to_two_decimals() -> None:
    assert r2(0.456) == 0.46
    assert r2(0.454) == 0.45
    assert r2(None) is None


def test_r2_writes_zero_without_a_sign() -> None:
    # scores are >= 0; a -0.0 (0.0 x a negative) must not reach products.csv as "-0.0"
    assert math.copysign(1.0, r2(-0.0)) == 1.0  # type: ignore[arg-type]


def test_cosine_of_a_zero_vector_is_zero() -> None:
    assert cosine(np.zeros(3), np.ones(3)) == 0.0


def test_cosine_of_orthogonal_and_parallel_vectors() -> None:
    assert cosine(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == 0.0
    assert cosine(np.array([1.0, 2.0]), np.array([2.0, 4.0])) == pytest.approx(1.0, abs=1e-15)


def test_score_is_the_similarity_when_the_peak_sits_on_the_shell() -> None:
    peak = float(R[130])
    score, sim, near, delta = pair_score(_bump(peak), peak, _bump(peak), [(peak, 4.0)], R, 0.2)
    assert sim == pytest.approx(1.0, abs=1e-12)
    assert score == sim
    assert (near, delta) == (peak, 0.0)


def test_a_shell_one_tolerance_away_costs_exp_minus_a_half() -> None:
    peak, tol = float(R[130]), 0.2
    shell = peak + 0.2
    score, sim, _, delta = pair_score(_bump(peak), peak, _bump(shell), [(shell, 4.0)], R, tol)
    assert delta == pytest.approx(0.2, abs=1e-12)
    assert score / sim == pytest.approx(math.exp(-0.5), rel=1e-9)


def test_a_shell_two_tolerances_away_costs_exp_minus_two() -> None:
    peak, tol = float(R[130]), 0.1
    shell = peak - 0.2
    score, sim, _, _ = pair_score(_bump(peak), peak, _bump(shell), [(shell, 4.0)], R, tol)
    assert score / sim == pytest.approx(math.exp(-2.0), rel=1e-9)


def test_the_nearest_shell_is_the_one_closer_to_the_peak_below() -> None:
    peak = float(R[130])  # 2.61
    near = pair_score(_bump(peak), peak, _bump(peak), [(peak - 0.3, 2.0), (peak + 0.31, 2.0)], R, 0.2)[2]
    assert near == peak - 0.3


def test_the_nearest_shell_is_the_one_closer_to_the_peak_above() -> None:
    peak = float(R[130])
    near = pair_score(_bump(peak), peak, _bump(peak), [(peak - 0.3, 2.0), (peak + 0.29, 2.0)], R, 0.2)[2]
    assert near == peak + 0.29


def test_without_shells_the_reference_maximum_is_the_shell() -> None:
    peak = float(R[130])
    _, _, near, delta = pair_score(_bump(peak), peak, _bump(float(R[140])), [], R, 0.2)
    assert near == float(R[140])
    assert delta == pytest.approx(0.2, abs=1e-12)


def _spike(k: int) -> np.ndarray:
    y = np.zeros(len(R))
    y[k] = 1.0
    return y


def test_the_window_reaches_six_tenths_above_the_peak() -> None:
    # the reference holds only density 0.58 A above the MD peak: inside the window, it counts
    dn = _spike(130) + _spike(159)
    sim = pair_score(dn, float(R[130]), _spike(159), [(float(R[130]), 1.0)], R, 0.2)[1]
    assert sim > 0.5


def test_the_window_ends_just_beyond_six_tenths_above_the_peak() -> None:
    dn = _spike(130) + _spike(161)  # 0.62 A above: outside
    sim = pair_score(dn, float(R[130]), _spike(161), [(float(R[130]), 1.0)], R, 0.2)[1]
    assert sim == 0.0


def test_the_window_reaches_six_tenths_below_the_peak() -> None:
    dn = _spike(130) + _spike(101)  # 0.58 A below
    sim = pair_score(dn, float(R[130]), _spike(101), [(float(R[130]), 1.0)], R, 0.2)[1]
    assert sim > 0.5


def test_the_window_ends_just_beyond_six_tenths_below_the_peak() -> None:
    dn = _spike(130) + _spike(99)  # 0.62 A below
    sim = pair_score(dn, float(R[130]), _spike(99), [(float(R[130]), 1.0)], R, 0.2)[1]
    assert sim == 0.0


def test_the_window_spans_the_candidates_whole_first_sphere_plus_four_tenths() -> None:
    # shells 1.0 A below and above the peak widen the window to 0.4 A beyond them: 1.38 A counts, 1.42 does not
    peak = float(R[130])
    sh = [(peak - 1.0, 1.0), (peak + 1.0, 1.0)]
    inside = pair_score(_spike(130) + _spike(199), peak, _spike(199), sh, R, 0.2)[1]
    outside = pair_score(_spike(130) + _spike(201), peak, _spike(201), sh, R, 0.2)[1]
    inside_low = pair_score(_spike(130) + _spike(61), peak, _spike(61), sh, R, 0.2)[1]
    outside_low = pair_score(_spike(130) + _spike(59), peak, _spike(59), sh, R, 0.2)[1]
    assert inside > 0.5
    assert outside == 0.0
    assert inside_low > 0.5
    assert outside_low == 0.0


def test_a_narrow_first_sphere_leaves_the_window_at_six_tenths() -> None:
    # a shell 0.1 A from the peak (0.4 A beyond it is still inside +/-0.6) does not shrink the window
    peak = float(R[130])
    sh = [(peak, 1.0), (peak + 0.1, 1.0)]
    assert pair_score(_spike(130) + _spike(159), peak, _spike(159), sh, R, 0.2)[1] > 0.5
    assert pair_score(_spike(130) + _spike(101), peak, _spike(101), sh, R, 0.2)[1] > 0.5


# --- shells: bins within 0.06 A are one shell -------------------------------------------------------------------

R1 = (np.arange(800) + 0.5) * 0.01


def _raw(*ks: int, n: float = 1.0) -> np.ndarray:
    y = np.zeros(len(R1))
    for k in ks:
        y[k] += n
    return y


def test_bins_0_05_apart_are_one_shell() -> None:
    out = shells(_raw(250, 255), R1, 4.0)
    assert len(out) == 1
    assert out[0] == (round(float(R1[250] + R1[255]) / 2, 3), 2.0)


def test_bins_0_07_apart_are_two_shells() -> None:
    assert len(shells(_raw(250, 257), R1, 4.0)) == 2


def test_a_shell_is_merged_by_its_last_bin_not_its_first() -> None:
    # 2.505, 2.555, 2.605: each 0.05 from the previous, 0.10 from the first, still one shell
    assert len(shells(_raw(250, 255, 260), R1, 4.0)) == 1


def test_shells_stop_at_the_limit() -> None:
    limit = float(R1[300])
    assert len(shells(_raw(250, 300), R1, limit)) == 2
    assert len(shells(_raw(250, 301), R1, limit)) == 1


def test_a_shell_is_the_weighted_mean_position() -> None:
    raw = _raw(250) + _raw(252, n=3.0)
    assert shells(raw, R1, 4.0) == [(round(float(R1[250] + 3 * R1[252]) / 4, 3), 4.0)]


def test_empty_bins_make_no_shell() -> None:
    assert shells(_raw(250, n=1e-10), R1, 4.0) == []


# --- edges the mutation run found unpinned ------------------------------------------------------------------


def test_judge_fills_every_field_of_the_verdict() -> None:
    amounts = Amounts(["In", "S"], [], amounts={"g": {"element": "In", "atoms": 2.0, "firm": True}})
    amounts.group_of = {"X": "g"}
    amounts.centres = {"In": {"reacted": 8}}
    rows = [_row("In-S", 0.5, 0.4, 0.6), _row("In-Cl", 0.25, 0.1, 0.3)]
    v = judge_candidate(_Cand("X"), rows, amounts, THR)
    amount = {"element": "In", "atoms": 2.0, "firm": True}
    expected = CandidateVerdict("X", "X2S3", "R-3m", "library", 0.75, "In-S", 0.5, 0.4, 0.6, 0.25, "formed")
    expected.pairs_matched, expected.amount = ["In-S"], amount
    assert v == expected


def test_judge_without_rows_fills_every_field_of_the_verdict() -> None:
    amounts = Amounts(["In", "S"], [], amounts={"g": {"element": "In", "atoms": 1.0, "firm": False}})
    amounts.group_of = {"X": "g"}
    amounts.centres = {"In": {"reacted": 4}}
    v = judge_candidate(_Cand("X"), [], amounts, THR)
    expected = CandidateVerdict("X", "X2S3", "R-3m", "library", 0.0, None, 0.0, 0.0, 0.0, 0.25, "not seen")
    expected.amount = {"element": "In", "atoms": 1.0, "firm": False}
    assert v == expected


def test_judge_agreement_without_a_count_for_the_element_is_zero() -> None:
    amounts = Amounts(["In", "S"], [], amounts={"g": {"element": "In", "atoms": 1.0, "firm": False}})
    amounts.group_of = {"X": "g"}
    assert judge_candidate(_Cand("X"), [], amounts, THR).env_agreement == 0.0


def test_judge_without_rows_sums_to_zero_not_one() -> None:
    assert judge_candidate(_Cand("X"), [_row("In-S", 0.0)], None, THR).score == 0.0


def test_a_gap_of_exactly_one_tenth_keeps_formed() -> None:
    top, other = _v("A", 0.2, "formed"), _v("B", 0.1, "formed")  # 0.2 - 0.1 == 0.1 in binary too
    one_verdict_per_group([top, other], {"A": "g", "B": "g"}, THR)
    assert other.verdict == "formed"


def test_rank_puts_the_higher_score_first_within_a_verdict() -> None:
    vs = [_v("A", 0.4, "formed"), _v("B", 0.9, "formed")]
    vs[0].score, vs[1].score = 0.4, 0.9
    rank_verdicts(vs)
    assert [v.candidate for v in vs] == ["B", "A"]


def test_judge_holds_formed_distances_to_the_amount() -> None:
    amounts = Amounts(["In", "S"], [], amounts={"g": {"element": "In", "atoms": 1.0, "firm": False}})
    amounts.group_of = {"X": "g"}
    amounts.centres = {"In": {"reacted": 4}}
    assert judge_candidate(_Cand("X"), [_row("In-S", 0.5, 0.4, 0.6)], amounts, THR).verdict == "possible"
