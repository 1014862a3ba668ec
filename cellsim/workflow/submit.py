"""``cellsim submit RUN``: add or update a run's workflow, then run it here or submit its first queue job.

``--queue slurm`` renders ``RUN/workflow/queue/job.sh`` from the study's ``queue:`` section (over the user
config's, over the defaults; :mod:`cellsim.workflow.queue`) and submits it; what the job does is
:mod:`cellsim.workflow.chain`. Each run has its own store (or its own ``spec._run_id`` on MongoDB), so
submitting one run never waits for another's job. Fireworks left RUNNING by a dead job are rerun when the
next job or submit opens the store.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellsim.config.rundir import RunDir
from cellsim.config.settings import Settings, load_settings
from cellsim.core.errors import CellsimError
from cellsim.core.files import atomic_write_json, atomic_write_text
from cellsim.workflow.jobs import (
    end_job,
    job_entry,
    jobs_lock,
    launch_loop,
    live_jobs,
    read_jobs,
    read_submit_record,
    sync_store,
    write_jobs,
)
from cellsim.workflow.queue import (
    QUEUES,
    QueueError,
    QueueSettings,
    current_job,
    job_alive,
    job_command,
    job_exports,
    qadapter_script,
    render_script,
    resolve_queue,
    scheduler_family,
    submit_script,
)


@dataclass
class SubmitOutcome:
    """What ``cellsim submit`` did for one run."""

    run: Path
    action: str  # ran here | submitted | already queued | complete | nothing to run | waiting (campaign)
    job: str | None = None
    states: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _fw_states(store: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for fw in store.fireworks():
        name = fw["name"]
        while name in out:
            name += "'"
        out[name] = fw["state"]
    return out


def vasp_check(settings: Settings, queue: str) -> list[str]:
    """Refuse a submission whose VASP cannot run; notes for what only the compute node can tell."""
    from cellsim.engines.vasp import check_vasp_command

    if queue == "local":
        check_vasp_command(settings, "on this machine (--queue local runs VASP here)")
        return []
    std, gam = settings.vasp_commands()
    words = {std[-1], gam[-1]}
    missing_abs = [w for w in words if os.path.isabs(w) and not os.access(w, os.X_OK)]
    if missing_abs and len(missing_abs) == len(words):
        raise QueueError(f"VASP command {' or '.join(sorted(missing_abs))}: no such executable")
    import shutil

    if not any(shutil.which(w) for w in words):
        return [
            f"{' / '.join(sorted(words))} not found here: it is looked up on the compute node (after the study's "
            "queue.modules and pre_commands); a job without it stops with that message"
        ]
    return []


def parse_time(text: str) -> float:
    """``20ps``, ``500fs``, or a bare number of ps -> ps."""
    from cellsim.core.units import QuantityError, parse_time_ps

    try:
        value = float(parse_time_ps(str(text)))
    except QuantityError:
        raise CellsimError(f"--time {text!r}: expected a duration such as 20ps or 500fs") from None
    if not value > 0:
        raise CellsimError(f"--time {text!r}: expected a positive duration")
    return value


def extend_study(rd: RunDir, total_ps: float) -> list[str]:
    """Set the run's md.total_time_ps (the resolved study) to ``total_ps``; notes."""
    from cellsim.config.rundir import save_resolved

    study = rd.load_study()
    if abs(study.md.total_time_ps - total_ps) < 1e-12:
        return []
    from cellsim.engines.vasp import done_steps

    done_ps = done_steps(rd.root) * study.md.timestep_fs / 1000.0
    if total_ps + 1e-12 < done_ps:
        raise CellsimError(
            f"--time {total_ps:g} ps: the run already holds {done_ps:g} ps of MD; give a longer total time"
        )
    old = study.md.total_time_ps
    try:
        study.md.total_time_ps = total_ps
    except ValueError as exc:
        raise CellsimError(f"--time {total_ps:g} ps: {exc}") from None
    save_resolved(study, rd.root, force=True)
    return [f"md.total_time_ps {old:g} -> {total_ps:g} ps"]


def submit_run(
    run_dir: Path,
    engine: str = "vasp",
    launchpad: Path | None = None,
    queue: str | None = None,
    qadapter: Path | None = None,
    time_ps: float | None = None,
    campaign: Path | None = None,
    after: str | None = None,
) -> SubmitOutcome:
    """Add or update the run's workflow and run it here (``queue="local"``) or submit its first job.

    ``queue`` None: the study's (or user config's) ``queue.scheduler``, else local. Every check (queue
    settings, VASP, MongoDB) comes before anything is written. A run whose job chain is alive is not
    submitted again (a longer ``time_ps`` is picked up by that chain). ``after``: the first job starts
    once that job (``slurm:ID``, a campaign's finishing job) has ended.
    """
    from cellsim.workflow.store import WorkflowStore

    rd = RunDir(run_dir).require()
    plan = _plan_submission(rd, engine, launchpad, queue, qadapter, time_ps, campaign)
    notes = plan.notes
    local_tag = None
    with jobs_lock(rd):
        live = live_jobs(rd)
        if live:
            tags = ", ".join(str(j["tag"]).split(":", 1)[1] for j in live)
            notes.append(
                f"job {tags} is already queued or running this run" + (" (it runs to the new total)" if time_ps else "")
            )
            return SubmitOutcome(rd.root, "already queued", str(live[-1]["tag"]).split(":", 1)[1], notes=notes)
        store = WorkflowStore(rd, plan.launchpad)
        keep_open = False
        try:
            outcome = _sync_and_submit(store, rd, engine, plan, qadapter, after)
            if outcome is not None:
                return outcome
            local_tag = current_job()
            jobs = read_jobs(rd)
            job_entry(jobs, local_tag).update({"submitted": time.time(), "started": time.time(), "by": "submit"})
            write_jobs(rd, jobs)
            keep_open = True
        finally:
            if not keep_open:
                store.close()
    # --queue local: run here, the store open, the job lock released (status may read the records)
    try:
        launch_loop(store, rd, local_tag, None, plan.settings)
        notes += sync_store(store, rd, engine)
        states = _fw_states(store)
    finally:
        store.close()
        end_job(rd, local_tag, "ran here")
    return SubmitOutcome(rd.root, "ran here", None, states, notes)


@dataclass
class _SubmitPlan:
    """What :func:`submit_run` settled before taking the run's job lock: every check passed, nothing run yet."""

    settings: Settings
    queue: str
    launchpad: Path | None
    qs: QueueSettings | None  # the queue settings (None: local, or a --qadapter file)
    notes: list[str]
    record: dict[str, Any]  # RUN/workflow/submit.json


def _plan_submission(
    rd: RunDir,
    engine: str,
    launchpad: Path | None,
    queue: str | None,
    qadapter: Path | None,
    time_ps: float | None,
    campaign: Path | None,
) -> _SubmitPlan:
    """The queue, the store and the checks (queue settings, VASP, MongoDB) of a submission, then the study's new
    total time and the VASP inputs where missing."""
    from cellsim import stages
    from cellsim.config.engines import ENGINE_NAMES

    if engine not in ENGINE_NAMES:
        raise CellsimError(f"--engine {engine!r}: expected one of {', '.join(ENGINE_NAMES)}")
    settings = load_settings()
    study = rd.load_study()
    if queue is None:
        queue = "local" if qadapter is None else "slurm"
        queue = study.queue.scheduler or settings.queue.get("scheduler") or queue
    if queue not in QUEUES:
        raise QueueError(f"--queue {queue!r}: expected one of {', '.join(QUEUES)}")
    previous = read_submit_record(rd)
    if launchpad is None:
        launchpad = settings.launchpad or (Path(previous["launchpad"]) if previous.get("launchpad") else None)
    qs: QueueSettings | None = None
    if queue != "local" and qadapter is None:
        qs = resolve_queue(study, settings, queue)
    notes: list[str] = vasp_check(settings, queue) if engine == "vasp" else []
    if launchpad is not None:
        from cellsim.workflow.store import mongo_launchpad

        mongo_launchpad(launchpad)  # reachable before anything is written
    if time_ps is not None:
        notes += extend_study(rd, time_ps)
    if engine == "vasp" and not (rd.segment_dir(0) / "INCAR").is_file():
        stages.inputs(rd.root)
        notes.append("VASP inputs written")
    record = {
        "engine": engine,
        "queue": queue,
        "launchpad": str(launchpad.resolve()) if launchpad else None,
        "qadapter": str(qadapter.resolve()) if qadapter else None,
        "campaign": str(campaign) if campaign else previous.get("campaign"),
    }
    return _SubmitPlan(settings, queue, launchpad, qs, notes, record)


def _sync_and_submit(
    store: Any, rd: RunDir, engine: str, plan: _SubmitPlan, qadapter: Path | None, after: str | None
) -> SubmitOutcome | None:
    """Under the job lock: the store brought up to date with the run, then its first queue job submitted; the
    outcome, or None where the run is to run here (``--queue local``)."""
    notes = plan.notes
    lost = store.rerun_lost(job_alive)
    if lost:
        notes.append(f"lost run(s) {lost} (RUNNING after their job died) rerun")
    notes += sync_store(store, rd, engine, rerun_fizzled=True)
    store.flush()
    from fireworks import FWorker

    ready = store.lpad.run_exists(FWorker(query=store.query()))
    atomic_write_json(rd.submit_file, plan.record)
    if not ready:
        states = _fw_states(store)
        done = bool(states) and all(s == "COMPLETED" for s in states.values())
        return SubmitOutcome(rd.root, "complete" if done else "nothing to run", states=states, notes=notes)
    if plan.queue == "local":
        return None
    rd.queue_dir.mkdir(parents=True, exist_ok=True)
    command = job_command(rd, plan.launchpad)
    if qadapter is not None:
        sched, script = qadapter_script(rd, qadapter, command)
        script = script.replace(command, _with_exports(command, job_exports(None)))
    else:
        assert plan.qs is not None
        sched, script = plan.qs.scheduler, render_script(rd, plan.qs, command, job_exports(plan.qs))
    atomic_write_text(rd.job_script, script)
    rd.job_script.chmod(0o755)
    same = after is not None and after.split(":")[0] == scheduler_family(sched)
    job = submit_script(sched, rd.job_script, after=after.split(":", 1)[1] if same and after else None)
    tag = f"{scheduler_family(sched)}:{job}"
    jobs = read_jobs(rd)
    job_entry(jobs, tag).update({"submitted": time.time(), "by": "submit"})
    write_jobs(rd, jobs)
    return SubmitOutcome(rd.root, "submitted", job, _fw_states(store), notes)


def _with_exports(command: str, exports: dict[str, str]) -> str:
    pre = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in exports.items())
    return f"export CELLSIM_JOB_START=$(date +%s)\n{pre}{command}"
