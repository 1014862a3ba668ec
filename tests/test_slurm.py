"""The workflow through a real single-node SLURM cluster (scripts/slurm-local.sh), fake VASP inside.

Needs root (CI and `make test` run as root; the script installs slurm-wlm and munge and starts the
daemons). Elsewhere these tests skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cellsim.study import load_study
from cellsim.trajectory import read_trajectory

REPO = Path(__file__).resolve().parents[1]
FAKE = REPO / "tests" / "fake_vasp"


@pytest.fixture(scope="module")
def slurm() -> None:
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster needs root")
    r = subprocess.run([str(REPO / "scripts" / "slurm-local.sh"), "start"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"could not start the local SLURM cluster: {r.stdout}{r.stderr}")


@pytest.fixture
def sl_env(paper_run: Path, tmp_path: Path, slurm: None) -> tuple[Path, dict[str, str]]:
    run = tmp_path / "run"
    shutil.copytree(paper_run, run)
    study = load_study(run / "study.yaml")
    study.md.total_time_ps, study.md.segment_time_ps = 0.05, 0.02
    (run / "study.yaml").write_text(study.to_yaml())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_VASP", "MONGOMOCK", "PMG_VASP"))}
    env.update(
        CELLSIM_VASP_CMD=str(FAKE / "vasp_std"),
        CELLSIM_VASP_GAMMA_CMD=str(FAKE / "vasp_gam"),
        CELLSIM_FW_STORE=str(tmp_path / "store" / "launchpad.json"),
        CELLSIM_CUSTODIAN_POLLING_S="0.1",
        CELLSIM_CACHE=str(tmp_path / "cache"),
        COLUMNS="150",
    )
    return run, env


def submit(run: Path, env: dict[str, str]) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "cellsim.cli", "submit", str(run), "--queue", "slurm"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    job = r.stdout.split("job_id is ")[-1].split()[0] if "job_id is " in r.stdout else None
    if job is None:
        job = (r.stderr.split("job_id is ")[-1].split()[0]) if "job_id is " in r.stderr else ""
    assert job.isdigit(), r.stdout + r.stderr
    return job


def wait_gone(job: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout
        if not out.strip():
            return
        time.sleep(0.5)
    subprocess.run(["scancel", job])
    pytest.fail(f"SLURM job {job} did not finish in {timeout} s")


def stitched(run: Path, env: dict[str, str]) -> np.ndarray:
    subprocess.run(
        [sys.executable, "-m", "cellsim.cli", "stitch", str(run), "-o", str(run / "all")],
        env=env,
        check=True,
        capture_output=True,
    )
    return read_trajectory(run / "all")[1]


@pytest.mark.slow
def test_submit_through_slurm_to_completed(
    sl_env: tuple[Path, dict[str, str]], expected_frames: Callable[[Path, int], np.ndarray]
) -> None:
    run, env = sl_env
    job = submit(run, env)
    wait_gone(job)
    frac = stitched(run, env)
    assert len(frac) == 25
    np.testing.assert_allclose(frac, expected_frames(run / "md" / "seg-000" / "POSCAR", 25), atol=2e-7)
    assert (run / "report" / "report.html").is_file()
    check = (
        "from cellsim.fw_launchpad import open_launchpad; lp = open_launchpad(); "
        "print(sorted(fw['state'] for fw in lp.fireworks.find()))"
    )
    out = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == str(["COMPLETED"] * 4), out.stdout + out.stderr


@pytest.mark.slow
def test_job_cancelled_mid_segment_then_resubmitted(
    sl_env: tuple[Path, dict[str, str]], expected_frames: Callable[[Path, int], np.ndarray]
) -> None:
    run, env = sl_env
    job = submit(run, {**env, "FAKE_VASP_STEP_SECONDS": "0.3"})
    seg1 = run / "md" / "seg-001" / "XDATCAR"
    deadline = time.time() + 120
    while time.time() < deadline:
        if seg1.is_file() and seg1.read_text().count("Direct configuration=") >= 3:
            break
        time.sleep(0.2)
    subprocess.run(["scancel", job], check=True)  # like a walltime kill, mid-segment
    wait_gone(job)
    partial = seg1.read_text().count("Direct configuration=")
    assert 3 <= partial < 10
    job = submit(run, env)
    wait_gone(job)
    frac = stitched(run, env)
    assert len(frac) == 25
    np.testing.assert_allclose(frac, expected_frames(run / "md" / "seg-000" / "POSCAR", 25), atol=2e-7)
