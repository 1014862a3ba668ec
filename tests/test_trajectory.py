"""The XDATCAR reader: every quirk of real files is read, or refused with the line and what was expected."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import numpy as np
import pytest

from cellsim.analysis import _native
from cellsim.synthetic import xdatcar_text
from cellsim.trajectory import (
    TrajectoryError,
    TruncatedTrajectoryWarning,
    iter_frames,
    iter_segments,
    read_header,
    read_trajectory,
)

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


def test_agrees_with_pymatgen_and_ase(tmp_path: Path) -> None:
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
        np.testing.assert_allclose(frac[k], pmg[k].frac_coords % 1.0, atol=1e-12)
        np.testing.assert_allclose(frac[k], ase_frames[k].get_scaled_positions(wrap=True), atol=1e-12)


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
    import cellsim.trajectory as tr

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
