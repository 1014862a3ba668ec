"""The one neighbour kernel: C and NumPy agree, and the analysis pass's shared search gives the accumulators
exactly what their own searches give."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cellsim.analysis import neighbours
from cellsim.core import _native

CELL = np.array([[9.0, 0.0, 0.0], [0.7, 9.5, 0.0], [0.4, -0.6, 10.2]])


def _frames(n: int = 6, natoms: int = 40, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    frac = rng.random((n, natoms, 3))
    kinds = rng.integers(0, 3, natoms)
    return frac, np.broadcast_to(CELL, (n, 3, 3)).copy(), kinds


def _both(
    monkeypatch: pytest.MonkeyPatch, fn: Callable[..., np.ndarray], *args: object
) -> tuple[np.ndarray, np.ndarray]:
    native = fn(*args)
    with monkeypatch.context() as m:
        m.setattr(_native, "load", lambda: None)
        numpy = fn(*args)
    return native, numpy


def test_kind_counts_native_equals_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    if _native.load() is None:
        pytest.skip("no C compiler here")
    frac, cells, kinds = _frames()
    cut = np.array(
        [[[2.5, 3.0, 0.0], [3.0, 2.0, 3.4], [0.0, 3.4, 4.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 2.9], [0.0, 0.0, 0.0]]]
    )
    for f in range(len(frac)):
        a, b = _both(monkeypatch, neighbours.kind_counts, frac[f], cells[f], kinds, cut)
        assert a.shape == (2, 40, 3) and np.array_equal(a, b)
        # table 1 counts only ligands of kind 2 around atoms of kind 1
        assert not a[1][kinds != 1].any() and not a[1][:, :2].any()
    assert a.sum() > 0


def test_neighbour_counts_native_equals_numpy_with_images(monkeypatch: pytest.MonkeyPatch) -> None:
    if _native.load() is None:
        pytest.skip("no C compiler here")
    frac, cells, kinds = _frames(n=4, natoms=12)
    small = cells * 0.45  # a cutoff beyond half the cell width: periodic images count
    idx = np.arange(12)
    for cut in (2.0, 3.9):
        a, b = _both(monkeypatch, neighbours.neighbour_counts, frac, small, idx[kinds == 0], idx, cut)
        assert np.array_equal(a, b)
    assert a.sum() > 0


def test_shared_search_gives_what_the_accumulators_count_themselves() -> None:
    """The environments and the PS4 fractions from the pass's one search equal their own searches."""
    from cellsim.analysis.accumulators import DiagnosticsFeed, EnvironmentsFeed
    from cellsim.analysis.diagnostics import DiagnosticsAccumulator
    from cellsim.analysis.driver import FrameContext, SharedNeighbours
    from cellsim.analysis.environments import EnvironmentAccumulator
    from cellsim.io.formats import SourceHeader
    from cellsim.io.xdatcar import FrameBlock
    from cellsim.testing import jitter_frames, slab_model

    sy, co, lat, base = slab_model()
    species = [s for s, c in zip(sy, co, strict=True) for _ in range(c)]
    frac = jitter_frames(base, lat, 60, seed=2) % 1.0
    cells = np.broadcast_to(lat, (len(frac), 3, 3)).copy()
    ctx = FrameContext(SourceHeader(Path("x"), species, "xdatcar"), species, 2.0)
    shared = SharedNeighbours(ctx.elements, ctx.kinds)
    env, diag = EnvironmentsFeed({"In-S": 3.0}, stride=3), DiagnosticsFeed(max_frames=20)
    for acc in (env, diag):
        acc.prepare(ctx, shared)
    own_env = EnvironmentAccumulator(species, {"In-S": 3.0}, 2.0, stride=3)
    own_diag = DiagnosticsAccumulator(species, dt_fs=2.0, max_frames=20)
    for k0 in range(0, len(frac), 16):
        block = FrameBlock(frac[k0 : k0 + 16], cells[k0 : k0 + 16], k0)
        wanted = {t: np.asarray(acc.wanted(block), dtype=np.int64) for acc in (env, diag) for t in acc.tables}
        nb = shared.count(block, wanted)
        env.update(block, nb)
        diag.update(block, nb)
        own_env.update(block.frac, block.cells, block.start)
        own_diag.update(block)
    assert env.acc is not None and diag.acc is not None
    a, b = env.acc.finish(), own_env.finish()
    assert (
        a is not None
        and b is not None
        and np.array_equal(a.counts, b.counts)
        and np.array_equal(a.times_ps, b.times_ps)
    )
    assert diag.acc._kept_index == own_diag._kept_index
    assert np.array_equal(np.array(diag.acc._kept_units), np.array(own_diag._kept_units))
    assert len(diag.acc.units) == 1  # PS4: the slab has P and S
