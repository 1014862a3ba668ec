"""Runs through a real single-node SLURM cluster (scripts/slurm-local.sh), fake VASP inside.

Needs root (CI and `make test` run as root; the script installs slurm-wlm and munge and starts the
daemons). Elsewhere these tests skip with the reason. Every test checks every MD step of every run
against the fake VASP's deterministic trajectory: each step exactly once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import fake_vasp_frames
from workflow_helpers import cellsim, start_local_slurm, store_states, wait_until

from cellsim.config.study import load_study
from cellsim.io.xdatcar import read_trajectory

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "tests" / "fake_vasp"


@pytest.fixture(scope="module")
def slurm() -> None:
    start_local_slurm()  # without root: skip with the reason; as root, a failed start fails (workflow_helpers)


def make_run(paper_run: Path, path: Path, total_ps: float = 0.05, segment_ps: float = 0.02, **queue: str) -> Path:
    shutil.copytree(paper_run, path)
    study = load_study(path / "study.yaml")
    study.md.total_time_ps, study.md.segment_time_ps = total_ps, segment_ps
    for k, v in queue.items():
        setattr(study.queue, k, v)
    (path / "study.yaml").write_text(study.to_yaml())
    return path


@pytest.fixture
def sl_env(tmp_path: Path, slurm: None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_VASP", "MONGOMOCK", "PMG_VASP", "CELLSIM"))}
    env.update(
        CELLSIM_VASP_CMD=str(FAKE / "vasp_std"),
        CELLSIM_VASP_GAMMA_CMD=str(FAKE / "vasp_gam"),
        CELLSIM_CUSTODIAN_POLLING_S="0.1",
        CELLSIM_CACHE=str(tmp_path / "cache"),
        CELLSIM_CONFIG=str(tmp_path / "no-config.yaml"),
        COLUMNS="200",
    )
    return env


def submit(runs: list[Path], env: dict[str, str], *extra: str) -> dict[Path, str]:
    """``cellsim submit RUN... --queue slurm``; the first job of each run that was submitted."""
    r = cellsim(["submit", *map(str, runs), "--queue", "slurm", *extra], env)
    assert r.returncode == 0, r.stdout + r.stderr
    jobs = {}
    for line in r.stdout.splitlines():
        if ": submitted job " in line:
            run, rest = line.split(": submitted job ")
            jobs[Path(run)] = rest.split(";")[0].strip()
    return jobs


def jobs_of(run: Path) -> list[dict[str, object]]:
    path = run / "workflow" / "jobs.json"
    return json.loads(path.read_text())["jobs"] if path.is_file() else []


def in_queue(ids: list[str]) -> list[str]:
    if not ids:
        return []
    out = subprocess.run(["squeue", "-h", "-j", ",".join(ids), "-o", "%i %T"], capture_output=True, text=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.split()]


def wait_done(runs: list[Path]) -> None:
    """Until no job of these runs is queued or running (their chains ended by themselves); a hang cancels them."""

    def ids() -> list[str]:
        return [str(j["tag"]).split(":", 1)[1] for run in runs for j in jobs_of(run)]

    def done() -> bool:
        now = ids()
        return bool(now) and not in_queue(now) and all(j.get("ended") for run in runs for j in jobs_of(run))

    try:
        wait_until(done, f"the jobs of {runs} ended", poll_s=0.5)
    except BaseException:
        subprocess.run(["scancel", *ids()])
        raise


def check_every_step(run: Path, env: dict[str, str], n: int) -> None:
    from cellsim.engines.vasp import stitch

    out = run / "all.xdatcar"
    assert stitch(run, out) == n
    frac = read_trajectory(out)[1]
    assert len(frac) == n
    seg0 = run / "md" / "seg-000"
    start = seg0 / "POSCAR.orig" if (seg0 / "POSCAR.orig").is_file() else seg0 / "POSCAR"
    np.testing.assert_allclose(frac, fake_vasp_frames(start, n), atol=2e-7)


def job_logs(run: Path) -> str:
    return "".join(p.read_text() for p in sorted((run / "workflow" / "queue").glob("cellsim-*.out")))


def clean_logs(run: Path) -> None:
    text = job_logs(run)
    for noise in ("Traceback", "No Launch exists", "FutureWarning", "DEBUG", "DUE TO TIME LIMIT"):
        assert noise not in text, f"{noise!r} in the job logs of {run}:\n{text[-3000:]}"


@pytest.mark.slow
def test_runs_submitted_together_each_run_only_their_own_work(paper_run: Path, tmp_path: Path, sl_env) -> None:
    """Run A's job runs, held mid-segment; runs B and C are submitted meanwhile as a campaign with --max-jobs 1
    (at once: each run has its own store), C starts by itself when B's chain ends; every job runs only its own
    run's Fireworks; then the finished run A is extended with `--time` (missing segment Fireworks added).

    Deterministic: A is held by a file the fake VASP waits on (not by a sleep racing the submit), and the
    checks read what the runs recorded (jobs.json, launches, stores), never whether two jobs overlapped."""
    a, b, c = (make_run(paper_run, tmp_path / name) for name in ("a", "b", "c"))
    hold = tmp_path / "hold-a"
    hold.write_text("the fake VASP of run A waits while this file exists\n")
    try:
        submit([a], {**sl_env, "FAKE_VASP_HOLD": str(hold)})
        wait_until((a / "md" / "seg-000" / "XDATCAR").is_file, "A's job started its MD")
        # A's job holds A's store while it is held; a submit that needed that store would stop on its lock
        jobs = submit([b, c], {**sl_env, "CELLSIM_FW_LOCK_TIMEOUT_S": "120"}, "--max-jobs", "1")
        assert list(jobs) == [b], jobs
        assert not all(j.get("ended") for j in jobs_of(a)), "A's job is held: it cannot have ended"
    finally:
        hold.unlink(missing_ok=True)
    wait_done([a, b, c])
    # --max-jobs 1: C was submitted by B's finishing job, after it ended, and its job started after that
    b_end = max(float(str(j["ended"])) for j in jobs_of(b) if j.get("started"))
    c_jobs = [j for j in jobs_of(c) if j.get("started")]
    assert min(float(str(j["submitted"])) for j in jobs_of(c)) >= b_end
    assert c_jobs and min(float(str(j["started"])) for j in c_jobs) >= b_end
    for run in (a, b, c):
        check_every_step(run, sl_env, 25)
        assert (run / "report" / "report.html").is_file()
        tags = {str(j["tag"]) for j in jobs_of(run)}
        # every launch of this run was made by one of its own jobs, on its own Fireworks
        for fw_json in (run / "workflow" / "launches").glob("launcher_*/FW.json"):
            assert json.loads(fw_json.read_text())["spec"]["_run_id"] == str(run.resolve())
        fws = cellsim(["fw", "list", str(run)], sl_env)
        assert fws.returncode == 0, fws.stderr
        rows = [line.split("│")[1:-1] for line in fws.stdout.splitlines() if "slurm:" in line]
        assert [r[2].strip() for r in rows] == ["COMPLETED"] * 4, fws.stdout
        assert {r[3].strip() for r in rows} <= tags
        clean_logs(run)
        ran = [j for j in jobs_of(run) if j.get("started")]
        assert len(ran) == 1 and ran[0]["outcome"] == "no ready Firework"
        # its successor was queued at the start and cancelled when nothing was left
        assert [j["outcome"] for j in jobs_of(run) if not j.get("started")] == ["cancelled: nothing left to run"]
    # extend the finished run A by 20 fs: one more segment Firework and a new analysis, in a new job
    assert list(submit([a], sl_env, "--time", "70fs")) == [a]
    wait_done([a])
    check_every_step(a, sl_env, 35)
    assert store_states(a, sl_env) == ["COMPLETED"] * 6
    st = cellsim(["status", str(a), str(b), str(c)], sl_env)
    assert st.returncode == 0 and "35 / 35" in st.stdout and st.stdout.count("25 / 25") == 2, st.stdout


@pytest.mark.slow
def test_job_cancelled_mid_segment_is_continued_by_its_successor(paper_run: Path, tmp_path: Path, sl_env) -> None:
    """scancel (like a node failure) mid-segment: the successor queued at the job's start continues the
    same segment from its last whole frame; the Firework left RUNNING is detected as lost and rerun.

    Deterministic: the fake VASP holds after global step 13 (the third of seg-001) while a file exists, so
    the job is cancelled in that known state, however slow the machine; the file goes once the job is gone."""
    run = make_run(paper_run, tmp_path / "run")
    hold = tmp_path / "hold"
    hold.write_text("the fake VASP waits after step 13 while this file exists\n")
    try:
        job = submit([run], {**sl_env, "FAKE_VASP_HOLD": str(hold), "FAKE_VASP_HOLD_AT": "13"})[run]
        seg1 = run / "md" / "seg-001" / "XDATCAR"
        # the state the cancel lands in: step 13 written (the third frame of seg-001), the fake VASP held after it
        wait_until(
            lambda: seg1.is_file() and seg1.read_text().count("Direct configuration=") >= 3, "the job held at step 13"
        )
        assert seg1.read_text().count("Direct configuration=") == 3  # held: no step after 13
        subprocess.run(["scancel", job], check=True)
        wait_until(lambda: not in_queue([job]), f"job {job} left the queue after scancel")
        assert seg1.read_text().count("Direct configuration=") == 3  # killed where it was held
    finally:
        hold.unlink(missing_ok=True)
    wait_done([run])
    check_every_step(run, sl_env, 25)
    st = cellsim(["status", str(run)], sl_env)
    row = next(line for line in st.stdout.splitlines() if "seg-001" in line)
    assert " + " in row and "complete" in row, st.stdout  # continued in place: parts
    assert [s for s in store_states(run, sl_env) if s != "COMPLETED"] == []
    started = [j for j in jobs_of(run) if j.get("started")]
    assert len(started) == 2 and started[1]["predecessor"] == f"slurm:{job}"


@pytest.mark.slow
def test_one_minute_time_limit_completes_the_plan_by_itself(paper_run: Path, tmp_path: Path, sl_env) -> None:
    """A 1-minute SLURM limit and one segment of 30 steps: the first job stops VASP cleanly (STOPCAR) before the
    limit, its successor continues the same segment and runs the analysis; nobody resubmits anything.

    Deterministic: the fake VASP makes 5 steps and then waits for the STOPCAR, which the walltime handler writes
    once less than the 10 s margin of the job's minute is left; so the first job ends after exactly 5 frames,
    whatever the start-up took, and never reaches the limit itself."""
    run = make_run(paper_run, tmp_path / "run", total_ps=0.06, segment_ps=0.06, walltime="00:01:00")
    env = {**sl_env, "FAKE_VASP_AWAIT_STOP_AT": "5", "CELLSIM_WALLTIME_MARGIN_S": "10"}
    submit([run], env)
    wait_done([run])
    script = (run / "workflow" / "queue" / "job.sh").read_text()
    assert "#SBATCH --time=00:01:00" in script
    check_every_step(run, sl_env, 30)
    states = store_states(run, sl_env)
    assert set(states) == {"COMPLETED"} and len(states) == 3  # the segment, its continuation, the analysis
    jobs = jobs_of(run)
    ran = [j for j in jobs if j.get("started")]
    assert [j["outcome"] for j in ran] == ["time limit near", "no ready Firework"]
    assert [(j["frames_start"], j["frames_end"]) for j in ran] == [(0, 5), (5, 30)]
    assert (run / "report" / "report.html").is_file()
    record = json.loads((run / "md" / "seg-000" / "segment.json").read_text())
    assert len(record["walltime_stops"]) == 1 and record["walltime_stops"][0]["job"] == str(ran[0]["tag"])[6:]
    assert [p["frames"] for p in record["parts"]] == [5]
    clean_logs(run)  # ended by itself: no "CANCELLED ... DUE TO TIME LIMIT"
