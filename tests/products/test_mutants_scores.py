"""Unit tests that kill the mutants `make mutate` left alive in products/scores.py and products/verdicts.py.

Each test pins one rule at the edge a surviving mutant moved; docs/mutation.md lists every survivor with the test that
kills it or the argument that it is equivalent.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from cellsim.products.candidates import Candidate
from cellsim.products.scores import (
    SHELL_HALF_WIDTH,
    PairMatch,
    PairNew,
    pair_score,
    raw_density,
    reference_density,
    score_candidate,
    shells,
)
from cellsim.products.verdicts import judge_candidate

DR = 0.02
R = (np.arange(250) + 0.5) * DR  # bin centres to 5 A
R1 = (np.arange(800) + 0.5) * 0.01  # finer bins for the shells
A = 3.01  # CsCl-type InS: In-S 8 x a sqrt(3)/2 = 2.6067 A (bin 130 of R, centre 2.61 A)


def _cscl() -> Structure:
    return Structure(Lattice.cubic(A), ["In", "S"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _cand() -> Candidate:
    return Candidate.of("InS-cP2", "InS", "Pm-3m", "test", _cscl())


def _pn(dn: np.ndarray, peak: float | None, has_new: bool = True) -> PairNew:
    return PairNew(dn, peak, float(dn.sum()), float(dn.sum()), has_new)


def _row(boot: list[PairNew], pn: PairNew, r: np.ndarray = R, cutoff: float = 3.0) -> PairMatch:
    (row,), _ = score_candidate(_cand(), {"In-S": pn}, {"In-S": boot}, {"In-S": cutoff}, r, 0.1, 0.1)
    return row


def _raw(*ks: int, n: float = 1.0) -> np.ndarray:
    y = np.zeros(len(R1))
    for k in ks:
        y[k] += n
    return y


# --- raw_density: a crystal without the pair's elements ------------------------------------------------------------


def test_a_crystal_without_the_pair_s_b_element_is_zero_at_any_reach() -> None:
    # no Cl in InS: no In-Cl neighbours however far one looks, without the image scan a 3 A cell would refuse
    # at 200 A (2.35e6 image vectors); an empty element, not only two, is enough to stop there
    assert raw_density(_cscl(), "In-Cl", 200.0, DR).tolist() == [0.0] * 10_000


# --- pair_score: the comparison window's edges are inclusive -------------------------------------------------------


def test_the_window_includes_its_lower_edge_six_tenths_below_the_peak() -> None:
    # three bins: 0.6 A below the peak, the peak, 0.6 A above; the reference peaks at the peak (delta 0, so the
    # score is the similarity); the bin at the lower edge counts: cos([1, 1, 0], [1, 2, 0]) = 3 / sqrt(10)
    peak = 2.6
    r = np.array([peak - SHELL_HALF_WIDTH, peak, peak + SHELL_HALF_WIDTH])
    sim = pair_score(np.array([1.0, 1.0, 0.0]), peak, np.array([1.0, 2.0, 0.0]), [], r, 0.2)[1]
    assert sim == pytest.approx(3 / math.sqrt(10), abs=1e-12)


def test_the_window_includes_its_upper_edge_six_tenths_above_the_peak() -> None:
    peak = 2.6
    r = np.array([peak - SHELL_HALF_WIDTH, peak, peak + SHELL_HALF_WIDTH])
    sim = pair_score(np.array([0.0, 1.0, 1.0]), peak, np.array([0.0, 2.0, 1.0]), [], r, 0.2)[1]
    assert sim == pytest.approx(3 / math.sqrt(10), abs=1e-12)


# --- score_candidate: the interval's percentiles and the rounding of products.csv ----------------------------------


def test_the_interval_low_is_the_fifth_percentile() -> None:
    # 21 resamples, 2 without new bonds (0) and 19 like the run (1): numpy's 5 % point is the sorted
    # resamples' index 0.05 x 20 = 1, the second zero (the 6 % point would be 0.2 of the way to a one)
    ref = reference_density(_cscl(), "In-S", 5.0, DR, 0.1)
    boot = [_pn(ref, None, has_new=False)] * 2 + [_pn(ref, 2.61)] * 19
    assert _row(boot, _pn(ref, 2.61)).score_lo == 0.0


def test_the_interval_high_is_the_ninety_fifth_percentile() -> None:
    # 21 resamples, 20 without new bonds and 1 like the run: the 95 % point is index 19, still a zero
    ref = reference_density(_cscl(), "In-S", 5.0, DR, 0.1)
    boot = [_pn(ref, None, has_new=False)] * 20 + [_pn(ref, 2.61)]
    assert _row(boot, _pn(ref, 2.61)).score_hi == 0.0


def test_the_similarity_is_written_to_three_decimals() -> None:
    # the candidate's own density cut above the peak (bin 130, 2.61 A): cosine 0.746 over the window
    ref = reference_density(_cscl(), "In-S", 5.0, DR, 0.1)
    dn = ref.copy()
    dn[131:] = 0.0
    assert _row([_pn(dn, 2.61)], _pn(dn, 2.61)).similarity == 0.746


def test_the_nearest_shell_is_written_to_three_decimals_also_without_shells() -> None:
    # 0.0125 A bins; cutoff 2.0: no shell up to 2.6 A, so the "shell" is the maximum of the candidate's density,
    # the 24 S at 4.99 A in the bin centred at 4.99375 A: written 4.994
    r = (np.arange(400) + 0.5) * 0.0125
    ref = reference_density(_cscl(), "In-S", 5.0, 0.0125, 0.1)
    assert _row([_pn(ref, 2.6)], _pn(ref, 2.6), r, cutoff=2.0).ref_peak_r == 4.994


# --- shells: the noise floor, the merge distance and the rounding --------------------------------------------------


def test_a_bin_exactly_at_the_noise_floor_is_no_shell() -> None:
    # a density counts from strictly above 1e-9 neighbours per A atom
    assert shells(_raw(250, n=1e-9), R1, 4.0) == []


def test_bins_exactly_the_merge_distance_apart_are_one_shell() -> None:
    # 0.305 and 0.365 A: their difference is 0.06 exactly in binary (in bins of 0.01 A that happens only below
    # 0.5 A: beyond, a difference of two bin centres is a multiple of 2^-53 and 0.06 is not)
    assert len(shells(_raw(30, 36), R1, 4.0)) == 1


def test_a_shell_position_is_rounded_to_three_decimals() -> None:
    # 1 neighbour at 2.505 A and 2 at 2.525 A: weighted mean 2.518333 A
    assert shells(_raw(250) + _raw(252, n=2.0), R1, 4.0)[0][0] == 2.518


def test_a_shell_s_neighbours_per_a_atom_are_rounded_to_three_decimals() -> None:
    # one B per three A atoms: 1/3 neighbour per A atom, written 0.333
    assert shells(_raw(250, n=1 / 3), R1, 4.0)[0][1] == 0.333


# --- judge_candidate: a zero threshold -------------------------------------------------------------------------------


class _Cand:
    def __init__(self, name: str) -> None:
        self.name, self.formula, self.spacegroup, self.source = name, f"{name}2S3", "R-3m", "library"


def test_at_a_zero_threshold_a_candidate_without_pair_rows_is_formed() -> None:
    # MatchSpec allows threshold 0 (ge=0): every score, and its interval low (0.0 without rows), reaches it
    assert judge_candidate(_Cand("X"), [], None, 0.0).verdict == "formed"
