"""Any file ASE reads (extxyz, .traj, ...), streamed with ``ase.io.iread`` into frame blocks."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from cellsim.io.formats import BLOCK_FRAMES, SourceHeader, SourceMismatchError, _check_cell
from cellsim.io.xdatcar import FrameBlock, TrajectoryError


def _ase_blocks(path: Path) -> Iterator[tuple[SourceHeader, FrameBlock]]:
    """Frames of any file ASE reads (extxyz, .traj, ...), streamed with ase.io.iread."""
    from ase.io import iread

    hdr: SourceHeader | None = None
    frac_buf: list[np.ndarray] = []
    cell_buf: list[np.ndarray] = []
    start = 0
    try:
        for k, atoms in enumerate(iread(str(path), index=":")):
            sym = atoms.get_chemical_symbols()
            if hdr is None:
                hdr = SourceHeader(path, sym, "ase")
            elif sym != hdr.species:
                raise SourceMismatchError(f"{path}: frame {k + 1} has other atoms than frame 1")
            cell = atoms.cell.array
            _check_cell(cell, f"{path}: frame {k + 1}", 'e.g. extxyz with Lattice="..."')
            frac = atoms.get_scaled_positions(wrap=True)
            if not np.all(np.isfinite(frac)):
                raise TrajectoryError(f"{path}: frame {k + 1}: non-finite positions")
            frac_buf.append(frac)
            cell_buf.append(cell)
            if len(frac_buf) == BLOCK_FRAMES:
                yield hdr, FrameBlock(np.array(frac_buf), np.array(cell_buf), start)
                start += len(frac_buf)
                frac_buf, cell_buf = [], []
    except (TrajectoryError, SourceMismatchError):
        raise
    except Exception as exc:  # ASE raises many types for a bad file; name the file and what ASE said
        if start + len(frac_buf) == 0:
            raise TrajectoryError(f"{path}: ASE cannot read it: {type(exc).__name__}: {exc}") from None
        import struct

        # a parser meeting the end or a break of its data (a file cut short): XYZError is an OSError, a
        # missing line an IndexError or a StopIteration turned RuntimeError, a cut number or a cut binary
        # .traj a ValueError or struct.error; anything else is no truncation and is not reported as one
        ends = isinstance(exc, ValueError | OSError | EOFError | IndexError | StopIteration | struct.error) or (
            isinstance(exc, RuntimeError) and isinstance(exc.__cause__, StopIteration)
        )
        if not ends:
            raise TrajectoryError(
                f"{path}: ASE failed after {start + len(frac_buf)} frames: {type(exc).__name__}: {exc} "
                "(not a file cut short; nothing of it was analysed)"
            ) from exc
        from cellsim.io.xdatcar import TruncatedTrajectoryWarning

        warnings.warn(
            f"{path}: reading stopped after {start + len(frac_buf)} frames: {type(exc).__name__}: {exc}",
            TruncatedTrajectoryWarning,
            stacklevel=2,
        )
    if hdr is not None and frac_buf:
        yield hdr, FrameBlock(np.array(frac_buf), np.array(cell_buf), start)


def ase_reader(
    path: Path, species: list[str] | None = None, on_digest: Callable[[str], None] | None = None
) -> Iterator[tuple[SourceHeader, FrameBlock]]:
    """The registry's reader (:mod:`cellsim.io.registry`): every block of ``path``; the species come from the file
    itself and the digest is taken by the caller."""
    return _ase_blocks(path)
