"""Streaming XDATCAR reader: constant or per-frame cells, VASP 4 or 5 headers, compressed files.

Frames come in blocks of fractional coordinates so memory stays bounded by the block, not by the
trajectory. Real files that other readers stumble on are read: lines without leading blanks, Fortran
fields run together (``-0.63265286-0.11227753``), CRLF line ends, gzip/bz2/xz compression, trailing blank
lines, and a truncated last frame (everything up to the last whole frame is returned, with a warning that
gives the frame count).

Everything read is validated, and a file that breaks a rule raises :class:`TrajectoryError` with one line
naming the file, the line and what was expected there (nothing after it is read):

* numbers are finite (``1e400``, ``1D400``, NaN and ``********`` are refused); an atom line holds exactly
  three of them, so a corrupted byte cannot shift the columns, and after them at most one species label
  (an element symbol, maybe charged: ``Li``, ``Fe2+``), as pymatgen's ``Trajectory.write_Xdatcar`` writes;
  the first frame's labels must be the header's species in order;
* fractional coordinates lie within one cell of the unit cell, [-1, 2): values outside [0, 1] are
  wrapped with one :class:`WrappedCoordinatesWarning` per file, values beyond are refused as absurd;
* the scale factor is one nonzero finite number; a negative one is the cell volume in A^3 (VASP's
  convention); the lattice vectors are finite, nonzero and independent (checked before any inverse), the
  cell is at least :data:`MIN_WIDTH` thick in every direction and holds :data:`VOLUME_PER_ATOM` A^3 per
  atom;
* atom counts are positive integers whose total the file can hold (:data:`MIN_ATOM_LINE` bytes per atom
  line; at most :data:`MAX_ATOMS`), checked before anything is allocated;
* configuration numbers count ``k * s`` for the k-th frame of a file (``s`` is the first number: 1 for
  VASP's count, NBLOCK for a writer that numbers MD steps), so a deleted or repeated frame is refused;
* line ends are LF or CRLF (a lone CR is refused), no body line is longer than :data:`MAX_LINE` bytes, and
  a frame is whole only when its last line ends with a line end;
* a VASP 4 file (no species line) with a POSCAR beside it must have the POSCAR's atom counts.

A corrupt compressed stream (gzip, bzip2, xz) ends the trajectory like a truncation: the whole frames
before the damage are returned and a :class:`CorruptTrajectoryWarning` says how many, even when that is
none (a run that has just started writes a header without frames, so no whole frame is not an error here;
the analysis refuses an empty trajectory itself).

Time axis: frame ``k`` (0-based, across stitched segments) is the configuration after MD step
``(k + 1) * NBLOCK``, so ``t_k = (k + 1) * dt_frame`` with ``dt_frame = POTIM * NBLOCK``.
"""

from __future__ import annotations

import ctypes
import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from cellsim.io.compressed import ByteSource, _compression, open_maybe_compressed
from cellsim.io.xdatcar_header import (
    _CONFIG,
    _WRAP_SLACK,
    CHUNK_BYTES,
    COORD_RANGE,
    HEAD_BYTES,
    MAX_ATOMS,
    MAX_LINE,
    MIN_ATOM_LINE,
    MIN_WIDTH,
    SMALL_FILE_ATOMS,
    VOLUME_PER_ATOM,
    CorruptTrajectoryWarning,
    FrameBlock,
    TrajectoryError,
    TruncatedTrajectoryWarning,
    WrappedCoordinatesWarning,
    XdatcarHeader,
    _atom_numbers,
    _excerpt,
    _lone_cr,
    _open_source,
    _parse_cell_block,
    read_header,
)

_Source = ByteSource

__all__ = [
    "CHUNK_BYTES",
    "COORD_RANGE",
    "HEAD_BYTES",
    "MAX_ATOMS",
    "MAX_LINE",
    "MIN_ATOM_LINE",
    "MIN_WIDTH",
    "SMALL_FILE_ATOMS",
    "VOLUME_PER_ATOM",
    "CorruptTrajectoryWarning",
    "FrameBlock",
    "TrajectoryError",
    "TruncatedTrajectoryWarning",
    "WrappedCoordinatesWarning",
    "XdatcarHeader",
    "cut_frames",
    "frames_line_count",
    "indexed_frame_count",
    "iter_frames",
    "open_maybe_compressed",
    "read_header",
    "read_trajectory",
]


# --------------------------------------------------------------------------- frame parsing


def _parse_frames_py(
    buf: bytes, pos: int, natoms: int, max_frames: int, out: np.ndarray, config: np.ndarray
) -> tuple[int, int, int, int]:
    """Pure-Python parser with the grammar and results of ``parse_frames`` in _kernels.c."""
    n = len(buf)
    nf, consumed, p = 0, pos, pos

    def line_end(p: int) -> int:
        """Offset of the line's '\\n'; -1 when it has none yet; -2 when longer than MAX_LINE."""
        le = buf.find(b"\n", p, p + MAX_LINE + 1)
        if le < 0 and n - p > MAX_LINE:
            return -2
        return le

    while nf < max_frames and p < n:
        le = line_end(p)
        if le == -1:
            return nf, consumed, -1, 0
        if le == -2:
            return nf, consumed, p, 4
        text = buf[p:le].lstrip(b" \t\r\f\v")
        if not text or text[:1] in b"0123456789+-.":
            return nf, consumed, p, 1
        cfg = -1
        eq = text.find(b"=")
        if eq >= 0:
            m = _CONFIG.fullmatch(text[eq + 1 :])
            cfg = int(m.group(1)) if m else -2
        p = le + 1
        for a in range(natoms):
            if p >= n:
                return nf, consumed, -1, 0
            le = line_end(p)
            if le == -1:
                return nf, consumed, -1, 0
            if le == -2:
                return nf, consumed, p, 4
            vals = _atom_numbers(buf[p:le])
            if vals is None:
                return nf, consumed, p, 2
            if not all(math.isfinite(v) for v in vals):
                return nf, consumed, p, 3
            out[nf, a] = vals
            p = le + 1
        config[nf] = cfg
        nf += 1
        consumed = p
    return nf, consumed, -1, 0


class _Parser:
    def __init__(self, natoms: int) -> None:
        from cellsim.core import _native

        self.natoms = natoms
        self.lib = _native.load()
        self._c = (ctypes.c_long(), ctypes.c_long(), ctypes.c_int())

    def frames(
        self, buf: bytes, pos: int, max_frames: int, out: np.ndarray, config: np.ndarray
    ) -> tuple[int, int, int, int]:
        """``(frames, offset after them, offset of a bad line or -1, its kind)``; see parse_frames."""
        if self.lib is None:
            return _parse_frames_py(buf, pos, self.natoms, max_frames, out, config)
        consumed, err, kind = self._c
        nf = self.lib.parse_frames(
            buf, len(buf), pos, self.natoms, max_frames, out.reshape(-1), config, consumed, err, kind
        )
        return int(nf), consumed.value, err.value, kind.value


_EXPECTED = {
    1: "a configuration line such as 'Direct configuration=     5'",
    2: "three coordinates",
    3: "finite coordinates",
    4: f"a line of at most {MAX_LINE} bytes",
}


class _FrameReader:
    """State of one pass over an XDATCAR's frames (see :func:`iter_frames`)."""

    def __init__(self, path: Path, hdr: XdatcarHeader, block_frames: int) -> None:
        self.path, self.hdr, self.block_frames = path, hdr, block_frames
        self.natoms = hdr.natoms
        self.parser = _Parser(self.natoms)
        # the output buffer grows with the data actually read, never with what a header claims
        self.frame_bytes = self.natoms * MIN_ATOM_LINE + 2
        self.min_rows = 1 if self.natoms <= SMALL_FILE_ATOMS else 0
        self.out = np.empty((0, self.natoms, 3))
        self.config = np.empty(0, dtype=np.int64)
        self.lattice, self.scale = hdr.lattice, hdr.scale
        # the lattice was validated (independent rows), so the inverse exists
        self.cart_inv = np.linalg.inv(hdr.lattice) * hdr.scale if hdr.cartesian else None
        self.k = 0  # whole frames of this file so far
        self.stride = 0  # configuration numbers: k * stride (> 0), none (-1), not known yet (0)
        self.wrapped = False
        self.done = False
        self.src = _open_source(path)
        self.buf = b""
        self.pos = 0
        self.line = 1  # the line number of buf[pos]

    def close(self) -> None:
        self.src.__exit__(None, None, None)

    def _read_more(self, n: int) -> None:
        more = self.src.read(n)
        _lone_cr(self.path, more, self.line + self.buf.count(b"\n", self.pos))
        self.buf, self.pos = self.buf[self.pos :] + more, 0

    def _error(self, line: int, expected: str, got: bytes) -> TrajectoryError:
        return TrajectoryError(
            f"{self.path}:{line}: expected {expected}, got {_excerpt(got)} (after {self.k} whole frames)"
        )

    def skip_header(self) -> bool:
        """Move past the header lines (read_header validated them); False when the file ends first."""
        if self.line > self.hdr.header_lines:
            return True
        if not self.buf:
            self._read_more(CHUNK_BYTES)
        while self.line <= self.hdr.header_lines:
            le = self.buf.find(b"\n", self.pos)
            if le < 0:
                if self.src.eof:
                    return False
                self._read_more(CHUNK_BYTES)
                continue
            self.pos, self.line = le + 1, self.line + 1
        return True

    def warn_corrupt(self) -> None:
        warnings.warn(
            f"{self.path}: {self.src.describe()} after {self.k} whole frames ({self.src.error}); the frames "
            f"before line {self.line} were read",
            CorruptTrajectoryWarning,
            stacklevel=3,
        )

    def next_block(self) -> FrameBlock | None:
        """The next validated block, or None at the end (after any truncation warning)."""
        if not self.skip_header():
            self.done = True
        hdr, natoms, buf = self.hdr, self.natoms, self.buf
        while not self.done:
            buf, pos = self.buf, self.pos
            cell_lines = hdr.header_lines if hdr.variable_cell and self.k > 0 else 0
            frames_at = pos
            if cell_lines:
                try:
                    got = _read_cell_block(buf, pos, hdr, self.line)
                except TrajectoryError:
                    if buf[pos:].strip():
                        raise
                    got = None  # blank lines after the last frame
                if got is not None:
                    self.lattice, self.scale, frames_at = got
                    if hdr.cartesian:
                        self.cart_inv = np.linalg.inv(self.lattice) * self.scale
            cap = 1 if hdr.variable_cell else self.block_frames
            cap = min(cap, max(self.min_rows, (len(buf) - frames_at) // self.frame_bytes))
            if cell_lines and frames_at == pos:  # the cell block is not all here yet
                cap = 0
            if cap > len(self.out):
                self.out, self.config = np.empty((cap, natoms, 3)), np.empty(cap, dtype=np.int64)
            nf, consumed, err, kind = (
                self.parser.frames(buf, frames_at, cap, self.out, self.config) if cap else (0, pos, -1, 0)
            )
            if err >= 0:
                if self.src.error:  # garbage decoded just before the damage was detected
                    self.done = True
                elif kind == 1 and not buf[err:].strip():
                    # blank lines ending the file, or the data read so far: the frames before them are
                    # whole; at the next call, more data decide
                    self.done = self.src.eof
                else:
                    le = buf.find(b"\n", err, err + MAX_LINE)
                    self.k += nf
                    raise self._error(
                        self.line + buf.count(b"\n", pos, err), _EXPECTED[kind], buf[err : le if le >= 0 else err + 80]
                    )
            if nf:
                block = self._validated(nf, frames_at, self.line + cell_lines)
                self.k += nf
                self.line += cell_lines + nf * (natoms + 1)
                self.pos = consumed
                return block
            if self.done:
                break
            if self.src.eof:
                self.done = True
                if not self.src.error and buf[pos:].strip():
                    warnings.warn(
                        f"{self.path}: truncated: read {self.k} whole frames; the incomplete frame from line "
                        f"{self.line} on was ignored",
                        TruncatedTrajectoryWarning,
                        stacklevel=3,
                    )
                break
            # at least a chunk, and as much again as is pending, so a frame larger than a chunk is parsed a
            # bounded number of times
            self._read_more(max(CHUNK_BYTES, len(buf) - pos))
        if self.src.error:
            self.warn_corrupt()
            self.src.error = None  # warned once
        return None

    def _validated(self, nf: int, frames_at: int, sep_line: int) -> FrameBlock:
        """Check the configuration numbers and coordinate range of ``nf`` parsed frames; wrap them."""
        buf, natoms, k = self.buf, self.natoms, self.k
        per_frame = natoms + 1
        cfg = self.config[:nf]
        if self.stride == 0:
            self.stride = int(cfg[0]) if cfg[0] >= 0 else -1
            if self.stride == 0:
                raise self._error(sep_line, "configuration number 1 (or the MD step)", _line_at(buf, frames_at))
        want = self.stride * np.arange(k + 1, k + nf + 1) if self.stride > 0 else None
        bad = np.flatnonzero(cfg != want) if want is not None else np.flatnonzero(cfg >= 0)
        if len(bad):
            j = int(bad[0])
            self.k += j
            raise self._error(
                sep_line + j * per_frame,
                f"configuration number {int(want[j])} (a frame deleted or repeated?)"
                if want is not None
                else "a configuration line without a number, like the first",
                _line_at(buf, _nth_line(buf, frames_at, j * per_frame)),
            )
        coords = self.out[:nf]
        frac = coords @ self.cart_inv if self.cart_inv is not None else coords.copy()
        lo, hi = float(frac.min()), float(frac.max())
        if not (lo >= COORD_RANGE[0] and hi < COORD_RANGE[1]):
            f, a = (int(i) for i in np.argwhere(~((frac >= COORD_RANGE[0]) & (frac < COORD_RANGE[1])))[0][:2])
            self.k += f
            raise self._error(
                sep_line + f * per_frame + 1 + a,
                f"fractional coordinates within one cell of the unit cell ({COORD_RANGE[0]:g} to {COORD_RANGE[1]:g})",
                _line_at(buf, _nth_line(buf, frames_at, f * per_frame + 1 + a)),
            )
        if lo < 0.0 or hi >= 1.0:
            if not self.wrapped and (lo < -_WRAP_SLACK or hi > 1.0 + _WRAP_SLACK):
                self.wrapped = True
                warnings.warn(
                    f"{self.path}: fractional coordinates outside [0, 1] (from {lo:.4g} to {hi:.4g} in frames "
                    f"{k + 1}-{k + nf}) were wrapped into the cell",
                    WrappedCoordinatesWarning,
                    stacklevel=4,
                )
            frac -= np.floor(frac)
            frac[frac >= 1.0] = 0.0  # -1e-17 - floor(-1e-17) rounds to 1.0
        return FrameBlock(frac, np.broadcast_to(self.lattice, (nf, 3, 3)).copy(), k)


def iter_frames(
    path: str | Path,
    block_frames: int = 256,
    species: list[str] | None = None,
    header: XdatcarHeader | None = None,
    start: int = 0,
    on_digest: Callable[[str], None] | None = None,
) -> Iterator[FrameBlock]:
    """Yield the validated frames of one XDATCAR in blocks of at most ``block_frames``.

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
    on_digest
        Called with the sha256 of the file's bytes once its last frame is read (hashed while it is read).

    Raises
    ------
    TrajectoryError
        At the first line that breaks a rule of the module docstring (the blocks before it were yielded).
    """
    hdr = header or read_header(path, species)
    reader = _FrameReader(Path(path), hdr, max(1, block_frames))
    try:
        while True:
            try:
                block = reader.next_block()
            except TrajectoryError:
                if not reader.src.error:
                    raise
                reader.warn_corrupt()  # a refusal inside the damaged part is the damage, not the file
                block = None
            if block is None:
                if on_digest is not None:
                    on_digest(reader.src.digest())
                return
            block.start += start
            yield block
    finally:
        reader.close()


def _nth_line(buf: bytes, pos: int, n: int) -> int:
    """Offset of the line ``n`` lines after the one starting at ``pos`` (used only for messages)."""
    for _ in range(n):
        pos = buf.index(b"\n", pos) + 1
    return pos


def _line_at(buf: bytes, pos: int) -> bytes:
    le = buf.find(b"\n", pos, pos + MAX_LINE)
    return buf[pos : le if le >= 0 else pos + 80]


def _read_cell_block(buf: bytes, pos: int, hdr: XdatcarHeader, line: int) -> tuple[np.ndarray, float, int] | None:
    """Parse and validate a per-frame cell block (title, scale, vectors, species, counts) at ``pos``.

    ``line`` is the line number of ``pos``. Returns the lattice, its scale factor and the offset after the
    block, or None when the buffer does not hold it all.
    """
    lines: list[bytes] = []
    p = pos
    for _ in range(hdr.header_lines):
        le = buf.find(b"\n", p, p + MAX_LINE + 1)
        if le < 0:
            if len(buf) - p > MAX_LINE:
                raise TrajectoryError(f"{hdr.path}:{line + len(lines)}: expected a line of at most {MAX_LINE} bytes")
            return None
        lines.append(buf[p:le])
        p = le + 1
    cell = _parse_cell_block(lines[1:], line + 1, hdr.path)
    if cell.counts != hdr.counts or cell.used != hdr.header_lines - 1 or (hdr.vasp5 and cell.symbols != hdr.symbols):
        raise TrajectoryError(
            f"{hdr.path}:{line}: expected the cell block of a frame with the first frame's atoms "
            f"({' '.join(hdr.symbols)} / {' '.join(map(str, hdr.counts))}), got "
            f"{' '.join(cell.symbols) or 'no species line'} / {' '.join(map(str, cell.counts))}"
        )
    return cell.lattice, cell.scale, p


def _config_line_number(line: bytes) -> int | None:
    """The number of a configuration line ('Direct configuration=     5'), None when the line is none."""
    text = line.strip(b" \t\r\f\v")
    if not text or text[:1] in b"0123456789+-.":
        return None
    eq = text.find(b"=")
    m = _CONFIG.fullmatch(text[eq + 1 :]) if eq >= 0 else None
    return int(m.group(1)) if m else None


def indexed_frame_count(path: str | Path, hdr: XdatcarHeader, max_frame_bytes: int = 1 << 22) -> int | None:
    """Whole frames of an XDATCAR from its index, without reading the frames: the configuration number of the
    last whole frame over the first one's (they count ``k * s``, checked when the frames are read).

    None when the file cannot tell: compressed (no seeking), a cell per frame, configuration lines without
    numbers, or a frame larger than ``max_frame_bytes``. The count is what a full read returns unless the file
    breaks a rule before its end (then the read raises) or repeats a frame across segments.
    """
    path = Path(path)
    if hdr.variable_cell or _compression(path) is not None:
        return None
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(min(size, max_frame_bytes))
        lines = head.split(b"\n", hdr.header_lines + hdr.natoms + 1)
        if len(lines) <= hdr.header_lines + hdr.natoms:
            return None  # no whole first frame in the head
        first = _config_line_number(lines[hdr.header_lines])
        if not first:
            return None
        frame_bytes = sum(len(x) + 1 for x in lines[hdr.header_lines : hdr.header_lines + hdr.natoms + 1])
        n = min(size, 2 * frame_bytes + 4 * MAX_LINE)
        fh.seek(size - n)
        tail = fh.read(n).replace(b"\r\n", b"\n")
    rows = tail.split(b"\n")
    if n < size:
        rows = rows[1:]  # the tail starts inside a line
    whole = len(rows) - 1  # the last piece has no line end: never part of a whole frame
    for i in range(whole - hdr.natoms - 1, -1, -1):
        cfg = _config_line_number(rows[i])
        if cfg is not None:
            return cfg // first if cfg % first == 0 else None
    return None


def read_trajectory(path: str | Path, species: list[str] | None = None) -> tuple[XdatcarHeader, np.ndarray, np.ndarray]:
    """Read a whole (small) XDATCAR: header, fractional coordinates (n, natoms, 3), cells (n, 3, 3)."""
    hdr = read_header(path, species)
    blocks = list(iter_frames(path, header=hdr))
    if not blocks:
        return hdr, np.empty((0, hdr.natoms, 3)), np.empty((0, 3, 3))
    return hdr, np.concatenate([b.frac for b in blocks]), np.concatenate([b.cells for b in blocks])


def frames_line_count(hdr: XdatcarHeader, frames: int) -> int:
    """Lines from the start of the XDATCAR of ``hdr`` to the end of its first ``frames`` frames: the header, then
    per frame its configuration line and atom lines (and, for a cell per frame, the cell block before each frame
    after the first), the layout :func:`iter_frames` reads."""
    frames = max(0, frames)
    per_frame = hdr.natoms + 1
    if hdr.variable_cell and frames:
        return frames * (hdr.header_lines + per_frame)
    return hdr.header_lines + frames * per_frame


def cut_frames(text: str, hdr: XdatcarHeader, frames: int) -> str:
    """The XDATCAR ``text`` (its header read as ``hdr``) cut after its first ``frames`` whole frames; the whole
    text when it holds no more lines than those."""
    n = frames_line_count(hdr, frames)
    pos, step = 0, 1 << 20
    while n > 0:  # count line ends a megabyte at a time, then step line by line
        c = text.count("\n", pos, pos + step)
        if c >= n:
            break
        if pos + step >= len(text):
            return text
        n -= c
        pos += step
    for _ in range(n):
        pos = text.index("\n", pos) + 1
    return text[:pos]
