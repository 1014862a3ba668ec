"""What a queue job of a run does (``cellsim fw-launch RUN``): a chain of jobs that resubmit themselves.

The job (:func:`run_job`) first queues its successor, the same script with ``--dependency=afterany:<own
id>`` (PBS: ``-W depend=afterany:<id>``), then runs the run's ready Fireworks while the scheduler's time
lasts (VASP is stopped cleanly ``walltime_margin_s`` before the end). If work is left, the successor picks
it up when this job ends, also when the scheduler killed it; if not, the job cancels its successor. A chain
of two jobs in a row that stored no new MD step stops itself. Every job of a run is listed in
``RUN/workflow/jobs.json``. When the chain of a campaign's run ends, its last job submits the campaign's
next waiting run.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellsim.config.rundir import RunDir
from cellsim.config.settings import Settings, job_end_time, load_settings
from cellsim.workflow.campaign import campaign_advance
from cellsim.workflow.jobs import (
    job_entry,
    jobs_lock,
    launch_loop,
    read_jobs,
    read_submit_record,
    sync_store,
    write_jobs,
)
from cellsim.workflow.queue import QueueError, cancel_job, current_job, job_alive, submit_script

FRUITLESS_JOBS = 2  # a chain stops after this many jobs in a row that stored no new MD step


def _fruitless(jobs: list[dict[str, Any]], me: dict[str, Any], frames_now: int) -> int:
    """Jobs in a row before ``me`` that stored no new MD step."""
    n, cur = 0, me
    while cur.get("predecessor"):
        prev = next((j for j in jobs if j.get("tag") == cur["predecessor"]), None)
        if prev is None or prev.get("frames_start") != frames_now:
            break
        n, cur = n + 1, prev
    return n


@dataclass
class JobOutcome:
    tag: str
    successor: str | None
    reason: str
    more: bool
    notes: list[str] = field(default_factory=list)


def run_job(run_dir: Path, launchpad: Path | None = None) -> JobOutcome:
    """What a queue job of a run does (``cellsim fw-launch RUN``); see the module docstring."""
    from cellsim.engines.vasp import done_steps
    from cellsim.workflow.store import WorkflowStore

    rd = RunDir(run_dir).require()
    settings = load_settings()
    record = read_submit_record(rd)
    engine = str(record.get("engine") or "vasp")
    if launchpad is None and record.get("launchpad"):
        launchpad = Path(record["launchpad"])
    tag = current_job()
    in_queue = not tag.startswith("local:")
    # no SIGTERM handler: FireWorks would record the scheduler's kill as a FIZZLED Firework. Killed, the
    # process leaves the embedded store as it was before the running Firework (READY again), and on
    # MongoDB a RUNNING Firework whose job is gone (rerun_lost)
    frames = done_steps(rd.root)
    notes: list[str] = []
    successor = None
    with jobs_lock(rd):
        jobs = read_jobs(rd)
        for j in jobs:
            if j.get("started") and not j.get("ended") and j.get("tag") != tag and job_alive(str(j["tag"])) is False:
                j.update({"ended": time.time(), "outcome": "killed (ended without cleaning up)"})
        me = job_entry(jobs, tag)
        me.update({"started": time.time(), "frames_start": frames, "host": socket.gethostname()})
        resubmit = in_queue and rd.job_script.is_file() and _resubmit_enabled(rd, settings)
        if resubmit and _fruitless(jobs, me, frames) >= FRUITLESS_JOBS:
            resubmit = False
            notes.append(f"{FRUITLESS_JOBS} jobs in a row stored no MD step: no further job queued")
        if resubmit:
            try:
                job = submit_script(tag.split(":")[0], rd.job_script, after=tag.split(":", 1)[1])
            except QueueError as exc:  # some sites refuse submissions from compute nodes
                notes.append(f"could not queue the next job ({exc}); submit the run again when this one ends")
            else:
                successor = f"{tag.split(':')[0]}:{job}"
                job_entry(jobs, successor).update({"submitted": time.time(), "by": tag, "predecessor": tag})
                me["successor"] = successor
        write_jobs(rd, jobs)
    reason, more = "error", True
    try:
        with WorkflowStore(rd, launchpad) as store:
            lost = store.rerun_lost(job_alive)
            if lost:
                notes.append(f"lost run(s) {lost} rerun")
            notes += sync_store(store, rd, engine)
            store.flush()
            end = job_end_time(settings) if in_queue else None
            reason = launch_loop(store, rd, tag, end, settings)
            notes += sync_store(store, rd, engine)
            from fireworks import FWorker

            more = store.lpad.run_exists(FWorker(query=store.query()))
    finally:
        with jobs_lock(rd):
            jobs = read_jobs(rd)
            me = job_entry(jobs, tag)
            me.update({"ended": time.time(), "outcome": reason, "frames_end": done_steps(rd.root)})
            if not more and successor is not None:
                cancel_job(successor)
                job_entry(jobs, successor).update({"ended": time.time(), "outcome": "cancelled: nothing left to run"})
            write_jobs(rd, jobs)
    if more and successor is None and in_queue:
        notes.append("work is left and no next job is queued: run `cellsim submit` again")
    if not more and record.get("campaign"):
        notes += campaign_advance(Path(record["campaign"]), finished=rd.root, after=tag if in_queue else None)
    return JobOutcome(tag, successor if more else None, reason, more, notes)


def _resubmit_enabled(rd: RunDir, settings: Settings) -> bool:
    study = rd.load_study()
    value = study.queue.resubmit
    if value is None:
        value = settings.queue.get("resubmit", True)
    return bool(value)
