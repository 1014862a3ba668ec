"""One pass over the frames: a driver feeding accumulators, in the way of MDAnalysis' ``AnalysisBase``.

Every accumulator has three steps: :meth:`Accumulator.prepare` (once, when the first block tells the atoms),
:meth:`Accumulator.update` (each block of frames, in order) and :meth:`Accumulator.conclude` (once, into the
:class:`Results`). The trajectory is read once (:func:`cellsim.io.sources.iter_trajectory`, hashing each file
as it is read) and held one block at a time, so memory does not grow with the number of frames.

Neighbours are searched once per frame: accumulators register cutoff tables (:meth:`SharedNeighbours.table`)
and say which frames of a block they will sample (:meth:`Accumulator.wanted`); the driver runs one
:func:`~cellsim.analysis.neighbours.kind_counts` per wanted frame for all tables together, and every
accumulator reads its counts from the :class:`BlockNeighbours` it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.analysis.neighbours import half_width, kind_counts, neighbour_counts
from cellsim.core.errors import AnalysisError

if TYPE_CHECKING:
    from cellsim.io.sources import SegmentInfo, SourceHeader, TrajectorySource
    from cellsim.io.xdatcar import FrameBlock


@dataclass
class FrameContext:
    """What every accumulator learns before the first block: the atoms and the time between frames."""

    header: SourceHeader
    species: list[str]
    dt_fs: float

    @property
    def elements(self) -> list[str]:
        return list(dict.fromkeys(self.species))

    @property
    def kinds(self) -> np.ndarray:
        els = self.elements
        return np.array([els.index(s) for s in self.species], dtype=np.int64)


class Results(dict[str, Any]):
    """What the accumulators concluded, by name (``results.rdf``, ``results["environments"]``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class SharedNeighbours:
    """The cutoff tables of every accumulator; counted together, once per wanted frame.

    A frame some dense table (an element x element matrix, the environments') is wanted for gets one
    :func:`~cellsim.analysis.neighbours.kind_counts` over all pairs for every table at once; frames only a
    sparse table (one centre-ligand entry, a unit like PS4) is wanted for get the centre-ligand pairs alone
    (:func:`~cellsim.analysis.neighbours.neighbour_counts`, batched over the block's frames).
    """

    def __init__(self, elements: list[str], kinds: np.ndarray) -> None:
        self.elements = elements
        self.kinds = kinds
        self._tables: list[np.ndarray] = []

    def table(self, cut: np.ndarray) -> int:
        """Register an element x element cutoff table (A; 0 where no neighbour counts); returns its id."""
        cut = np.asarray(cut, dtype=float)
        n = len(self.elements)
        if cut.shape != (n, n):
            raise ValueError(f"cutoff table of shape {cut.shape}, expected {(n, n)}")
        self._tables.append(cut)
        return len(self._tables) - 1

    def _sparse(self, t: int) -> tuple[int, int, float] | None:
        nz = np.argwhere(self._tables[t] > 0)
        if len(nz) != 1:
            return None
        ci, cj = (int(x) for x in nz[0])
        return ci, cj, float(self._tables[t][ci, cj])

    def count(self, block: FrameBlock, wanted: dict[int, np.ndarray]) -> BlockNeighbours:
        """Neighbour counts of the block's frames ``wanted[t]`` (local indices) under each table ``t``."""
        out = BlockNeighbours(block.start)
        if not self._tables:
            return out
        sparse = {t: self._sparse(t) for t in wanted}
        dense = [frames for t, frames in wanted.items() if sparse[t] is None]
        # frame sets as masks over the block, not np.unique/np.setdiff1d: numpy 2.4's unique imports numpy.ma
        # (9 ms of every analysis' start-up) to ask whether a plain index array is masked
        dense_mask = np.zeros(len(block.cells), dtype=bool)
        for frames in dense:
            dense_mask[frames] = True
        full = np.flatnonzero(dense_mask).astype(np.int64)
        cut = np.array(self._tables)
        cmax = cut.reshape(len(cut), -1).max(axis=1)
        for k in full:
            cell = block.cells[k]
            # minimum image is exact for a table only below half the cell width: others are left to the
            # accumulator (periodic images)
            valid = cmax < half_width(cell)
            counts = kind_counts(block.frac[k], cell, self.kinds, cut) if valid.any() else None
            for t in range(len(cut)):
                if counts is not None and valid[t]:
                    out.counts[(int(k), t)] = counts[t]
        for t, frames in wanted.items():
            entry = sparse[t]
            if entry is None:
                continue
            want = np.zeros(len(block.cells), dtype=bool)
            want[frames] = True
            rest = np.flatnonzero(want & ~dense_mask)
            if not len(rest):
                continue
            ci, cj, c = entry
            ic, il = np.flatnonzero(self.kinds == ci), np.flatnonzero(self.kinds == cj)
            per = neighbour_counts(block.frac[rest], block.cells[rest], ic, il, c)
            m = np.zeros((len(rest), len(self.kinds), len(self.elements)), dtype=np.int64)
            m[:, ic, cj] = per
            for i, local in enumerate(rest.tolist()):
                out.counts[(local, t)] = m[i]
        return out


@dataclass
class BlockNeighbours:
    """Per-atom neighbour counts by element of the sampled frames of one block, by (local frame, table)."""

    start: int
    counts: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    def get(self, k: int, table: int) -> np.ndarray | None:
        """(natoms, nkinds) counts of local frame ``k`` under ``table``, None when not counted (or not exact)."""
        return self.counts.get((k, table))


class Accumulator:
    """Base of the accumulators fed by :func:`run_pass`; ``name`` is its entry in :class:`Results`."""

    name = "accumulator"
    tables: Sequence[int] = ()  # the shared cutoff tables it reads (set in prepare)

    def prepare(self, ctx: FrameContext, neighbours: SharedNeighbours) -> None:
        """Called once before the first block (register cutoff tables here)."""

    def wanted(self, block: FrameBlock) -> np.ndarray:
        """Local indices of the block's frames this accumulator reads neighbour counts of (a superset is fine)."""
        return np.empty(0, dtype=np.int64)

    def update(self, block: FrameBlock, neighbours: BlockNeighbours) -> None:
        """Called for each block, in order, without gaps."""

    def conclude(self, results: Results) -> None:
        """Called once after the last block: store what was accumulated in ``results[self.name]``."""


def run_pass(
    sources: Sequence[TrajectorySource],
    accumulators: Sequence[Accumulator],
    dt_fs: float,
    species: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Results:
    """Read ``sources`` once (in order, stitched by the one rule) and feed every block to every accumulator.

    Results hold each accumulator's conclusion plus ``n_frames``, ``species``, ``element_counts``,
    ``header`` and ``segments`` (one :class:`~cellsim.io.sources.SegmentInfo` per file, with its sha256).

    Raises
    ------
    AnalysisError
        No whole frame in the sources.
    """
    from cellsim.io.sources import iter_trajectory

    segments: list[SegmentInfo] = []
    ctx: FrameContext | None = None
    shared: SharedNeighbours | None = None
    n_frames = 0
    for hdr, block in iter_trajectory(sources, species, segments):
        if ctx is None:
            ctx = FrameContext(hdr, list(hdr.species), dt_fs)
            shared = SharedNeighbours(ctx.elements, ctx.kinds)
            for acc in accumulators:
                acc.prepare(ctx, shared)
        assert shared is not None
        wanted: dict[int, np.ndarray] = {}
        for acc in accumulators:
            if acc.tables:
                frames = np.asarray(acc.wanted(block), dtype=np.int64)
                for t in acc.tables:
                    wanted[t] = np.union1d(wanted[t], frames) if t in wanted else frames
        nb = shared.count(block, wanted)
        for acc in accumulators:
            acc.update(block, nb)
        n_frames += len(block)
        if progress is not None:
            progress(n_frames)
    if n_frames == 0 or ctx is None:
        raise AnalysisError(f"no whole frame in {', '.join(str(p) for p in sources)}")
    results = Results(
        n_frames=n_frames,
        species=ctx.species,
        header=ctx.header,
        element_counts={el: int(c) for el, c in zip(ctx.header.symbols, ctx.header.counts, strict=True)},
        segments=segments,
    )
    for acc in accumulators:
        acc.conclude(results)
    return results
