"""Any trajectory in: XDATCAR segments, vasprun.xml (streamed), whatever ASE reads (extxyz, .traj), and
ASE / pymatgen objects in memory (:func:`python_trajectory`, no file written).

Every reader yields ``(SourceHeader, FrameBlock)`` with continuous frame indices over all files given, so
the analysis does not care where frames came from. Segments are joined in the order given; a segment
whose first frame repeats the previous segment's last one (a restart that wrote its starting
configuration) loses that frame, and a jump between segments is reported.

The time step and the temperature are resolved here too (:func:`resolve_md_conditions`): an option wins,
then an INCAR beside the first file (POTIM * NBLOCK, TEBEG), then vasprun.xml's own INCAR, then the
embedded engine's ``engine.json``, then the study of a run directory, and last a stated default with a
warning. Objects in memory take the ``dt_fs`` argument or their own time step (a pymatgen Trajectory's
``time_step``); without either they are refused, not given an assumed one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cellsim.core.files import file_sha256
from cellsim.io.conditions import (
    DEFAULT_DT_FS,
    DEFAULT_TEMPERATURE_K,
    MDConditions,
    _temperature_or_default,
    resolve_md_conditions,
)
from cellsim.io.formats import (
    ASE_SUFFIXES,
    BLOCK_FRAMES,
    SourceHeader,
    SourceMismatchError,
    detect_format,
    refuse_structure_file,
)
from cellsim.io.memory import MemorySource, python_trajectory
from cellsim.io.stitching import SegmentJoiner
from cellsim.io.vasprun import vasprun_incar, vasprun_species
from cellsim.io.xdatcar import FrameBlock, TrajectoryError, iter_frames, read_header

__all__ = [
    "ASE_SUFFIXES",
    "BLOCK_FRAMES",
    "DEFAULT_DT_FS",
    "DEFAULT_TEMPERATURE_K",
    "GAP_JUMP_A",
    "MDConditions",
    "MemorySource",
    "SegmentInfo",
    "SourceHeader",
    "SourceMismatchError",
    "TrajectorySource",
    "_temperature_or_default",
    "detect_format",
    "file_digest",
    "iter_trajectory",
    "python_trajectory",
    "resolve_md_conditions",
    "vasprun_incar",
    "vasprun_species",
]

# a segment whose first frame sits this far (A, largest atom displacement) from the previous segment's
# last frame does not continue it: reported as a gap
GAP_JUMP_A = 1.0

TrajectorySource = Path | MemorySource


@dataclass
class SegmentInfo:
    """One input file as it was read."""

    path: str
    fmt: str
    size: int
    sha256: str
    frames: int = 0
    dropped_first: bool = False
    jump_A: float | None = None
    notes: list[str] = field(default_factory=list)

    def set_digest(self, sha256: str) -> None:
        self.sha256 = sha256


def file_digest(path: Path) -> str:
    """sha256 of a file (:func:`cellsim.core.files.file_sha256`)."""
    return file_sha256(path)


def _xdatcar_blocks(
    path: Path, species: list[str] | None = None, on_digest: Callable[[str], None] | None = None
) -> Iterator[tuple[SourceHeader, FrameBlock]]:
    hdr = read_header(path, species)
    source = SourceHeader(path, list(hdr.species), "xdatcar")
    for block in iter_frames(path, BLOCK_FRAMES, species, hdr, on_digest=on_digest):
        yield source, block


def _file_blocks(
    path: TrajectorySource,
    species: list[str] | None,
    fmt: str,
    on_digest: Callable[[str], None] | None = None,
) -> Iterator[tuple[SourceHeader, FrameBlock]]:
    """The frames of one file (or of objects in memory) in the reader of its format; ``on_digest`` gets the
    sha256 of an XDATCAR hashed while its reader reads it."""
    if isinstance(path, MemorySource):
        return path.blocks()
    refuse_structure_file(path)
    from cellsim.io.registry import reader_for

    blocks: Iterator[tuple[SourceHeader, FrameBlock]] = reader_for(fmt)(path, species, on_digest)
    return blocks


def iter_trajectory(
    paths: Sequence[TrajectorySource], species: list[str] | None = None, segments: list[SegmentInfo] | None = None
) -> Iterator[tuple[SourceHeader, FrameBlock]]:
    """Frames of every file in ``paths`` as one trajectory (continuous indices), each checked to match the first.

    ``segments``, when given, is filled with one :class:`SegmentInfo` per file (frames, dropped overlap, jump).
    """
    first: SourceHeader | None = None
    index = 0
    joiner = SegmentJoiner()  # the one stitching rule, shared with `cellsim stitch`
    for path in paths:
        if isinstance(path, MemorySource):
            fmt, info = "python", SegmentInfo(path.label, "python", 0, "")
        else:
            path = Path(path)
            if not path.is_file():
                raise TrajectoryError(f"{path}: no such trajectory file")
            fmt = detect_format(path)
            # an XDATCAR is hashed while its reader reads it (cellsim.io.compressed); other formats first
            info = SegmentInfo(str(path), fmt, path.stat().st_size, "" if fmt == "xdatcar" else file_digest(path))
        if segments is not None:
            segments.append(info)
        joiner.start_segment()
        for hdr, block in _file_blocks(path, species, fmt, info.set_digest):
            if first is None:
                first = hdr
            elif hdr.species != first.species:
                raise SourceMismatchError(
                    f"{path}: atoms differ from {first.path} "
                    f"({dict(zip(hdr.symbols, hdr.counts, strict=True))} vs "
                    f"{dict(zip(first.symbols, first.counts, strict=True))}); files given together must be "
                    "segments of one trajectory"
                )
            frac, cells, jump = joiner.join(block.frac, block.cells)
            if jump is not None:
                info.jump_A = round(jump, 4)
                if len(frac) < len(block.frac):
                    info.dropped_first = True
                    info.notes.append("first frame repeats the previous segment's last one: dropped")
                elif jump > GAP_JUMP_A:
                    info.notes.append(
                        f"first frame is {jump:.2f} A (largest atom move) from the previous segment's last: "
                        "a gap, or not a continuation"
                    )
                    warnings.warn(f"{path}: {info.notes[-1]}", UserWarning, stacklevel=2)
            if len(frac) == 0:
                continue
            info.frames += len(frac)
            yield hdr, FrameBlock(frac, cells, index)
            index += len(frac)
        if isinstance(path, MemorySource):
            info.size, info.sha256 = path.nbytes, path.sha256
