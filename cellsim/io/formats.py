"""What every trajectory reader yields (:class:`SourceHeader` with :class:`~cellsim.io.xdatcar.FrameBlock` s) and
which reader a file needs (:func:`detect_format`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cellsim.io.xdatcar import TrajectoryError

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


def detect_format(path: Any) -> str:
    """'xdatcar', 'vasprun' or 'ase' from the file name (and, for XML, the first bytes); 'python' for objects."""
    if not isinstance(path, str | os.PathLike):
        return "python"  # frames held by Python objects (cellsim.io.memory.MemorySource)
    path = Path(path)
    name = path.name.lower()
    for suffix in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(suffix)
    if name.endswith(".xml") or name.startswith("vasprun"):
        return "vasprun"
    if name.endswith(ASE_SUFFIXES):
        return "ase"
    return "xdatcar"


# files that hold one crystal structure by their nature: refused as trajectories (a CIF passed to `analyze`
# used to become a one-frame "trajectory" and exit 0)
STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar", ".mcif")
STRUCTURE_NAMES = ("poscar", "contcar")


def refuse_structure_file(path: str | os.PathLike[str]) -> None:
    """Raise :class:`TrajectoryError` when ``path`` names a single-structure file (CIF, POSCAR, CONTCAR)."""
    name = Path(path).name.lower()
    for suffix in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(suffix)
    kind = (
        "a CIF"
        if name.endswith((".cif", ".mcif"))
        else "a POSCAR/CONTCAR"
        if name.endswith((".vasp", ".poscar")) or name.startswith(STRUCTURE_NAMES)
        else None
    )
    if kind is not None:
        raise TrajectoryError(
            f"{path}: {kind} holds one structure, not a trajectory; analyze reads MD trajectories "
            "(XDATCAR, vasprun.xml, extxyz, .traj)"
        )


def _check_cell(cell: np.ndarray, where: str, hint: str) -> None:
    if cell.shape != (3, 3) or not np.all(np.isfinite(cell)) or abs(np.linalg.det(cell)) < 1e-6:
        raise TrajectoryError(f"{where}: no periodic cell (a trajectory for RDFs needs a lattice, {hint})")


def _in_blocks(n: int) -> Iterator[slice]:
    for k0 in range(0, n, BLOCK_FRAMES):
        yield slice(k0, min(n, k0 + BLOCK_FRAMES))
