"""VASP segments under custodian with a fake VASP: planted errors corrected, kills continued exactly."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cellsim.md.engines.vasp import VaspRunError, run_md, status, stitch
from cellsim.stages import inputs as run_inputs
from cellsim.study import load_study
from cellsim.trajectory import read_trajectory

FAKE = Path(__file__).parent / "fake_vasp"


@pytest.fixture
def vasp_run(paper_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", f"{FAKE}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CELLSIM_CUSTODIAN_POLLING_S", "0.1")
    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    for var in ("FAKE_VASP_PLANT", "FAKE_VASP_DIE_AFTER"):
        monkeypatch.delenv(var, raising=False)
    run = tmp_path / "run"
    shutil.copytree(paper_run, run)
    study = load_study(run / "study.yaml")
    study.md.total_time_ps, study.md.segment_time_ps = 0.05, 0.02  # 25 steps in segments of 10
    (run / "study.yaml").write_text(study.to_yaml())
    run_inputs(run)
    return run


def test_planted_errors_are_corrected_and_segments_chain(
    vasp_run: Path, monkeypatch: pytest.MonkeyPatch, expected_frames: Callable[[Path, int], np.ndarray]
) -> None:
    monkeypatch.setenv("FAKE_VASP_PLANT", "real_optlay,edddav")
    study = load_study(vasp_run / "study.yaml")
    log = run_md(vasp_run, study)
    assert [e["segment"] for e in log] == ["seg-000", "seg-001", "seg-002"]
    fixed = {err for c in log[0]["corrections"] for err in c["errors"]}
    assert fixed == {"real_optlay", "edddav"}
    assert all(c["handler"] == "VaspErrorHandler" for c in log[0]["corrections"])
    seg0 = vasp_run / "md" / "seg-000"
    assert "gam binary" in (seg0 / "OUTCAR").read_text()  # custodian chose the Gamma-only binary
    from pymatgen.io.vasp import Incar

    incar = Incar.from_file(seg0 / "INCAR")
    assert incar["LREAL"] is False and incar["ALGO"] == "All"
    st = status(vasp_run, study)
    assert [r["nsw"] for r in st["segments"]] == [10, 10, 5] and st["frames"] == 25 == st["planned_steps"]
    n = stitch(vasp_run, vasp_run / "md" / "XDATCAR")
    _, frac, _ = read_trajectory(vasp_run / "md" / "XDATCAR")
    assert n == len(frac) == 25
    np.testing.assert_allclose(frac, expected_frames(seg0 / "POSCAR.orig", 25), atol=2e-7)


def test_killed_segment_continues_without_lost_or_doubled_frames(
    vasp_run: Path, monkeypatch: pytest.MonkeyPatch, expected_frames: Callable[[Path, int], np.ndarray]
) -> None:
    study = load_study(vasp_run / "study.yaml")
    monkeypatch.setenv("FAKE_VASP_DIE_AFTER", "4")  # SIGKILL after 4 steps, like a node failure
    with pytest.raises(VaspRunError):
        run_md(vasp_run, study, max_segments=1)
    monkeypatch.delenv("FAKE_VASP_DIE_AFTER")
    run_md(vasp_run, study)
    st = status(vasp_run, study)
    assert st["frames"] == 25
    assert st["segments"][0]["frames"] == 4 and st["segments"][0]["state"] == "partial"
    n = stitch(vasp_run, vasp_run / "md" / "XDATCAR")
    _, frac, _ = read_trajectory(vasp_run / "md" / "XDATCAR")
    assert n == 25
    np.testing.assert_allclose(frac, expected_frames(vasp_run / "md" / "seg-000" / "POSCAR", 25), atol=2e-7)


def test_kill_between_xdatcar_and_contcar_is_reconciled(vasp_run: Path) -> None:
    """A frame written after the last CONTCAR is cut, so the continuation does not repeat it."""
    from cellsim.md.engines.vasp import reconcile

    study = load_study(vasp_run / "study.yaml")
    run_md(vasp_run, study, max_segments=1)
    seg = vasp_run / "md" / "seg-000"
    # make CONTCAR one step behind the XDATCAR's last frame, as if killed between the two writes
    text = (seg / "XDATCAR").read_text()
    last = text.rfind("Direct configuration=")
    prev = text.rfind("Direct configuration=", 0, last)
    frame9 = text[prev:last].splitlines()[1:]
    cont = (seg / "CONTCAR").read_text().splitlines()
    start = next(i for i, line in enumerate(cont) if line.strip() == "Direct") + 1
    cont[start : start + len(frame9)] = frame9
    (seg / "CONTCAR").write_text("\n".join(cont) + "\n")
    assert reconcile(seg) == 9
    _, frac, _ = read_trajectory(seg / "XDATCAR")
    assert len(frac) == 9 and len((seg / "OSZICAR").read_text().splitlines()) == 9
