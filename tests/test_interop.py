"""Python interop (issue 20): trajectories written by pymatgen, and ASE / pymatgen objects given to cellsim.analyze."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from cellsim.analysis import _native
from cellsim.trajectory import TrajectoryError, read_trajectory


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
