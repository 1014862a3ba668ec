"""The XDATCAR header (title, scale, lattice, species, counts, first configuration line) read and validated
(:func:`read_header`), the grammar both the header and the frames follow, and the reader's errors and warnings.
The rules are listed in :mod:`cellsim.io.xdatcar`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cellsim.core.errors import CellsimError
from cellsim.io.compressed import ByteSource

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


def _open_source(path: Path, hashed: bool = True) -> ByteSource:
    try:
        return ByteSource(path, hashed)
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
    """Atom counts of a POSCAR (VASP 4 or 5 layout), or None when it cannot tell (the one POSCAR reader,
    :func:`cellsim.io.poscar.poscar_counts`)."""
    from cellsim.io.poscar import poscar_counts

    return poscar_counts(poscar, HEAD_BYTES)


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
    head, lines, cell, next_two = _read_head(path)
    title = lines[0].decode(errors="replace").strip()
    counts, symbols = cell.counts, cell.symbols
    sep_idx = 1 + cell.used
    vasp5 = bool(symbols)
    if not symbols:
        symbols = _vasp4_symbols(path, title, counts, species, sep_idx)
    hdr = XdatcarHeader(
        path=path,
        title=title,
        symbols=symbols,
        counts=counts,
        lattice=cell.lattice,
        cartesian=_cartesian(path, lines, sep_idx),
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


def _read_head(path: Path) -> tuple[bytes, list[bytes], _Cell, tuple[bytes, bytes] | None]:
    """The file's first bytes (through the two lines after the first frame when the file has them), its first
    header lines, the validated cell block, and those two lines (None when the file ends before them)."""
    with _open_source(path, hashed=False) as src:  # the header only: no hash
        head = src.read(HEAD_BYTES)
        lines = head.split(b"\n", 9)[:9]  # the header has at most 8 lines; the frames stay unsplit
        if len(lines) < 7:
            if src.error:
                raise TrajectoryError(f"{path}: {src.describe()} in the header ({src.error})")
            raise TrajectoryError(
                f"{path}:1: expected an XDATCAR header of at least 7 lines, "
                + ("the file is shorter" if src.eof else f"got lines longer than {HEAD_BYTES} bytes")
            )
        try:
            _lone_cr(path, b"\n".join(lines[:8]), 1)
            cell = _parse_cell_block(lines[1:], 2, path, _atom_limit(path, src.kind))
        except TrajectoryError:
            if src.error:  # the header itself was cut by the damage
                raise TrajectoryError(f"{path}: {src.describe()} in the header ({src.error})") from None
            raise
        # the two lines after the first frame tell a per-frame cell block (VASP 5 NPT / ML output): read up
        # to them (bounded by the first frame, whose size the atom count limit bounds)
        after = 2 + cell.used + sum(cell.counts)
        next_two = _two_lines(head, after)
        while next_two is None and not src.eof:
            head += src.read(max(len(head), HEAD_BYTES))
            next_two = _two_lines(head, after)
    return head, lines, cell, next_two


def _vasp4_symbols(path: Path, title: str, counts: list[int], species: list[str] | None, sep_idx: int) -> list[str]:
    """The element symbols of a VASP 4 XDATCAR (no species line): ``species`` when given, else its title's;
    checked against the counts, and against those of a POSCAR beside it."""
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
    return symbols


def _cartesian(path: Path, lines: list[bytes], sep_idx: int) -> bool:
    """Whether the first configuration line (``lines[sep_idx]``) says Cartesian coordinates; an error when the
    line is none."""
    sep = lines[sep_idx] if sep_idx < len(lines) else b""
    text = sep.decode(errors="replace").strip()
    if not text or text[0] in "0123456789+-.":
        raise TrajectoryError(
            f"{path}:{sep_idx + 1}: expected a configuration line such as 'Direct configuration=     1', "
            f"got {_excerpt(sep) if sep_idx < len(lines) else 'end of file'}"
        )
    return text.lower().startswith(("c", "k")) and not text.lower().startswith("konfig")
