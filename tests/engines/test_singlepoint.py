"""The cached single point the DFT codes share (cellsim.engines.singlepoint), driven by a fake code: no DFT binary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from ase import Atoms

from cellsim.core.errors import CellsimError
from cellsim.engines.singlepoint import RECORD_ORDER, Cp2kResult, cached_single_point, job_dir

# the fake code: reads its input, writes one energy and zero forces, counts its runs in the cache folder
_SCRIPT = """
import json, pathlib
p = json.loads(pathlib.Path("fake.in").read_text())
runs = pathlib.Path("..") / "runs.txt"
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
pathlib.Path("fake.out").write_text(json.dumps({"energy_eV": -p["scale"] * p["natoms"],
                                                "forces_eV_A": [[0.0, 0.0, 0.0]] * p["natoms"]}))
"""


class FakeError(CellsimError):
    pass


class FakeCode:
    name = "FAKE"
    error = FakeError
    log = "fake.out"
    stale = ("fake.out",)

    def __init__(self, atoms: Atoms, settings: Mapping[str, Any]) -> None:
        self.atoms = atoms
        self.threads = settings.get("threads", 1)
        self.timeout = None
        self.settings = {k: v for k, v in settings.items() if k != "threads"}

    def nearby(self, folders: Sequence[Path]) -> Cp2kResult | None:
        return None

    def prepare(self) -> tuple[list[str], dict[str, str]]:
        return [sys.executable, "-c", _SCRIPT], dict(os.environ)

    def write_inputs(self, folder: Path) -> None:
        (folder / "fake.in").write_text(json.dumps({**self.settings, "natoms": len(self.atoms)}))

    def parse(self, folder: Path, proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
        if proc.returncode != 0:
            raise FakeError(f"{folder}: the fake code exited {proc.returncode}: {proc.stderr[-300:]}")
        return dict(json.loads((folder / "fake.out").read_text()))

    def record(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {"code": "fake", "command": "fake"}

    def cleanup(self, folder: Path) -> None:
        (folder / "fake.in").unlink()


def _run(atoms: Atoms, cache: Path, settings: Mapping[str, Any], **kw: Any) -> Cp2kResult:
    code = FakeCode(atoms, settings)
    return cached_single_point(code, atoms, job_dir(cache, atoms, code.settings), **kw)


def test_second_call_reuses_the_job_and_a_changed_setting_makes_a_new_one(tmp_path, monkeypatch):
    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.75]], cell=[4, 4, 4], pbc=True)
    first = _run(atoms, tmp_path, {"scale": 1.0}, label="h2", meta={"why": "test"})
    assert not first.cached and first.energy == -2.0 and first.forces.shape == (2, 3)
    assert first.job_dir.name == f"H2-{first.key}" and (tmp_path / "runs.txt").read_text() == "x"
    data = json.loads((first.job_dir / "result.json").read_text())
    # the code's output first, then the record's fields in their one order
    assert list(data) == [
        "energy_eV",
        "forces_eV_A",
        *(k for k in RECORD_ORDER if k not in ("kpoints", "kinds", "gpaw_version")),
    ]
    assert data["settings"] == {"scale": 1.0} and data["label"] == "h2" and data["meta"] == {"why": "test"}
    assert not (first.job_dir / ".lock").exists() and not (first.job_dir / "fake.in").exists()
    assert (first.job_dir / "structure.json").is_file()

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("the fake code ran again"))
    again = _run(atoms, tmp_path, {"scale": 1.0, "threads": 4})  # how it runs is not what it computes
    assert again.cached and again.job_dir == first.job_dir and again.energy == first.energy
    # a copy of the job folder elsewhere (the stored labels) is found by name
    elsewhere = _run(atoms, tmp_path / "other", {"scale": 1.0}, labels=[tmp_path])
    assert elsewhere.cached and elsewhere.job_dir == first.job_dir
    monkeypatch.undo()

    changed = _run(atoms, tmp_path, {"scale": 2.0})
    assert not changed.cached and changed.job_dir != first.job_dir and changed.energy == -4.0
    assert (tmp_path / "runs.txt").read_text() == "xx"


def test_a_failed_run_stores_nothing_and_raises_the_codes_error(tmp_path):
    atoms = Atoms("H", cell=[3, 3, 3], pbc=True)
    code = FakeCode(atoms, {"scale": 1.0})
    code.prepare = lambda: ([sys.executable, "-c", "raise SystemExit(3)"], {})  # type: ignore[method-assign]
    with pytest.raises(FakeError, match="exited 3"):
        cached_single_point(code, atoms, job_dir(tmp_path, atoms, code.settings))
    assert not list(tmp_path.glob("*/result.json"))
