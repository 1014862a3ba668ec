"""Frames held by Python objects (ASE Atoms, an ase.io.Trajectory, pymatgen Structures, Trajectory, Xdatcar) read
in memory as a trajectory source (:class:`MemorySource`, :func:`python_trajectory`), no file written."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cellsim.io.formats import SourceHeader, SourceMismatchError, _check_cell, _in_blocks, detect_format
from cellsim.io.xdatcar import FrameBlock, TrajectoryError


@dataclass
class MemorySource:
    """Frames held by Python objects (ASE Atoms, an ASE trajectory, pymatgen Structures, Trajectory or Xdatcar).

    They go through the analysis exactly as a file does, block by block, with no file written: ``label``
    (``python:ase.Atoms list, 200 frames``) is what the analysis records as the source, with a sha256 of the
    coordinates and cells read, so the analysis folder still says what it describes.
    """

    label: str
    species: list[str]
    n_frames: int
    # each call streams the frames again from the first: ``(frac (n, natoms, 3) in [0, 1), cells (n, 3, 3))``
    frames: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]
    dt_fs: float | None = None  # the objects' own time between frames, when they carry one
    dt_source: str = ""
    sha256: str = ""
    nbytes: int = 0

    def __str__(self) -> str:
        return self.label

    @property
    def symbols(self) -> list[str]:
        return list(dict.fromkeys(self.species))

    def blocks(self) -> Iterator[tuple[SourceHeader, FrameBlock]]:
        """The frames as validated blocks; the digest is complete once they are exhausted."""
        hdr = SourceHeader(Path(self.label), list(self.species), "python")
        h = hashlib.sha256()
        nbytes, start = 0, 0
        for frac, cells in self.frames():
            frac, cells = np.ascontiguousarray(frac, dtype=float), np.ascontiguousarray(cells, dtype=float)
            if frac.shape[1:] != (len(self.species), 3):
                raise SourceMismatchError(
                    f"{self.label}: frame {start + 1} has {frac.shape[1]} atoms, frame 1 {len(self.species)}"
                )
            for k, cell in enumerate(cells):
                _check_cell(cell, f"{self.label}: frame {start + k + 1}", "a pymatgen Structure or ASE Atoms cell")
            if not np.all(np.isfinite(frac)):
                bad = int(np.flatnonzero(~np.isfinite(frac).all(axis=(1, 2)))[0])
                raise TrajectoryError(f"{self.label}: frame {start + bad + 1}: non-finite positions")
            frac = frac - np.floor(frac)
            frac[frac >= 1.0] = 0.0  # -1e-17 - floor(-1e-17) rounds to 1.0
            h.update(frac.tobytes())
            h.update(cells.tobytes())
            nbytes += frac.nbytes + cells.nbytes
            yield hdr, FrameBlock(frac, cells, start)
            start += len(frac)
        self.sha256, self.nbytes = h.hexdigest(), nbytes


_KINDS = (
    "a run directory, trajectory file(s), ASE Atoms (one or a list), an ase.io.Trajectory, or a pymatgen "
    "Trajectory, Structure (one or a list) or Xdatcar"
)


def _ase_source(frames: Any, kind: str) -> MemorySource:
    """A MemorySource over a sequence of ASE Atoms (a list, or an ase.io.Trajectory opened for reading)."""
    n = len(frames)
    if n == 0:
        raise TrajectoryError(f"python:{kind}: no frame in it")
    label = f"python:{kind}, {n} frames"
    species = list(frames[0].get_chemical_symbols())

    def read() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for sl in _in_blocks(n):
            fr, cells = [], []
            for k in range(sl.start, sl.stop):
                atoms = frames[k]
                if atoms.get_chemical_symbols() != species:
                    raise SourceMismatchError(f"{label}: frame {k + 1} has other atoms than frame 1")
                if not all(atoms.pbc):
                    raise TrajectoryError(
                        f"{label}: frame {k + 1}: not periodic (pbc {list(atoms.pbc)}); RDFs need a periodic cell"
                    )
                cells.append(atoms.cell.array)
                _check_cell(cells[-1], f"{label}: frame {k + 1}", "Atoms(cell=..., pbc=True)")
                fr.append(atoms.get_scaled_positions(wrap=False))
            yield np.array(fr), np.array(cells)

    return MemorySource(label, species, n, read)


def _symbol(site_species: Any, where: str) -> str:
    from pymatgen.core.periodic_table import get_el_sp

    try:
        return str(get_el_sp(site_species).symbol)
    except (ValueError, KeyError, AttributeError):
        raise TrajectoryError(f"{where}: {site_species!r} is not an element (disordered or unknown species)") from None


def _structures_source(structures: Any, kind: str) -> MemorySource:
    """A MemorySource over pymatgen Structures (a list, or an Xdatcar's ``.structures``)."""
    n = len(structures)
    if n == 0:
        raise TrajectoryError(f"python:{kind}: no frame in it")
    label = f"python:{kind}, {n} frames"

    def ordered(s: Any, k: int) -> Any:
        if not s.is_ordered:
            raise TrajectoryError(f"{label}: frame {k + 1}: a disordered Structure (partial occupancies)")
        return s

    species = [_symbol(site.specie, f"{label}: frame 1") for site in ordered(structures[0], 0)]
    numbers = tuple(structures[0].atomic_numbers)

    def read() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for sl in _in_blocks(n):
            block = structures[sl]
            for j, s in enumerate(block):
                if tuple(ordered(s, sl.start + j).atomic_numbers) != numbers:
                    raise SourceMismatchError(f"{label}: frame {sl.start + j + 1} has other atoms than frame 1")
            yield np.array([s.frac_coords for s in block]), np.array([s.lattice.matrix for s in block])

    return MemorySource(label, species, n, read)


def _pmg_trajectory_source(traj: Any) -> MemorySource:
    """A MemorySource over a pymatgen Trajectory (its arrays, block by block; positions or displacements)."""
    if traj.lattice is None:
        raise TrajectoryError("python:pymatgen Trajectory: a trajectory of molecules (no lattice); RDFs need a cell")
    coords = np.asarray(traj.coords, dtype=float)
    n = len(coords)
    if n == 0:
        raise TrajectoryError("python:pymatgen Trajectory: no frame in it")
    label = f"python:pymatgen Trajectory, {n} frames"
    species = [_symbol(sp, label) for sp in traj.species]
    lattice = np.asarray(traj.lattice, dtype=float)
    base = np.asarray(traj.base_positions, dtype=float) if traj.coords_are_displacement else None

    def read() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        offset = base  # displacements: each frame is the one before plus its displacement
        for sl in _in_blocks(n):
            frac = coords[sl]
            if offset is not None:
                frac = offset + np.cumsum(frac, axis=0)
                offset = frac[-1]
            cells = np.broadcast_to(lattice, (len(frac), 3, 3)) if traj.constant_lattice else lattice[sl]
            yield frac, cells

    dt = float(traj.time_step) if getattr(traj, "time_step", None) else None
    return MemorySource(label, species, n, read, dt, "pymatgen Trajectory.time_step" if dt else "")


def python_trajectory(obj: Any) -> MemorySource | list[Path] | None:
    """The trajectory that ``cellsim.analyze`` was given as Python objects, or None for paths.

    ASE: an ``Atoms``, a list of them, or an ``ase.io.Trajectory`` (read from its file when it has one, so the
    analysis records the file and its digest). pymatgen: a ``Trajectory``, a ``Structure``, a list of them, or an
    ``Xdatcar``. Anything else that is not a path is refused, naming what is accepted.
    """
    import os

    if isinstance(obj, str | os.PathLike):
        return None
    items = list(obj) if isinstance(obj, list | tuple) else None
    if items is not None and all(isinstance(x, str | os.PathLike) for x in items):
        return None
    mod = type(obj).__module__.split(".")[0]
    first = items[0] if items else None
    first_mod = type(first).__module__.split(".")[0] if first is not None else ""
    if mod == "ase" or first_mod == "ase":
        from ase import Atoms
        from ase.io.trajectory import TrajectoryReader

        if isinstance(obj, Atoms):
            return _ase_source([obj], "ase.Atoms")
        if isinstance(obj, TrajectoryReader):
            name = getattr(obj, "filename", None)
            if isinstance(name, str | os.PathLike) and Path(name).is_file() and detect_format(Path(name)) == "ase":
                return [Path(name)]
            return _ase_source(obj, "ase.io.Trajectory")
        if items is not None and all(isinstance(x, Atoms) for x in items):
            return _ase_source(items, "ase.Atoms list")
    if mod == "pymatgen" or first_mod == "pymatgen":
        from pymatgen.core import Structure
        from pymatgen.core.trajectory import Trajectory
        from pymatgen.io.vasp.outputs import Xdatcar

        if isinstance(obj, Trajectory):
            return _pmg_trajectory_source(obj)
        if isinstance(obj, Xdatcar):
            return _structures_source(obj.structures, "pymatgen Xdatcar")
        if isinstance(obj, Structure):
            return _structures_source([obj], "pymatgen Structure")
        if items is not None and all(isinstance(x, Structure) for x in items):
            return _structures_source(items, "pymatgen Structure list")
    if items is not None and not items:
        return None  # an empty list: the caller says that no trajectory was given
    what = type(obj).__name__ if items is None else f"a list of {', '.join(sorted({type(x).__name__ for x in items}))}"
    raise TrajectoryError(f"cannot analyse {what}: give {_KINDS}")
