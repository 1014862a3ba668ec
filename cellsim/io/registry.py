"""Trajectory and structure file formats by name, in the manner of ``ase.io``: each format is registered once
(:func:`register`) with its name, file suffixes and names, a sniffer of its first bytes, and the reader (and writer,
where cellsim writes it) that handle it; :func:`format_of` finds a file's format by an explicit name, else by its
content, else by its suffix or name, and refuses a file it cannot place (it is never read as an XDATCAR by default).

The readers and writers are named by module and function (imported when first used), so looking a format up
imports neither ASE nor the readers.

A trajectory reader is ``read(path, species=None, on_digest=None)`` and yields ``(SourceHeader, FrameBlock)``
(:mod:`cellsim.io.formats`); a trajectory writer is ``write(path, species, frac, cells, title)`` with ``frac``
(frames, atoms, 3) and ``cells`` (frames, 3, 3). A structure reader is ``read(path)`` and returns
``(species, frac, cell)``; a structure writer is ``write(path, species, frac, cell, title)``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellsim.io.compressed import ByteSource
from cellsim.io.xdatcar_header import TrajectoryError, _one_number, _three_numbers

SNIFF_BYTES = 4096  # decompressed bytes a sniffer sees
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz")


@dataclass(frozen=True)
class FileFormat:
    """One registered format.

    Attributes
    ----------
    name
        The name a caller passes to :func:`format_of` (``"xdatcar"``, ``"extxyz"``, ``"poscar"``).
    reader
        The reader family :func:`detect_format` returns: ``"xdatcar"``, ``"vasprun"`` or ``"ase"`` for
        trajectories; the format's own name for a single structure (which no trajectory reader reads).
    description
        How messages name it (``"vasprun.xml"``, ``"a CIF"``).
    suffixes, names
        File suffixes and starts of file names (compared in lower case) that mean the format (compression
        suffixes aside): ``XDATCAR.part-1`` and ``CONTCAR.gz`` are known by name.
    sniff
        True when the first :data:`SNIFF_BYTES` (decompressed, CRLF made LF) are this format's.
    trajectory
        False for a file that holds one structure by its nature (refused by the trajectory readers).
    read, write
        ``"module:function"`` of the reader and the writer (None: cellsim does not read / write it).
    looks_like
        Formats whose sniffer this format's files can satisfy: when the name says this format and the
        content sniffs as one of these, the name wins (an XDATCAR whose configuration lines carry no
        number looks like a POSCAR up to its second frame).
    """

    name: str
    reader: str
    description: str
    suffixes: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    sniff: Callable[[bytes], bool] | None = None
    trajectory: bool = True
    read: str | None = None
    write: str | None = None
    looks_like: tuple[str, ...] = ()

    def reader_function(self) -> Callable[..., Any]:
        """The reader, imported now (see the module docstring for its signature)."""
        return _resolve(self.read, self.name, "reader")

    def writer_function(self) -> Callable[..., Any]:
        """The writer, imported now; an error when cellsim does not write this format."""
        return _resolve(self.write, self.name, "writer")


def _resolve(target: str | None, name: str, what: str) -> Callable[..., Any]:
    if target is None:
        raise TrajectoryError(f"format {name}: cellsim has no {what} for it")
    module, func = target.split(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), func)
    return fn


_FORMATS: dict[str, FileFormat] = {}


def register(fmt: FileFormat) -> FileFormat:
    """Add ``fmt`` to the registry (a name registered twice is an error: one entry per format)."""
    if fmt.name in _FORMATS:
        raise ValueError(f"format {fmt.name!r} is registered already")
    _FORMATS[fmt.name] = fmt
    return fmt


def registered() -> list[FileFormat]:
    """Every registered format, in sniffing order."""
    return list(_FORMATS.values())


def get_format(name: str) -> FileFormat:
    """The format registered as ``name`` (case-insensitive); an error naming the known ones otherwise."""
    fmt = _FORMATS.get(name.lower())
    if fmt is None:
        raise TrajectoryError(f"unknown format {name!r}; known formats: {', '.join(_FORMATS)}")
    return fmt


# --------------------------------------------------------------------------- sniffers


def _text_lines(head: bytes, n: int) -> list[bytes]:
    return head.split(b"\n", n)[:n]


def _vasp_mode_line(head: bytes) -> str | None:
    """The line after the counts when ``head`` starts as a POSCAR or an XDATCAR does (title, scale, three
    lattice vectors, species or not, counts; the header grammar of :mod:`cellsim.io.xdatcar_header`), else None."""
    lines = _text_lines(head, 9)
    if len(lines) < 8 or _one_number(lines[1]) is None:
        return None
    if any(_three_numbers(lines[k]) is None for k in (2, 3, 4)):
        return None
    k = 5
    if lines[k].split() and all(t[:1].isalpha() for t in lines[k].decode(errors="replace").split()):
        k = 6  # the species line (VASP 5)
    try:
        if not [int(t) for t in lines[k].split()]:
            return None
    except ValueError:
        return None
    mode = lines[k + 1].decode(errors="replace").strip()
    return mode if mode[:1].isalpha() else None


def _sniff_xdatcar(head: bytes) -> bool:
    mode = _vasp_mode_line(head)
    return mode is not None and ("=" in mode or "configuration" in mode.lower())


def _sniff_poscar(head: bytes) -> bool:
    mode = _vasp_mode_line(head)
    return mode is not None and "=" not in mode and mode[0] in "SsDdCcKk" and "configuration" not in mode.lower()


def _sniff_vasprun(head: bytes) -> bool:
    return head.lstrip().startswith(b"<?xml") and b"<modeling" in head


def _sniff_extxyz(head: bytes) -> bool:
    """An atom count, a comment line (extxyz: ``Lattice=...``), then ``symbol x y z`` lines."""
    lines = _text_lines(head, 4)
    if len(lines) < 3 or not lines[0].strip().isdigit() or int(lines[0]) <= 0:
        return False
    atom = lines[2].decode(errors="replace").split()
    if len(atom) < 4 or not atom[0][:1].isalpha():
        return False
    try:
        [float(x) for x in atom[1:4]]
    except ValueError:
        return False
    return True


def _sniff_ase_traj(head: bytes) -> bool:
    return head.startswith((b"- of Ulm", b"PickleTrajectory", b"AFFormatASE-Trajectory"))


def _sniff_lammps_dump(head: bytes) -> bool:
    return head.lstrip().startswith(b"ITEM: TIMESTEP")


def _sniff_netcdf(head: bytes) -> bool:
    return head[:4] in (b"CDF\x01", b"CDF\x02") or head.startswith(b"\x89HDF\r\n\x1a\n")


_PDB_RECORDS = (b"HEADER", b"TITLE ", b"REMARK", b"CRYST1", b"MODEL ", b"ATOM  ", b"HETATM", b"COMPND")


def _sniff_pdb(head: bytes) -> bool:
    lines = [ln for ln in head.split(b"\n") if ln.strip()]
    return (
        bool(lines)
        and lines[0][:6].ljust(6) in _PDB_RECORDS
        and any(ln.startswith((b"ATOM  ", b"HETATM")) for ln in lines)
    )


def _sniff_cif(head: bytes) -> bool:
    for line in head.split(b"\n"):
        text = line.strip()
        if text and not text.startswith(b"#"):
            return text.startswith(b"data_")
    return False


# --------------------------------------------------------------------------- the formats, in sniffing order

_HERE = "cellsim.io.registry"
# the trajectory readers by module path, imported when a file is read: the reader modules import this registry
# (to detect formats), so naming them here as imports would make a circle
_XDATCAR_READER = "cellsim.io.sources:_xdatcar_blocks"
_VASPRUN_READER = "cellsim.io.vasprun:vasprun_reader"
_ASE_READER = "cellsim.io.ase_files:ase_reader"
for _fmt in (
    FileFormat("traj", "ase", "an ASE .traj", (".traj",), sniff=_sniff_ase_traj, read=_ASE_READER),
    FileFormat("netcdf", "ase", "an AMBER NetCDF trajectory", (".nc",), sniff=_sniff_netcdf, read=_ASE_READER),
    FileFormat("vasprun", "vasprun", "vasprun.xml", (".xml",), ("vasprun",), _sniff_vasprun, read=_VASPRUN_READER),
    FileFormat(
        "cif",
        "cif",
        "a CIF",
        (".cif", ".mcif"),
        sniff=_sniff_cif,
        trajectory=False,
        read=f"{_HERE}:_read_cif",
    ),
    FileFormat("lammps-dump", "ase", "a LAMMPS dump", (".lammpstrj",), sniff=_sniff_lammps_dump, read=_ASE_READER),
    FileFormat("pdb", "ase", "a PDB file", (".pdb",), sniff=_sniff_pdb, read=_ASE_READER),
    FileFormat("extxyz", "ase", "an (extended) XYZ file", (".extxyz", ".xyz"), sniff=_sniff_extxyz, read=_ASE_READER),
    FileFormat(
        "xdatcar",
        "xdatcar",
        "an XDATCAR",
        (".xdatcar",),
        ("XDATCAR",),
        _sniff_xdatcar,
        read=_XDATCAR_READER,
        write="cellsim.io.vaspfiles:write_xdatcar",
        looks_like=("poscar",),
    ),
    FileFormat(
        "poscar",
        "poscar",
        "a POSCAR/CONTCAR",
        (".vasp", ".poscar"),
        ("POSCAR", "CONTCAR"),
        _sniff_poscar,
        trajectory=False,
        read="cellsim.io.poscar:read_poscar",
        write="cellsim.io.poscar:write_poscar",
    ),
):
    register(_fmt)


# --------------------------------------------------------------------------- lookup


def _plain_name(path: Path) -> str:
    """The file name in lower case without a compression suffix."""
    name = path.name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def format_by_name(path: str | os.PathLike[str]) -> FileFormat | None:
    """The format a file's suffix or name says (``x.extxyz``, ``vasprun.xml``, ``CONTCAR.gz``), or None."""
    name = _plain_name(Path(path))
    for fmt in _FORMATS.values():  # a suffix first: ``xdatcar.extxyz`` is an extxyz
        if fmt.suffixes and name.endswith(fmt.suffixes):
            return fmt
    for fmt in _FORMATS.values():
        if fmt.names and name.startswith(tuple(n.lower() for n in fmt.names)):
            return fmt
    return None


def sniff(head: bytes) -> FileFormat | None:
    """The first registered format whose sniffer accepts ``head`` (a file's first bytes), or None."""
    for fmt in _FORMATS.values():
        if fmt.sniff is not None and fmt.sniff(head):
            return fmt
    return None


def _head(path: Path) -> bytes | None:
    """The first :data:`SNIFF_BYTES` of the file, decompressed (up to any damage); None when unreadable."""
    try:
        with ByteSource(path, hashed=False) as src:
            return src.read(SNIFF_BYTES)[:SNIFF_BYTES]
    except OSError:
        return None


def known_formats() -> str:
    """The registered formats as a message lists them."""
    return ", ".join(f"{f.name} ({' '.join(f.suffixes + tuple(n + '*' for n in f.names))})" for f in _FORMATS.values())


def format_of(path: str | os.PathLike[str], fmt: str | None = None) -> FileFormat:
    """The format of the file at ``path``: ``fmt`` when given, else what its first bytes say, else what its
    suffix or name says.

    Raises
    ------
    TrajectoryError
        ``fmt`` is not registered; the file does not exist (and its name says no format); or neither its
        content nor its name matches a registered format (the message names the file and the formats known).
    """
    if fmt is not None:
        return get_format(fmt)
    path = Path(path)
    named = format_by_name(path)
    if not path.is_file():
        if named is not None:
            return named  # its reader says what is wrong with it
        raise TrajectoryError(f"{path}: no such trajectory file")
    head = _head(path)
    found = sniff(head) if head else None
    if found is not None and not (named is not None and found.name in named.looks_like):
        return found
    if named is not None:
        return named
    if head is None:
        raise TrajectoryError(f"{path}: cannot read the trajectory")
    raise TrajectoryError(
        f"{path}: not a file format cellsim reads (neither its first lines nor its name match one); "
        f"known formats: {known_formats()}"
    )


def detect_format(path: Any, fmt: str | None = None) -> str:
    """The reader a trajectory needs: ``'xdatcar'``, ``'vasprun'`` or ``'ase'`` (a single structure: its format,
    ``'cif'`` or ``'poscar'``); ``'python'`` for frames held by Python objects. See :func:`format_of`."""
    if not isinstance(path, str | os.PathLike):
        return "python"  # frames held by Python objects (cellsim.io.memory.MemorySource)
    return format_of(path, fmt).reader


def refuse_structure_file(path: str | os.PathLike[str]) -> None:
    """Raise :class:`TrajectoryError` when ``path`` holds a single structure (CIF, POSCAR, CONTCAR): by its name
    (a file named ``POSCAR`` is refused unread), else by its content (:func:`format_of`)."""
    found = format_by_name(path)
    if found is None or found.trajectory:
        try:
            found = format_of(path)
        except TrajectoryError:
            pass  # the reader (or the caller's lookup) reports a file it cannot place
    if found is not None and not found.trajectory:
        raise TrajectoryError(
            f"{path}: {found.description} holds one structure, not a trajectory; analyze reads MD trajectories "
            "(XDATCAR, vasprun.xml, extxyz, .traj)"
        )


def reader_for(family: str) -> Callable[..., Any]:
    """The trajectory reader of a reader family (:attr:`FileFormat.reader`: ``"xdatcar"``, ``"vasprun"``, ``"ase"``)."""
    for fmt in _FORMATS.values():
        if fmt.trajectory and fmt.reader == family:
            return fmt.reader_function()
    raise TrajectoryError(f"no trajectory reader {family!r}; known: {', '.join(_families())}")


def _families() -> list[str]:
    return list(dict.fromkeys(f.reader for f in _FORMATS.values() if f.trajectory))


# --------------------------------------------------------------------------- readers (imported when used)


def _read_cif(path: Path) -> tuple[list[str], Any, Any]:
    """Species, fractional coordinates in [0, 1) and cell of a CIF's first structure (through ASE)."""
    from ase.io import read

    atoms = read(str(path), format="cif", index=0)
    if isinstance(atoms, list):  # index=0 gives one structure; the type says a list is possible
        atoms = atoms[0]
    return atoms.get_chemical_symbols(), atoms.get_scaled_positions(wrap=True), atoms.cell.array
