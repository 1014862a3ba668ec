"""A batch job whose end time cannot be found says that its walltime protection is off (it was silent)."""

from __future__ import annotations

import pytest

from cellsim.config import settings as cs
from cellsim.config.settings import Settings, WalltimeUnknownWarning, job_end_time


@pytest.fixture(autouse=True)
def _no_scheduler_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("SLURM_JOB_ID", "SLURM_JOB_END_TIME", "PBS_JOBID", "PBS_WALLTIME", "CELLSIM_JOB_START"):
        monkeypatch.delenv(k, raising=False)


def test_slurm_query_failure_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setattr(cs, "_run", lambda cmd, timeout=20.0: None)  # squeue missing or failed
    with pytest.warns(WalltimeUnknownWarning, match=r"SLURM job: its end time could not be found .*walltime_s"):
        assert job_end_time(Settings()) is None


def test_slurm_job_without_a_limit_is_quiet(monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setattr(cs, "_run", lambda cmd, timeout=20.0: "UNLIMITED\n")
    assert job_end_time(Settings()) is None
    assert not [w for w in recwarn if issubclass(w.category, WalltimeUnknownWarning)]


def test_pbs_without_walltime_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PBS_JOBID", "12.server")
    monkeypatch.setattr(cs, "_run", lambda cmd, timeout=20.0: "    Job_Name = x\n")
    with pytest.warns(WalltimeUnknownWarning, match=r"PBS job: its end time could not be found"):
        assert job_end_time(Settings()) is None


def test_outside_a_job_and_with_the_setting_nothing_warns(
    monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    assert job_end_time(Settings()) is None
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("CELLSIM_JOB_START", "1000")
    monkeypatch.setattr(cs, "_run", lambda cmd, timeout=20.0: None)
    assert job_end_time(Settings(walltime_s=60)) == 1060.0
    assert not [w for w in recwarn if issubclass(w.category, WalltimeUnknownWarning)]
