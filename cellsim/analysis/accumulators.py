"""The accumulators of the analysis pass (:mod:`cellsim.analysis.driver`).

* :class:`RDFAccumulator`: windowed A-B distance histograms, per-frame bond counts, cell and occupied volumes,
  first and last frame (the C kernel :func:`~cellsim.analysis.rdf.pair_histogram`).
* :class:`EnvironmentsFeed`: per-atom neighbour counts by element on sampled frames
  (:class:`~cellsim.analysis.environments.EnvironmentAccumulator`), from the shared neighbour search.
* :class:`DiagnosticsFeed`: metal order, unit (PS4) integrity, step displacements
  (:class:`~cellsim.analysis.diagnostics.DiagnosticsAccumulator`), its unit counts from the same search.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.analysis.driver import Accumulator, BlockNeighbours, FrameContext, Results, SharedNeighbours
from cellsim.analysis.rdf import block_images, occupied_fraction, pair_histogram
from cellsim.core.errors import AnalysisError

if TYPE_CHECKING:
    from cellsim.analysis.diagnostics import DiagnosticsAccumulator
    from cellsim.analysis.environments import EnvironmentAccumulator
    from cellsim.analysis.result import AnalysisSettings
    from cellsim.io.xdatcar import FrameBlock


class RDFAccumulator(Accumulator):
    """Histograms per pair and time window, bonds per frame; memory: one histogram per pair and window."""

    name = "rdf"

    def __init__(self, settings: AnalysisSettings, cutoffs: dict[str, float]) -> None:
        self.s = settings
        self.cutoffs = cutoffs
        self.fpw = settings.frames_per_window
        self.nb = settings.nbins
        self.hist: dict[str, list[np.ndarray]] = {p: [] for p in settings.pairs}
        self.bonds: dict[str, list[np.ndarray]] = {p: [] for p in settings.pairs}
        self.window_frames: list[int] = []
        self.vol_sum: list[float] = []
        self.occ_sum: list[float] = []
        self.index: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {}
        self.first: tuple[np.ndarray, np.ndarray] | None = None
        self.last: tuple[np.ndarray, np.ndarray] | None = None

    def prepare(self, ctx: FrameContext, neighbours: SharedNeighbours) -> None:
        sym = np.array(ctx.species)
        hdr = ctx.header
        for p in self.s.pairs:
            a, b = p.split("-")
            ia, ib = np.flatnonzero(sym == a), np.flatnonzero(sym == b)
            missing = [x for x, idx in ((a, ia), (b, ib)) if len(idx) == 0]
            if missing:
                raise AnalysisError(
                    f"pair {p}: no {', '.join(missing)} atoms in {hdr.path} "
                    f"(elements there: {', '.join(hdr.symbols)}); elements match exactly"
                )
            self.index[p] = (ia, ib, a == b)

    def update(self, block: FrameBlock, neighbours: BlockNeighbours) -> None:
        s, fpw = self.s, self.fpw
        if self.first is None:
            self.first = (block.frac[0].copy(), block.cells[0].copy())
        # split the block at window boundaries
        k0 = 0
        while k0 < len(block):
            g_idx = block.start + k0
            w = g_idx // fpw
            k1 = min(len(block), k0 + (w + 1) * fpw - g_idx)
            while len(self.window_frames) <= w:
                self.window_frames.append(0)
                self.vol_sum.append(0.0)
                self.occ_sum.append(0.0)
                for p in s.pairs:
                    self.hist[p].append(np.zeros(self.nb, dtype=np.int64))
            frac, cells = block.frac[k0:k1], block.cells[k0:k1]
            vols = np.abs(np.linalg.det(cells))
            self.window_frames[w] += k1 - k0
            self.vol_sum[w] += float(vols.sum())
            self.occ_sum[w] += float((vols * occupied_fraction(frac)).sum())
            images = block_images(cells, s.rmax)
            for p in s.pairs:
                ia, ib, same = self.index[p]
                counts = np.zeros(k1 - k0, dtype=np.int64)
                pair_histogram(
                    frac, cells, ia, ib, same, s.rmax, s.bin_width, self.cutoffs[p], self.hist[p][w], counts, images
                )
                self.bonds[p].append(counts)
            k0 = k1
        self.last = (block.frac[-1].copy(), block.cells[-1].copy())

    def conclude(self, results: Results) -> None:
        wf = np.array(self.window_frames)
        results[self.name] = {
            "window_frames": wf,
            "volume": np.array(self.vol_sum) / wf,
            "occupied_volume": np.array(self.occ_sum) / wf,
            "hist": {p: np.array(h) for p, h in self.hist.items()},
            "bonds": {p: np.concatenate(b) for p, b in self.bonds.items()},
            "first_frame": self.first,
            "last_frame": self.last,
        }


class EnvironmentsFeed(Accumulator):
    """Sampled per-atom environments (a few samples per window to start with, thinned as the run grows)."""

    name = "environments"

    def __init__(self, bond_cutoffs: dict[str, float], stride: int) -> None:
        self.bond_cutoffs = bond_cutoffs
        self.stride = stride
        self.acc: EnvironmentAccumulator | None = None
        self.tables: Sequence[int] = []

    def prepare(self, ctx: FrameContext, neighbours: SharedNeighbours) -> None:
        from cellsim.analysis.environments import EnvironmentAccumulator

        self.acc = EnvironmentAccumulator(ctx.species, self.bond_cutoffs, ctx.dt_fs, stride=self.stride)
        self.tables = [neighbours.table(self.acc.cut)]

    def wanted(self, block: FrameBlock) -> np.ndarray:
        assert self.acc is not None
        return self.acc.wanted(block.start, len(block))

    def update(self, block: FrameBlock, neighbours: BlockNeighbours) -> None:
        assert self.acc is not None
        table = self.tables[0]
        self.acc.update(block.frac, block.cells, block.start, lambda k: neighbours.get(k, table))

    def conclude(self, results: Results) -> None:
        acc = self.acc
        results[self.name] = acc.finish() if acc is not None else None
        results["environments_note"] = acc.skipped_reason if acc is not None else None


class DiagnosticsFeed(Accumulator):
    """The diagnostics' frame part; energies and checks come after the pass (:meth:`DiagnosticsAccumulator.finish`)."""

    name = "diagnostics"

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.acc: DiagnosticsAccumulator | None = None
        self.tables: Sequence[int] = []

    def prepare(self, ctx: FrameContext, neighbours: SharedNeighbours) -> None:
        from cellsim.analysis.diagnostics import DiagnosticsAccumulator

        self.acc = DiagnosticsAccumulator(ctx.species, dt_fs=ctx.dt_fs, **self.kwargs)
        self.tables = [neighbours.table(t) for t in self.acc.unit_tables(ctx.elements)]

    def wanted(self, block: FrameBlock) -> np.ndarray:
        assert self.acc is not None
        return self.acc.wanted(len(block)) if self.tables else np.empty(0, dtype=np.int64)

    def update(self, block: FrameBlock, neighbours: BlockNeighbours) -> None:
        assert self.acc is not None
        tables = self.tables
        self.acc.update(block, lambda k, j: neighbours.get(k, tables[j]))

    def conclude(self, results: Results) -> None:
        results[self.name] = self.acc
