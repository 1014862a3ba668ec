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

import hashlib
import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cellsim.io.xdatcar import FrameBlock, SegmentJoiner, TrajectoryError, iter_segments

DEFAULT_DT_FS = 2.0
DEFAULT_TEMPERATURE_K = 300.0
BLOCK_FRAMES = 256
# a segment whose first frame sits this far (A, largest atom displacement) from the previous segment's
# last frame does not continue it: reported as a gap
GAP_JUMP_A = 1.0

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


def detect_format(path: TrajectorySource) -> str:
    """'xdatcar', 'vasprun' or 'ase' from the file name (and, for XML, the first bytes); 'python' for objects."""
    if isinstance(path, MemorySource):
        return "python"
    name = path.name.lower()
    for suffix in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(suffix)
    if name.endswith(".xml") or name.startswith("vasprun"):
        return "vasprun"
    if name.endswith(ASE_SUFFIXES):
        return "ase"
    return "xdatcar"


def file_digest(path: Path) -> str:
    """sha256 of a file, read in 4 MB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- readers


def _xdatcar_blocks(path: Path, species: list[str] | None) -> Iterator[tuple[SourceHeader, FrameBlock]]:
    for hdr, block in iter_segments([path], BLOCK_FRAMES, species):
        yield SourceHeader(path, list(hdr.species), "xdatcar"), block


def _floats(text: str | None, path: Path, what: str) -> list[float]:
    try:
        vals = [float(x) for x in (text or "").split()]
    except ValueError:
        raise TrajectoryError(f"{path}: {what}: expected numbers, got {text!r}") from None
    if not all(np.isfinite(vals)):
        raise TrajectoryError(f"{path}: {what}: non-finite number in {text!r}")
    return vals


def vasprun_species(path: Path) -> list[str]:
    """Per-atom element symbols from vasprun.xml's <atominfo> (read up to it, not the whole file)."""
    import xml.etree.ElementTree as ET

    from cellsim.io.xdatcar import open_maybe_compressed

    with open_maybe_compressed(path) as fh:
        try:
            for _, elem in ET.iterparse(fh, events=("end",)):
                if elem.tag == "array" and elem.get("name") == "atoms":
                    return [rc.findall("c")[0].text.strip() for rc in elem.iter("rc")]
        except ET.ParseError as exc:
            raise TrajectoryError(f"{path}: not valid XML before <atominfo>: {exc}") from None
    raise TrajectoryError(f"{path}: no <atominfo><array name='atoms'> found: not a vasprun.xml?")


def vasprun_incar(path: Path) -> dict[str, str]:
    """The <incar> tags of a vasprun.xml (the first element of the file)."""
    import xml.etree.ElementTree as ET

    from cellsim.io.xdatcar import open_maybe_compressed

    tags: dict[str, str] = {}
    with open_maybe_compressed(path) as fh:
        try:
            for _, elem in ET.iterparse(fh, events=("end",)):
                if elem.tag == "incar":
                    for item in elem.iter("i"):
                        tags[str(item.get("name", "")).upper()] = (item.text or "").strip()
                    return tags
                if elem.tag in ("atominfo", "calculation"):
                    break
        except ET.ParseError:
            return tags
    return tags


def _vasprun_blocks(path: Path) -> Iterator[tuple[SourceHeader, FrameBlock]]:
    """Frames of a vasprun.xml, streamed: one ionic step's <structure> at a time, memory of one block."""
    import xml.etree.ElementTree as ET

    from cellsim.io.xdatcar import TruncatedTrajectoryWarning, open_maybe_compressed

    species = vasprun_species(path)
    hdr = SourceHeader(path, species, "vasprun")
    n = len(species)
    frac_buf: list[np.ndarray] = []
    cell_buf: list[np.ndarray] = []
    start = 0
    depth_calc = 0
    with open_maybe_compressed(path) as fh:
        it = ET.iterparse(fh, events=("start", "end"))
        try:
            for event, elem in it:
                if elem.tag == "calculation":
                    depth_calc += 1 if event == "start" else -1
                    if event == "end":
                        elem.clear()
                    continue
                if event != "end" or elem.tag != "structure" or depth_calc <= 0:
                    continue
                basis = elem.find("crystal/varray[@name='basis']")
                pos = elem.find("varray[@name='positions']")
                if basis is None or pos is None:
                    raise TrajectoryError(
                        f"{path}: ionic step {start + len(frac_buf) + 1}: <structure> without basis/positions"
                    )
                cell = np.array([_floats(v.text, path, "basis") for v in basis.findall("v")])
                frac = np.array([_floats(v.text, path, "positions") for v in pos.findall("v")])
                if cell.shape != (3, 3) or frac.shape != (n, 3):
                    raise TrajectoryError(
                        f"{path}: ionic step {start + len(frac_buf) + 1}: expected a 3x3 basis and {n} positions, "
                        f"got {cell.shape} and {frac.shape}"
                    )
                frac_buf.append(frac % 1.0)
                cell_buf.append(cell)
                elem.clear()
                if len(frac_buf) == BLOCK_FRAMES:
                    yield hdr, FrameBlock(np.array(frac_buf), np.array(cell_buf), start)
                    start += len(frac_buf)
                    frac_buf, cell_buf = [], []
        except ET.ParseError as exc:
            # a run still going or killed: its vasprun.xml ends mid-file
            warnings.warn(
                f"{path}: XML ends or breaks at {exc.position}: read {start + len(frac_buf)} whole ionic steps",
                TruncatedTrajectoryWarning,
                stacklevel=2,
            )
        except (OSError, EOFError) as exc:
            warnings.warn(
                f"{path}: corrupt compressed data after {start + len(frac_buf)} whole ionic steps ({exc})",
                TruncatedTrajectoryWarning,
                stacklevel=2,
            )
    if frac_buf:
        yield hdr, FrameBlock(np.array(frac_buf), np.array(cell_buf), start)


def _check_cell(cell: np.ndarray, where: str, hint: str) -> None:
    if cell.shape != (3, 3) or not np.all(np.isfinite(cell)) or abs(np.linalg.det(cell)) < 1e-6:
        raise TrajectoryError(f"{where}: no periodic cell (a trajectory for RDFs needs a lattice, {hint})")


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


def _file_blocks(
    path: TrajectorySource, species: list[str] | None, fmt: str
) -> Iterator[tuple[SourceHeader, FrameBlock]]:
    if isinstance(path, MemorySource):
        return path.blocks()
    if fmt == "vasprun":
        return _vasprun_blocks(path)
    if fmt == "ase":
        return _ase_blocks(path)
    return _xdatcar_blocks(path, species)


# --------------------------------------------------------------------------- objects in memory


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


TrajectorySource = Path | MemorySource
_KINDS = (
    "a run directory, trajectory file(s), ASE Atoms (one or a list), an ase.io.Trajectory, or a pymatgen "
    "Trajectory, Structure (one or a list) or Xdatcar"
)


def _in_blocks(n: int) -> Iterator[slice]:
    for k0 in range(0, n, BLOCK_FRAMES):
        yield slice(k0, min(n, k0 + BLOCK_FRAMES))


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
            info = SegmentInfo(str(path), fmt, path.stat().st_size, file_digest(path))
        if segments is not None:
            segments.append(info)
        joiner.start_segment()
        for hdr, block in _file_blocks(path, species, fmt):
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


# --------------------------------------------------------------------------- time step and temperature


@dataclass
class MDConditions:
    dt_fs: float
    dt_source: str
    temperature_K: float
    temperature_source: str
    warnings: list[str] = field(default_factory=list)


def _incar_value(tags: dict[str, str], name: str) -> float | None:
    if name not in tags:
        return None
    try:
        v = float(tags[name].split()[0])
    except (ValueError, IndexError):
        return None
    return v if np.isfinite(v) else None


def _memory_conditions(src: MemorySource, dt_fs: float | None, temperature_K: float | None) -> MDConditions:
    """Objects in memory have no INCAR beside them: the time step is the argument or their own, never assumed."""
    from cellsim.core.errors import AnalysisError

    dt, dt_src = (dt_fs, "option") if dt_fs is not None else (src.dt_fs, src.dt_source)
    if dt is None:
        raise AnalysisError(
            f"{src.label}: these objects carry no time between frames; give dt_fs, e.g. "
            "cellsim.analyze(frames, dt_fs=2.0) for frames 2 fs apart"
        )
    notes: list[str] = []
    t, t_src = _temperature_or_default(temperature_K, "option", f"no temperature_K given for {src.label}", notes)
    return MDConditions(float(dt), dt_src, float(t), t_src, notes)


def _temperature_or_default(t: float | None, src: str, why: str, notes: list[str]) -> tuple[float, str]:
    """The temperature found, or the stated default with a note saying why (``why``: what was missing)."""
    if t is not None:
        return t, src
    notes.append(f"no temperature known ({why}): assumed {DEFAULT_TEMPERATURE_K} K for the reference broadening")
    return DEFAULT_TEMPERATURE_K, "default"


def resolve_md_conditions(
    first_file: TrajectorySource,
    dt_fs: float | None = None,
    temperature_K: float | None = None,
    study: Any = None,
) -> MDConditions:
    """Time between frames and temperature, each with where it came from (see the module docstring)."""
    from cellsim.core.errors import AnalysisError
    from cellsim.io.incar import read_incar_tags

    if isinstance(first_file, MemorySource):
        return _memory_conditions(first_file, dt_fs, temperature_K)
    folder = first_file.parent
    dt_cands: list[tuple[float | None, str]] = [(dt_fs, "option")]
    t_cands: list[tuple[float | None, str]] = [(temperature_K, "option")]
    incar = folder / "INCAR"
    tags = read_incar_tags(incar)
    if tags:
        potim = _incar_value(tags, "POTIM")
        nblock = _incar_value(tags, "NBLOCK") or 1.0
        if potim is not None and potim <= 0:
            raise AnalysisError(f"{incar}: POTIM = {tags['POTIM']}: expected a positive time step in fs")
        dt_cands.append((potim * nblock if potim else None, f"INCAR {incar} (POTIM x NBLOCK)"))
        t_cands.append((_incar_value(tags, "TEBEG"), f"INCAR {incar} (TEBEG)"))
    if detect_format(first_file) == "vasprun":
        vtags = vasprun_incar(first_file)
        # vasprun.xml stores every ionic step, whatever NBLOCK says
        dt_cands.append((_incar_value(vtags, "POTIM"), f"{first_file.name} (POTIM)"))
        t_cands.append((_incar_value(vtags, "TEBEG"), f"{first_file.name} (TEBEG)"))
    eng = folder / "engine.json"
    if eng.is_file():
        try:
            info = json.loads(eng.read_text())
            dt_cands.append((float(info["timestep_fs"]) * int(info.get("nblock", 1)), f"{eng}"))
            t_cands.append((float(info.get("temperature_K", 0)) or None, f"{eng}"))
        except (ValueError, KeyError, TypeError):
            pass
    if study is not None:
        dt_cands.append((study.md.timestep_fs * study.md.nblock, "study md.timestep_fs x md.nblock"))
        t_cands.append((study.md.temperature, "study md.temperature"))
    notes = []
    dt, dt_src = next(((v, s) for v, s in dt_cands if v is not None), (None, ""))
    if dt is None:
        dt, dt_src = DEFAULT_DT_FS, "default"
        notes.append(
            f"no time step known (no --dt, no INCAR beside {first_file.name}): assumed {DEFAULT_DT_FS} fs "
            "between frames; times are wrong if it differs"
        )
    found, found_src = next(((v, s) for v, s in t_cands if v is not None), (None, ""))
    t, t_src = _temperature_or_default(found, found_src, "no --temperature, no INCAR TEBEG", notes)
    return MDConditions(float(dt), dt_src, float(t), t_src, notes)
