"""Step-displacement statistics of the time-step check: the C kernel and the NumPy fallback agree."""

from __future__ import annotations

import numpy as np
import pytest

import cellsim.analysis.timestep as timestep
from cellsim.analysis.timestep import StepDisplacements
from cellsim.core import _native

SPECIES = ["Li"] * 7 + ["P"] * 2 + ["S"] * 12 + ["Cl"] * 1 + ["In"] * 9


def _trajectory(n_frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random walk in fractional coordinates (steps up to ~0.6 of the cell: some cross the boundary) in a
    triclinic cell that changes every frame."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(scale=0.08, size=(n_frames, len(SPECIES), 3))
    frac = np.cumsum(steps, axis=0) % 1.0
    base = np.array([[9.0, 0.0, 0.0], [1.1, 9.4, 0.0], [-0.7, 0.6, 10.2]])
    cells = base[None] * (1.0 + 0.01 * rng.standard_normal((n_frames, 1, 1)))
    return frac, cells


def _feed(acc: StepDisplacements, frac: np.ndarray, cells: np.ndarray, sizes: list[int]) -> None:
    start = 0
    for size in sizes:
        acc.update(frac[start : start + size], cells[start : start + size])
        start += size


@pytest.mark.skipif(_native.load() is None, reason="no C compiler: only the NumPy path exists")
@pytest.mark.parametrize("sizes", [[1, 5, 40, 3, 1, 30], [79], [10] * 8])
def test_native_and_numpy_agree(monkeypatch: pytest.MonkeyPatch, sizes: list[int]) -> None:
    frac, cells = _trajectory(sum(sizes), seed=len(sizes))
    native = StepDisplacements(SPECIES, max_steps=16)  # small: the stride doubles several times
    _feed(native, frac, cells, sizes)
    monkeypatch.setattr(timestep._native, "load", lambda: None)
    numpy = StepDisplacements(SPECIES, max_steps=16)
    _feed(numpy, frac, cells, sizes)
    assert native.stride > 1 and native.stride == numpy.stride
    assert native._kept == numpy._kept and len(native._kept) >= 4
    a, b = np.array(native._rows), np.array(numpy._rows)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.isnan(a[0, 2]).all() and np.isfinite(a[1:]).all()  # only the very first step has no cosine
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert native.judge(2.0, 300.0, False) == numpy.judge(2.0, 300.0, False)


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_known_steps(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    """Every atom of element e moves (0.1 (e + 1), 0, 0) A per frame across the boundary: median and 95th
    percentile are that length and consecutive steps are parallel (cosine 1)."""
    if backend == "numpy":
        monkeypatch.setattr(timestep._native, "load", lambda: None)
    elif _native.load() is None:
        pytest.skip("no C compiler")
    species = ["Li"] * 4 + ["S"] * 3
    cell = np.diag([10.0, 11.0, 12.0])
    shift = np.array([0.01] * 4 + [0.02] * 3)
    x0 = np.linspace(0.9, 0.99, 7)
    frac = np.zeros((6, 7, 3))
    frac[:, :, 0] = (x0[None] + np.arange(6)[:, None] * shift[None]) % 1.0
    acc = StepDisplacements(species)
    acc.update(frac[:2], np.repeat(cell[None], 2, axis=0))
    acc.update(frac[2:], np.repeat(cell[None], 4, axis=0))
    rows = np.array(acc._rows)
    assert acc._kept == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(rows[:, 0], [[0.1, 0.2]] * 5, atol=1e-12)
    np.testing.assert_allclose(rows[:, 1], [[0.1, 0.2]] * 5, atol=1e-12)
    assert np.isnan(rows[0, 2]).all()
    np.testing.assert_allclose(rows[1:, 2], 1.0, atol=1e-12)


@pytest.mark.parametrize("backend", ["native", "numpy"])
@pytest.mark.parametrize("sizes", [[1, 5, 40, 3, 1, 30], [79], [7] * 23])
def test_known_length_starts_on_the_final_stride(
    monkeypatch: pytest.MonkeyPatch, backend: str, sizes: list[int]
) -> None:
    """Told how many steps come (the readers' index), the thinning computes only the steps it keeps, and keeps
    exactly those the doubling keeps: every step on one stride, evenly over the run."""
    if backend == "numpy":
        monkeypatch.setattr(timestep._native, "load", lambda: None)
    elif _native.load() is None:
        pytest.skip("no C compiler: only the NumPy path exists")
    frac, cells = _trajectory(sum(sizes), seed=len(sizes))
    n_steps = sum(sizes) - 1
    doubling = StepDisplacements(SPECIES, max_steps=16)
    _feed(doubling, frac, cells, sizes)
    preset = StepDisplacements(SPECIES, max_steps=16, expected_steps=n_steps)
    _feed(preset, frac, cells, sizes)
    assert doubling.stride > 1 and preset.stride == doubling.stride
    assert preset._kept == doubling._kept == list(range(0, n_steps, doubling.stride))
    # the same numbers (the NumPy path gathers a different set of steps to compute: rounding only)
    np.testing.assert_allclose(np.array(preset._rows), np.array(doubling._rows), rtol=1e-12, atol=1e-14)
    # a count that is too low only starts the doubling earlier: the same steps again
    low = StepDisplacements(SPECIES, max_steps=16, expected_steps=n_steps // 3)
    _feed(low, frac, cells, sizes)
    assert low._kept == doubling._kept


def test_start_stride() -> None:
    assert timestep.start_stride(None, 500) == 1
    assert timestep.start_stride(500, 500) == 1
    assert timestep.start_stride(501, 500) == 2
    assert timestep.start_stride(10_000, 500) == 32  # 313 frames kept; at 16 it would be 625
    assert timestep.start_stride(9_999, 2000) == 8
