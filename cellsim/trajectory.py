"""Streaming XDATCAR reader: constant or per-frame cells, VASP 4 or 5 headers, compressed files.

Frames come in blocks of fractional coordinates so memory stays bounded by the block, not by the
trajectory. Real files that other readers stumble on are read: lines without leading blanks, Fortran
fields run together (``-0.63265286-0.11227753``), CRLF line ends, gzip/bz2/xz compression, and a
truncated last frame (everything up to the last whole frame is returned, with a warning that gives the
frame count). A malformed file raises :class:`TrajectoryError` with the line number and what was
expected there.

Time axis: frame ``k`` (0-based, across stitched segments) is the configuration after MD step
``(k + 1) * NBLOCK``, so ``t_k = (k + 1) * dt_frame`` with ``dt_frame = POTIM * NBLOCK``.
"""

from __future__ import annotations

import bz2
import ctypes
import functools
import gzip
import lzma
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from cellsim.errors import CellsimError

CHUNK_BYTES = 4 << 20
_NUM = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?")
_ELEMENT = re.compile(r"^[A-Z][a-z]?$")


class TrajectoryError(CellsimError):
    """An XDATCAR (or segment set) cannot be read; the message names the file and line."""


class TruncatedTrajectoryWarning(UserWarning):
    """The trajectory ends inside a frame; the whole frames before it were read."""


@dataclass
class XdatcarHeader:
    """What the first lines of an XDATCAR say."""

    path: Path
    title: str
    symbols: list[str]
    counts: list[int]
    lattice: np.ndarray
    cartesian: bool
    header_lines: int
    variable_cell: bool = False
    vasp5: bool = True
    species: list[str] = field(default_factory=list)

    @property
    def natoms(self) -> int:
        return int(sum(self.counts))


@dataclass
class FrameBlock:
    """Consecutive frames: ``frac`` (n, natoms, 3) in [0, 1), ``cells`` (n, 3, 3) rows a, b, c."""

    frac: np.ndarray
    cells: np.ndarray
    start: int

    def __len__(self) -> int:
        return len(self.frac)


def open_maybe_compressed(path: Path) -> IO[bytes] | gzip.GzipFile:
    """Open for binary reading, decompressing gzip, bzip2 or xz by their magic bytes."""
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic[:3] == b"BZh":
        return bz2.open(path, "rb")
    if magic[:6] == b"\xfd7zXZ\x00":
        return lzma.open(path, "rb")
    return open(path, "rb")


def _numbers(line: bytes) -> list[float]:
    return [float(m.replace(b"d", b"e").replace(b"D", b"e")) for m in _NUM.findall(line)]


def _only_numbers(line: bytes) -> bool:
    """True when the line is nothing but numbers and blanks (so run-together fields are accepted)."""
    return _NUM.sub(b"", line).strip() == b"" and bool(line.strip())


def _parse_cell_block(lines: list[bytes], first_line: int, path: Path) -> tuple[np.ndarray, int, list[str], list[int]]:
    """Parse scale, lattice, (species), counts starting at the scale line. Returns lattice, lines used."""

    def fail(k: int, expected: str) -> TrajectoryError:
        got = lines[k].decode(errors="replace").strip() if k < len(lines) else "end of file"
        return TrajectoryError(f"{path}:{first_line + k}: expected {expected}, got {got!r}")

    if len(lines) < 5:
        raise fail(len(lines), "a complete XDATCAR header (scale, 3 lattice lines, species/counts)")
    scale = _numbers(lines[0])
    if len(scale) < 1 or not _only_numbers(lines[0]):
        raise fail(0, "the scale factor (one number)")
    vecs = []
    for k in range(1, 4):
        v = _numbers(lines[k])
        if len(v) != 3 or not _only_numbers(lines[k]):
            raise fail(k, "a lattice vector (three numbers)")
        vecs.append(v)
    lattice = np.array(vecs, dtype=float)
    s = scale[0]
    if s < 0:  # VASP: a negative scale is the cell volume
        s = (-s / abs(np.linalg.det(lattice))) ** (1.0 / 3.0)
    lattice *= s
    tokens = lines[4].decode(errors="replace").split()
    if tokens and all(_ELEMENT.match(t.split("/")[0].split("_")[0]) for t in tokens):
        symbols = [t.split("/")[0].split("_")[0] for t in tokens]
        if len(lines) < 6:
            raise fail(5, "the atom counts line")
        count_line, used = lines[5], 6
    else:
        symbols, count_line, used = [], lines[4], 5
    try:
        counts = [int(t) for t in count_line.split()]
    except ValueError:
        raise fail(used - 1, "the atom counts (integers)") from None
    if not counts or any(c <= 0 for c in counts):
        raise fail(used - 1, "positive atom counts")
    if symbols and len(symbols) != len(counts):
        raise fail(used - 1, f"{len(symbols)} atom counts, one per species on the line above")
    return lattice, used, symbols, counts


def read_header(path: str | Path, species: list[str] | None = None) -> XdatcarHeader:
    """Read the header of an XDATCAR (VASP 5 with a species line, or VASP 4 without one).

    Parameters
    ----------
    path
        The XDATCAR (plain, .gz, .bz2 or .xz).
    species
        Element symbols in POSCAR order, needed only for VASP 4 files whose title does not list them.
    """
    path = Path(path)
    if not path.is_file():
        raise TrajectoryError(f"{path}: no such trajectory file")
    with open_maybe_compressed(path) as fh:
        try:
            head = fh.read(1 << 16)
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise TrajectoryError(f"{path}: cannot decompress: {exc}") from exc
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    if len(lines) < 7:
        raise TrajectoryError(f"{path}:1: expected an XDATCAR header of at least 7 lines, the file is shorter")
    title = lines[0].decode(errors="replace").strip()
    lattice, used, symbols, counts = _parse_cell_block(lines[1:], 2, path)
    vasp5 = bool(symbols)
    if not symbols:
        cand = title.split()
        if species:
            symbols = list(species)
        elif len(cand) == len(counts) and all(_ELEMENT.match(t) for t in cand):
            symbols = cand
        else:
            raise TrajectoryError(
                f"{path}:1: VASP 4 XDATCAR (no species line): cannot tell the elements; expected the title "
                f"line to list {len(counts)} element symbols, or pass species (e.g. from the POSCAR)"
            )
        if len(symbols) != len(counts):
            raise TrajectoryError(f"{path}: {len(symbols)} species given for {len(counts)} atom counts")
    sep_idx = 1 + used
    sep = lines[sep_idx].decode(errors="replace").strip() if sep_idx < len(lines) else ""
    if sep_idx >= len(lines) or _only_numbers(lines[sep_idx]):
        raise TrajectoryError(
            f"{path}:{sep_idx + 1}: expected a configuration line such as 'Direct configuration=     1', got {sep!r}"
        )
    cartesian = sep.lower().startswith(("c", "k")) and not sep.lower().startswith("konfig")
    hdr = XdatcarHeader(
        path=path,
        title=title,
        symbols=symbols,
        counts=counts,
        lattice=lattice,
        cartesian=cartesian,
        header_lines=sep_idx,
        vasp5=vasp5,
        species=[s for s, c in zip(symbols, counts, strict=True) for _ in range(c)],
    )
    # a per-frame cell block repeats the title line after the first frame (VASP 5 NPT / ML output)
    after = sep_idx + 1 + hdr.natoms
    if after < len(lines) - 1:
        hdr.variable_cell = lines[after].strip() == lines[0].strip() and not _only_numbers(lines[after])
    return hdr


# --------------------------------------------------------------------------- frame parsing


def _parse_frames_py(
    buf: bytes, pos: int, natoms: int, max_frames: int, at_eof: bool, out: np.ndarray
) -> tuple[int, int, int, int]:
    """NumPy/regex fallback with the semantics of ``parse_frames`` in _kernels.c."""
    n = len(buf)
    nf, consumed = 0, pos
    p = pos
    while nf < max_frames and p < n:
        le = buf.find(b"\n", p)
        if le < 0:
            if not at_eof:
                return nf, consumed, -1, 0
            le = n
        if _only_numbers(buf[p:le]):
            return nf, consumed, p, 1
        p = le + 1
        for a in range(natoms):
            if p >= n:
                return nf, consumed, -1, 0
            le = buf.find(b"\n", p)
            if le < 0:
                if not at_eof:
                    return nf, consumed, -1, 0
                le = n
            line = buf[p:le]
            vals = _numbers(line)
            if len(vals) < 3 or not _only_numbers(line):
                return nf, consumed, p, 2
            out[nf, a] = vals[:3]
            p = le + 1
        nf += 1
        consumed = min(p, n)
    return nf, consumed, -1, 0


class _Parser:
    def __init__(self, natoms: int) -> None:
        from cellsim.analysis import _native

        self.natoms = natoms
        self.lib = _native.load()
        self._c = (ctypes.c_long(), ctypes.c_long(), ctypes.c_int())

    def frames(self, buf: bytes, pos: int, max_frames: int, at_eof: bool, out: np.ndarray) -> tuple[int, int, int, int]:
        if self.lib is None:
            return _parse_frames_py(buf, pos, self.natoms, max_frames, at_eof, out)
        consumed, err, kind = self._c
        nf = self.lib.parse_frames(
            buf, len(buf), pos, self.natoms, max_frames, int(at_eof), 0, out.reshape(-1), consumed, err, kind
        )
        return int(nf), consumed.value, err.value, kind.value


def iter_frames(
    path: str | Path,
    block_frames: int = 256,
    species: list[str] | None = None,
    header: XdatcarHeader | None = None,
    start: int = 0,
) -> Iterator[FrameBlock]:
    """Yield the frames of one XDATCAR in blocks of at most ``block_frames``.

    Parameters
    ----------
    path
        The XDATCAR file.
    block_frames
        Frames per block (memory ~ block_frames * natoms * 24 bytes).
    species
        Element symbols for VASP 4 files (see :func:`read_header`).
    header
        A header already read by :func:`read_header`.
    start
        Index given to the first frame (for stitched segments).
    """
    hdr = header or read_header(path, species)
    path = Path(path)
    natoms = hdr.natoms
    parser = _Parser(natoms)
    inv = np.linalg.inv(hdr.lattice)
    out = np.empty((block_frames, natoms, 3))
    index = start
    base = 0  # offset of buf[0] in the (CR-stripped) stream; line numbers are counted only on error
    with open_maybe_compressed(path) as fh:
        raw = fh.read(CHUNK_BYTES)
        buf = raw.replace(b"\r", b"") if b"\r" in raw else raw
        # skip the header lines (the first separator line is parsed as part of frame 1)
        pos = 0
        for _ in range(hdr.header_lines):
            pos = buf.index(b"\n", pos) + 1
        at_eof = len(raw) < CHUNK_BYTES
        lattice = hdr.lattice
        while True:
            if hdr.variable_cell and index > start:
                # per-frame cell block: title, scale, 3 vectors, (species), counts
                got = _read_cell_block(buf, pos, hdr, functools.partial(_offset_line, path, base))
                if got is None:
                    nf = 0
                    consumed = pos
                    err, kind = -1, 0
                else:
                    lattice, pos_after = got
                    inv = np.linalg.inv(lattice)
                    nf, consumed, err, kind = parser.frames(buf, pos_after, 1, at_eof, out)
                    if nf == 0:
                        consumed = pos
            else:
                cap = 1 if hdr.variable_cell else block_frames
                nf, consumed, err, kind = parser.frames(buf, pos, cap, at_eof, out)
            if err >= 0:
                line_no = _line_number(path, base + err)
                truncated_tail = at_eof and buf.find(b"\n", err) < 0
                if not truncated_tail:
                    got_line = buf[err : buf.find(b"\n", err) if buf.find(b"\n", err) >= 0 else len(buf)]
                    expected = (
                        "a configuration line such as 'Direct configuration=     5'"
                        if kind == 1
                        else "three coordinates"
                    )
                    raise TrajectoryError(
                        f"{path}:{line_no}: expected {expected}, got {got_line.decode(errors='replace').strip()!r} "
                        f"(after {index - start + nf} whole frames)"
                    )
            if nf:
                frac = out[:nf].copy()
                if hdr.cartesian:
                    frac = frac @ inv
                if frac.min() < 0.0 or frac.max() >= 1.0:
                    frac -= np.floor(frac)
                cells = np.broadcast_to(lattice, (nf, 3, 3)).copy()
                yield FrameBlock(frac, cells, index)
                index += nf
                pos = consumed
                continue
            if at_eof:
                tail = buf[pos:]
                if tail.strip():
                    line_no = _line_number(path, base + pos)
                    warnings.warn(
                        f"{path}: truncated: read {index - start} whole frames; the incomplete frame from "
                        f"line {line_no} on was ignored",
                        TruncatedTrajectoryWarning,
                        stacklevel=2,
                    )
                return
            # need more data: drop what is consumed, read the next chunk
            base += pos
            raw = fh.read(CHUNK_BYTES)
            at_eof = len(raw) < CHUNK_BYTES
            if b"\r" in raw:
                raw = raw.replace(b"\r", b"")
            buf = buf[pos:] + raw
            pos = 0


def _offset_line(path: Path, base: int, offset: int) -> int:
    return _line_number(path, base + offset)


def _line_number(path: Path, offset: int) -> int:
    """1-based line number of byte ``offset`` of the CR-stripped stream (counted only when reporting)."""
    lines, seen = 1, 0
    with open_maybe_compressed(path) as fh:
        while seen < offset:
            raw = fh.read(CHUNK_BYTES)
            if not raw:
                break
            raw = raw.replace(b"\r", b"")
            take = raw[: offset - seen]
            lines += take.count(b"\n")
            seen += len(take)
    return lines


def _read_cell_block(
    buf: bytes, pos: int, hdr: XdatcarHeader, line_of: Callable[[int], int]
) -> tuple[np.ndarray, int] | None:
    """Parse a per-frame cell block (title, scale, vectors, species, counts) at ``pos``.

    Returns the lattice and the offset after the block, or None when the buffer does not hold it all.
    """
    lines = []
    p = pos
    for _ in range(hdr.header_lines):
        le = buf.find(b"\n", p)
        if le < 0:
            return None
        lines.append(buf[p:le])
        p = le + 1
    line_no = line_of(pos)
    lattice, _, _, counts = _parse_cell_block(lines[1:], line_no + 1, hdr.path)
    if counts != hdr.counts:
        raise TrajectoryError(f"{hdr.path}:{line_no}: atom counts {counts} differ from the first frame's {hdr.counts}")
    return lattice, p


def read_trajectory(path: str | Path, species: list[str] | None = None) -> tuple[XdatcarHeader, np.ndarray, np.ndarray]:
    """Read a whole (small) XDATCAR: header, fractional coordinates (n, natoms, 3), cells (n, 3, 3)."""
    hdr = read_header(path, species)
    blocks = list(iter_frames(path, header=hdr))
    if not blocks:
        return hdr, np.empty((0, hdr.natoms, 3)), np.empty((0, 3, 3))
    return hdr, np.concatenate([b.frac for b in blocks]), np.concatenate([b.cells for b in blocks])


def iter_segments(
    paths: list[Path], block_frames: int = 256, species: list[str] | None = None
) -> Iterator[tuple[XdatcarHeader, FrameBlock]]:
    """Frames of several segment XDATCARs in order, as one trajectory with continuous frame indices.

    Each segment starts from the previous one's last configuration (CONTCAR), and an XDATCAR holds the
    configurations after each step, never the starting one, so segments are joined without dropping or
    repeating a frame. Every segment must hold the same atoms in the same order.
    """
    first: XdatcarHeader | None = None
    index = 0
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
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TruncatedTrajectoryWarning)
            for block in iter_frames(path, block_frames, species, hdr, start=index):
                index += len(block)
                yield hdr, block
        for w in caught:
            if issubclass(w.category, TruncatedTrajectoryWarning) and k < len(paths) - 1:
                warnings.warn(
                    f"{w.message} (segment {k + 1} of {len(paths)}: later segments continue from its CONTCAR, "
                    "so the frames of the cut-off part are missing from the stitched trajectory)",
                    TruncatedTrajectoryWarning,
                    stacklevel=2,
                )
            else:
                warnings.warn(w.message, w.category, stacklevel=2)
