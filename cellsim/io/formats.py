"""What every trajectory reader yields (:class:`SourceHeader` with :class:`~cellsim.io.xdatcar.FrameBlock` s) and
which reader a file needs (:func:`detect_format`, a lookup in :mod:`cellsim.io.registry`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellsim.io.registry import detect_format, refuse_structure_file
from cellsim.io.xdatcar import TrajectoryError

__all__ = [
    "ASE_SUFFIXES",
    "BLOCK_FRAMES",
    "STRUCTURE_NAMES",
    "STRUCTURE_SUFFIXES",
    "SourceHeader",
    "SourceMismatchError",
    "detect_format",
    "refuse_structure_file",
]

BLOCK_FRAMES = 256
ASE_SUFFIXES = (".extxyz", ".xyz", ".traj", ".cif", ".pdb", ".lammpstrj", ".nc")


class SourceMismatchError(TrajectoryError):
    """Trajectory files given together do not describe the same atoms."""


@dataclass
class SourceHeader:
    """What the analysis needs to know about the atoms of a trajectory."""

    path: Path
    species: list[str]
    fmt: str

    @property
    def symbols(self) -> list[str]:
        """Element symbols in order of first appearance."""
        return list(dict.fromkeys(self.species))

    @property
    def counts(self) -> list[int]:
        return [self.species.count(s) for s in self.symbols]

    @property
    def natoms(self) -> int:
        return len(self.species)


# the lookup lives in the format registry (cellsim.io.registry); these names stay importable from here
STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar", ".mcif")
STRUCTURE_NAMES = ("poscar", "contcar")


def _check_cell(cell: np.ndarray, where: str, hint: str) -> None:
    if cell.shape != (3, 3) or not np.all(np.isfinite(cell)) or abs(np.linalg.det(cell)) < 1e-6:
        raise TrajectoryError(f"{where}: no periodic cell (a trajectory for RDFs needs a lattice, {hint})")


def _in_blocks(n: int) -> Iterator[slice]:
    for k0 in range(0, n, BLOCK_FRAMES):
        yield slice(k0, min(n, k0 + BLOCK_FRAMES))
