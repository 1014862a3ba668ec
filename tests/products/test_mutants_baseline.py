"""Unit tests that kill the mutants `make mutate` left alive in products/baseline.py (windows, floors, margins).

Each test pins one rule at the edge a surviving mutant moved; docs/mutation.md lists every survivor with the test that
kills it or the argument that it is equivalent.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
from pymatgen.core import Composition, Lattice, Structure
from test_rules_units import _res  # the same stand-in analysis (r grid R to 5 A), one copy

from cellsim.analysis.peaks import smooth
from cellsim.config.study import MatchSpec
from cellsim.products.baseline import (
    Windows,
    bond_change,
    new_density,
    pair_changes,
    pair_kind,
    reactant_floor,
    sample_windows,
    time_windows,
)
from cellsim.products.scores import COMPARE_SIGMA

DR = 0.02
R = (np.arange(250) + 0.5) * DR  # bin centres to 5 A
TOL = 1e-9  # ps: the windows' rounding tolerance on times


# --- time_windows / sample_windows: the early edge, the cap that leaves a late window ----------------------------


def _windows(t_end: list[float]) -> SimpleNamespace:
    return SimpleNamespace(window_frames=[None] * len(t_end), t_end=np.array(t_end))


def test_a_window_ending_within_the_tolerance_past_the_early_limit_is_early() -> None:
    # a run under 2 ps: early_ps = 0.1; a window ending at 0.1 ps + 1e-9 (time steps summed in floats) is early
    w = time_windows(_windows([0.05, 0.1 + TOL, 0.2, 0.3]), 0.34, 0)
    assert list(w.early) == [0, 1]


def test_windows_longer_than_the_early_span_leave_the_first_alone_as_baseline() -> None:
    # 0.5 ps windows: none ends by 0.1 ps; the first window is the baseline, never two
    w = time_windows(_windows([0.5, 1.0, 1.5, 2.0]), 0.34, 0)
    assert list(w.early) == [0]


def test_two_windows_both_early_still_leave_the_last_late() -> None:
    # both windows end by 0.1 ps: the early set is capped at nw - 1 = 1 window, so the late one is its own
    w = time_windows(_windows([0.05, 0.1]), 0.34, 0)
    assert list(w.early) == [0]


def test_all_but_the_last_window_early_keeps_them_all_early() -> None:
    # 11 windows of 0.01 ps: 10 end by 0.1 ps, the cap nw - 1 = 10 keeps all ten as baseline and window 10 late
    w = time_windows(_windows([(k + 1) * 0.01 for k in range(11)]), 0.34, 0)
    assert list(w.early) == list(range(10))


def test_a_sample_within_the_tolerance_past_the_early_limit_is_early() -> None:
    e, _ = sample_windows(np.array([0.0, 0.1 + TOL, 0.2, 0.3]), 0.1, 0.34)
    assert list(e) == [0, 1]


def test_two_early_samples_keep_the_second_late() -> None:
    # both samples are within 0.1 ps: at most ns - 1 = 1 early sample, so there is a late one to compare
    e, lt = sample_windows(np.array([0.0, 0.05]), 0.1, 0.34)
    assert (list(e), list(lt)) == ([0], [1])


def test_a_large_late_fraction_starts_after_the_early_samples() -> None:
    # samples 0..0.45 ps, early 0-2; late_fraction 0.9 asks for the last 9, which would reach back into the early
    _, lt = sample_windows(np.arange(10) * 0.05, 0.1, 0.9)
    assert list(lt) == list(range(3, 10))


# --- new_density: the clipped difference, the limit, the shell and the share, each inclusive ---------------------


def _bump(area: float, r0: float = 2.61) -> np.ndarray:
    y = np.exp(-0.5 * ((R - r0) / 0.05) ** 2)
    return area * y / y.sum()


def _new(early: np.ndarray, late: np.ndarray, floor: np.ndarray | None = None, limit: float = 4.0) -> Any:
    return new_density(np.array([early, late]), np.arange(1), np.arange(1, 2), floor, R, limit, MatchSpec(), DR)


def test_bonds_lost_in_the_shell_do_not_cancel_new_ones() -> None:
    # In-S gains 1 neighbour at 2.61 A and loses 0.5 at 3.01 A (inside the +/-0.6 A shell): the loss takes nothing
    # off the gain (0.95 new: only where the two smoothed shells overlap is the gain smaller), where a signed
    # difference would leave 0.5
    pn = _new(_bump(0.5, 3.01), _bump(1.0))
    assert pn.new > 0.9


def test_the_new_density_curve_is_never_negative() -> None:
    # the curve the candidates are scored against is late minus baseline clipped at zero: lost bonds are no density
    pn = _new(_bump(0.5, 3.01), _bump(1.0))
    assert float(pn.dn.min()) == 0.0


def test_a_peak_exactly_at_the_limit_is_inside() -> None:
    # the limit (cutoff + half a shell) is inclusive: a new peak centred on it is found there, not one bin short
    z = np.zeros(len(R))
    pn = _new(z, _bump(1.0, float(R[130])), limit=float(R[130]))
    assert pn.peak == float(R[130])


def test_a_bin_exactly_six_tenths_from_the_peak_is_in_the_shell() -> None:
    # an O-H shell: new density only in the bins at 0.95 A (1.0 per bin) and 1.55 A (0.75), 0.6 A apart exactly;
    # the floor (not smoothed by new_density) hides every other bin. The shell's edge is inclusive: 1.75 new
    z = np.zeros(len(R))
    floor = np.full(len(R), 10.0)
    floor[47], floor[77] = 0.0, 0.25
    assert R[77] - R[47] == 0.6  # the edge is hit exactly, not missed by a rounding
    pn = _new(z, np.ones(len(R)), floor=floor)
    assert pn.new == 1.75


def test_exactly_three_tenths_of_the_late_shell_is_enough() -> None:
    # early 0.7, late 1.0 neighbours: new is exactly min_new_fraction (0.3) of the late shell, and that is new
    assert _new(_bump(0.7), _bump(1.0)).has_new is True


# --- bond_change: the change is reported to one decimal ------------------------------------------------------------


def test_the_bond_change_is_reported_to_one_decimal() -> None:
    # a quiet start of 10 bonds; the last third (25 frames) averages (12 x 12 + 13 x 13) / 25 = 12.52: +2.5
    counts = np.array([10.0] * 50 + [12.0] * 12 + [13.0] * 13)
    res = SimpleNamespace(
        bonds={"In-S": counts},
        frame_times=np.arange(len(counts)) * 0.001,
        settings=SimpleNamespace(dt_fs=1.0, frames_per_window=10),
        n_frames=len(counts),
    )
    assert bond_change(res, "In-S")["change"] == 2.5


# --- pair_kind / reactant_floor -------------------------------------------------------------------------------------


def test_a_reactant_of_exactly_the_pairs_two_elements_without_the_bond_is_not_interfacial() -> None:
    # In-Cl, with InCl among the reactants but no In-Cl within the cutoff there: the pair is in a reactant's
    # composition (subset, not proper subset), so it is "not bonded in the reactants", not an interface
    assert pair_kind("In-Cl", [], {"InCl": SimpleNamespace(composition=Composition("InCl"))}) == (
        "not bonded in the reactants"
    )


def test_a_reactant_of_unknown_amount_floors_with_its_whole_density() -> None:
    # InS holds In-S but the reactants give no amount for it: share 1 (the whole thermal density), not 1 unit of
    # 8 In (1/8)
    res = SimpleNamespace(r=R, element_counts={"In": 8, "S": 8})
    thermal = _bump(8.0)
    structs = {"InS": SimpleNamespace(composition=Composition("InS"))}
    floor = reactant_floor(res, "In-S", ["InS"], SimpleNamespace(phases={}), structs, {"InS": {"In-S": thermal}}, 0.1)
    assert np.allclose(floor, smooth(thermal, COMPARE_SIGMA / DR), rtol=0.0, atol=1e-12)


# --- pair_changes: the pairs table of match.json ----------------------------------------------------------------------


def _delta(r0: float, total: float) -> np.ndarray:
    """``total`` neighbours in the one bin at ``r0``."""
    out = np.zeros(len(R))
    out[int(r0 / DR)] = total
    return out


ROSE = np.array([0.0] * 30 + [16.0] * 30)  # a bond count that rose (0 -> 16)
EARLY, LATE = np.arange(2), np.arange(4, 6)


def _in_s(early: float, late: float, boot: list[tuple[np.ndarray, np.ndarray]] | None = None) -> Any:
    """8 In, 4 S; six windows, In-S holds ``early`` neighbours per In at 2.61 A in windows 0-3, ``late`` in 4-5."""
    n = np.array([_delta(2.61, early)] * 4 + [_delta(2.61, late)] * 2)
    res = _res(["In-S"], {"In": 8, "S": 4}, {"In-S": n}, {"In-S": ROSE})
    win = Windows(EARLY, LATE, boot or [(EARLY, LATE)], 0.1)
    pairs, _, _ = pair_changes(res, MatchSpec(), SimpleNamespace(phases={}), {}, {}, win, 0.1)
    return pairs["In-S"]


def test_match_json_gives_the_new_density_to_three_decimals() -> None:
    # 0.2 -> 0.3234 neighbours per In: 0.1234 new, 0.2468 per S (the minority, 8 In / 4 S), 0.1234 / 0.3234 = 0.3816
    row = _in_s(0.2, 0.3234)
    assert (row["new"], row["new_per_minority_atom"], row["new_fraction"]) == (0.123, 0.247, 0.382)


def test_match_json_gives_the_bootstrap_support_to_two_decimals() -> None:
    # three resamples, two of them with the late windows that hold the new bonds: support 2/3
    boot = [(EARLY, LATE), (EARLY, LATE), (EARLY, np.arange(2, 4))]
    assert _in_s(0.0, 1.0, boot)["bootstrap_support"] == 0.67


def _li_s() -> Any:
    """2 Li, 4 S, with a CsCl-type LiS reactant (8 S per Li at 2.61 A, 2 units: all the Li). Li-S holds the
    crystal's 8 neighbours per Li from the start and 9 in the last windows; its bond count rose 8 -> 16."""
    n = np.array([_delta(2.61, 8.0)] * 4 + [_delta(2.61, 9.0)] * 2)
    res = _res(["Li-S"], {"Li": 2, "S": 4}, {"Li-S": n}, {"Li-S": np.array([8.0] * 30 + [16.0] * 30)})
    lis = Structure(Lattice.cubic(3.01), ["Li", "S"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    win = Windows(EARLY, LATE, [(EARLY, LATE)] * 4, 0.1)
    pairs, _, _ = pair_changes(res, MatchSpec(), SimpleNamespace(phases={"LiS": 2.0}), {"LiS": lis}, {}, win, 0.1)
    return pairs["Li-S"]


def test_a_reactant_pair_that_rose_has_new_bonds_under_three_tenths_of_its_shell() -> None:
    # 1 new of 9 late neighbours is far under the 0.3 share, but a reactant pair is judged by its bond count's rise
    assert _li_s()["has_new"] is True


def test_the_resamples_of_a_reactant_pair_are_judged_as_a_reactant_pair() -> None:
    # every resample takes the same late windows, and each is held to the reactant pair's rule, not the 0.3 share
    assert _li_s()["bootstrap_support"] == 1.0


def test_a_reactant_with_under_one_b_neighbour_per_a_atom_holds_the_pair() -> None:
    # Li-Cl: of two Li only one has a Cl within the limit (2.4 A; the other is 5.1 A away): 0.5 Cl per Li, as in an
    # argyrodite with 6 Li per Cl. Any neighbour within the limit makes the reactant a holder
    s = Structure(Lattice.cubic(7.0), ["Li", "Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [2.4 / 7.0, 0, 0]])
    n = np.zeros((6, len(R)))
    res = _res(["Li-Cl"], {"Li": 2, "Cl": 1}, {"Li-Cl": n}, {"Li-Cl": np.full(60, 1.0)})
    win = Windows(EARLY, LATE, [(EARLY, LATE)], 0.1)
    pairs, _, _ = pair_changes(res, MatchSpec(), SimpleNamespace(phases={"Li2Cl": 1.0}), {"Li2Cl": s}, {}, win, 0.1)
    assert pairs["Li-Cl"]["reactants_with_pair"] == ["Li2Cl"]
