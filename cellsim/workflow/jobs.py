"""A run's job records (``RUN/workflow/jobs.json``, ``submit.json``) and the loop that launches its ready
Fireworks, shared by ``cellsim submit --queue local``, a queue job (:mod:`cellsim.workflow.chain`) and
``cellsim fw-launch`` without a run."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from cellsim.config.rundir import RunDir
from cellsim.config.settings import Settings
from cellsim.core.files import WriterLock, atomic_write_json
from cellsim.workflow.queue import current_job, job_alive

# --------------------------------------------------------------------------- the run's job records


def jobs_lock(rd: RunDir) -> Any:
    return WriterLock(Path(str(rd.jobs_file) + ".lock"), str(rd.jobs_file), wait_s=None)  # waits: short updates


def read_jobs(rd: RunDir) -> list[dict[str, Any]]:
    try:
        data = json.loads(rd.jobs_file.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    return list(data.get("jobs", [])) if isinstance(data, dict) else []


def write_jobs(rd: RunDir, jobs: list[dict[str, Any]]) -> None:
    atomic_write_json(rd.jobs_file, {"jobs": jobs})


def job_entry(jobs: list[dict[str, Any]], tag: str) -> dict[str, Any]:
    for j in jobs:
        if j.get("tag") == tag:
            return j
    j = {"tag": tag}
    jobs.append(j)
    return j


def live_jobs(rd: RunDir) -> list[dict[str, Any]]:
    """This run's jobs that have not ended (by their record and the scheduler)."""
    return [j for j in read_jobs(rd) if not j.get("ended") and job_alive(str(j.get("tag"))) is True]


def read_submit_record(rd: RunDir) -> dict[str, Any]:
    try:
        data = json.loads(rd.submit_file.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def sync_store(store: Any, rd: RunDir, engine: str, rerun_fizzled: bool = False) -> list[str]:
    from cellsim.workflow.tasks import sync_workflow

    return sync_workflow(store, rd, engine, rerun_fizzled)


def end_job(rd: RunDir, tag: str | None, outcome: str) -> None:
    if tag is None:
        return
    with jobs_lock(rd):
        jobs = read_jobs(rd)
        job_entry(jobs, tag).update({"ended": time.time(), "outcome": outcome})
        write_jobs(rd, jobs)


def launch_loop(store: Any, rd: RunDir, tag: str | None, end: float | None, settings: Settings) -> str:
    """Launch this run's ready Fireworks one by one in ``RUN/workflow/launches``; why the loop stopped."""
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import launch_rocket

    import cellsim.workflow.tasks  # noqa: F401  (registers the FireTasks)

    worker = FWorker(name=f"cellsim {rd.root.name} {tag or current_job()}", query=store.query())
    rd.launch_dir.mkdir(parents=True, exist_ok=True)
    while store.lpad.run_exists(worker):
        if end is not None and end - time.time() < 2 * settings.walltime_margin_s:
            return "time limit near"
        stamp = datetime.now().strftime("%Y-%m-%d-%H-%M-%S-%f")
        ldir = rd.launch_dir / f"launcher_{stamp}"
        ldir.mkdir(parents=True, exist_ok=False)
        cwd = os.getcwd()
        os.chdir(ldir)
        try:
            ran = launch_rocket(store.lpad, worker, strm_lvl="ERROR")
        finally:
            os.chdir(cwd)
            store.flush()
        if not ran and not any(ldir.iterdir()):
            ldir.rmdir()
    return "no ready Firework"


def launch_ready(launchpad: Path | None = None, launch_dir: Path | None = None) -> None:
    """Run every ready Firework of the shared store or MongoDB (``cellsim fw-launch`` without a run)."""
    from cellsim.workflow.store import WorkflowStore

    with WorkflowStore(None, launchpad) as store:
        from fireworks import FWorker
        from fireworks.core.rocket_launcher import rapidfire

        import cellsim.workflow.tasks  # noqa: F401  (registers the FireTasks)

        kw: dict[str, Any] = {}
        if launch_dir is not None:
            launch_dir.mkdir(parents=True, exist_ok=True)
            kw["m_dir"] = str(launch_dir)
        rapidfire(store.lpad, FWorker(name="cellsim-queue"), nlaunches=0, sleep_time=0, strm_lvl="ERROR", **kw)
