"""peaks.py on small hand-made arrays: the peak finder's prominence, a window's peaks, the peaks a late window
has that the first lacks, and peaks.json as a whole (no MD: every number below is worked out in a comment)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from cellsim.analysis.peaks import bond_events, departure_time, find_peaks, new_peaks, peaks_report, window_peaks

# --- find_peaks: local maxima and their topographic prominence ---------------------------------------------------


def test_fewer_than_three_points_have_no_peak() -> None:
    assert find_peaks(np.array([0.0, 1.0]), 0.0) == []


def test_a_single_bump_is_its_own_height_above_the_ends() -> None:
    assert find_peaks(np.array([0.0, 1.0, 0.0]), 0.0) == [(1, 1.0)]


def test_a_plateau_is_one_peak_at_its_first_point() -> None:
    # mid > left and mid >= right: the first point of a flat top is the peak, the second is not
    assert find_peaks(np.array([0.0, 1.0, 1.0, 0.0]), 0.0) == [(1, 1.0)]


def test_prominence_is_the_height_above_the_higher_saddle() -> None:
    # peaks 3 (k=1), 2 (k=3), 5 (k=5); k=1: lowest to its left 0, towards the higher 5: 0.5 -> 2.5;
    # k=3: saddles 1 (left, towards 3) and 0.5 (right, towards 5) -> 2 - 1 = 1; k=5: the highest, 5 - 0
    y = np.array([0.0, 3.0, 1.0, 2.0, 0.5, 5.0, 0.0])
    assert find_peaks(y, 0.0) == [(1, 2.5), (3, 1.0), (5, 5.0)]


def test_the_minimum_prominence_is_inclusive() -> None:
    y = np.array([0.0, 3.0, 1.0, 2.0, 0.5, 5.0, 0.0])
    assert [k for k, _ in find_peaks(y, 1.0)] == [1, 3, 5]
    assert [k for k, _ in find_peaks(y, 1.0 + 1e-9)] == [1, 5]


def test_a_point_of_equal_height_is_not_higher() -> None:
    # two peaks of height 2 with a saddle of 1: neither stops the other's walk, both reach the ends (0)
    assert find_peaks(np.array([0.0, 2.0, 1.0, 2.0, 0.0]), 0.0) == [(1, 2.0), (3, 2.0)]


def test_the_walk_left_stops_at_the_nearest_higher_point() -> None:
    # k=5 (3): higher points to its left at k=1 (5) and k=3 (4); the nearest (k=3) bounds it: saddle 2 -> 1
    y = np.array([0.0, 5.0, 1.0, 4.0, 2.0, 3.0, 0.0])
    assert find_peaks(y, 0.0)[-1] == (5, 1.0)


def test_the_walk_right_stops_at_the_nearest_higher_point() -> None:
    # k=1 (3): higher points to its right at k=3 (4) and k=5 (5); the nearest (k=3) bounds it: saddle 2 -> 1
    y = np.array([0.0, 3.0, 2.0, 4.0, 1.0, 5.0, 0.0])
    assert find_peaks(y, 0.0)[0] == (1, 1.0)


# --- window_peaks: peaks of the g(r) smoothed at 0.04 A, prominence >= 10 % of the top ---------------------------

R = (np.arange(400) + 0.5) * 0.01  # bin centres, 0.01 A


def _gauss(r0: float, height: float, s: float = 0.1) -> np.ndarray:
    return height * np.exp(-0.5 * ((R - r0) / s) ** 2)


def test_a_window_s_peaks_are_where_and_as_high_as_the_smoothed_curve() -> None:
    # Gaussians of 0.1 A smoothed by 0.04 A: the height falls to 0.1 / sqrt(0.1^2 + 0.04^2) = 0.9285 of it
    peaks = window_peaks(R, _gauss(1.505, 2.0) + _gauss(2.505, 1.0), 0.01)
    assert [p["r"] for p in peaks] == [1.505, 2.505]
    assert [p["g"] for p in peaks] == pytest.approx([2.0 * 0.92848, 1.0 * 0.92848], rel=2e-4)
    assert [p["prominence"] for p in peaks] == pytest.approx([p["g"] for p in peaks], abs=1e-4)


def test_a_window_peak_at_ten_percent_of_the_top_is_kept_and_below_it_dropped() -> None:
    top = 2.0 * 0.92848
    kept = window_peaks(R, _gauss(1.505, 2.0) + _gauss(3.005, 0.1 * 2.0 * 1.001), 0.01)
    dropped = window_peaks(R, _gauss(1.505, 2.0) + _gauss(3.005, 0.1 * 2.0 * 0.999), 0.01)
    assert [p["r"] for p in kept] == [1.505, 3.005] and kept[1]["prominence"] >= 0.1 * top
    assert [p["r"] for p in dropped] == [1.505]


def test_a_window_with_nothing_above_zero_has_no_peak() -> None:
    assert window_peaks(R, np.zeros(len(R)), 0.01) == []
    assert window_peaks(R, -_gauss(2.0, 1.0), 0.01) == []


def test_the_smoothing_is_four_hundredths_of_an_angstrom_at_any_bin_width() -> None:
    # at 0.02 A bins the same 0.04 A smoothing (2 bins), not 4 bins: the same height ratio
    r = (np.arange(200) + 0.5) * 0.02
    g = 2.0 * np.exp(-0.5 * ((r - 1.51) / 0.1) ** 2)
    (peak,) = window_peaks(r, g, 0.02)
    assert peak["g"] == pytest.approx(2.0 * 0.92848, rel=2e-3)


def test_bins_wider_than_four_hundredths_are_smoothed_by_one_bin() -> None:
    # 0.05 A bins: sigma max(1, 0.8) = 1 bin; a one-bin spike of 1 keeps the kernel's centre weight 0.3990
    r = (np.arange(60) + 0.5) * 0.05
    g = np.zeros(60)
    g[30] = 1.0
    (peak,) = window_peaks(r, g, 0.05)
    assert peak["g"] == pytest.approx(1.0 / sum(math.exp(-0.5 * x * x) for x in range(-4, 5)), abs=1e-5)


# --- new_peaks: a late peak whose +/-0.2 A holds < half as many neighbours in the first window -------------------


def _n_at(r0: float, total: float) -> np.ndarray:
    n = np.zeros(len(R))
    n[round(r0 / 0.01 - 0.5)] = total
    return n


def test_a_late_peak_with_under_half_its_neighbours_at_the_start_is_new() -> None:
    late_peak = [{"r": 2.505, "g": 1.0, "prominence": 1.0}]
    out = new_peaks(R, _n_at(2.505, 1.999), _n_at(2.505, 4.0), late_peak)
    assert out == [{"r": 2.505, "g": 1.0, "prominence": 1.0, "n_first": 1.999, "n_late": 4.0}]


def test_a_late_peak_with_half_its_neighbours_at_the_start_is_not_new() -> None:
    late_peak = [{"r": 2.505, "g": 1.0, "prominence": 1.0}]
    assert new_peaks(R, _n_at(2.505, 2.0), _n_at(2.505, 4.0), late_peak) == []


def test_the_neighbourhood_is_two_tenths_either_side_inclusive() -> None:
    # bins at exactly -0.2, 0 and +0.2 A from the late peak (differences exact in binary) and one at 0.21 A
    r = np.array([-0.2, 0.0, 0.2, 0.21])
    late, peak = np.array([0.0, 4.0, 0.0, 0.0]), [{"r": 0.0, "g": 1.0, "prominence": 1.0}]
    assert new_peaks(r, np.array([4.0, 0.0, 0.0, 0.0]), late, peak) == []
    assert new_peaks(r, np.array([0.0, 0.0, 4.0, 0.0]), late, peak) == []
    assert len(new_peaks(r, np.array([0.0, 0.0, 0.0, 4.0]), late, peak)) == 1


def test_a_late_peak_without_neighbours_is_never_new() -> None:
    late_peak = [{"r": 2.505, "g": 1.0, "prominence": 1.0}]
    assert new_peaks(R, np.zeros(len(R)), np.zeros(len(R)), late_peak) == []


def test_the_neighbour_sums_are_rounded_to_five_decimals() -> None:
    late_peak = [{"r": 2.505, "g": 1.0, "prominence": 1.0}]
    (out,) = new_peaks(R, _n_at(2.505, 0.1234567), _n_at(2.505, 3.1234567), late_peak)
    assert (out["n_first"], out["n_late"]) == (0.12346, 3.12346)


# --- peaks_report: peaks.json of a two-pair, three-window analysis ---------------------------------------------


def _analysis() -> SimpleNamespace:
    """Three windows of 30 frames (0.01 ps each); In-S grows a peak at 2.505 A in window 1, P-S keeps one."""
    nf = 90
    times = (np.arange(nf) + 1) * 0.01
    in_s_bonds = np.array([0] * 40 + [6] * 50)
    p_s_bonds = np.full(nf, 8)
    g = {
        "In-S": [np.zeros(len(R)), _gauss(2.505, 3.0), _gauss(2.505, 3.0)],
        "P-S": [_gauss(2.055, 5.0)] * 3,
    }
    n = {
        "In-S": [np.zeros(len(R)), _n_at(2.505, 3.0), _n_at(2.505, 3.0)],
        "P-S": [_n_at(2.055, 4.0)] * 3,
    }
    settings = SimpleNamespace(
        normalisation="ideal gas",
        dt_fs=10.0,
        window_ps=0.3,
        pairs=["In-S", "P-S"],
        bin_width=0.01,
        frames_per_window=30,
    )
    return SimpleNamespace(
        settings=settings,
        frame_times=times,
        n_frames=nf,
        window_frames=[np.arange(30), np.arange(30, 60), np.arange(60, 90)],
        t_start=np.array([0.0, 0.3, 0.6]),
        t_end=np.array([0.3, 0.6, 0.9]),
        r=R,
        g=g,
        n_per_atom=n,
        bonds={"In-S": in_s_bonds, "P-S": p_s_bonds},
        cutoffs={"In-S": 3.1, "P-S": 2.3},
        baseline_bonds={"In-S": 2},
    )


def test_peaks_report_header_and_definitions() -> None:
    out = peaks_report(_analysis())
    assert {k: out[k] for k in ("normalisation", "dt_frame_fs", "frames", "window_ps", "windows")} == {
        "normalisation": "ideal gas",
        "dt_frame_fs": 10.0,
        "frames": 90,
        "window_ps": 0.3,
        "windows": 3,
    }
    # the file explains its own fields: the rules as the code applies them
    assert out["definitions"] == {
        "peaks": "local maxima of g(r) smoothed with a 0.04 A Gaussian, prominence >= 10 % of the maximum",
        "new_peaks": "peaks of the last window whose +/-0.2 A neighbourhood holds < 50 % as many neighbours "
        "(n_per_atom) in the first window; also listed per window against the first",
        "first_formation_ps": "first frame with a bond (d < cutoff) when the first frame has none",
        "formation_ps": "first time the bond count's running mean leaves its starting baseline upwards by more "
        "than max(3 sd, 2 bonds, 10 %) for as long as the running mean's width (peaks.departure_time)",
        "break_ps": "the same, downwards (bonds break)",
        "first_above_as_built_ps": "first frame with more bonds than the as-built interface (run directories)",
    }
    assert list(out["pairs"]) == ["In-S", "P-S"]


def test_peaks_report_lists_every_window_with_its_times_and_peaks() -> None:
    res = _analysis()
    pair = peaks_report(res)["pairs"]["In-S"]
    assert pair["bond_cutoff"] == 3.1
    assert [(w["window"], w["t_start_ps"], w["t_end_ps"]) for w in pair["windows"]] == [
        (0, 0.0, 0.3),
        (1, 0.3, 0.6),
        (2, 0.6, 0.9),
    ]
    assert [w["peaks"] for w in pair["windows"]] == [window_peaks(R, g, 0.01) for g in res.g["In-S"]]
    assert pair["windows"][0]["peaks"] == [] and [p["r"] for p in pair["windows"][1]["peaks"]] == [2.505]


def test_peaks_report_dates_a_new_peak_by_its_first_window() -> None:
    pair = peaks_report(_analysis())["pairs"]["In-S"]
    (late,) = pair["new_peaks"]
    assert (late["r"], late["n_first"], late["n_late"]) == (2.505, 0.0, 3.0)
    (first,) = pair["new_peak_first_seen"]  # windows 1 and 2 hold the same peak: its first appearance only
    assert (first["r"], first["first_window"], first["first_t_ps"]) == (2.505, 1, 0.3)


def test_peaks_report_finds_no_new_peak_in_a_pair_that_kept_its_own() -> None:
    pair = peaks_report(_analysis())["pairs"]["P-S"]
    assert pair["new_peaks"] == [] and pair["new_peak_first_seen"] == []
    assert [p["r"] for w in pair["windows"] for p in w["peaks"]] == [2.055] * 3


def test_peaks_report_bond_events_and_the_as_built_count() -> None:
    res = _analysis()
    events = peaks_report(res)["pairs"]["In-S"]["bonds"]
    times, counts = res.frame_times, res.bonds["In-S"]
    assert events == {
        **bond_events(times, counts),
        **departure_time(times, counts, 9),  # baseline: max(5, min(30 frames, 0.2 ps = 20, 90 // 10 = 9))
        "as_built": 2,
        "first_above_as_built_ps": times[40],  # frame 41, the first with 6 > 2 bonds
    }
    assert events["formation_ps"] == times[40]
    assert "as_built" not in peaks_report(res)["pairs"]["P-S"]["bonds"]


def test_peaks_report_of_one_window_has_no_new_peak() -> None:
    res = _analysis()
    res.window_frames, res.t_start, res.t_end = res.window_frames[:1], res.t_start[:1], res.t_end[:1]
    pair = peaks_report(res)["pairs"]["In-S"]
    assert pair["new_peaks"] == [] and len(pair["windows"]) == 1


def test_peaks_report_never_above_the_as_built_count() -> None:
    res = _analysis()
    res.baseline_bonds = {"In-S": 6}
    events = peaks_report(res)["pairs"]["In-S"]["bonds"]
    assert events["as_built"] == 6 and events["first_above_as_built_ps"] is None


# --- what the first mutation run of these tests left ----------------------------------------------------------------


def test_bond_events_without_an_increase_or_a_first_bond() -> None:
    times = np.arange(12) * 0.01
    flat = bond_events(times, np.full(12, 3))
    assert flat["first_increase_ps"] is None and flat["sustained_increase_ps"] is None
    none = bond_events(times, np.zeros(12))
    assert none["first_formation_ps"] is None and none["present_at_start"] is False


def test_bond_events_one_bond_at_the_start_is_present_and_one_bond_later_is_a_formation() -> None:
    times = np.arange(12) * 0.01
    assert bond_events(times, np.array([1] * 12))["present_at_start"] is True
    assert bond_events(times, np.array([0] * 5 + [1] * 7))["first_formation_ps"] == times[5]


def test_a_late_peak_with_under_one_neighbour_can_be_new() -> None:
    late_peak = [{"r": 2.505, "g": 1.0, "prominence": 1.0}]
    (out,) = new_peaks(R, np.zeros(len(R)), _n_at(2.505, 0.5), late_peak)
    assert out["n_late"] == 0.5


def test_peaks_report_of_two_windows_compares_the_second_with_the_first() -> None:
    res = _analysis()
    res.window_frames, res.t_start, res.t_end = res.window_frames[:2], res.t_start[:2], res.t_end[:2]
    assert [p["r"] for p in peaks_report(res)["pairs"]["In-S"]["new_peaks"]] == [2.505]


def test_peaks_report_keeps_two_new_peaks_apart_sorted_by_distance() -> None:
    # window 1 grows a peak at 3.505 A, window 2 another at 2.505 A: both new, each dated by its own window
    res = _analysis()
    res.g["In-S"] = [np.zeros(len(R)), _gauss(3.505, 3.0), _gauss(3.505, 3.0) + _gauss(2.505, 3.0)]
    res.n_per_atom["In-S"] = [np.zeros(len(R)), _n_at(3.505, 3.0), _n_at(3.505, 3.0) + _n_at(2.505, 3.0)]
    pair = peaks_report(res)["pairs"]["In-S"]
    seen = [(p["r"], p["first_window"]) for p in pair["new_peak_first_seen"]]
    assert seen == [(2.505, 2), (3.505, 1)]
    assert [p["r"] for p in pair["new_peaks"]] == [2.505, 3.505]


def test_peaks_report_takes_the_last_window_as_late() -> None:
    # the peak is in the last window only: new against the first
    res = _analysis()
    res.g["In-S"] = [np.zeros(len(R)), np.zeros(len(R)), _gauss(2.505, 3.0)]
    res.n_per_atom["In-S"] = [np.zeros(len(R)), np.zeros(len(R)), _n_at(2.505, 3.0)]
    assert [p["r"] for p in peaks_report(res)["pairs"]["In-S"]["new_peaks"]] == [2.505]


def test_peaks_report_times_keep_six_decimals() -> None:
    res = _analysis()
    res.t_start = np.array([0.0, 0.3000004, 0.6])
    (_, w1, _) = peaks_report(res)["pairs"]["In-S"]["windows"]
    assert w1["t_start_ps"] == 0.3
