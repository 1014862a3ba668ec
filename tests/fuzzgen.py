"""Seeded corpus of damaged XDATCARs for the reader's fuzz tests (tests/io/test_fuzz.py, bench/bench_fuzz.py).

Three small valid base trajectories are written here (no cellsim code involved, so a writer bug cannot
hide a reader bug): a VASP 5 file with one cell, a VASP 5 file with a cell per frame (NPT layout) and a
VASP 4 file (species from the title line). Each :class:`Case` is one base with one mutation, and carries
what a correct reader must do with it where the generator knows:

``equal``
    read, every frame equal to the expected frames (a valid file in another spelling: CRLF, D exponents,
    run-together fields, compression, a negative scale meaning the volume, ...);
``frames``
    read exactly the first ``n`` frames (a truncation: known from the byte offset of the cut), with a
    truncation warning when the cut is not at a frame end;
``prefix``
    refuse, or read the first ``m`` frames (m <= n), warned when m < n, and the frames equal the base
    unless a corrupt-data warning was given (damaged compressed data, deleted lines, lone CRs);
``refuse``
    a :class:`TrajectoryError` (NaN, inf, extra tokens, absurd cells and counts, deleted frames, ...);
``either``
    read or refuse, but never a traceback, hang or non-finite output, never more frames than the base
    (random byte flips and garbage: a flipped digit is still a valid file).

:func:`check` runs one case through the reader in-process and classifies the outcome.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SYMBOLS = ["In", "S", "Cl", "P"]
EXPECT = ("equal", "frames", "prefix", "refuse", "either")


@dataclass
class Base:
    """A valid trajectory: its text split into lines, and the frames a reader must return."""

    name: str
    lines: list[bytes]  # with their b"\n"
    frac: np.ndarray  # (n, natoms, 3)
    cells: np.ndarray  # (n, 3, 3)
    counts: list[int]
    header_lines: int  # lines before the first configuration line
    frame_spans: list[tuple[int, int]]  # line range of each frame, with its cell block (not frame 0's header)
    vasp4: bool = False

    @property
    def text(self) -> bytes:
        return b"".join(self.lines)

    @property
    def natoms(self) -> int:
        return sum(self.counts)

    def frame_end_offsets(self) -> list[int]:
        ends = np.cumsum([0] + [len(x) for x in self.lines])
        return [int(ends[b]) for _, b in self.frame_spans]


@dataclass
class Case:
    """One input: file bytes (and a POSCAR beside it), what a correct reader does with it."""

    name: str
    data: bytes
    expect: str
    base: Base
    frames: int | None = None  # for "frames": how many
    must_warn: bool = False  # for "frames": a truncation warning is due
    frac: np.ndarray | None = None  # expected frames when not the base's
    cells: np.ndarray | None = None
    poscar: bytes | None = None
    species: list[str] | None = None
    filename: str = "XDATCAR"
    kind: str = ""  # the mutation (set by generate)

    def __post_init__(self) -> None:
        assert self.expect in EXPECT, self.expect


# --------------------------------------------------------------------------- base trajectories


def _row(values: np.ndarray, spec: str, lead: str = "", sep: str = "") -> bytes:
    """One line of numbers, each formatted with ``spec`` (a format spec such as ``12.8f``)."""
    return (lead + sep.join(f"{float(v):{spec}}" for v in values) + "\n").encode()


def _fmt_cell(cell: np.ndarray) -> list[bytes]:
    return [_row(v, "12.6f", " ") for v in cell]


def _fmt_atoms(frac: np.ndarray) -> list[bytes]:
    return [_row(x, "12.8f") for x in frac]


def write_xdatcar(
    frac: np.ndarray,
    cells: np.ndarray,
    counts: list[int],
    *,
    title: str = "In S Cl P interface",
    variable: bool = False,
    vasp4: bool = False,
    scale: str = "           1",
    lattice_rows: np.ndarray | None = None,
    config: Callable[[int], str] = lambda k: f"Direct configuration={k:6d}",
    atom_lines: Callable[[np.ndarray], list[bytes]] = _fmt_atoms,
) -> tuple[list[bytes], int, list[tuple[int, int]]]:
    """Lines of an XDATCAR, the header length and the line span of each frame."""
    lines: list[bytes] = []
    spans: list[tuple[int, int]] = []
    header_lines = 0
    for k in range(len(frac)):
        if k == 0 or variable:
            lattice = lattice_rows if lattice_rows is not None else cells[k]
            block = [f"{title}\n".encode(), f"{scale}\n".encode(), *_fmt_cell(lattice)]
            if not vasp4:
                block.append(("".join(f"{s:>5}" for s in SYMBOLS) + "\n").encode())
            block.append(("".join(f"{c:6d}" for c in counts) + "\n").encode())
            header_lines = len(block)
            first = len(lines) if k > 0 else len(lines) + len(block)
            lines += block
        else:
            first = len(lines)
        lines.append(f"{config(k + 1)}\n".encode())
        lines += atom_lines(frac[k])
        spans.append((first, len(lines)))
    return lines, header_lines, spans


def make_bases(seed: int = 0) -> list[Base]:
    """The three valid trajectories (14 atoms of In/S/Cl/P; 12, 10 and 10 frames)."""
    rng = np.random.default_rng(seed)
    counts = [4, 6, 2, 2]
    natoms = sum(counts)
    lattice = np.array([[9.1, 0.0, 0.0], [0.4, 9.3, 0.0], [0.2, -0.3, 10.2]])
    bases = []
    for name, n, variable, vasp4 in (("npt", 10, True, False), ("vasp5", 12, False, False), ("vasp4", 10, False, True)):
        frac = np.round(np.minimum(rng.random((n, natoms, 3)), 0.99999999), 8)
        cells = np.array([lattice * (1.0 + (0.003 * k if variable else 0.0)) for k in range(n)])
        cells = np.round(cells, 6)
        title = "In S Cl P" if vasp4 else "In S Cl P interface"
        lines, hl, spans = write_xdatcar(frac, cells, counts, title=title, variable=variable, vasp4=vasp4)
        bases.append(Base(name, lines, frac, cells, counts, hl, spans, vasp4))
    return bases[1:] + bases[:1]  # vasp5 first: the most common layout


# --------------------------------------------------------------------------- helpers for mutations


def _atom_line_indices(base: Base) -> list[int]:
    out: list[int] = []
    for _, b in base.frame_spans:
        out += list(range(b - base.natoms, b))
    return out


def _replace_token(line: bytes, index: int, token: bytes) -> bytes:
    toks = line.split()
    toks[index] = token
    return b"  " + b"  ".join(toks) + b"\n"


def _compress(kind: str, data: bytes) -> bytes:
    if kind == "gz":
        return gzip.compress(data, mtime=0)
    if kind == "bz2":
        return bz2.compress(data)
    return lzma.compress(data)


def _poscar(base: Base, counts: list[int], with_species: bool = True) -> bytes:
    lines = [b"start\n", b"   1.0\n", *_fmt_cell(base.cells[0])]
    if with_species:
        lines.append(("".join(f"{s:>5}" for s in SYMBOLS) + "\n").encode())
    lines.append(("".join(f"{c:6d}" for c in counts) + "\n").encode())
    lines.append(b"Direct\n")
    lines += _fmt_atoms(base.frac[0])
    return b"".join(lines)


# --------------------------------------------------------------------------- mutations


def m_byte_flip(rng: np.random.Generator, base: Base) -> Case:
    data = bytearray(base.text)
    k = int(rng.integers(len(data)))
    data[k] = int(rng.integers(256))
    return Case(f"byte_flip@{k}", bytes(data), "either", base)


def m_digit_to_letter(rng: np.random.Generator, base: Base) -> Case:
    """A coordinate digit replaced by a letter that cannot be part of a number: must be refused."""
    li = int(rng.choice(_atom_line_indices(base)))
    line = bytearray(base.lines[li])
    digits = [i for i, c in enumerate(line) if chr(c).isdigit()]
    i = int(rng.choice(digits))
    line[i] = ord(rng.choice(list("abcfghxyzQ#!?/_")))
    lines = list(base.lines)
    lines[li] = bytes(line)
    return Case(f"digit_to_letter@line{li + 1}", b"".join(lines), "refuse", base)


def m_truncate(rng: np.random.Generator, base: Base) -> Case:
    text = base.text
    first_atom = sum(len(x) for x in base.lines[: base.frame_spans[0][0] + 1])
    if rng.random() < 0.15:  # exactly at a frame end, or one byte either side
        ends = base.frame_end_offsets()
        cut = int(rng.choice(ends[:-1])) + int(rng.integers(-1, 2))
    else:
        cut = int(rng.integers(1, len(text)))
    if cut <= first_atom:
        return Case(f"truncate@{cut}", text[:cut], "either", base)
    ends = base.frame_end_offsets()
    n = sum(1 for e in ends if e <= cut)
    return Case(f"truncate@{cut}", text[:cut], "frames", base, frames=n, must_warn=cut not in ends)


def m_cut_last_number(rng: np.random.Generator, base: Base) -> Case:
    """The audit's case 5: the file ends inside the last number (``0.1`` for ``0.12345678``)."""
    text = base.text
    cut = len(text) - 1 - int(rng.integers(1, 9))
    return Case(f"cut_last_number@{cut}", text[:cut], "frames", base, frames=len(base.frac) - 1, must_warn=True)


def m_no_final_newline(rng: np.random.Generator, base: Base) -> Case:
    return Case("no_final_newline", base.text[:-1], "frames", base, frames=len(base.frac) - 1, must_warn=True)


def m_delete_line(rng: np.random.Generator, base: Base) -> Case:
    lines = list(base.lines)
    i = int(rng.integers(len(lines)))
    del lines[i]
    return Case(f"delete_line{i + 1}", b"".join(lines), "prefix", base)


def m_duplicate_line(rng: np.random.Generator, base: Base) -> Case:
    lines = list(base.lines)
    i = int(rng.integers(len(lines)))
    lines.insert(i, lines[i])
    return Case(f"duplicate_line{i + 1}", b"".join(lines), "refuse", base)


def m_delete_frame(rng: np.random.Generator, base: Base) -> Case:
    n = len(base.frame_spans)
    k = int(rng.integers(1, n))  # frame 0 of an NPT file carries the file header
    a, b = base.frame_spans[k]  # with its cell block in an NPT file
    lines = base.lines[:a] + base.lines[b:]
    if k == n - 1:  # a shorter, valid file
        return Case(f"delete_frame{k + 1}", b"".join(lines), "frames", base, frames=n - 1)
    return Case(f"delete_frame{k + 1}", b"".join(lines), "refuse", base)


def m_duplicate_frame(rng: np.random.Generator, base: Base) -> Case:
    n = len(base.frame_spans)
    k = int(rng.integers(1, n))
    a, b = base.frame_spans[k]
    lines = base.lines[:b] + base.lines[a:b] + base.lines[b:]
    return Case(f"duplicate_frame{k + 1}", b"".join(lines), "refuse", base, kind="duplicate_frame")


def m_swap_frames(rng: np.random.Generator, base: Base) -> Case:
    if base.name == "npt":
        return m_duplicate_frame(rng, base)
    k = int(rng.integers(0, len(base.frame_spans) - 1))
    (a, b), (c, d) = base.frame_spans[k], base.frame_spans[k + 1]
    lines = base.lines[:a] + base.lines[c:d] + base.lines[a:b] + base.lines[d:]
    return Case(f"swap_frames{k + 1}", b"".join(lines), "refuse", base)


def _counts_line(base: Base) -> int:
    return base.header_lines - 1


def m_wrong_counts(rng: np.random.Generator, base: Base) -> Case:
    counts = list(base.counts)
    i = int(rng.integers(len(counts)))
    how = str(rng.choice(["+1", "-1", "x10", "0", "neg", "1e8", "1e11", "float", "text", "drop", "extra"]))
    if how == "+1":
        counts[i] += 1
    elif how == "-1":
        counts[i] -= 1 if counts[i] > 1 else -1
    elif how == "x10":
        counts[i] *= 10
    elif how == "0":
        counts[i] = 0
    elif how == "neg":
        counts[i] = -counts[i]
    elif how == "1e8":
        counts[i] = 100_000_000
    elif how == "1e11":
        counts[i] = 100_000_000_000
    row: list[str] = [str(c) for c in counts]
    if how == "float":
        row[i] = f"{counts[i]}.0"
    elif how == "text":
        row[i] = "four"
    elif how == "drop":
        del row[i]
    elif how == "extra":
        row.append("3")
    lines = list(base.lines)
    li = _counts_line(base)
    lines[li] = ("  " + "  ".join(row) + "\n").encode()
    if base.name == "npt":  # every cell block says the same
        for k in range(1, len(base.frame_spans)):
            lines[base.frame_spans[k][0] + li] = lines[li]
    return Case(f"wrong_counts_{how}", b"".join(lines), "refuse", base)


BAD_TOKENS = [
    b"nan",
    b"NaN",
    b"inf",
    b"-inf",
    b"Infinity",
    b"********",
    b"1e400",
    b"1D400",
    b"-1E+999",
    b"0.68D64104",
    b"1.2.3",
    b"0.5x",
    b"--0.5",
    b"0.5e",
    b"e5",
    b".",
    b"-",
    b"0x1p-3",
    b"1e300",
    b"-1e300",
    b"2.5",
    b"-1.5",
    b"12345.6",
]


def m_bad_coordinate(rng: np.random.Generator, base: Base) -> Case:
    li = int(rng.choice(_atom_line_indices(base)))
    tok = BAD_TOKENS[int(rng.integers(len(BAD_TOKENS)))]
    lines = list(base.lines)
    lines[li] = _replace_token(lines[li], int(rng.integers(3)), tok)
    return Case(f"bad_coordinate_{tok.decode()}@line{li + 1}", b"".join(lines), "refuse", base)


def m_valid_odd_coordinate(rng: np.random.Generator, base: Base) -> Case:
    """Legal numbers in odd spellings or slightly outside the cell: read, wrapped, exact."""
    li = int(rng.choice(_atom_line_indices(base)))
    col = int(rng.integers(3))
    k = next(j for j, (a, b) in enumerate(base.frame_spans) if a <= li < b)
    atom = li - (base.frame_spans[k][1] - base.natoms)
    x = float(base.frac[k, atom, col])
    choices = [
        (f"{x + 1.0:.8f}".encode(), x),
        (f"{x - 1.0:.8f}".encode(), x),
        (f"{x * 10:.8f}D-01".encode(), x),
        (f"{x:.8E}".encode(), x),
        (b"1e-300", 1e-300),
        (b"0e999", 0.0),
        (b"+" + f"{x:.8f}".encode(), x),
        (f"{x:.8f}".encode()[1:] if x < 1 else f"{x:.8f}".encode(), x),  # ".12345678"
    ]
    tok, value = choices[int(rng.integers(len(choices)))]
    frac = base.frac.copy()
    frac[k, atom, col] = value
    lines = list(base.lines)
    lines[li] = _replace_token(lines[li], col, tok)
    return Case(f"odd_coordinate_{tok.decode()}@line{li + 1}", b"".join(lines), "equal", base, frac=frac)


def m_extra_token(rng: np.random.Generator, base: Base) -> Case:
    """The audit's case 4: a fourth token (a corrupted byte splitting a number) must not shift columns."""
    li = int(rng.choice(_atom_line_indices(base)))
    toks = base.lines[li].split()
    where = int(rng.integers(4))
    toks.insert(where, str(int(rng.integers(1, 99999))).encode())
    lines = list(base.lines)
    lines[li] = b"  " + b"  ".join(toks) + b"\n"
    return Case(f"extra_token@line{li + 1}", b"".join(lines), "refuse", base)


def m_missing_token(rng: np.random.Generator, base: Base) -> Case:
    li = int(rng.choice(_atom_line_indices(base)))
    toks = base.lines[li].split()
    del toks[int(rng.integers(3))]
    lines = list(base.lines)
    lines[li] = b"  " + b"  ".join(toks) + b"\n"
    return Case(f"missing_token@line{li + 1}", b"".join(lines), "refuse", base)


def _cell_lines(base: Base) -> list[int]:
    """Indices of the lattice lines (first header, and every cell block of an NPT file)."""
    starts = [0] + ([a for a, _ in base.frame_spans[1:]] if base.name == "npt" else [])
    return [s + 2 + r for s in starts for r in range(3)]


BAD_LATTICES = {
    "zero_row": lambda L: np.array([L[0], [0.0, 0.0, 0.0], L[2]]),
    "zero": lambda L: np.zeros((3, 3)),
    "coplanar": lambda L: np.array([L[0], L[1], L[0] + L[1]]),
    "flat": lambda L: np.array([[12.0, 0, 0], [0, 12.0, 0], [12.0, 12.0, 1e-12]]),
    "huge": lambda L: L * np.array([[1e20], [1.0], [1.0]]),
    "tiny": lambda L: L * 1e-9,
    "needle": lambda L: np.array([[0.05, 0, 0], [0, 200.0, 0], [0, 0, 200.0]]),
}


def m_bad_lattice(rng: np.random.Generator, base: Base) -> Case:
    kind = list(BAD_LATTICES)[int(rng.integers(len(BAD_LATTICES)))]
    lines = list(base.lines)
    starts = _cell_lines(base)
    block = int(rng.integers(len(starts) // 3))
    rows = BAD_LATTICES[kind](base.cells[block])
    for r in range(3):
        lines[starts[3 * block + r]] = _row(rows[r], ".6g", " ", " ")
    return Case(f"bad_lattice_{kind}@block{block + 1}", b"".join(lines), "refuse", base)


def m_bad_lattice_token(rng: np.random.Generator, base: Base) -> Case:
    lines = list(base.lines)
    li = int(rng.choice(_cell_lines(base)))
    tok = [b"nan", b"inf", b"1e400", b"1.2.3", b"x", b"********", b"6.0 0.0"][int(rng.integers(7))]
    lines[li] = _replace_token(lines[li], int(rng.integers(3)), tok)
    return Case(f"bad_lattice_token_{tok.decode()}@line{li + 1}", b"".join(lines), "refuse", base)


BAD_SCALES = [
    b"0",
    b"-0",
    b"-1e-30",
    b"1e-30",
    b"1e30",
    b"1.2.3",
    b"2 3",
    b"nan",
    b"inf",
    b"-inf",
    b"",
    b"one",
    b"1e400",
]


def m_bad_scale(rng: np.random.Generator, base: Base) -> Case:
    tok = BAD_SCALES[int(rng.integers(len(BAD_SCALES)))]
    lines = list(base.lines)
    lines[1] = b"   " + tok + b"\n"
    return Case(f"bad_scale_{tok.decode() or 'blank'}", b"".join(lines), "refuse", base)


def m_scaled_spelling(rng: np.random.Generator, base: Base) -> Case:
    """The same cell written as (lattice / 2) x 2, or with a negative scale giving the volume: equal."""
    if base.name == "npt":
        return m_crlf(rng, base)
    lattice = base.cells[0]
    half = lattice / 2.0
    how = str(rng.choice(["double", "volume", "one_point_zero"]))
    lines = list(base.lines)
    if how == "one_point_zero":
        lines[1] = b"   1.00000000000000\n"
    else:
        # rows printed with more digits so the rescaled cell is the base's to 1e-9
        for r in range(3):
            lines[2 + r] = _row(half[r], ".12f", " ", " ")
        vol = abs(float(np.linalg.det(lattice)))
        lines[1] = b"   2.0\n" if how == "double" else f"  -{vol:.10f}\n".encode()
    return Case(f"scaled_{how}", b"".join(lines), "equal", base)


def m_cartesian(rng: np.random.Generator, base: Base) -> Case:
    """Cartesian coordinates (scaled by the scale factor as in VASP): equal to the base."""
    if base.name == "npt":
        return m_crlf(rng, base)
    scale = float(rng.choice([1.0, 2.0]))
    lattice0 = base.cells[0] / scale
    lines, _, _ = write_xdatcar(
        base.frac,
        base.cells,
        base.counts,
        title="In S Cl P" if base.vasp4 else "In S Cl P interface",
        vasp4=base.vasp4,
        scale=f"{scale:.1f}",
        lattice_rows=np.round(lattice0, 12),
        config=lambda k: f"Cartesian configuration={k:6d}",
        atom_lines=lambda f: [_row(x @ lattice0, "16.10f") for x in f],
    )
    lines = [_row(lattice0[i - 2], ".12f", " ", " ") if 2 <= i < 5 else ln for i, ln in enumerate(lines)]
    return Case(f"cartesian_scale{scale:g}", b"".join(lines), "equal", base)


def m_crlf(rng: np.random.Generator, base: Base) -> Case:
    lines = [ln[:-1] + b"\r\n" if (rng.random() < 0.5 or i == 0) else ln for i, ln in enumerate(base.lines)]
    return Case("crlf", b"".join(lines), "equal", base, kind="crlf")


def m_lone_cr(rng: np.random.Generator, base: Base) -> Case:
    if rng.random() < 0.3:
        return Case("lone_cr_all", base.text.replace(b"\n", b"\r"), "prefix", base)
    lines = list(base.lines)
    i = int(rng.integers(len(lines)))
    lines[i] = lines[i][:-1] + b"\r"
    return Case(f"lone_cr@line{i + 1}", b"".join(lines), "prefix", base)


def m_cr_in_number(rng: np.random.Generator, base: Base) -> Case:
    """A CR inside a number must not be dropped (it would join two digits silently)."""
    li = int(rng.choice(_atom_line_indices(base)))
    line = base.lines[li]
    i = int(rng.integers(3, len(line) - 2))
    lines = list(base.lines)
    lines[li] = line[:i] + b"\r" + line[i:]
    return Case(f"cr_in_number@line{li + 1}", b"".join(lines), "refuse", base)


def m_fortran_spelling(rng: np.random.Generator, base: Base) -> Case:
    """Run-together fields, tabs, no leading blanks, D/E exponents, renumbered configurations: equal."""
    how = str(
        rng.choice(["run_together", "tabs", "no_blanks", "d_exponent", "stride10", "unnumbered", "trailing_blank"])
    )
    if how == "trailing_blank":
        tail = [b"\n", b"\n\n", b"   \n", b"\n \n\t\n"][int(rng.integers(4))]
        return Case("trailing_blank_lines", base.text + tail, "equal", base)

    def atoms(f: np.ndarray) -> list[bytes]:
        if how == "run_together":  # %11.8f of x - 1 fills the field: "-0.63265286-0.11227753"
            shifted = np.where(rng.random(f.shape) < 0.5, f - 1.0, f)
            return [_row(row, "11.8f", " " if row[0] >= 0 else "") for row in shifted]
        if how == "tabs":
            return [_row(x, ".8f", "\t", "\t") for x in f]
        if how == "no_blanks":
            return [_row(x, ".8f", "", " ") for x in f]
        if how == "d_exponent":
            return [_row(x, ".8E", " ", " ").replace(b"E", b"D") for x in f]
        return _fmt_atoms(f)

    def config(k: int) -> str:
        if how == "stride10":
            return f"Direct configuration={10 * k:6d}"
        if how == "unnumbered":
            return "Direct"
        return f"Direct configuration={k:6d}"

    lines, _, _ = write_xdatcar(
        base.frac,
        base.cells,
        base.counts,
        title="In S Cl P" if base.vasp4 else "In S Cl P interface",
        variable=base.name == "npt",
        vasp4=base.vasp4,
        config=config,
        atom_lines=atoms,
    )
    return Case(f"spelling_{how}", b"".join(lines), "equal", base)


def m_bad_numbering(rng: np.random.Generator, base: Base) -> Case:
    how = str(rng.choice(["zero_based", "skip", "repeat", "garbled", "mixed"]))
    n = len(base.frac)
    j = int(rng.integers(1, n))

    def config(k: int) -> str:
        if how == "zero_based":
            return f"Direct configuration={k - 1:6d}"
        if how == "skip" and k > j:
            return f"Direct configuration={k + 1:6d}"
        if how == "repeat" and k == j + 1:
            return f"Direct configuration={k - 1:6d}"
        if how == "garbled" and k == j + 1:
            return f"Direct configuration={k:6d}x"
        if how == "mixed" and k == j + 1:
            return "Direct"
        return f"Direct configuration={k:6d}"

    lines, _, _ = write_xdatcar(
        base.frac,
        base.cells,
        base.counts,
        title="In S Cl P" if base.vasp4 else "In S Cl P interface",
        variable=base.name == "npt",
        vasp4=base.vasp4,
        config=config,
    )
    return Case(f"numbering_{how}@{j + 1}", b"".join(lines), "refuse", base)


def m_garbage(rng: np.random.Generator, base: Base) -> Case:
    how = str(rng.choice(["span", "append", "whole", "nul", "prepend"]))
    text = base.text
    junk = rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8).tobytes()
    if how == "span":
        k = int(rng.integers(len(text)))
        return Case("garbage_span", text[:k] + junk + text[k + len(junk) :], "either", base)
    if how == "append":
        return Case("garbage_append", text + junk, "prefix", base)
    if how == "whole":
        return Case("garbage_whole", rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(), "refuse", base)
    if how == "prepend":
        return Case("garbage_prepend", junk.replace(b"\n", b"") + b"\n" + text, "either", base)
    k = int(rng.integers(len(text)))
    return Case("nul_bytes", text[:k] + b"\x00" * int(rng.integers(1, 5)) + text[k:], "either", base)


def m_compressed(rng: np.random.Generator, base: Base) -> Case:
    kind = str(rng.choice(["gz", "bz2", "xz"]))
    data = _compress(kind, base.text)
    how = str(rng.choice(["valid", "flip", "flip", "truncate", "truncate", "zero_span"]))
    if how == "valid":
        return Case(f"{kind}_valid", data, "equal", base, filename=f"XDATCAR.{kind}")
    buf = bytearray(data)
    if how == "flip":
        k = int(rng.integers(len(buf)))
        buf[k] ^= 1 << int(rng.integers(8))
        return Case(f"{kind}_flip@{k}", bytes(buf), "prefix", base, filename=f"XDATCAR.{kind}")
    if how == "zero_span":
        k = int(rng.integers(len(buf)))
        buf[k : k + 16] = bytes(len(buf[k : k + 16]))
        return Case(f"{kind}_zeros@{k}", bytes(buf), "prefix", base, filename=f"XDATCAR.{kind}")
    k = int(rng.integers(1, len(buf)))
    return Case(f"{kind}_truncate@{k}", bytes(buf[:k]), "prefix", base, filename=f"XDATCAR.{kind}")


def m_absurd_header(rng: np.random.Generator, base: Base) -> Case:
    """Headers claiming absurd atom counts: refused before anything of that size is made."""
    total = int(rng.choice([10**8, 10**11, 10**7 + 1, 10**18, 2**63]))
    lines = list(base.lines)
    li = _counts_line(base)
    counts = list(base.counts)
    counts[0] = total
    lines[li] = ("  " + "  ".join(map(str, counts)) + "\n").encode()
    return Case(f"absurd_count_{total}", b"".join(lines), "refuse", base)


def m_vasp4_poscar(rng: np.random.Generator, base: Base) -> Case:
    """A VASP 4 file with a POSCAR beside it: same counts read, other counts refused (not relabelled)."""
    lines = list(base.lines)
    if not base.vasp4:  # make a VASP 4 file of this base: drop its species lines
        species_lines = {5} | ({a + 5 for a, _ in base.frame_spans[1:]} if base.name == "npt" else set())
        lines = [ln for i, ln in enumerate(lines) if i not in species_lines]
    title = lines[0]
    text = b"".join(b"my run\n" if ln == title else ln for ln in lines)  # the title repeats in NPT cell blocks
    same = rng.random() < 0.4
    counts = list(base.counts) if same else list(np.roll(base.counts, 1))
    if counts == base.counts and not same:
        counts = [base.counts[0] + 1, base.counts[1] - 1, *base.counts[2:]]
    poscar = _poscar(base, counts, with_species=bool(rng.random() < 0.8))
    return Case(
        f"vasp4_poscar_{'same' if same else 'other'}_counts",
        text,
        "equal" if same else "refuse",
        base,
        poscar=poscar,
        species=list(SYMBOLS),
    )


MUTATIONS: list[Callable[[np.random.Generator, Base], Case]] = [
    m_byte_flip,
    m_digit_to_letter,
    m_truncate,
    m_cut_last_number,
    m_no_final_newline,
    m_delete_line,
    m_duplicate_line,
    m_delete_frame,
    m_duplicate_frame,
    m_swap_frames,
    m_wrong_counts,
    m_bad_coordinate,
    m_valid_odd_coordinate,
    m_extra_token,
    m_missing_token,
    m_bad_lattice,
    m_bad_lattice_token,
    m_bad_scale,
    m_scaled_spelling,
    m_cartesian,
    m_crlf,
    m_lone_cr,
    m_cr_in_number,
    m_fortran_spelling,
    m_bad_numbering,
    m_garbage,
    m_compressed,
    m_absurd_header,
    m_vasp4_poscar,
]
# the random mutations find what nobody thought of: give them more weight
WEIGHTS: dict[Callable[[np.random.Generator, Base], Case], int] = {
    m_byte_flip: 4,
    m_truncate: 3,
    m_garbage: 2,
    m_compressed: 3,
    m_delete_line: 2,
}


def generate(seed: int, n: int) -> list[Case]:
    """``n`` cases: every mutation in turn (weighted), on every base in turn, parameters from ``seed``."""
    rng = np.random.default_rng(seed)
    bases = make_bases(seed)
    schedule = [m for m in MUTATIONS for _ in range(WEIGHTS.get(m, 1))]
    cases = []
    for i in range(n):
        mutate = schedule[i % len(schedule)]
        base = bases[(i // len(schedule)) % len(bases)]
        case = mutate(rng, base)
        case.name = f"{i:04d}-{base.name}-{case.name}"
        case.kind = case.kind or mutate.__name__.removeprefix("m_")
        cases.append(case)
    return cases


# --------------------------------------------------------------------------- running a case


@dataclass
class Outcome:
    """How the reader handled a case: ``status`` is read, refused, traceback, hang or wrong."""

    status: str
    detail: str = ""
    frames: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def write_case(case: Case, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / case.filename
    path.write_bytes(case.data)
    if case.poscar is not None:
        (directory / "POSCAR").write_bytes(case.poscar)
    return path


def judge(
    case: Case, path: Path, frac: np.ndarray, cells: np.ndarray, caught: list[warnings.WarningMessage]
) -> Outcome:
    """Classify a successful read against what the case expects."""
    from cellsim.io.xdatcar import CorruptTrajectoryWarning, TruncatedTrajectoryWarning

    names = [w.category.__name__ for w in caught]
    truncated = any(issubclass(w.category, TruncatedTrajectoryWarning) for w in caught)
    corrupt = any(issubclass(w.category, CorruptTrajectoryWarning) for w in caught)
    base = case.base
    n = len(base.frac)
    m = len(frac)
    if not (np.all(np.isfinite(frac)) and np.all(np.isfinite(cells))):
        return Outcome("wrong", "non-finite output", m, warnings=names)
    if m and (frac.min() < 0.0 or frac.max() >= 1.0):
        return Outcome("wrong", "coordinates outside [0, 1)", m, warnings=names)
    if m > n:
        return Outcome("wrong", f"{m} frames from a base of {n}", m, warnings=names)
    want_frac = case.frac if case.frac is not None else base.frac
    want_cells = case.cells if case.cells is not None else base.cells

    def same(k: int) -> bool:
        return bool(
            frac.shape[1:] == want_frac.shape[1:]
            and np.allclose(frac[:k], want_frac[:k], rtol=0.0, atol=2e-8)
            and np.allclose(cells[:k], want_cells[:k], rtol=0.0, atol=2e-6)
        )

    if case.expect == "refuse":
        return Outcome("wrong", "accepted a file that must be refused", m, warnings=names)
    if case.expect == "equal" and not (m == n and same(n)):
        return Outcome("wrong", f"read {m} frames that differ from the {n} expected", m, warnings=names)
    if case.expect == "frames":
        if not (m == case.frames and same(m)):
            return Outcome("wrong", f"read {m} frames, expected the first {case.frames}", m, warnings=names)
        if case.must_warn and not truncated:
            return Outcome("wrong", "a cut-off file read without a truncation warning", m, warnings=names)
    if case.expect == "prefix":
        if not same(m) and not corrupt:
            return Outcome("wrong", f"{m} frames that are not the base's first {m}", m, warnings=names)
        if m < n and not truncated:
            return Outcome("wrong", f"{m} of {n} frames without a warning", m, warnings=names)
    return Outcome("read", "", m, warnings=names)


def check(case: Case, directory: Path) -> Outcome:
    """Run one case through ``cellsim.io.xdatcar.read_trajectory`` in this process and classify it.

    A time limit is the caller's business (the reader's loops are bounded by the file, so a hang is a bug
    the caller's timer reports).
    """
    from cellsim.io.xdatcar import TrajectoryError, read_trajectory

    path = write_case(case, directory)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _, frac, cells = read_trajectory(path, species=case.species)
        except TrajectoryError as exc:
            dt = time.perf_counter() - t0
            msg = str(exc)
            if "\n" in msg or str(path) not in msg:
                return Outcome("wrong", f"refusal not one line naming the file: {msg!r}", seconds=dt)
            if case.expect in ("equal", "frames"):
                return Outcome("wrong", f"refused a readable file: {msg}", seconds=dt)
            return Outcome("refused", msg, seconds=dt)
        except Exception as exc:  # classifying every other exception is the point
            return Outcome("traceback", f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t0)
    out = judge(case, path, frac, cells, list(caught))
    out.seconds = time.perf_counter() - t0
    return out


class Hang(Exception):
    """A reader still running after the fuzz tests' time limit."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise Hang when the block runs longer than ``seconds`` (SIGALRM: the readers' loops are Python)."""

    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
