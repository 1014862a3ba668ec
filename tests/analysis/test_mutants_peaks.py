"""Unit tests that kill the mutants `make mutate` left alive in analysis/peaks.py (the bond-event rule and the peaks).

Each test pins one rule at the edge a surviving mutant moved; docs/mutation.md lists every survivor with the test that
kills it or the argument that it is equivalent.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from cellsim.analysis.peaks import baseline_frames, peaks_report, smooth, window_peaks

R = (np.arange(400) + 0.5) * 0.01  # bin centres, 0.01 A


def _gauss(r0: float, height: float, s: float = 0.1) -> np.ndarray:
    return height * np.exp(-0.5 * ((R - r0) / s) ** 2)


def _n_at(r0: float, total: float) -> np.ndarray:
    n = np.zeros(len(R))
    n[round(r0 / 0.01 - 0.5)] = total
    return n


def _analysis() -> SimpleNamespace:
    """Three windows of 30 frames (0.01 ps each) of one pair, In-S, that grows a peak at 2.505 A in window 1."""
    nf = 90
    settings = SimpleNamespace(
        normalisation="ideal gas", dt_fs=10.0, window_ps=0.3, pairs=["In-S"], bin_width=0.01, frames_per_window=30
    )
    return SimpleNamespace(
        settings=settings,
        frame_times=(np.arange(nf) + 1) * 0.01,
        n_frames=nf,
        window_frames=[np.arange(30), np.arange(30, 60), np.arange(60, 90)],
        t_start=np.array([0.0, 0.3, 0.6]),
        t_end=np.array([0.3, 0.6, 0.9]),
        r=R,
        g={"In-S": [np.zeros(len(R)), _gauss(2.505, 3.0), _gauss(2.505, 3.0)]},
        n_per_atom={"In-S": [np.zeros(len(R)), _n_at(2.505, 3.0), _n_at(2.505, 3.0)]},
        bonds={"In-S": np.array([0] * 40 + [6] * 50)},
        cutoffs={"In-S": 3.1},
        baseline_bonds={},
    )


# --- smooth: a Gaussian of sigma bins with reflecting edges ----------------------------------------------------------


def test_a_zero_width_smoothing_returns_the_curve_itself() -> None:
    # sigma 0 is "no smoothing" (the edge of `sigma_bins <= 0`), not a kernel divided by zero
    assert smooth(np.array([0, 3, 1]), 0.0).tolist() == [0.0, 3.0, 1.0]


def test_a_flat_curve_as_short_as_the_kernel_s_half_width_stays_flat() -> None:
    # sigma 1 bin: half width 4 bins = the curve's length, the edge where the slicing reflection (which needs
    # half < len) gives way to np.pad's; reflecting edges keep a flat curve flat and its length
    assert smooth(np.full(4, 2.0), 1.0).tolist() == pytest.approx([2.0] * 4, abs=1e-12)


# --- window_peaks: nothing above zero, and the rounding of what peaks.json prints ---------------------------------


def test_a_curve_whose_top_is_exactly_zero_has_no_peak() -> None:
    # a dip below a flat zero: the smoothed curve's maximum is 0.0 exactly (the edge of `top <= 0`); the point where
    # it climbs back to zero must not count as a peak of prominence 0
    g = np.zeros(len(R))
    g[200] = -1.0
    assert window_peaks(R, g, 0.01) == []


def test_a_window_peak_is_printed_to_a_tenth_of_a_milli_angstrom_and_five_decimals() -> None:
    # 0.05 A bins: sigma max(1, 0.8) = 1 bin; a one-bin spike keeps the kernel's centre weight
    # 1 / sum(exp(-x^2 / 2), x = -4..4) = 0.3989423 as height and prominence (zero around it); its position
    # 1.52503 A rounds to 1.525
    r = (np.arange(60) + 0.5) * 0.05 + 0.00003
    g = np.zeros(60)
    g[30] = 1.0
    assert window_peaks(r, g, 0.05) == [{"r": 1.525, "g": 0.39894, "prominence": 0.39894}]


# --- peaks_report: the windows' end times and one new peak per 0.2 A ------------------------------------------------


def test_peaks_report_window_end_times_keep_six_decimals() -> None:
    res = _analysis()
    res.t_end = np.array([0.3, 0.6000004, 0.9])
    (_, w1, _) = peaks_report(res)["pairs"]["In-S"]["windows"]
    assert w1["t_end_ps"] == 0.6


def test_new_peaks_four_tenths_apart_are_two_new_peaks() -> None:
    # window 1 grows a peak at 2.505 A, window 2 another at 2.905 A: 0.4 A apart they fall in different 0.2 A
    # slots (13 and 15), so each is listed with the window it first appeared in
    res = _analysis()
    res.g["In-S"][2] = _gauss(2.505, 3.0) + _gauss(2.905, 3.0)
    res.n_per_atom["In-S"][2] = _n_at(2.505, 3.0) + _n_at(2.905, 3.0)
    seen = [(p["r"], p["first_window"]) for p in peaks_report(res)["pairs"]["In-S"]["new_peak_first_seen"]]
    assert seen == [(2.505, 1), (2.905, 2)]


# --- baseline_frames: 0.2 ps in frames -----------------------------------------------------------------------------


def test_baseline_of_a_one_femtosecond_step_is_two_hundred_frames() -> None:
    # 0.2 ps at 1 fs per frame, with a window (1000) and a tenth of the run (1000) that do not bind
    res = SimpleNamespace(settings=SimpleNamespace(dt_fs=1.0, frames_per_window=1000), n_frames=10_000)
    assert baseline_frames(res) == 200
