"""The RDF peak finder's smoothing: a Gaussian with reflecting edges (np.pad's "reflect"), to the float."""

from __future__ import annotations

import numpy as np
import pytest

from cellsim.analysis.peaks import find_peaks, smooth


@pytest.mark.parametrize("n", [2, 3, 5, 9, 400])
@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.0, 3.7, 30.0])
def test_smooth_is_reflect_padded_convolution(n: int, sigma: float) -> None:
    y = np.random.default_rng(n).random(n)
    half = max(1, int(4 * sigma))
    kern = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    kern /= kern.sum()
    ref = np.convolve(np.pad(y, half, mode="reflect"), kern, mode="valid")
    assert np.array_equal(smooth(y, sigma), ref)


def test_smoothed_peak_found_where_it_is() -> None:
    r = np.linspace(0, 8, 401)
    g = np.exp(-0.5 * ((r - 2.6) / 0.1) ** 2) + 0.3 * np.exp(-0.5 * ((r - 4.1) / 0.2) ** 2)
    peaks = find_peaks(smooth(g, 2.0), 0.05)
    assert [round(float(r[i]), 2) for i, _ in peaks] == [2.6, 4.1]
