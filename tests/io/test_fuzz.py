"""Fuzzing the XDATCAR reader with a seeded corpus (tests/fuzzgen.py), and the audit's defects one by one.

Every damaged file is either read (finite output, never more frames than the file holds, equal to the
original where the damage is known to leave it readable) or refused with one TrajectoryError line that
names the file; never another exception, a hang or a NaN. The larger run is bench/bench_fuzz.py.
"""

from __future__ import annotations

import gzip
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fuzzgen
from fuzzgen import time_limit

from cellsim.analysis.rdf import PeriodicImageError, block_images
from cellsim.core import _native
from cellsim.io.xdatcar import (
    CorruptTrajectoryWarning,
    TrajectoryError,
    TruncatedTrajectoryWarning,
    iter_frames,
    read_header,
    read_trajectory,
)

SEED, N_CASES = 16, 420
CASES = fuzzgen.generate(SEED, N_CASES)
LIMIT_S = 5


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fuzz_case(case: fuzzgen.Case, tmp_path: Path) -> None:
    with time_limit(LIMIT_S):
        out = fuzzgen.check(case, tmp_path)
    assert out.status in ("read", "refused"), f"{case.name} ({case.expect}): {out.status}: {out.detail}"
    assert out.frames <= len(case.base.frac)


def test_corpus_covers_every_mutation_and_class() -> None:
    kinds = {c.name.split("-", 2)[2].split("@")[0].rstrip("0123456789") for c in CASES}
    assert len(kinds) > 40
    assert {c.expect for c in CASES} == set(fuzzgen.EXPECT)
    assert {c.base.name for c in CASES} == {"vasp5", "npt", "vasp4"}
    assert sum(c.expect in ("equal", "frames") for c in CASES) > 60  # valid files must be read, not refused


def test_native_and_numpy_parsers_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The C kernel and its pure-Python fallback accept, refuse and report the same on every case."""
    assert _native.load() is not None
    cases = fuzzgen.generate(SEED + 1, 180)
    native = [fuzzgen.check(c, tmp_path / "c" / str(i)) for i, c in enumerate(cases)]
    monkeypatch.setattr(_native, "load", lambda: None)
    for i, (c, a) in enumerate(zip(cases, native, strict=True)):
        b = fuzzgen.check(c, tmp_path / "c" / str(i))
        assert (a.status, a.detail, a.frames) == (b.status, b.detail, b.frames), c.name


# --------------------------------------------------------------------------- the audit's defects


def _base() -> fuzzgen.Base:
    return fuzzgen.make_bases(0)[0]  # VASP 5, 12 frames of 14 atoms


def _write(tmp_path: Path, lines: list[bytes], name: str = "XDATCAR") -> Path:
    p = tmp_path / name
    p.write_bytes(b"".join(lines))
    return p


def _refused(path: Path, pattern: str, species: list[str] | None = None) -> str:
    with time_limit(LIMIT_S), pytest.raises(TrajectoryError, match=pattern) as info:
        read_trajectory(path, species=species)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path))
    return msg


@pytest.mark.parametrize(
    "rows",
    [
        [" 12 0 0\n", " 0 12 0\n", " 12 12 1e-12\n"],  # flat: ~8e12 images per axis
        [" 9.1 0 0\n", " 0 0 0\n", " 0.2 -0.3 10.2\n"],  # zero row
        [" 0 0 0\n", " 0 0 0\n", " 0 0 0\n"],
        [" 1e20 0 0\n", " 0.4 9.3 0\n", " 0.2 -0.3 10.2\n"],
        [" 1e400 0 0\n", " 0.4 9.3 0\n", " 0.2 -0.3 10.2\n"],
    ],
)
def test_defects_1_2_6_degenerate_or_absurd_lattice_refused(tmp_path: Path, rows: list[str]) -> None:
    lines = list(_base().lines)
    lines[2:5] = [r.encode() for r in rows]
    _refused(
        _write(tmp_path, lines),
        r"XDATCAR:[345]: expected (a nonzero lattice vector|three independent|a cell of 1 to|a lattice vector of fin)",
    )


@pytest.mark.parametrize("scale", ["0", "-1e-30", "1e-30", "1.2.3", "2 3", "nan", "-0"])
def test_defects_1_2_6_bad_scale_refused(tmp_path: Path, scale: str) -> None:
    lines = list(_base().lines)
    lines[1] = f"   {scale}\n".encode()
    _refused(_write(tmp_path, lines), r"XDATCAR:[23]: expected (the scale factor|a nonzero scale|a cell of 1 to)")


def test_negative_scale_is_the_cell_volume(tmp_path: Path) -> None:
    base = _base()
    lines = list(base.lines)
    lines[1] = f"  -{abs(np.linalg.det(base.cells[0])):.8f}\n".encode()
    _, frac, cells = read_trajectory(_write(tmp_path, lines))
    np.testing.assert_allclose(cells, base.cells, atol=1e-6)
    np.testing.assert_allclose(frac, base.frac, atol=1e-12)


def test_defect_1_image_scan_refuses_thin_cells() -> None:
    flat = np.array([[[12.0, 0, 0], [0, 12.0, 0], [12.0, 12.0, 1e-12]]])
    with pytest.raises(PeriodicImageError, match=r"cell widths 1e-12, 1e-12, 1e-12 A are too thin for rmax 8 A"):
        block_images(flat, 8.0)
    with pytest.raises(PeriodicImageError, match=r"cell widths 0, 0, 0 A"):
        block_images(np.zeros((1, 3, 3)), 8.0)
    with pytest.raises(PeriodicImageError, match=r"rmax 1000 A"):
        block_images(np.array([np.eye(3) * 10.0]), 1000.0)
    np.testing.assert_array_equal(block_images(np.array([np.eye(3) * 10.0]), 8.0), [1, 1, 1])


@pytest.mark.parametrize("count", ["100000000", "100000000000", "10000001", "1e8", "99999999999999999999"])
def test_defects_1_2_absurd_atom_count_refused_at_once(tmp_path: Path, count: str) -> None:
    lines = list(_base().lines)
    lines[6] = f"  {count}  6  2  2\n".encode()
    for name in ("XDATCAR", "XDATCAR.gz"):
        p = tmp_path / name
        data = b"".join(lines)
        p.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        _refused(p, r":7: expected (atom counts the file can hold|the atom counts \(integers\))")


def test_header_only_file_of_a_run_just_started_reads_as_empty(tmp_path: Path) -> None:
    """Its counts cannot be checked against a size yet: nothing is refused, nothing allocated."""
    lines = list(_base().lines)[:8]
    lines[1] = b"  10\n"  # a cell for 40,000 atoms
    lines[6] = b"  40000  6  2  2\n"
    with pytest.warns(TruncatedTrajectoryWarning, match="read 0 whole frames"):
        _, frac, _ = read_trajectory(_write(tmp_path, [*lines, b"  0.1 0.2 0.3\n"]))
    assert frac.shape == (0, 40010, 3)


def test_defect_2_corrupt_gzip_keeps_the_frames_before(tmp_path: Path) -> None:
    base = _base()
    # a longer trajectory so the damage lies well inside the stream
    text = b"".join(base.lines[: base.frame_spans[0][0]])
    for k in range(300):
        text += f"Direct configuration={k + 1:6d}\n".encode() + b"".join(
            fuzzgen._fmt_atoms(base.frac[k % len(base.frac)])
        )
    data = bytearray(gzip.compress(text, mtime=0))
    data[len(data) * 3 // 4] ^= 0x55
    p = tmp_path / "XDATCAR.gz"
    p.write_bytes(bytes(data))
    corrupt = r"corrupt gzip data after \d+ whole frames"
    with time_limit(LIMIT_S), pytest.warns(CorruptTrajectoryWarning, match=corrupt) as rec:
        _, frac, _ = read_trajectory(p)
    msg = str(rec[0].message)
    assert msg.startswith(f"{p}: corrupt gzip data after {len(frac)} whole frames (")
    assert 100 < len(frac) < 300
    np.testing.assert_allclose(frac, [base.frac[k % len(base.frac)] for k in range(len(frac))], atol=1e-12)


@pytest.mark.parametrize("opener", ["gzip", "bz2", "xz"])
@pytest.mark.parametrize("damage", ["truncate", "trailer", "garbage_after"])
def test_damaged_compressed_streams_warn_never_raise(tmp_path: Path, opener: str, damage: str) -> None:
    base = _base()
    data = fuzzgen._compress({"gzip": "gz"}.get(opener, opener), base.text)
    if damage == "truncate":
        data = data[: len(data) - 7]
    elif damage == "trailer":  # the stream's checksum (gzip, xz) or last bytes
        data = data[:-6] + bytes(b ^ 0xFF for b in data[-6:])
    else:
        data = data + b"not compressed data"
    p = tmp_path / f"XDATCAR.{opener}"
    p.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught, time_limit(LIMIT_S):
        warnings.simplefilter("always")
        try:
            _, frac, _ = read_trajectory(p)
        except TrajectoryError as exc:  # damage in the only (bzip2) block: no header to read
            assert str(exc).startswith(f"{p}: corrupt {'bzip2' if opener == 'bz2' else opener} data in the header")
            return
    assert any(issubclass(w.category, CorruptTrajectoryWarning) for w in caught)
    np.testing.assert_allclose(frac, base.frac[: len(frac)], atol=1e-12)


@pytest.mark.parametrize("token", ["1e400", "1D400", "0.68D64104", "-1E+999"])
def test_defect_3_infinite_coordinates_refused_with_line(tmp_path: Path, token: str, backend: str) -> None:
    lines = list(_base().lines)
    lines[30] = f"  0.5  {token}  0.25\n".encode()
    _refused(_write(tmp_path, lines), rf"XDATCAR:31: expected finite coordinates, got '0.5  {re.escape(token)}  0.25'")


def test_defect_4_extra_token_refused_not_shifted(tmp_path: Path, backend: str) -> None:
    lines = list(_base().lines)
    lines[40] = b"  0.74 17375  0.96326200  0.32896613\n"
    _refused(
        _write(tmp_path, lines), r"XDATCAR:41: expected three coordinates, got '0.74 17375  0.96326200  0.32896613'"
    )


def test_defect_5_cut_last_line_is_not_a_frame(tmp_path: Path, backend: str) -> None:
    base = _base()
    text = base.text
    p = tmp_path / "XDATCAR"
    p.write_bytes(text[: len(text) - 8])  # "  0.1" of "  0.12345678\n"
    with pytest.warns(TruncatedTrajectoryWarning, match=r"truncated: read 11 whole frames"):
        _, frac, _ = read_trajectory(p)
    np.testing.assert_allclose(frac, base.frac[:11], atol=1e-12)


def test_defect_12_trailing_blank_lines_accepted(tmp_path: Path, backend: str) -> None:
    base = _base()
    p = tmp_path / "XDATCAR"
    p.write_bytes(base.text + b"\n\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, frac, _ = read_trajectory(p)
    np.testing.assert_allclose(frac, base.frac, atol=1e-12)


def test_defect_12_vasp4_with_poscar_of_other_counts_refused(tmp_path: Path) -> None:
    vasp4 = fuzzgen.make_bases(0)[1]
    assert vasp4.vasp4
    p = tmp_path / "XDATCAR"
    p.write_bytes(vasp4.text.replace(b"In S Cl P\n", b"my run\n", 1))
    (tmp_path / "POSCAR").write_bytes(fuzzgen._poscar(vasp4, [6, 4, 2, 2]))
    _refused(p, r"XDATCAR:6: expected the atom counts of .*POSCAR \(6 4 2 2\), got 4 6 2 2", species=fuzzgen.SYMBOLS)
    (tmp_path / "POSCAR").write_bytes(fuzzgen._poscar(vasp4, [4, 6, 2, 2]))
    hdr = read_header(p, species=fuzzgen.SYMBOLS)
    assert hdr.counts == [4, 6, 2, 2] and not hdr.vasp5


@pytest.mark.parametrize("how", ["delete", "duplicate"])
def test_deleted_or_repeated_frame_refused_with_line(tmp_path: Path, how: str) -> None:
    base = _base()
    a, b = base.frame_spans[4]
    lines = base.lines[:a] + base.lines[b:] if how == "delete" else base.lines[:b] + base.lines[a:b] + base.lines[b:]
    line, number = (b + 1, 6) if how == "duplicate" else (a + 1, 5)
    _refused(
        _write(tmp_path, lines),
        rf"XDATCAR:{line}: expected configuration number {number} \(a frame deleted or repeated\?\)",
    )


def test_lone_cr_refused_crlf_read(tmp_path: Path) -> None:
    base = _base()
    lines = list(base.lines)
    lines[20] = lines[20][:-1] + b"\r"
    _refused(_write(tmp_path, lines), r"XDATCAR:21: expected LF or CRLF line ends, got a lone carriage return")
    _, frac, _ = read_trajectory(_write(tmp_path, [ln[:-1] + b"\r\n" for ln in base.lines]))
    np.testing.assert_allclose(frac, base.frac, atol=1e-12)


def test_refusal_stops_the_stream(tmp_path: Path) -> None:
    base = _base()
    lines = list(base.lines)
    lines[base.frame_spans[10][0] + 3] = b"  0.1  nan  0.3\n"
    blocks = []
    with pytest.raises(TrajectoryError, match=r"after 10 whole frames"):
        for block in iter_frames(_write(tmp_path, lines), block_frames=4):
            blocks.append(block)
    assert sum(len(b) for b in blocks) <= 10


@pytest.fixture(params=["native", "numpy"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "numpy":
        monkeypatch.setattr(_native, "load", lambda: None)
    return str(request.param)
