"""VASP segments under custodian with a fake VASP: planted errors corrected, kills, restarts and walltime
stops continued exactly (every step's positions checked against the fake's deterministic trajectory)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cellsim.config.settings import Settings
from cellsim.config.study import load_study
from cellsim.engines.vasp import VaspRunError, next_segment, run_md, run_segment, status, stitch
from cellsim.io.xdatcar import read_trajectory
from cellsim.stages import inputs as run_inputs

FAKE = Path(__file__).resolve().parents[1] / "fake_vasp"


@pytest.fixture
def vasp_run(paper_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", f"{FAKE}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CELLSIM_CUSTODIAN_POLLING_S", "0.1")
    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    for var in (
        "FAKE_VASP_PLANT",
        "FAKE_VASP_DIE_AFTER",
        "FAKE_VASP_STEP_SECONDS",
        "FAKE_VASP_AWAIT_STOP_AT",
        "CELLSIM_VASP_CMD",
    ):
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
    # custodian reports the SIGKILL (-9) of the segment's VASP
    with pytest.raises(VaspRunError, match="seg-000: custodian gave up: Job return code is -9"):
        run_md(vasp_run, study, max_segments=1)
    monkeypatch.delenv("FAKE_VASP_DIE_AFTER")
    run_md(vasp_run, study)
    st = status(vasp_run, study)
    assert st["frames"] == 25 and [r["nsw"] for r in st["segments"]] == [10, 10, 5]
    # the killed segment was continued in place: its 4 whole frames are part 1, VASP made the other 6
    assert st["segments"][0]["parts"] == [4, 6] and st["segments"][0]["state"] == "complete"
    stitched_against_plan(vasp_run, 25, expected_frames)


def test_kill_between_xdatcar_and_contcar_is_reconciled(vasp_run: Path) -> None:
    """A frame written after the last CONTCAR is cut, so the continuation does not repeat it."""
    from cellsim.engines.vasp import reconcile

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


def stitched_against_plan(run: Path, n: int, expected_frames: Callable[[Path, int], np.ndarray]) -> None:
    assert stitch(run, run / "md" / "XDATCAR") == n
    _, frac, _ = read_trajectory(run / "md" / "XDATCAR")
    start = run / "md" / "seg-000" / "POSCAR.orig"
    np.testing.assert_allclose(frac, expected_frames(start, n), atol=2e-7)


def test_restart_inside_a_segment_keeps_every_step(
    vasp_run: Path, monkeypatch: pytest.MonkeyPatch, expected_frames: Callable[[Path, int], np.ndarray]
) -> None:
    """EDDDAV after global step 14 (4 steps into seg-001): custodian copies CONTCAR and restarts VASP,
    which would overwrite XDATCAR (steps 11-14 lost); the partial outputs are kept as part 1."""
    from cellsim.config.rundir import RunDir

    monkeypatch.setenv("FAKE_VASP_PLANT", "edddav@14")
    study = load_study(vasp_run / "study.yaml")
    log = run_md(vasp_run, study)
    assert [e["segment"] for e in log] == ["seg-000", "seg-001", "seg-002"]
    assert [c["errors"] for c in log[1]["corrections"]] == [["edddav"]]
    seg1 = vasp_run / "md" / "seg-001"
    assert len(read_trajectory(seg1 / "XDATCAR.part-1")[1]) == 4 and len(read_trajectory(seg1 / "XDATCAR")[1]) == 6
    assert len((seg1 / "OSZICAR.part-1").read_text().splitlines()) == 4
    st = status(vasp_run, study)
    row = st["segments"][1]
    assert (row["frames"], row["parts"], row["corrections"], row["errors"]) == (10, [4, 6], 1, ["edddav"])
    assert st["frames"] == 25
    files = RunDir(vasp_run).trajectory_files()
    assert [f.relative_to(vasp_run / "md").as_posix() for f in files] == [
        "seg-000/XDATCAR",
        "seg-001/XDATCAR.part-1",
        "seg-001/XDATCAR",
        "seg-002/XDATCAR",
    ]
    assert [f.name for f in RunDir(vasp_run).energy_files()] == ["OSZICAR", "OSZICAR.part-1", "OSZICAR", "OSZICAR"]
    stitched_against_plan(vasp_run, 25, expected_frames)


def test_walltime_stops_vasp_cleanly_and_the_segment_continues(
    vasp_run: Path, monkeypatch: pytest.MonkeyPatch, expected_frames: Callable[[Path, int], np.ndarray]
) -> None:
    """The job's end time reaches custodian's WalltimeHandler: STOPCAR (LSTOP), the fake stops after the
    current step with a whole CONTCAR, and the next run continues the same segment.

    The clock the handler reads is frozen until the fake VASP has written step 3, then jumps past the job's
    end; the fake waits at step 3 for the STOPCAR. So the stop lands after exactly 3 frames on any machine.
    """
    import datetime as dt_module

    study = load_study(vasp_run / "study.yaml")
    settings = Settings(
        vasp_cmd=(str(FAKE / "vasp_std"),),
        vasp_gamma_cmd=(str(FAKE / "vasp_gam"),),
        custodian_polling_s=0.1,
        walltime_margin_s=1.0,
    )
    seg = next_segment(vasp_run, study)
    assert seg is not None
    start, end = 1_000_000.0, 1_000_100.0

    def now() -> float:
        """Before the job's end until the fake's CONTCAR is step 3's, 100 s after it from then on."""
        try:
            at_step_3 = (seg / "CONTCAR").read_text().startswith("fake-step=3\n")
        except OSError:
            at_step_3 = False
        return end + 100.0 if at_step_3 else start

    real_datetime = dt_module.datetime

    class ClockDatetime(real_datetime):
        @classmethod
        def now(cls, tz: dt_module.tzinfo | None = None) -> dt_module.datetime:  # type: ignore[override]
            return real_datetime.fromtimestamp(now(), tz)

    monkeypatch.setenv("FAKE_VASP_AWAIT_STOP_AT", "3")
    with monkeypatch.context() as clock:  # cellsim's end time (time.time) and custodian's clock (datetime.now)
        clock.setattr(time, "time", now)
        clock.setattr(dt_module, "datetime", ClockDatetime)
        info = run_segment(seg, settings, end_time=end)
    assert info["walltime_stop"] is True
    assert info["frames"] == 3
    assert not (seg / "STOPCAR").exists()
    assert "LSTOP in STOPCAR, stopping after step 3 of 10" in (seg / "vasp.out").read_text()
    st = status(vasp_run, study)
    assert st["segments"][0]["walltime_stops"] == 1 and st["segments"][0]["state"] == "partial"
    assert st["segments"][0]["corrections"] == 0  # a walltime stop is not a correction
    monkeypatch.delenv("FAKE_VASP_AWAIT_STOP_AT")
    assert next_segment(vasp_run, study) == seg  # continued in place
    run_md(vasp_run, study, settings)
    st = status(vasp_run, study)
    assert st["frames"] == 25 and st["segments"][0]["parts"] == [3, 7]
    stitched_against_plan(vasp_run, 25, expected_frames)


def test_missing_vasp_is_one_clear_error(vasp_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    study = load_study(vasp_run / "study.yaml")
    with pytest.raises(VaspRunError, match=r"VASP not found .*'vasp_gam' \(vasp_gamma_cmd\) nor 'vasp_std'"):
        run_md(vasp_run, study)
