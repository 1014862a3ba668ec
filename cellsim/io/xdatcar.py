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

import bz2
import ctypes
import gzip
import lzma
import math
import re
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np

from cellsim.core.errors import CellsimError

CHUNK_BYTES = 4 << 20
HEAD_BYTES = 1 << 16
MAX_LINE = 4096  # bytes; the same bound as MAX_LINE in _kernels.c
MIN_ATOM_LINE = 6  # "0 0 0\n": the fewest bytes an atom line can take
MAX_ATOMS = 10_000_000
# a run that has just started has a header and no frame yet: its counts cannot be checked against the
# size, so up to this many atoms are accepted whatever the size (nothing is allocated before data arrive)
SMALL_FILE_ATOMS = 100_000
VOLUME_PER_ATOM = (1.0, 1.0e5)  # A^3; 1e5 still admits a molecule in a large box
MIN_WIDTH = 0.5  # A, the thinnest cell accepted (perpendicular distance between opposite faces)
COORD_RANGE = (-1.0, 2.0)  # fractional; one cell either side of [0, 1)
_WRAP_SLACK = 1e-6  # 1.00000000 or -0.00000001 from rounding are wrapped without a warning

_BLANKS = rb"[ \t\r\f\v]"
_NUMBER = rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?"
_SEP = rb"(?:" + _BLANKS + rb"+|(?=[-+]))"  # blanks, or nothing before a sign (run-together fields)
_ONE = re.compile(_BLANKS + rb"*(" + _NUMBER + rb")" + _BLANKS + rb"*")
_NUM_GROUP = rb"(" + _NUMBER + rb")"
_THREE = re.compile(_BLANKS + rb"*" + _NUM_GROUP + _SEP + _NUM_GROUP + _SEP + _NUM_GROUP + _BLANKS + rb"*")
# an atom line: three numbers, then perhaps a species label (pymatgen's Trajectory.write_Xdatcar writes one): an
# element symbol, maybe charged; the same grammar as parse_xyz in _kernels.c
_LABEL = rb"[A-Z][a-z]?(?:[0-9.]*[-+])?"
_ATOM = re.compile(
    _BLANKS + rb"*" + _NUM_GROUP + _SEP + _NUM_GROUP + _SEP + _NUM_GROUP
    + rb"(?:" + _BLANKS + rb"+(" + _LABEL + rb"))?" + _BLANKS + rb"*"
)  # fmt: skip
_CONFIG = re.compile(_BLANKS + rb"*(\d{1,18})" + _BLANKS + rb"*")
_ELEMENT = re.compile(r"^[A-Z][a-z]?$")


class TrajectoryError(CellsimError):
    """An XDATCAR (or segment set) cannot be read; the message names the file and line."""


class TruncatedTrajectoryWarning(UserWarning):
    """The trajectory ends inside a frame; the whole frames before it were read."""


class CorruptTrajectoryWarning(TruncatedTrajectoryWarning):
    """A compressed trajectory is damaged; the whole frames before the damage were read."""


class WrappedCoordinatesWarning(UserWarning):
    """Fractional coordinates outside [0, 1] (but within one cell of it) were wrapped into the cell."""


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
    scale: float = 1.0  # the factor applied to the lattice (and to Cartesian coordinates)

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


def _compression(path: Path) -> str | None:
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    if magic[:3] == b"BZh":
        return "bzip2"
    if magic[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return None


def open_maybe_compressed(path: Path) -> IO[bytes] | gzip.GzipFile:
    """Open for binary reading, decompressing gzip, bzip2 or xz by their magic bytes."""
    kind = _compression(path)
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "bzip2":
        return bz2.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


_DECODE_ERRORS = (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error)
_MAGIC = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00"}


def _decompressor(kind: str) -> zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor:
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper: header, CRC-32 and length checked
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor()


class _Source:
    """The file's bytes, decompressed and with CRLF made LF, in chunks.

    A decompression or read error ends the data (``error`` says why) instead of escaping as zlib.error,
    OSError, EOFError or LZMAError. Compressed data are decoded here, not by gzip/bz2/lzma.open, so the
    output up to the damage is kept: those lose the whole buffer (8 KiB) in which the error is detected,
    which for a small file is everything.
    """

    PIECE = 1 << 14  # compressed bytes per call
    OUT = 1 << 20  # decompressed bytes per call at most (a compression bomb is read a piece at a time)

    def __init__(self, path: Path) -> None:
        self.kind = _compression(path)
        self.raw = open(path, "rb")
        self.error: str | None = None
        self.eof = False
        self._carry = b""
        self._chunks = self._decoded() if self.kind else None

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.raw.close()

    def describe(self) -> str:
        return f"corrupt {self.kind} data" if self.kind else "read error"

    def _fail(self, exc: BaseException | str) -> None:
        self.error = " ".join(str(exc).split()) or type(exc).__name__

    def _drain(self, d: zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor, data: bytes) -> Iterator[bytes]:
        """Output of ``data`` fed to ``d``, at most OUT bytes a time (raises on corrupt data)."""
        out = d.decompress(data, self.OUT)
        yield out
        if isinstance(d, (bz2.BZ2Decompressor, lzma.LZMADecompressor)):
            while not d.eof and not d.needs_input:
                yield d.decompress(b"", self.OUT)
        else:
            while d.unconsumed_tail:
                yield d.decompress(d.unconsumed_tail, self.OUT)

    def _decoded(self) -> Iterator[bytes]:
        """Decompressed chunks of every stream (member) in the file; on damage, the output up to it."""
        assert self.kind is not None
        kind, raw = self.kind, self.raw
        d = _decompressor(kind)
        member_start = offset = 0
        while True:
            piece = raw.read(self.PIECE)
            if not piece:
                if not d.eof:
                    self._fail("the compressed data end before their end-of-stream marker")
                return
            given = 0  # bytes of this piece's output already passed on
            try:
                for out in self._drain(d, piece):
                    given += len(out)
                    yield out
            except _DECODE_ERRORS as exc:
                yield from self._recover(member_start, offset, piece, given)
                self._fail(exc)
                return
            offset += len(piece)
            if not d.eof:
                continue
            # a stream ended: another may follow (concatenated gzip members, bzip2 or xz streams), or zero
            # padding; anything else after the data is damage
            rest = d.unused_data + raw.read(1 << 12)
            next_start = offset - len(d.unused_data)
            while rest and not rest.strip(b"\0"):  # zero padding (gzip, xz stream padding)
                next_start += len(rest)
                rest = raw.read(1 << 16)
            zeros = len(rest) - len(rest.lstrip(b"\0"))
            next_start += zeros
            rest = rest[zeros:]
            if not rest:
                return
            if not rest.startswith(_MAGIC[kind][: len(rest)]):
                self._fail(f"unexpected data after the end of the compressed stream at byte {next_start}")
                return
            raw.seek(next_start)
            d, member_start, offset = _decompressor(kind), next_start, next_start

    def _recover(self, member_start: int, piece_start: int, piece: bytes, given: int) -> Iterator[bytes]:
        """Decode the stream again up to the damaged piece, then that piece in small bits: what it held."""
        d = _decompressor(self.kind or "")
        self.raw.seek(member_start)
        try:
            left = piece_start - member_start
            while left > 0:
                block = self.raw.read(min(left, 1 << 16))
                if not block:
                    return
                left -= len(block)
                for _ in self._drain(d, block):
                    pass
            for i in range(0, len(piece), 64):
                for out in self._drain(d, piece[i : i + 64]):
                    skip = min(given, len(out))
                    given -= skip
                    if len(out) > skip:
                        yield out[skip:]
        except _DECODE_ERRORS:
            return

    def read(self, n: int) -> bytes:
        """At least ``n`` bytes (a little more when compressed), fewer only at the end of the data."""
        pieces: list[bytes] = []
        got = 0
        while got < n and not self.eof:
            if self._chunks is not None:
                piece = next(self._chunks, None)  # the generator catches decoding errors itself
            else:
                try:
                    piece = self.raw.read(n - got)
                except OSError as exc:
                    self._fail(exc)
                    piece = None
            if piece is None or (self._chunks is None and not piece):
                self.eof = True
                break
            pieces.append(piece)
            got += len(piece)
        raw = self._carry + b"".join(pieces)
        self._carry = b""
        if raw.endswith(b"\r"):
            # the CR of a CRLF split between chunks waits for its LF; at the end of the file it belongs
            # to a last line that has no LF, which is incomplete anyway
            raw = raw[:-1]
            if not self.eof:
                self._carry = b"\r"
        if b"\r" in raw:
            raw = raw.replace(b"\r\n", b"\n")
        return raw


def _open_source(path: Path) -> _Source:
    try:
        return _Source(path)
    except OSError as exc:  # unreadable (permissions, a FIFO gone, I/O error)
        raise TrajectoryError(f"{path}: cannot read the trajectory ({exc.strerror or exc})") from None


def _excerpt(line: bytes) -> str:
    """A line as it appears in a message: decoded, stripped, shortened, quoted (so always one line)."""
    text = line.decode(errors="replace").strip()
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _float(token: bytes) -> float:
    return float(token.replace(b"d", b"e").replace(b"D", b"e"))


def _one_number(line: bytes) -> float | None:
    m = _ONE.fullmatch(line)
    return _float(m.group(1)) if m else None


def _three_numbers(line: bytes) -> list[float] | None:
    m = _THREE.fullmatch(line)
    return [_float(g) for g in m.groups()] if m else None


def _atom_numbers(line: bytes) -> list[float] | None:
    m = _ATOM.fullmatch(line)
    return [_float(g) for g in m.groups()[:3]] if m else None


def _check_labels(path: Path, head: bytes, sep_idx: int, species: list[str]) -> None:
    """Species labels after the first frame's coordinates (pymatgen writes them) must be the header's species.

    Only the first frame is compared: it tells a header whose species order is not the atoms' (the frames
    after it are the same atoms); later labels are read past without a look.
    """
    lines = head.split(b"\n", sep_idx + len(species) + 2)[sep_idx + 1 : sep_idx + 1 + len(species)]
    first = _ATOM.fullmatch(lines[0]) if lines else None
    if first is None or first.group(4) is None:
        return
    for a, line in enumerate(lines):
        m = _ATOM.fullmatch(line)
        if m is None or m.group(4) is None:
            continue  # a bad line is the frame parser's to report; a line without a label has nothing to compare
        label = m.group(4).decode()
        element = re.match(r"[A-Z][a-z]?", label)
        if element is None or element.group(0) != species[a]:
            raise TrajectoryError(
                f"{path}:{sep_idx + 2 + a}: expected the species label {species[a]} (atom {a + 1} in the header's "
                f"order of {' '.join(dict.fromkeys(species))}), got {label!r}: the header does not describe these atoms"
            )


def _lone_cr(path: Path, data: bytes, first_line: int) -> None:
    """Refuse a CR left after CRLF -> LF: read as a line end or ignored, it would change frames silently."""
    i = data.find(b"\r")
    if i >= 0:
        line = first_line + data.count(b"\n", 0, i)
        raise TrajectoryError(f"{path}:{line}: expected LF or CRLF line ends, got a lone carriage return (CR)")


@dataclass
class _Cell:
    lattice: np.ndarray
    scale: float
    used: int
    symbols: list[str]
    counts: list[int]


def _cell_lattice(
    vecs: np.ndarray,
    scale: float,
    natoms: int,
    fail: Callable[[int, str], TrajectoryError],
    fail_cell: Callable[[int, str], TrajectoryError],
) -> tuple[np.ndarray, float]:
    """Validated lattice (rows, scaled) and the factor applied.

    ``fail(k, what)`` refuses line k of the block (0: the scale) quoting it; ``fail_cell`` without quoting.
    """
    norms = np.hypot(np.hypot(vecs[:, 0], vecs[:, 1]), vecs[:, 2])  # no overflow for huge entries
    for k in range(3):
        if not norms[k] > 0.0:
            raise fail(k + 1, "a nonzero lattice vector")
    # shape factor |det| / (|a||b||c|) in [0, 1]: computed on unit rows, so neither overflow nor a
    # singular matrix can get past this point (no inverse has been taken yet)
    shape = abs(float(np.linalg.det(vecs / norms[:, None])))
    if not shape > 1e-6:
        raise fail_cell(1, f"three independent lattice vectors, got a flat cell (|det| = {shape:.2g} |a||b||c|)")
    if scale == 0.0:
        raise fail(0, "a nonzero scale factor")
    if scale > 0:
        s = scale
    else:  # VASP: a negative scale is the cell volume
        s = (-scale / (shape * float(np.prod(norms)))) ** (1.0 / 3.0)
    lattice = vecs * s
    lengths = norms * s
    volume = shape * float(np.prod(lengths))
    per_atom = volume / natoms
    lo, hi = VOLUME_PER_ATOM
    if not (lo <= per_atom <= hi) or not math.isfinite(s):
        raise fail_cell(
            0 if scale != 1.0 else 1,
            f"a cell of {lo:g} to {hi:g} A^3 per atom, got {per_atom:.3g} A^3 per atom "
            f"({natoms} atoms in {volume:.3g} A^3, scale factor {scale:g})",
        )
    a, b, c = lattice
    cross = np.hypot.reduce(np.array([np.cross(b, c), np.cross(c, a), np.cross(a, b)]), axis=1)
    widths = volume / cross
    if not np.all(widths >= MIN_WIDTH):
        raise fail_cell(
            1,
            f"a cell at least {MIN_WIDTH} A thick in every direction, got widths "
            + ", ".join(f"{w:.3g}" for w in widths)
            + " A",
        )
    return lattice, s


def _parse_cell_block(
    lines: list[bytes], first_line: int, path: Path, atom_limit: Callable[[int], str | None] | None = None
) -> _Cell:
    """Scale, lattice, (species), counts starting at the scale line, validated.

    ``atom_limit(total)`` returns why a total is too large for the file (None when it fits); it is checked
    before anything of that size is made.
    """

    def fail(k: int, expected: str) -> TrajectoryError:
        got = _excerpt(lines[k]) if k < len(lines) else "end of file"
        return TrajectoryError(f"{path}:{first_line + k}: expected {expected}, got {got}")

    def fail_cell(k: int, expected: str) -> TrajectoryError:
        return TrajectoryError(f"{path}:{first_line + k}: expected {expected}")

    if len(lines) < 5:
        raise fail(len(lines), "a complete XDATCAR header (scale, 3 lattice lines, species/counts)")
    scale = _one_number(lines[0])
    if scale is None or not math.isfinite(scale):
        raise fail(0, "the scale factor (one finite number)")
    vecs = []
    for k in range(1, 4):
        v = _three_numbers(lines[k])
        if v is None:
            raise fail(k, "a lattice vector (three numbers)")
        if not all(math.isfinite(x) for x in v):
            raise fail(k, "a lattice vector of finite numbers")
        vecs.append(v)
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
    total = sum(counts)
    why = atom_limit(total) if atom_limit else None
    if why:
        raise fail(used - 1, f"atom counts the file can hold, got {total:,} atoms ({why})")
    lattice, s = _cell_lattice(np.array(vecs, dtype=float), scale, total, fail, fail_cell)
    return _Cell(lattice, s, used, symbols, counts)


def _atom_limit(path: Path, kind: str | None) -> Callable[[int], str | None]:
    size = path.stat().st_size

    def why(total: int) -> str | None:
        if total > MAX_ATOMS:
            return f"more than the {MAX_ATOMS:,} atoms cellsim reads"
        if kind is None and total > SMALL_FILE_ATOMS and total * MIN_ATOM_LINE > size:
            return f"one frame needs at least {total * MIN_ATOM_LINE:,} bytes, the file has {size:,}"
        return None

    return why


def _poscar_counts(poscar: Path) -> list[int] | None:
    """Atom counts of a POSCAR (VASP 4 or 5 layout), or None when it cannot tell."""
    try:
        with open(poscar, "rb") as fh:
            lines = fh.read(HEAD_BYTES).replace(b"\r\n", b"\n").split(b"\n")
    except OSError:
        return None
    if len(lines) < 7:
        return None
    tokens = lines[5].decode(errors="replace").split()
    has_species = bool(tokens) and all(_ELEMENT.match(t.split("/")[0].split("_")[0]) for t in tokens)
    try:
        return [int(t) for t in lines[6 if has_species else 5].split()] or None
    except ValueError:
        return None


def _two_lines(data: bytes, n: int) -> tuple[bytes, bytes] | None:
    """Lines ``n`` and ``n + 1`` (0-based) of ``data`` when both are complete, else None."""
    pos, step = 0, 1 << 20
    while n > 0:  # count newlines a megabyte at a time, then step line by line
        c = data.count(b"\n", pos, pos + step)
        if c >= n or pos + step >= len(data):
            break
        n -= c
        pos += step
    for _ in range(n):
        pos = data.find(b"\n", pos) + 1
        if pos == 0:
            return None
    e1 = data.find(b"\n", pos)
    e2 = data.find(b"\n", e1 + 1) if e1 >= 0 else -1
    return (data[pos:e1], data[e1 + 1 : e2]) if e2 >= 0 else None


def read_header(path: str | Path, species: list[str] | None = None) -> XdatcarHeader:
    """Read and validate the header of an XDATCAR (VASP 5 with a species line, or VASP 4 without one).

    Parameters
    ----------
    path
        The XDATCAR (plain, .gz, .bz2 or .xz).
    species
        Element symbols in POSCAR order, needed only for VASP 4 files whose title does not list them.

    Raises
    ------
    TrajectoryError
        The header breaks a rule of the module docstring; the message names the line.
    """
    path = Path(path)
    if not path.is_file():
        raise TrajectoryError(f"{path}: no such trajectory file")
    with _open_source(path) as src:
        head = src.read(HEAD_BYTES)
        lines = head.split(b"\n", 9)[:9]  # the header has at most 8 lines; the frames stay unsplit
        if len(lines) < 7:
            if src.error:
                raise TrajectoryError(f"{path}: {src.describe()} in the header ({src.error})")
            raise TrajectoryError(
                f"{path}:1: expected an XDATCAR header of at least 7 lines, "
                + ("the file is shorter" if src.eof else f"got lines longer than {HEAD_BYTES} bytes")
            )
        title = lines[0].decode(errors="replace").strip()
        try:
            _lone_cr(path, b"\n".join(lines[:8]), 1)
            cell = _parse_cell_block(lines[1:], 2, path, _atom_limit(path, src.kind))
        except TrajectoryError:
            if src.error:  # the header itself was cut by the damage
                raise TrajectoryError(f"{path}: {src.describe()} in the header ({src.error})") from None
            raise
        counts, symbols, used = cell.counts, cell.symbols, cell.used
        natoms = sum(counts)
        sep_idx = 1 + used
        # the two lines after the first frame tell a per-frame cell block (VASP 5 NPT / ML output): read up
        # to them (bounded by the first frame, whose size the atom count limit bounds)
        after = sep_idx + 1 + natoms
        next_two = _two_lines(head, after)
        while next_two is None and not src.eof:
            head += src.read(max(len(head), HEAD_BYTES))
            next_two = _two_lines(head, after)
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
            raise TrajectoryError(
                f"{path}:{sep_idx}: expected {len(symbols)} atom counts, one per species given "
                f"({' '.join(symbols)}), got {len(counts)}"
            )
        poscar = path.parent / "POSCAR"
        beside = _poscar_counts(poscar) if poscar.is_file() else None
        if beside is not None and beside != counts:
            raise TrajectoryError(
                f"{path}:{sep_idx}: expected the atom counts of {poscar} ({' '.join(map(str, beside))}), got "
                f"{' '.join(map(str, counts))}: this VASP 4 XDATCAR has no species line, so its atoms cannot be "
                "labelled from that POSCAR"
            )
    sep = lines[sep_idx] if sep_idx < len(lines) else b""
    text = sep.decode(errors="replace").strip()
    if not text or text[0] in "0123456789+-.":
        raise TrajectoryError(
            f"{path}:{sep_idx + 1}: expected a configuration line such as 'Direct configuration=     1', "
            f"got {_excerpt(sep) if sep_idx < len(lines) else 'end of file'}"
        )
    cartesian = text.lower().startswith(("c", "k")) and not text.lower().startswith("konfig")
    hdr = XdatcarHeader(
        path=path,
        title=title,
        symbols=symbols,
        counts=counts,
        lattice=cell.lattice,
        cartesian=cartesian,
        header_lines=sep_idx,
        vasp5=vasp5,
        species=[s for s, c in zip(symbols, counts, strict=True) for _ in range(c)],
        scale=cell.scale,
    )
    _check_labels(path, head, sep_idx, hdr.species)
    # a per-frame cell block repeats the title line, then the scale, after the first frame
    if next_two is not None:
        hdr.variable_cell = next_two[0].strip() == lines[0].strip() and _one_number(next_two[1]) is not None
    return hdr


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
                return
            if block is None:
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


def read_trajectory(path: str | Path, species: list[str] | None = None) -> tuple[XdatcarHeader, np.ndarray, np.ndarray]:
    """Read a whole (small) XDATCAR: header, fractional coordinates (n, natoms, 3), cells (n, 3, 3)."""
    hdr = read_header(path, species)
    blocks = list(iter_frames(path, header=hdr))
    if not blocks:
        return hdr, np.empty((0, hdr.natoms, 3)), np.empty((0, 3, 3))
    return hdr, np.concatenate([b.frac for b in blocks]), np.concatenate([b.cells for b in blocks])


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
