"""The format registry (issue 35): a file's format by an explicit name, else its first bytes, else its suffix or
name; an unknown file is refused by name (never read as an XDATCAR); single structures are no trajectories; every
registered writer round-trips through its reader; the XDATCAR cut of a VASP continuation follows the reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cellsim.io.registry import (
    detect_format,
    format_by_name,
    format_of,
    get_format,
    refuse_structure_file,
    registered,
)
from cellsim.io.sources import iter_trajectory
from cellsim.io.xdatcar import TrajectoryError, cut_frames, read_header, read_trajectory
from cellsim.testing import write_xdatcar

CELL = np.diag([6.0, 6.5, 7.0])
RNG = np.random.default_rng(35)
FRAMES = RNG.random((3, 4, 3))


def _xdatcar(path: Path, **kwargs: object) -> Path:
    return write_xdatcar(path, ["Li", "S"], [2, 2], CELL, FRAMES, **kwargs)


def _extxyz(path: Path) -> Path:
    from ase.build import bulk
    from ase.io import write

    write(path, [bulk("Cu", "fcc", a=3.6, cubic=True)] * 2, format="extxyz")
    return path


def _cif(path: Path) -> Path:
    from ase.build import bulk
    from ase.io import write

    write(path, bulk("Cu", "fcc", a=3.6), format="cif")
    return path


# --------------------------------------------------------------------------- lookup


def test_lookup_by_explicit_name_wins(tmp_path: Path) -> None:
    path = _xdatcar(tmp_path / "XDATCAR")
    assert format_of(path, "extxyz").name == "extxyz"
    assert detect_format(path, "XDATCAR") == "xdatcar"
    assert get_format("vasprun").reader == "vasprun"
    with pytest.raises(TrajectoryError, match=r"unknown format 'gromacs'; known formats: .*extxyz.*xdatcar"):
        format_of(path, "gromacs")


@pytest.mark.parametrize("name", ["trajectory", "md_run.out", "data.txt"])
def test_an_xdatcar_without_its_name_is_sniffed(tmp_path: Path, name: str) -> None:
    path = _xdatcar(tmp_path / name)
    assert format_by_name(path) is None
    assert format_of(path).name == "xdatcar"
    assert sum(len(b) for _, b in iter_trajectory([path])) == 3


def test_content_before_suffix(tmp_path: Path) -> None:
    """An extxyz named like an XDATCAR is read by ASE; an XDATCAR named .xyz by the XDATCAR reader."""
    assert detect_format(_extxyz(tmp_path / "XDATCAR")) == "ase"
    assert detect_format(_xdatcar(tmp_path / "frames.xyz")) == "xdatcar"
    assert detect_format(_extxyz(tmp_path / "frames")) == "ase"


def test_suffix_or_name_when_the_content_says_nothing(tmp_path: Path) -> None:
    """A damaged file whose name tells the format goes to that format's reader, which says what is wrong."""
    for name, fmt in (("XDATCAR.part-2", "xdatcar"), ("x.extxyz", "ase"), ("vasprun.xml", "vasprun")):
        (tmp_path / name).write_text("garbage\n")
        assert detect_format(tmp_path / name) == fmt
    with pytest.raises(TrajectoryError, match=r"XDATCAR.part-2:1: expected an XDATCAR header of at least 7 lines"):
        list(iter_trajectory([tmp_path / "XDATCAR.part-2"]))


def test_an_unnumbered_xdatcar_named_so_is_not_a_poscar(tmp_path: Path) -> None:
    """Its first frame looks like a POSCAR (``Direct`` alone); its name decides."""
    text = _xdatcar(tmp_path / "x").read_text()
    unnumbered = "".join("Direct\n" if ln.startswith("Direct") else ln for ln in text.splitlines(keepends=True))
    (tmp_path / "XDATCAR").write_text(unnumbered)
    assert format_of(tmp_path / "XDATCAR").name == "xdatcar"
    assert sum(len(b) for _, b in iter_trajectory([tmp_path / "XDATCAR"])) == 3


def test_python_objects_and_compressed_files(tmp_path: Path) -> None:
    import gzip

    assert detect_format(object()) == "python"
    data = _xdatcar(tmp_path / "x").read_bytes()
    (tmp_path / "run.dat.gz").write_bytes(gzip.compress(data))
    assert detect_format(tmp_path / "run.dat.gz") == "xdatcar"


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("content", [b"hello\nworld\n", b"\x00\x01\x02binary", b""])
def test_an_unknown_file_is_refused_by_name(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(TrajectoryError, match=r"notes.txt: not a file format cellsim reads .*known formats: .*xdatcar"):
        detect_format(path)
    with pytest.raises(TrajectoryError, match=r"notes.txt: not a file format cellsim reads"):
        list(iter_trajectory([path]))


def test_a_missing_file_is_said_missing(tmp_path: Path) -> None:
    with pytest.raises(TrajectoryError, match=r"nothing.dat: no such trajectory file"):
        detect_format(tmp_path / "nothing.dat")


@pytest.mark.parametrize("name", ["phase.cif", "phase.dat", "XDATCAR.cif"])
def test_a_cif_is_refused_for_analysis(tmp_path: Path, name: str) -> None:
    path = _cif(tmp_path / name)
    assert detect_format(path) == "cif"
    with pytest.raises(TrajectoryError, match=rf"{name}: a CIF holds one structure, not a trajectory"):
        list(iter_trajectory([path]))


def test_a_poscar_by_content_is_refused(tmp_path: Path) -> None:
    from cellsim.io.poscar import write_poscar

    path = write_poscar(tmp_path / "start", ["Li", "Li", "S", "S"], FRAMES[0], CELL, "start")
    assert detect_format(path) == "poscar"
    with pytest.raises(TrajectoryError, match=r"start: a POSCAR/CONTCAR holds one structure, not a trajectory"):
        refuse_structure_file(path)


# --------------------------------------------------------------------------- writers and readers


@pytest.mark.parametrize("fmt", [f for f in registered() if f.write is not None], ids=lambda f: f.name)
def test_every_registered_writer_round_trips(tmp_path: Path, fmt: object) -> None:
    from cellsim.io.registry import FileFormat

    assert isinstance(fmt, FileFormat)
    species = ["Li", "Li", "S", "S"]
    path = tmp_path / f"out-{fmt.name}"
    write, read = fmt.writer_function(), fmt.reader_function()
    if fmt.trajectory:
        for cells in (np.array([CELL] * 3), np.array([CELL * (1 + 0.01 * k) for k in range(3)])):
            write(path, species, FRAMES, cells, "round trip")
            assert format_of(path).name == fmt.name  # the writer's output sniffs as its format
            blocks = list(read(path))
            frac = np.concatenate([b.frac for _, b in blocks])
            got = np.concatenate([b.cells for _, b in blocks])
            assert blocks[0][0].species == species
            np.testing.assert_allclose(frac, FRAMES, atol=1e-8)
            np.testing.assert_allclose(got, cells, atol=1e-6)
    else:
        write(path, species, FRAMES[0], CELL, "round trip")
        assert format_of(path).name == fmt.name
        got_species, frac, cell = read(path)
        assert got_species == species
        np.testing.assert_allclose(frac, FRAMES[0], atol=1e-8)
        np.testing.assert_allclose(cell, CELL, atol=1e-6)


def test_registered_names_are_unique_and_readers_resolve() -> None:
    names = [f.name for f in registered()]
    assert len(names) == len(set(names))
    for f in registered():
        assert callable(f.reader_function())
    from cellsim.io.registry import FileFormat, register

    with pytest.raises(ValueError, match=r"format 'xdatcar' is registered already"):
        register(FileFormat("xdatcar", "xdatcar", "again"))


def test_poscar_species_with_potcar_suffixes(tmp_path: Path) -> None:
    """VASP 6 writes the POTCAR's name and hash on the species line: the element is read from it."""
    from cellsim.io.poscar import poscar_text, read_poscar

    text = poscar_text(["Li", "S"], FRAMES[0][:2], CELL, "t").replace("   Li    S", "   Li_sv/1a2b3c    S")
    (tmp_path / "CONTCAR").write_text(text)
    assert read_poscar(tmp_path / "CONTCAR")[0] == ["Li", "S"]


# --------------------------------------------------------------------------- the continuation's cut


@pytest.mark.parametrize("variable", [False, True])
def test_cut_frames_keeps_the_whole_frames_the_reader_reads(tmp_path: Path, variable: bool) -> None:
    cells = np.array([CELL * (1 + 0.01 * k) for k in range(3)]) if variable else None
    path = _xdatcar(tmp_path / "XDATCAR", cells=cells)
    hdr = read_header(path)
    text = path.read_text()
    for keep in (1, 2, 3):
        (tmp_path / "cut").write_text(cut_frames(text, hdr, keep))
        _, frac, _ = read_trajectory(tmp_path / "cut")
        np.testing.assert_allclose(frac, FRAMES[:keep], atol=1e-8)
    assert cut_frames(text, hdr, 3) == text
    assert cut_frames(text + "Direct configuration=     4\n  0.1", hdr, 3) == text
