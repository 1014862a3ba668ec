"""The XDATCAR reader: every quirk of real files is read, or refused with the line and what was expected."""

from __future__ import annotations

import bz2
import gzip
import lzma
import warnings
from pathlib import Path

import numpy as np
import pytest

from cellsim.core import _native
from cellsim.io.stitching import iter_segments
from cellsim.io.xdatcar import (
    TrajectoryError,
    TruncatedTrajectoryWarning,
    WrappedCoordinatesWarning,
    iter_frames,
    read_header,
    read_trajectory,
)
from cellsim.testing import xdatcar_text

SYMS, COUNTS = ["In", "S", "Cl"], [2, 3, 1]
LAT = np.array([[6.0, 0.0, 0.0], [0.5, 6.2, 0.0], [0.3, -0.4, 7.1]])


@pytest.fixture(params=["native", "numpy"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "numpy":
        monkeypatch.setattr(_native, "load", lambda: None)
    else:
        assert _native.load() is not None, "the C kernels must build on this machine"
    return str(request.param)


def _frames(n: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, sum(COUNTS), 3))


def test_vasp5_roundtrip(tmp_path: Path, backend: str) -> None:
    fr = _frames()
    p = tmp_path / "XDATCAR"
    p.write_text(xdatcar_text(SYMS, COUNTS, LAT, fr))
    hdr, frac, cells = read_trajectory(p)
    assert hdr.symbols == SYMS and hdr.counts == COUNTS and hdr.vasp5 and not hdr.variable_cell
    assert hdr.species == ["In", "In", "S", "S", "S", "Cl"]
    assert frac.shape == (5, 6, 3)
    np.testing.assert_allclose(frac, fr, atol=1e-8)
    np.testing.assert_allclose(cells[0], LAT, atol=1e-6)


# VASP's fixed layout (read by the C kernel from known offsets) and lines one character off it (read the general
# way, or refused as before): the numbers must be the NumPy parser's to the bit
_FIXED_LINES = [
    "  0.35292678  0.49933598  0.48047696",
    " -0.00000000 -0.12345678  1.99999999",
    "  1.00000000  0.00000000 -0.87654321",
    "  0.35292678  0.49933598  0.4804769 ",  # 7 decimals and a blank: general path
    "  0.35292678  0.49933598  0.480476961",  # 9 decimals: general path
    " +0.35292678  0.49933598  0.48047696",  # a plus sign: general path
    "  0.35292678  0.49933598  0.48047696 In",  # a species label: general path
    "  0.35292678  0.49933598\t0.48047696",  # a tab: general path
    "0.35292678  0.49933598   0.48047696  ",  # shifted: general path
]


@pytest.mark.filterwarnings("ignore:.*were wrapped into the cell")
@pytest.mark.parametrize(
    "bad",
    [
        "  0.3529a678  0.49933598  0.48047696",
        "  0.35292678  0.4993.598  0.48047696",
        "  0.35292678  0.49933598  0.4804769:",  # the byte after '9'
        "  0.35292678  0.49933598  /.48047696",  # the byte before '0'
        "  0.35292678  0.49933598  0.480476/6",
    ],
)
def test_fixed_layout_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    head = "t\n1\n" + "".join(f"  {r[0]:.6f} {r[1]:.6f} {r[2]:.6f}\n" for r in LAT) + "In\n1\n"
    body = "".join(f"Direct configuration= {k + 1}\n{ln}\n" for k, ln in enumerate(_FIXED_LINES))
    p = tmp_path / "XDATCAR"
    p.write_text(head + body)
    native = read_trajectory(p)[1]
    monkeypatch.setattr(_native, "load", lambda: None)
    plain = read_trajectory(p)[1]
    assert native.shape == (len(_FIXED_LINES), 1, 3)
    assert native.tobytes() == plain.tobytes()
    assert native[0, 0].tolist() == [0.35292678, 0.49933598, 0.48047696]
    # a line of the fixed width with a bad digit is refused by both, at the same line
    q = tmp_path / "BAD"
    q.write_text(head + f"Direct configuration= 1\n{_FIXED_LINES[0]}\nDirect configuration= 2\n{bad}\n")
    errors = []
    for use in (True, False):
        if use:
            monkeypatch.undo()
        with pytest.raises(TrajectoryError, match="BAD:11:") as exc:
            read_trajectory(q)
        errors.append(str(exc.value))
        monkeypatch.setattr(_native, "load", lambda: None)
    assert errors[0] == errors[1] and "BAD:11:" in errors[0], errors


def test_agrees_with_pymatgen_and_ase(tmp_path: Path) -> None:
    from ase import Atoms
    from ase.io import read as ase_read
    from pymatgen.io.vasp import Xdatcar

    fr = _frames(4)
    p = tmp_path / "XDATCAR"
    p.write_text(xdatcar_text(SYMS, COUNTS, LAT, fr))
    _, frac, _ = read_trajectory(p)
    pmg = Xdatcar(str(p)).structures
    ase_frames = ase_read(p, index=":", format="vasp-xdatcar")
    assert len(pmg) == len(ase_frames) == len(frac)
    for k in range(len(frac)):
        atoms = ase_frames[k]
        assert isinstance(atoms, Atoms)
        np.testing.assert_allclose(frac[k], pmg[k].frac_coords % 1.0, atol=1e-12)
        np.testing.assert_allclose(frac[k], atoms.get_scaled_positions(wrap=True), atol=1e-12)


def test_vasp4_header_species_from_title_or_argument(tmp_path: Path, backend: str) -> None:
    fr = _frames(3)
    p = tmp_path / "XDATCAR"
    p.write_text(xdatcar_text(SYMS, COUNTS, LAT, fr, title="In S Cl", vasp4=True))
    hdr, frac, _ = read_trajectory(p)
    assert not hdr.vasp5 and hdr.symbols == SYMS and frac.shape == (3, 6, 3)
    p.write_text(xdatcar_text(SYMS, COUNTS, LAT, fr, title="my run", vasp4=True))
    with pytest.raises(TrajectoryError, match=r"XDATCAR:1: VASP 4 XDATCAR \(no species line\)"):
        read_header(p)
    hdr = read_header(p, species=SYMS)
    assert hdr.species[0] == "In"


def test_per_frame_cells(tmp_path: Path, backend: str) -> None:
    fr = _frames(4)
    cells = np.array([LAT * (1 + 0.01 * k) for k in range(4)])
    p = tmp_path / "XDATCAR"
    p.write_text(xdatcar_text(SYMS, COUNTS, LAT, fr, cells=cells))
    hdr, frac, got_cells = read_trajectory(p)
    assert hdr.variable_cell
    np.testing.assert_allclose(got_cells, cells, atol=1e-6)
    np.testing.assert_allclose(frac, fr, atol=1e-8)


def test_quirks_no_leading_blanks_run_together_crlf(tmp_path: Path, backend: str) -> None:
    text = (
        "quirky\n 1.0\n 6.0 0.0 0.0\n 0.0 6.0 0.0\n 0.0 0.0 6.0\n In S\n 1 2\n"
        "Direct configuration=     1\n"
        "0.10000000 0.20000000 0.30000000\n"
        " -0.63265286-0.11227753 0.5\n"
        "  0.1D+00  2.5E-1   .75\n"
        "Direct configuration=     2\n"
        "0.1 0.2 0.3\n0.4 0.5 0.6\n0.7 0.8 0.9\n"
    )
    p = tmp_path / "XDATCAR"
    p.write_bytes(text.replace("\n", "\r\n").encode())
    with pytest.warns(WrappedCoordinatesWarning, match=r"from -0.6327 to 0.9 in frames 1-2"):
        _, frac, _ = read_trajectory(p)
    assert frac.shape == (2, 3, 3)
    np.testing.assert_allclose(frac[0, 1], [-0.63265286 % 1, -0.11227753 % 1, 0.5], atol=1e-12)
    np.testing.assert_allclose(frac[0, 2], [0.1, 0.25, 0.75], atol=1e-15)


@pytest.mark.parametrize("opener", [gzip.open, bz2.open, lzma.open])
def test_compressed(tmp_path: Path, opener: object, backend: str) -> None:
    fr = _frames(6)
    p = tmp_path / "XDATCAR.z"
    with opener(p, "wt") as fh:  # type: ignore[operator]
        fh.write(xdatcar_text(SYMS, COUNTS, LAT, fr))
    _, frac, _ = read_trajectory(p)
    np.testing.assert_allclose(frac, fr, atol=1e-8)


def test_truncated_last_frame_warns_with_count(tmp_path: Path, backend: str) -> None:
    fr = _frames(5)
    text = xdatcar_text(SYMS, COUNTS, LAT, fr)
    p = tmp_path / "XDATCAR"
    cut = text.rfind("Direct") + 60  # into the 5th frame, mid-line
    p.write_text(text[:cut])
    with pytest.warns(
        TruncatedTrajectoryWarning, match=r"truncated: read 4 whole frames; the incomplete frame from line \d+"
    ):
        _, frac, _ = read_trajectory(p)
    assert len(frac) == 4
    np.testing.assert_allclose(frac, fr[:4], atol=1e-8)


def test_bad_line_names_line_number(tmp_path: Path, backend: str) -> None:
    text = xdatcar_text(SYMS, COUNTS, LAT, _frames(3)).splitlines(keepends=True)
    bad_line = 7 + 1 + 7 + 3  # header 7, frame 1 (8 lines), then frame 2's 3rd atom
    text[bad_line - 1] = "  0.1  oops  0.3\n"
    p = tmp_path / "XDATCAR"
    p.write_text("".join(text))
    with pytest.raises(
        TrajectoryError,
        match=rf"XDATCAR:{bad_line}: expected three coordinates, got '0.1  oops  0.3' \(after 1 whole frames\)",
    ):
        read_trajectory(p)


def test_missing_configuration_line(tmp_path: Path, backend: str) -> None:
    lines = xdatcar_text(SYMS, COUNTS, LAT, _frames(2)).splitlines(keepends=True)
    del lines[7 + 1 + 6]  # the second 'Direct configuration' line
    p = tmp_path / "XDATCAR"
    p.write_text("".join(lines) + "  0.1 0.1 0.1\n")
    with pytest.raises(
        TrajectoryError, match=r"XDATCAR:15: expected a configuration line such as 'Direct configuration=     5'"
    ):
        read_trajectory(p)


@pytest.mark.parametrize(
    ("lineno", "replacement", "expected"),
    [
        (2, "one\n", r"XDATCAR:2: expected the scale factor"),
        (4, " 0.0 6.0\n", r"XDATCAR:4: expected a lattice vector \(three numbers\)"),
        (7, "  2  x  1\n", r"XDATCAR:7: expected the atom counts \(integers\)"),
        (7, "  2  3\n", r"XDATCAR:7: expected 3 atom counts, one per species"),
    ],
)
def test_bad_header(tmp_path: Path, lineno: int, replacement: str, expected: str) -> None:
    lines = xdatcar_text(SYMS, COUNTS, LAT, _frames(1)).splitlines(keepends=True)
    lines[lineno - 1] = replacement
    p = tmp_path / "XDATCAR"
    p.write_text("".join(lines))
    with pytest.raises(TrajectoryError, match=expected):
        read_header(p)


def test_streaming_blocks_and_large_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cellsim.io.xdatcar as tr

    monkeypatch.setattr(tr, "CHUNK_BYTES", 1000)  # force many chunk boundaries
    fr = _frames(40)
    p = tmp_path / "XDATCAR"
    p.write_text(xdatcar_text(SYMS, COUNTS, LAT, fr))
    blocks = list(iter_frames(p, block_frames=7))
    assert all(1 <= len(b) <= 7 for b in blocks) and len(blocks) > 40 // 7
    assert [b.start for b in blocks] == list(np.cumsum([0] + [len(b) for b in blocks[:-1]]))
    np.testing.assert_allclose(np.concatenate([b.frac for b in blocks]), fr, atol=1e-8)


def test_segments_stitch_without_duplicates(tmp_path: Path) -> None:
    fr = _frames(9)
    paths = []
    for k, (a, b) in enumerate([(0, 4), (4, 7), (7, 9)]):
        p = tmp_path / f"seg-{k:03d}" / "XDATCAR"
        p.parent.mkdir()
        p.write_text(xdatcar_text(SYMS, COUNTS, LAT, fr[a:b]))
        paths.append(p)
    blocks = [b for _, b in iter_segments(paths)]
    assert [b.start for b in blocks] == [0, 4, 7]
    np.testing.assert_allclose(np.concatenate([b.frac for b in blocks]), fr, atol=1e-8)
    other = tmp_path / "other" / "XDATCAR"
    other.parent.mkdir()
    other.write_text(xdatcar_text(["In", "S"], [3, 3], LAT, fr[:2, :6]))
    with pytest.raises(TrajectoryError, match=r"atoms differ from the first segment"):
        list(iter_segments([paths[0], other]))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TrajectoryError, match=r"no such trajectory file"):
        read_header(tmp_path / "nope")


# --------------------------------------------------------------------------- validation rules (issue 16)


def _text(n: int = 3, **kw: object) -> str:
    return xdatcar_text(SYMS, COUNTS, LAT, _frames(n), **kw)  # type: ignore[arg-type]


def test_configuration_numbers_count_per_file(tmp_path: Path, backend: str) -> None:
    p = tmp_path / "XDATCAR"
    # a writer numbering MD steps (NBLOCK 10), or no numbers at all: read
    text = _text(4)
    for k in range(4, 0, -1):
        text = text.replace(f"configuration={k:6d}", f"configuration={10 * k:6d}")
    p.write_text(text)
    assert len(read_trajectory(p)[1]) == 4
    p.write_text("".join("Direct\n" if ln.startswith("Direct") else ln for ln in _text(4).splitlines(keepends=True)))
    assert len(read_trajectory(p)[1]) == 4
    # counting from 0, or a number missing among numbered frames: refused at the line
    p.write_text(_text(2, start=0))
    with pytest.raises(TrajectoryError, match=r"XDATCAR:8: expected configuration number 1 \(or the MD step\)"):
        read_trajectory(p)
    p.write_text(_text(3).replace("configuration=     2", "configuration="))
    with pytest.raises(
        TrajectoryError, match=r"XDATCAR:15: expected configuration number 2 .*got 'Direct configuration='"
    ):
        read_trajectory(p)


def test_coordinates_wrapped_with_one_warning_absurd_refused(tmp_path: Path, backend: str) -> None:
    fr = _frames(3)
    shifted = fr.copy()
    shifted[0, 0, 0] += 1.0  # 1.x: one cell away, wrapped
    shifted[2, 1, 2] -= 1.0
    p = tmp_path / "XDATCAR"
    p.write_text(xdatcar_text(SYMS, COUNTS, LAT, shifted))
    with pytest.warns(WrappedCoordinatesWarning, match=r"outside \[0, 1\].*were wrapped") as rec:
        _, frac, _ = read_trajectory(p)
    assert len([w for w in rec if w.category is WrappedCoordinatesWarning]) == 1
    np.testing.assert_allclose(frac, fr, atol=1e-8)
    shifted[1, 3, 1] = 7.5
    p.write_text(xdatcar_text(SYMS, COUNTS, LAT, shifted))
    with pytest.raises(TrajectoryError, match=r"XDATCAR:19: expected fractional coordinates within one cell"):
        read_trajectory(p)


def test_cartesian_coordinates_are_scaled_like_the_lattice(tmp_path: Path, backend: str) -> None:
    fr = _frames(2)
    half = LAT / 2.0
    lines = ["cart\n", "   2.0\n", *(f" {a:.10f} {b:.10f} {c:.10f}\n" for a, b, c in half), " In S Cl\n", " 2 3 1\n"]
    for k, f in enumerate(fr):
        lines.append(f"Cartesian configuration= {k + 1}\n")
        lines += [f" {x:.10f} {y:.10f} {z:.10f}\n" for x, y, z in f @ half]
    p = tmp_path / "XDATCAR"
    p.write_text("".join(lines))
    hdr, frac, cells = read_trajectory(p)
    assert hdr.cartesian and hdr.scale == 2.0
    np.testing.assert_allclose(cells[0], LAT, atol=1e-9)
    np.testing.assert_allclose(frac, fr, atol=1e-9)


def test_per_frame_cells_are_validated(tmp_path: Path, backend: str) -> None:
    cells = np.array([LAT * (1 + 0.01 * k) for k in range(3)])
    p = tmp_path / "XDATCAR"
    text = xdatcar_text(SYMS, COUNTS, LAT, _frames(3), cells=cells)
    second = text.index("     2     3     1", text.index("Direct"))
    p.write_text(text[:second] + "     2     4     1" + text[second + 18 :])
    with pytest.raises(TrajectoryError, match=r"XDATCAR:15: expected the cell block of a frame with the first frame's"):
        read_trajectory(p)
    cells[2, 2] = cells[2, 0] + cells[2, 1]  # coplanar third cell
    p.write_text(xdatcar_text(SYMS, COUNTS, LAT, _frames(3), cells=cells))
    blocks = []
    with pytest.raises(TrajectoryError, match=r"XDATCAR:31: expected three independent lattice vectors"):
        for block in iter_frames(p, block_frames=1):
            blocks.append(block)
    assert len(blocks) == 2


def test_line_longer_than_the_limit_refused(tmp_path: Path, backend: str) -> None:
    p = tmp_path / "XDATCAR"
    lines = _text(2).splitlines(keepends=True)
    lines[10] = "  0.1" + " " * 5000 + "0.2 0.3\n"
    p.write_text("".join(lines))
    with pytest.raises(TrajectoryError, match=r"XDATCAR:11: expected a line of at most 4096 bytes"):
        read_trajectory(p)
    p.write_text(_text(1) + "9" * 200_000)  # no line end at all: refused, not buffered without bound
    with pytest.raises(TrajectoryError, match=r"XDATCAR:15: expected a line of at most 4096 bytes"):
        read_trajectory(p)


def test_chunk_boundaries_crlf_and_trailing_blanks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CRLF split between chunks and blank lines at a chunk's end are read like anywhere else."""
    import cellsim.io.xdatcar as tr

    fr = _frames(12)
    text = xdatcar_text(SYMS, COUNTS, LAT, fr).replace("\n", "\r\n") + "\r\n\r\n"
    p = tmp_path / "XDATCAR"
    p.write_bytes(text.encode())
    for chunk in (97, 256, 1000, len(text) - 2, len(text) - 4):
        monkeypatch.setattr(tr, "CHUNK_BYTES", chunk)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _, frac, _ = read_trajectory(p)
        np.testing.assert_allclose(frac, fr, atol=1e-8)


def test_concatenated_gzip_members_read_whole(tmp_path: Path) -> None:
    fr = _frames(6)
    text = xdatcar_text(SYMS, COUNTS, LAT, fr)
    cut = text.index("Direct configuration=     4")
    p = tmp_path / "XDATCAR.gz"
    p.write_bytes(gzip.compress(text[:cut].encode()) + gzip.compress(text[cut:].encode()) + b"\0" * 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, frac, _ = read_trajectory(p)
    np.testing.assert_allclose(frac, fr, atol=1e-8)


def test_unreadable_file_is_a_trajectory_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cellsim.io.xdatcar as tr

    p = tmp_path / "XDATCAR"
    p.write_text(_text(1))

    def denied(self: object, path: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(tr._Source, "__init__", denied)
    with pytest.raises(TrajectoryError, match=r"XDATCAR: cannot read the trajectory \(Permission denied\)"):
        read_header(p)
