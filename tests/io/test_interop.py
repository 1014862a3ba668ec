"""Python interop (issue 20): trajectories written by pymatgen, and ASE / pymatgen objects given to cellsim.analyze."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cellsim.core import _native
from cellsim.io.xdatcar import TrajectoryError, read_trajectory


@pytest.fixture(params=["native", "numpy"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "numpy":
        monkeypatch.setattr(_native, "load", lambda: None)
    else:
        assert _native.load() is not None
    return str(request.param)


def _structures(n: int = 5, oxidation: bool = False, npt: bool = False) -> list:
    """A small Li2S-like cell rattled frame by frame (an MD-like sequence of pymatgen Structures)."""
    from pymatgen.core import Lattice, Structure

    rng = np.random.default_rng(3)
    base = Structure(
        Lattice.cubic(5.7),
        ["Li"] * 8 + ["S"] * 4,
        [
            *[[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)],
            [0, 0, 0],
            [0.5, 0.5, 0],
            [0.5, 0, 0.5],
            [0, 0.5, 0.5],
        ],
    )
    if oxidation:
        base.add_oxidation_state_by_element({"Li": 1, "S": -2})
    out = []
    for k in range(n):
        s = base.copy()
        if npt:
            s.scale_lattice(base.volume * (1 + 0.01 * k))
        frac = (s.frac_coords + rng.normal(0, 0.01, (len(s), 3))) % 1.0
        out.append(Structure(s.lattice, s.species, frac))
    return out


def _pmg_xdatcar(tmp_path: Path, structures: list, constant_lattice: bool = True) -> Path:
    from pymatgen.core.trajectory import Trajectory

    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "XDATCAR"
    Trajectory.from_structures(structures, constant_lattice=constant_lattice).write_Xdatcar(str(path))
    return path


@pytest.mark.parametrize("oxidation", [False, True], ids=["elements", "oxidation-states"])
def test_pymatgen_written_xdatcar_is_read(tmp_path: Path, backend: str, oxidation: bool) -> None:
    structures = _structures(oxidation=oxidation)
    path = _pmg_xdatcar(tmp_path, structures)
    label = path.read_text().splitlines()[8]
    assert label.split()[-1] == ("Li+" if oxidation else "Li")  # pymatgen writes the species after the numbers
    hdr, frac, cells = read_trajectory(path)
    assert hdr.symbols == ["Li", "S"] and hdr.counts == [8, 4] and frac.shape == (5, 12, 3)
    want = np.array([s.frac_coords % 1.0 for s in structures])
    assert np.allclose(frac, want, atol=1e-6)
    assert np.allclose(cells, structures[0].lattice.matrix)


def test_pymatgen_written_xdatcar_with_a_cell_per_frame(tmp_path: Path, backend: str) -> None:
    structures = _structures(npt=True)
    path = _pmg_xdatcar(tmp_path, structures, constant_lattice=False)
    hdr, frac, cells = read_trajectory(path)
    assert hdr.variable_cell and frac.shape == (5, 12, 3)
    assert np.allclose(cells, [s.lattice.matrix for s in structures], atol=1e-6)


def test_pymatgen_xdatcar_object_round_trip(tmp_path: Path, backend: str) -> None:
    """What pymatgen's own Xdatcar parser reads from cellsim-readable files, and the reverse."""
    from pymatgen.io.vasp.outputs import Xdatcar

    path = _pmg_xdatcar(tmp_path, _structures())
    theirs = Xdatcar(str(path)).structures
    _, frac, _ = read_trajectory(path)
    assert np.allclose(frac, [s.frac_coords % 1.0 for s in theirs], atol=1e-6)


def _edit_line(path: Path, lineno: int, text: str) -> Path:
    lines = path.read_text().splitlines(keepends=True)
    lines[lineno - 1] = text + "\n"
    path.write_text("".join(lines))
    return path


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("0.25 0.25 0.25Li", "expected three coordinates, got '0.25 0.25 0.25Li'"),  # glued: a damaged number
        ("0.25 0.25 0.25 Li Li", "expected three coordinates"),
        ("0.25 0.25 0.25 Li2", "expected three coordinates"),
        ("0.25 0.25 0.25 nan", "expected three coordinates"),
        ("0.25 0.25 0.25 0.5 Li", "expected three coordinates"),
    ],
)
def test_labels_do_not_open_the_door_to_damaged_lines(tmp_path: Path, backend: str, line: str, expected: str) -> None:
    path = _edit_line(_pmg_xdatcar(tmp_path, _structures()), 30, line)  # an atom line of the third frame
    with pytest.raises(TrajectoryError, match=rf"XDATCAR:30: {expected}"):
        read_trajectory(path)


def test_a_label_after_a_lattice_vector_is_refused(tmp_path: Path) -> None:
    path = _edit_line(_pmg_xdatcar(tmp_path, _structures()), 3, "5.7 0.0 0.0 Li")
    with pytest.raises(TrajectoryError, match=r"XDATCAR:3: expected a lattice vector"):
        read_trajectory(path)


def test_labels_that_contradict_the_header_are_refused(tmp_path: Path, backend: str) -> None:
    path = _edit_line(_pmg_xdatcar(tmp_path, _structures()), 10, "0.25 0.25 0.75 S")
    with pytest.raises(TrajectoryError, match=r"XDATCAR:10: expected the species label Li \(atom 2 in the header's"):
        read_trajectory(path)


def test_native_and_numpy_parsers_agree_on_labelled_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [
        "0.1 0.2 0.3 Li",
        "0.1 0.2 0.3\tFe2.5+  ",
        "0.1 0.2 0.3 O2-",
        "0.1 0.2-0.3 Li",
        "0.1 0.2 0.3 L",
        "0.1 0.2 0.3 Lix",
        "0.1 0.2 0.3 +",
        "0.1 0.2 0.3 li",
        "0.1 0.2 0.3-Li",
        "0.1 0.2 0.3 Li+-",
        "0.1 0.2 0.3 1e5",
    ]
    outcomes = {}
    for backend in ("native", "numpy"):
        if backend == "numpy":
            monkeypatch.setattr(_native, "load", lambda: None)
        for i, text in enumerate(lines):
            path = _edit_line(_pmg_xdatcar(tmp_path / f"{backend}{i}", _structures()), 30, text)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    outcomes[backend, i] = read_trajectory(path)[1][2, 9].round(6).tolist()
            except TrajectoryError as exc:
                outcomes[backend, i] = str(exc).split(": ", 1)[1]
    for i, text in enumerate(lines):
        assert outcomes["native", i] == outcomes["numpy", i], text
    assert [isinstance(outcomes["native", i], list) for i in range(len(lines))] == [
        True, True, True, True, True, False, False, False, False, False, False
    ]  # fmt: skip


# --------------------------------------------------------------------------- objects given to cellsim.analyze

KW = {"pairs": "In-S,In-Cl", "window_ps": 0.05, "temperature_K": 300.0}


@pytest.fixture(scope="module")
def reacting(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A 200-frame trajectory where In-S and In-Cl bonds form half-way, and its file analysis (the reference)."""
    import cellsim
    from cellsim.testing import reaction_run

    work = tmp_path_factory.mktemp("reacting")
    run = reaction_run(work / "run", n_frames=200, react_at=100)
    xdatcar = run / "md" / "seg-000" / "XDATCAR"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cellsim.analyze(xdatcar, dt_fs=2.0, out=work / "file", **KW)
    return xdatcar, ref


def _same_numbers(a: Any, b: Any) -> None:
    assert a.settings.pairs == b.settings.pairs and a.n_frames == b.n_frames
    for p in a.settings.pairs:
        assert np.array_equal(a.bonds[p], b.bonds[p]), p
        assert np.allclose(a.g[p], b.g[p]), p


def _analyze(obj: object, out: Path, **kw: object) -> Any:
    import cellsim

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cellsim.analyze(obj, out=out, **{**KW, **kw})


def test_list_of_ase_atoms_gives_the_file_s_numbers(reacting: tuple[Path, Any], tmp_path: Path) -> None:
    import json

    from ase.io import read

    xdatcar, ref = reacting
    frames = read(str(xdatcar), index=":", format="vasp-xdatcar")
    res = _analyze(frames, tmp_path / "a", dt_fs=2.0)
    _same_numbers(res, ref)
    # the folder says what it describes: the objects' kind, their frames and a digest of what was read
    seg = json.loads((tmp_path / "a" / "analysis.json").read_text())["segments"]
    assert [(s["path"], s["fmt"], s["frames"]) for s in seg] == [("python:ase.Atoms list, 200 frames", "python", 200)]
    assert len(seg[0]["sha256"]) == 64 and seg[0]["size"] > 0
    again = _analyze(frames, tmp_path / "b", dt_fs=2.0)
    assert again.info["segments"][0]["sha256"] == seg[0]["sha256"]
    import cellsim

    loaded = cellsim.AnalysisResult.load(tmp_path / "a")
    assert loaded.sources == ["python:ase.Atoms list, 200 frames"] and loaded.n_frames == 200


def test_ase_trajectory_object_and_path(reacting: tuple[Path, Any], tmp_path: Path) -> None:
    from ase.io import Trajectory, read, write

    xdatcar, ref = reacting
    traj_file = tmp_path / "md.traj"
    write(str(traj_file), read(str(xdatcar), index=":", format="vasp-xdatcar"))
    with Trajectory(str(traj_file)) as traj:
        res = _analyze(traj, tmp_path / "a", dt_fs=2.0)
    _same_numbers(res, ref)
    # read from its file: the analysis records the file and its digest, as for a path
    assert res.info["segments"][0]["path"] == str(traj_file) and res.info["segments"][0]["fmt"] == "ase"
    _same_numbers(_analyze(traj_file, tmp_path / "b", dt_fs=2.0), ref)


def test_pymatgen_trajectory_structures_and_xdatcar(reacting: tuple[Path, Any], tmp_path: Path) -> None:
    from pymatgen.core.trajectory import Trajectory
    from pymatgen.io.vasp.outputs import Xdatcar

    xdatcar, ref = reacting
    xd = Xdatcar(str(xdatcar))
    _same_numbers(_analyze(xd, tmp_path / "x", dt_fs=2.0), ref)
    _same_numbers(_analyze(xd.structures, tmp_path / "s", dt_fs=2.0), ref)
    traj = Trajectory.from_structures(xd.structures, constant_lattice=True, time_step=2.0)
    res = _analyze(traj, tmp_path / "t")  # its own time step: no dt_fs needed
    _same_numbers(res, ref)
    assert res.settings.dt_fs == 2.0 and res.info["dt_source"] == "pymatgen Trajectory.time_step"
    assert res.sources == ["python:pymatgen Trajectory, 200 frames"]
    traj.to_displacements()  # stored as frame-to-frame displacements: the same positions
    _same_numbers(_analyze(traj, tmp_path / "d"), ref)
    per_frame = Trajectory.from_structures(xd.structures, constant_lattice=False)
    _same_numbers(_analyze(per_frame, tmp_path / "v", dt_fs=2.0), ref)


def test_objects_without_a_time_step_need_dt_fs(reacting: tuple[Path, Any], tmp_path: Path) -> None:
    from ase.io import read

    from cellsim.core.errors import CellsimError

    frames = read(str(reacting[0]), index=":20", format="vasp-xdatcar")
    with pytest.raises(CellsimError, match=r"python:ase.Atoms list, 20 frames: .*give dt_fs"):
        _analyze(frames, tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_one_atoms_one_structure_and_the_default_folder(
    reacting: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor

    from cellsim.io.sources import python_trajectory

    atoms = read(str(reacting[0]), index=0, format="vasp-xdatcar")
    one = python_trajectory(atoms)
    assert one is not None and not isinstance(one, list) and one.label == "python:ase.Atoms, 1 frames"
    s = python_trajectory(AseAtomsAdaptor.get_structure(atoms))
    assert s is not None and not isinstance(s, list) and s.species == one.species
    frames = read(str(reacting[0]), index=":60", format="vasp-xdatcar")
    monkeypatch.chdir(tmp_path)
    import cellsim

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cellsim.analyze(frames, dt_fs=2.0, pairs="In-S", window_ps=0.02)
    assert res.out_dir == Path("analysis") and (tmp_path / "analysis" / "analysis.json").is_file()


def _h2(second: object = "H") -> Any:
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.cubic(5.0), ["H", second], [[0, 0, 0], [0, 0, 0.15]])


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: [1, 2], r"cannot analyse a list of int: give a run directory, trajectory file\(s\), ASE Atoms"),
        (lambda: {"a": 1}, r"cannot analyse dict: give"),
        (lambda: __import__("ase").Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]]), r"frame 1: not periodic"),
        (
            lambda: [
                __import__("ase").Atoms("H2", cell=[5, 5, 5], pbc=True),
                __import__("ase").Atoms("H3", cell=[5, 5, 5], pbc=True),
            ],
            r"frame 2 has other atoms than frame 1",
        ),
        (lambda: [_h2(), _h2("Li")], r"python:pymatgen Structure list, 2 frames: frame 2 has other atoms than frame 1"),
        (lambda: _h2({"H": 0.5, "Li": 0.5}), r"frame 1: a disordered Structure"),
    ],
    ids=["ints", "dict", "molecule", "other-atoms", "other-structure", "disordered"],
)
def test_objects_that_cannot_be_analysed_are_refused(make: object, expected: str, tmp_path: Path) -> None:
    from cellsim.core.errors import CellsimError

    with pytest.raises(CellsimError, match=expected):
        _analyze(make(), tmp_path / "a", dt_fs=2.0, pairs="H-H")  # type: ignore[operator]


def test_species_is_refused_for_objects(reacting: tuple[Path, Any], tmp_path: Path) -> None:
    from ase.io import read

    from cellsim.core.errors import CellsimError

    frames = read(str(reacting[0]), index=":5", format="vasp-xdatcar")
    with pytest.raises(CellsimError, match="species: only for VASP 4 XDATCARs"):
        _analyze(frames, tmp_path / "a", dt_fs=2.0, species=["In", "S", "Cl"])


def test_result_classes_are_exported_without_slowing_import() -> None:
    import subprocess
    import sys

    import cellsim
    from cellsim import AnalysisResult, CandidateVerdict, Diagnostics, MatchResult
    from cellsim.analysis.analyze import AnalysisResult as Original

    assert AnalysisResult is Original and MatchResult.__name__ == "MatchResult"
    assert Diagnostics.__name__ == "Diagnostics" and CandidateVerdict.__name__ == "CandidateVerdict"
    for name in ("AnalysisResult", "MatchResult", "Diagnostics", "RunDir", "CellsimError"):
        assert name in cellsim.__all__ and name in dir(cellsim)
    probe = "import sys, cellsim; print(sorted({'numpy', 'pandas', 'pymatgen'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = cellsim.Nope  # type: ignore[attr-defined]


def test_pymatgen_written_xdatcar_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's case: an XDATCAR written by pymatgen was refused at line 9."""
    from cellsim.cli import main

    path = _pmg_xdatcar(tmp_path / "md", _structures(n=40))
    with pytest.raises(SystemExit, match=r"^\d*$") as info:  # a status, never a message
        main(["analyze", str(path), "--dt", "2fs", "--pairs", "Li-S", "--window", "0.01ps", "-o", str(tmp_path / "a")])
    out, err = capsys.readouterr()
    assert info.value.code == 0, err
    assert "40 frames" in out and (tmp_path / "a" / "rdf.csv").is_file()
