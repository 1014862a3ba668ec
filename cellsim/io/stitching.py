"""The one stitching rule for segments of one trajectory (:class:`SegmentJoiner`), used by the XDATCAR segment
reader (:func:`iter_segments`), by :func:`cellsim.io.sources.iter_trajectory` and so by ``cellsim stitch`` and
``cellsim analyze RUN`` alike."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cellsim.io.xdatcar import (
    FrameBlock,
    TrajectoryError,
    TruncatedTrajectoryWarning,
    XdatcarHeader,
    iter_frames,
    read_header,
)

# the one stitching rule (iter_segments here, cellsim.io.sources.iter_trajectory): a segment's first
# frame within this distance (A, largest atom displacement, minimum image) of the previous segment's last
# frame repeats it (a restart that wrote its starting configuration) and is dropped. XDATCAR stores 8
# decimals of fractional coordinates (~1e-7 A); one MD step moves the fastest atom ~1e-2 A.
REPEAT_TOL_A = 1e-4


def boundary_jump(prev_last: np.ndarray, first: np.ndarray, cell: np.ndarray) -> float:
    """Largest atom displacement (A, minimum image in ``cell``) from ``prev_last`` to ``first`` (fractional)."""
    d = first - prev_last
    d -= np.round(d)
    return float(np.max(np.linalg.norm(d @ cell, axis=1))) if len(d) else 0.0


class SegmentJoiner:
    """Joins the frames of consecutive segments by the one rule (:data:`REPEAT_TOL_A`).

    Call :meth:`start_segment` before each segment's blocks and pass every block through :meth:`join`: the
    first frame of a segment after another is dropped when it repeats the previous segment's last frame,
    once; no other frame is ever dropped.
    """

    def __init__(self) -> None:
        self._last: np.ndarray | None = None
        self._opening = False

    def start_segment(self) -> None:
        self._opening = True

    def join(self, frac: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, float | None]:
        """The block's frames to keep, and the boundary jump (A) when this block opens a later segment."""
        jump = None
        if self._opening and len(frac):
            self._opening = False
            if self._last is not None:
                jump = boundary_jump(self._last, frac[0], cells[0])
                if jump < REPEAT_TOL_A:
                    frac, cells = frac[1:], cells[1:]
        if len(frac):
            self._last = frac[-1].copy()
        return frac, cells, jump


def iter_segments(
    paths: list[Path], block_frames: int = 256, species: list[str] | None = None
) -> Iterator[tuple[XdatcarHeader, FrameBlock]]:
    """Frames of several segment XDATCARs in order, as one trajectory with continuous frame indices.

    Each segment starts from the previous one's last configuration (CONTCAR), and VASP's XDATCAR holds the
    configurations after each step, not the starting one; a segment whose first frame repeats the previous
    segment's last one (a restart that wrote its start) loses that frame (:class:`SegmentJoiner`, the rule
    the analysis uses too). Every segment must hold the same atoms in the same order.
    """
    first: XdatcarHeader | None = None
    index = 0
    joiner = SegmentJoiner()
    for k, path in enumerate(paths):
        hdr = read_header(path, species)
        if first is None:
            first = hdr
        elif hdr.species != first.species:
            raise TrajectoryError(
                f"{path}: atoms differ from the first segment {paths[0]} "
                f"({dict(zip(hdr.symbols, hdr.counts, strict=True))} vs "
                f"{dict(zip(first.symbols, first.counts, strict=True))})"
            )
        joiner.start_segment()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TruncatedTrajectoryWarning)
            for block in iter_frames(path, block_frames, species, hdr, start=index):
                frac, cells, _ = joiner.join(block.frac, block.cells)
                if not len(frac):
                    continue
                yield hdr, FrameBlock(frac, cells, index)
                index += len(frac)
        for w in caught:
            if issubclass(w.category, TruncatedTrajectoryWarning) and k < len(paths) - 1:
                warnings.warn(
                    f"{w.message} (segment {k + 1} of {len(paths)}: later segments continue from its CONTCAR, "
                    "so the frames of the cut-off part are missing from the stitched trajectory)",
                    w.category,
                    stacklevel=2,
                )
            else:
                warnings.warn(w.message, w.category, stacklevel=2)
