"""Reading stops are said, and said right: a cut-off file is "truncated" with what was kept; any other failure
is an error naming the file, never passed off as a truncation."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cellsim.analysis.diagnostics import parse_vasprun
from cellsim.io.sources import iter_trajectory
from cellsim.io.xdatcar import TrajectoryError, TruncatedTrajectoryWarning
from cellsim.testing import write_vasprun

CELL = np.diag([9.0, 9.0, 9.0])


def _frames(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((1, 4, 3)) + rng.normal(0.0, 0.01, (n, 4, 3))) % 1.0


def test_truncated_vasprun_energies_warn_with_what_was_kept(tmp_path: Path) -> None:
    vr = write_vasprun(tmp_path / "vasprun.xml", ["Li", "S"], [2, 2], CELL, _frames(6), truncate=True)
    with pytest.warns(TruncatedTrajectoryWarning, match=rf"{vr}: .*kept the energies of 5 whole ionic steps"):
        rows = parse_vasprun(vr)
    assert len(rows) == 5
    whole = write_vasprun(tmp_path / "whole.xml", ["Li", "S"], [2, 2], CELL, _frames(6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(parse_vasprun(whole)) == 6


def _fake_iread(error: BaseException, frames: int = 3) -> Any:
    from ase import Atoms

    def iread(path: str, index: Any = None) -> Iterator[Atoms]:
        for frac in _frames(frames):
            yield Atoms("Li2S2", scaled_positions=frac, cell=CELL, pbc=True)
        raise error

    return iread


def _read(path: Path) -> int:
    return sum(len(b) for _, b in iter_trajectory([path]))


def test_an_ase_failure_that_is_no_truncation_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ase.io

    traj = tmp_path / "md.extxyz"
    traj.write_text("placeholder: ase.io.iread is replaced below\n")
    monkeypatch.setattr(ase.io, "iread", _fake_iread(TypeError("unsupported operand")))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedTrajectoryWarning)
        with pytest.raises(
            TrajectoryError, match=rf"{traj}: ASE failed after 3 frames: TypeError: unsupported operand"
        ):
            _read(traj)
    # a parse error where the data stop is a truncation: the frames before it are kept, with a warning
    monkeypatch.setattr(ase.io, "iread", _fake_iread(ValueError("could not convert string to float: ''")))
    with pytest.warns(TruncatedTrajectoryWarning, match=rf"{traj}: reading stopped after 3 frames"):
        assert _read(traj) == 3


def test_a_really_truncated_extxyz_is_still_read_to_its_cut(tmp_path: Path) -> None:
    from ase import Atoms
    from ase.io import write

    path = tmp_path / "md.extxyz"
    write(path, [Atoms("Li2S2", scaled_positions=f, cell=CELL, pbc=True) for f in _frames(4)])
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-2]))  # the last frame loses two atom lines
    with pytest.warns(TruncatedTrajectoryWarning, match=r"reading stopped after 3 frames"):
        assert _read(path) == 3


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("phase.cif", "a CIF"),
        ("POSCAR", "a POSCAR/CONTCAR"),
        ("CONTCAR.gz", "a POSCAR/CONTCAR"),
        ("x.vasp", "a POSCAR/CONTCAR"),
    ],
)
def test_a_single_structure_file_is_not_a_trajectory(tmp_path: Path, name: str, kind: str) -> None:
    """A CIF given to the analysis used to be read as a one-frame trajectory (exit 0)."""
    from ase.build import bulk
    from ase.io import write

    path = tmp_path / name
    atoms = bulk("Cu", "fcc", a=3.6)
    if name.endswith(".cif"):
        write(path, atoms, format="cif")
    else:
        path.write_text("not read: refused by its name\n")
    with pytest.raises(TrajectoryError, match=rf"{name}: {kind} holds one structure, not a trajectory"):
        list(iter_trajectory([path]))


def test_an_xdatcar_named_otherwise_is_still_read(tmp_path: Path) -> None:
    from cellsim.testing import write_xdatcar

    src = tmp_path / "md_run.out"
    write_xdatcar(src, ["Cu"], [2], np.eye(3) * 5.0, np.random.default_rng(0).random((3, 2, 3)))
    assert sum(len(b) for _, b in iter_trajectory([src])) == 3


def test_a_damaged_engine_json_is_said_not_skipped(tmp_path: Path) -> None:
    """The time step then comes from further down the chain, and the notes say why."""
    from cellsim.io.conditions import resolve_md_conditions
    from cellsim.testing import write_xdatcar

    src = write_xdatcar(tmp_path / "XDATCAR", ["Cu"], [2], np.eye(3) * 5.0, np.zeros((3, 2, 3)))
    (tmp_path / "engine.json").write_text('{"timestep_fs": ')
    cond = resolve_md_conditions(src)
    assert cond.dt_source == "default"
    assert cond.warnings[0].startswith(f"{tmp_path / 'engine.json'}: unreadable (JSONDecodeError: ")
    assert cond.warnings[0].endswith("its time step and temperature not used")
    (tmp_path / "engine.json").write_text('{"timestep_fs": 1.5, "nblock": 2, "temperature_K": 400}')
    cond = resolve_md_conditions(src)
    assert (cond.dt_fs, cond.temperature_K) == (3.0, 400.0)
    assert not [n for n in cond.warnings if "unreadable" in n]
