"""The bond-event rule of peaks.json at its edges: ``formation_ps`` / ``break_ps`` (a running mean that leaves the
start's baseline by more than max(3 sd, 2 bonds, 10 %) and stays out for its own width), the starting baseline's
length, and ``bond_events``' first and sustained increases. One outcome per assert."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from cellsim.analysis.peaks import baseline_frames, bond_events, departure_time

DT = 0.001  # ps per frame


def _t(n: int) -> np.ndarray:
    return np.arange(n) * DT


def _dep(counts: list[float], nb: int = 10) -> dict:
    c = np.array(counts, dtype=float)
    return departure_time(_t(len(c)), c, nb)


def _step(before: float, after: float, at: int = 40, n: int = 100) -> list[float]:
    return [before] * at + [after] * (n - at)


def test_a_step_of_two_bonds_over_a_quiet_start_is_no_formation() -> None:
    assert _dep(_step(10, 12))["formation_ps"] is None


def test_a_step_of_three_bonds_forms_at_the_step() -> None:
    assert _dep(_step(10, 13))["formation_ps"] == pytest.approx(40 * DT, abs=1e-12)


def test_a_step_down_of_two_bonds_is_no_break() -> None:
    assert _dep(_step(10, 8))["break_ps"] is None


def test_a_step_down_of_three_bonds_breaks_at_the_step() -> None:
    d = _dep(_step(10, 7))
    assert d["break_ps"] == pytest.approx(40 * DT, abs=1e-12)
    assert d["formation_ps"] is None


@pytest.mark.parametrize(("start", "end"), [(c, c + s) for c in range(21) for s in (2, -2) if c + s >= 0])
def test_a_count_exactly_on_the_margin_is_inside_it(start: int, end: int) -> None:
    # "more than the margin": a plateau exactly 2 bonds away is noise, whatever the count (the running mean
    # once rounded 10 -> 8 to 7.999... and dated a break that bond_change did not see)
    d = _dep(_step(start, end))
    assert (d["formation_ps"], d["break_ps"]) == (None, None)


def test_the_margin_is_two_bonds_for_a_quiet_small_count() -> None:
    d = _dep(_step(10, 13))
    assert d["margin"] == 2.0
    assert (d["baseline_mean"], d["baseline_sd"]) == (10.0, 0.0)


def test_the_margin_is_ten_percent_of_a_large_count() -> None:
    assert _dep(_step(100, 110))["formation_ps"] is None
    assert _dep(_step(100, 111))["formation_ps"] == pytest.approx(40 * DT, abs=1e-12)
    assert _dep(_step(100, 111))["margin"] == 10.0


def test_the_margin_is_three_sd_of_a_noisy_start() -> None:
    start = [8.0, 12.0] * 5  # mean 10, sd 2: margin 6
    assert _dep(start + [16.0] * 60)["formation_ps"] is None
    assert _dep(start + [17.0] * 60)["formation_ps"] == pytest.approx(10 * DT, abs=1e-12)
    assert _dep(start + [17.0] * 60)["margin"] == 6.0


def test_a_rise_of_thirteen_frames_is_sustained() -> None:
    # the 10-frame running mean of a +3 pulse is above +2 while >= 7 of its frames are in the pulse: a pulse
    # of L frames keeps it out for L - 3 consecutive positions, and 10 are needed
    counts = [10.0] * 40 + [13.0] * 13 + [10.0] * 47
    assert _dep(counts)["formation_ps"] == pytest.approx(40 * DT, abs=1e-12)


def test_a_rise_of_twelve_frames_is_a_flicker() -> None:
    counts = [10.0] * 40 + [13.0] * 12 + [10.0] * 48
    assert _dep(counts)["formation_ps"] is None


def test_a_fall_of_twelve_frames_is_a_flicker() -> None:
    counts = [10.0] * 40 + [7.0] * 12 + [10.0] * 48
    assert _dep(counts)["break_ps"] is None


def test_a_fall_of_thirteen_frames_is_sustained() -> None:
    counts = [10.0] * 40 + [7.0] * 13 + [10.0] * 47
    assert _dep(counts)["break_ps"] == pytest.approx(40 * DT, abs=1e-12)


def test_the_time_is_the_first_frame_itself_outside() -> None:
    # a ramp: the running mean leaves first, the time is that of the first count beyond the margin (13 at 45)
    counts = [10.0] * 40 + [11.0, 11.0, 12.0, 12.0, 12.0] + [13.0] * 55
    assert _dep(counts)["formation_ps"] == pytest.approx(45 * DT, abs=1e-12)


def test_the_baseline_is_the_first_frames_only() -> None:
    # a start of 5 quiet frames, then 5 high: with a 5-frame baseline they are the rise, with 10 its noise
    counts = [10.0] * 5 + [14.0] * 95
    assert _dep(counts, nb=5)["formation_ps"] == pytest.approx(5 * DT, abs=1e-12)
    assert _dep(counts, nb=10)["formation_ps"] is None


def test_the_late_mean_is_the_last_third() -> None:
    counts = [10.0] * 66 + [16.0] * 33
    assert _dep(counts)["late_mean"] == 16.0
    assert _dep([10.0] * 65 + [16.0] * 34)["late_mean"] == 16.0
    assert _dep([10.0] * 67 + [16.0] * 32)["late_mean"] == pytest.approx(15.818, abs=1e-9)


def test_an_empty_count_has_no_events() -> None:
    assert departure_time(np.zeros(0), np.zeros(0), 10) == {"formation_ps": None, "break_ps": None}


def test_a_short_sustain_dates_a_short_step() -> None:
    counts = np.array([10.0] * 3 + [20.0] * 4)
    assert departure_time(_t(7), counts, 3, sustain_frames=2)["formation_ps"] == pytest.approx(3 * DT, abs=1e-12)


# --- the starting baseline: the first window, at most 0.2 ps and 10 % of the run, at least 5 frames -------------


def _res(dt_fs: float, per_window: int, n: int) -> SimpleNamespace:
    return SimpleNamespace(settings=SimpleNamespace(dt_fs=dt_fs, frames_per_window=per_window), n_frames=n)


def test_baseline_is_the_first_window() -> None:
    assert baseline_frames(_res(1.0, 50, 10_000)) == 50


def test_baseline_is_at_most_two_tenths_of_a_picosecond() -> None:
    assert baseline_frames(_res(2.0, 500, 10_000)) == 100


def test_baseline_is_at_most_a_tenth_of_the_run() -> None:
    assert baseline_frames(_res(1.0, 500, 300)) == 30


def test_baseline_is_at_least_five_frames() -> None:
    assert baseline_frames(_res(1.0, 500, 40)) == 5


# --- bond_events: first formation, first and sustained increase ------------------------------------------------


def test_first_formation_only_when_the_start_has_no_bond() -> None:
    e = bond_events(_t(6), np.array([0, 0, 1, 0, 2, 2]))
    assert e["first_formation_ps"] == pytest.approx(2 * DT, abs=1e-12)
    assert e["present_at_start"] is False
    assert bond_events(_t(3), np.array([1, 0, 2]))["first_formation_ps"] is None


def test_the_sustained_increase_needs_ten_frames() -> None:
    ten = bond_events(_t(40), np.array([1] * 20 + [2] * 10 + [1] * 10))
    nine = bond_events(_t(40), np.array([1] * 20 + [2] * 9 + [1] * 11))
    assert ten["sustained_increase_ps"] == pytest.approx(20 * DT, abs=1e-12)
    assert nine["sustained_increase_ps"] is None
    assert nine["first_increase_ps"] == pytest.approx(20 * DT, abs=1e-12)


def test_the_sustained_increase_needs_five_percent_of_a_long_run() -> None:
    # 400 frames: 20 needed
    twenty = bond_events(_t(400), np.array([1] * 100 + [2] * 20 + [1] * 280))
    nineteen = bond_events(_t(400), np.array([1] * 100 + [2] * 19 + [1] * 281))
    assert twenty["sustained_increase_ps"] == pytest.approx(100 * DT, abs=1e-12)
    assert nineteen["sustained_increase_ps"] is None


def test_bond_event_counts() -> None:
    e = bond_events(_t(5), np.array([2, 3, 0, 5, 4]))
    assert (e["frames"], e["initial"], e["final"], e["min"], e["max"]) == (5, 2, 4, 0, 5)
    assert bond_events(_t(0), np.zeros(0)) == {"frames": 0}


# --- edges the mutation run found unpinned --------------------------------------------------------------------


def test_the_summary_numbers_are_rounded_to_three_decimals() -> None:
    d = departure_time(_t(20), np.array([8.0, 12.0, 12.0] + [12.0] * 17), 3)
    assert (d["baseline_mean"], d["baseline_sd"], d["margin"]) == (10.667, 1.886, 5.657)


def test_the_late_mean_of_a_three_frame_run_is_its_last_frame() -> None:
    assert departure_time(_t(3), np.array([10.0, 10.0, 16.0]), 1)["late_mean"] == 16.0


def test_a_one_frame_baseline_and_a_one_frame_sustain_date_the_next_frame() -> None:
    d = departure_time(_t(4), np.array([10.0, 13.0, 10.0, 10.0]), 1, sustain_frames=1)
    assert d["formation_ps"] == pytest.approx(1 * DT, abs=1e-12)


def test_a_stretch_one_position_short_right_after_the_baseline_is_no_formation() -> None:
    # the 10-frame running mean is out at positions 10..18 only (9 of the 10 needed), starting at the baseline's end
    assert _dep([10.0] * 13 + [13.0] * 12 + [10.0] * 50)["formation_ps"] is None


def test_a_spike_inside_the_baseline_is_never_the_formation_time() -> None:
    # 20 baseline frames, the last one high (mean 11.5, margin 3 sd = 19.6): the rise is dated where the scan
    # starts, after the baseline, not at the spike the running mean already holds
    counts = [10.0] * 19 + [40.0] + [40.0] * 80
    assert _dep(counts, nb=20)["formation_ps"] == pytest.approx(20 * DT, abs=1e-12)


def test_an_isolated_frame_before_the_step_is_not_the_formation_time() -> None:
    counts = [10.0] * 32 + [13.0] + [10.0] * 7 + [13.0] * 60
    assert _dep(counts)["formation_ps"] == pytest.approx(40 * DT, abs=1e-12)


def test_a_break_is_dated_at_the_first_count_strictly_below_the_margin() -> None:
    counts = [10.0] * 40 + [8.0] * 3 + [7.0] * 57  # 8 = mean - margin: not yet outside
    assert _dep(counts)["break_ps"] == pytest.approx(43 * DT, abs=1e-12)


# pooled replicas: the per-frame count is the mean over replicas, so fractional (found by mutation testing)


def test_a_pooled_fractional_count_that_never_changes_has_no_increase() -> None:
    e = bond_events(_t(30), np.full(30, 2.5))
    assert (e["first_increase_ps"], e["sustained_increase_ps"]) == (None, None)


def test_a_pooled_half_bond_at_the_start_is_present_at_start() -> None:
    e = bond_events(_t(30), np.full(30, 0.5))
    assert (e["present_at_start"], e["first_formation_ps"]) == (True, None)


def test_a_pooled_count_is_written_to_three_decimals_and_a_whole_one_as_an_integer() -> None:
    e = bond_events(_t(3), np.array([7 / 3, 3.0, 2.0]))
    assert (e["initial"], e["final"], e["max"]) == (2.333, 2, 3)


@pytest.mark.parametrize("replicas", [2, 3, 4, 6, 7])
@pytest.mark.parametrize("step", [2, -2])
def test_a_pooled_plateau_exactly_on_the_margin_is_inside_it(replicas: int, step: int) -> None:
    # e.g. 3 replicas of 2, 2, 3 bonds all gaining 2: the mean goes 7/3 -> 13/3, exactly the 2-bond margin
    for extra in range(1, replicas):
        before = 5 + extra / replicas
        d = _dep(_step(before, before + step))
        assert (d["formation_ps"], d["break_ps"]) == (None, None), (replicas, extra)


def test_a_whole_bond_count_is_written_as_an_integer() -> None:
    # peaks.json and the report print "12 -> 15 bonds", never "12.0 -> 15.0", for one trajectory
    e = bond_events(_t(3), np.array([12.0, 15.0, 14.0]))
    assert [type(e[k]) for k in ("initial", "final", "min", "max")] == [int, int, int, int]
