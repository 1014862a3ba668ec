"""Campaigns: ``cellsim submit RUN1 RUN2 ... --max-jobs N`` (or a campaign YAML listing run directories, or a
study matrix: :mod:`cellsim.config.matrix`) submits at most N runs at once; when a run's job chain ends, its last
job submits the next waiting run (state in ``.cellsim-campaign-*.json`` beside the runs, under a lock)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cellsim.config.rundir import RunDir, campaign_file
from cellsim.config.settings import load_settings
from cellsim.core.errors import CellsimError
from cellsim.core.files import WriterLock, atomic_write_json
from cellsim.workflow.jobs import live_jobs
from cellsim.workflow.submit import SubmitOutcome, submit_run


def load_campaign_yaml(path: Path) -> tuple[list[Path], int | None]:
    """Run directories and ``max_jobs`` of a campaign file, or of a study matrix (its runs' directories, which
    :func:`cellsim.stages.screening.build_runs` builds); :func:`cellsim.config.matrix.load_run_set` reads both."""
    from cellsim.config.matrix import load_run_set

    rs = load_run_set(path)
    return rs.run_dirs, rs.max_jobs


def submit_many(
    runs: list[Path],
    max_jobs: int | None = None,
    on_outcome: Callable[[SubmitOutcome], None] | None = None,
    **options: Any,
) -> list[SubmitOutcome]:
    """Submit several runs: here one after the other (local), or at most ``max_jobs`` job chains at once."""
    if len(set(r.resolve() for r in runs)) != len(runs):
        raise CellsimError("a run directory is listed twice")
    for r in runs:
        RunDir(r).require()
    queue = options.get("queue")
    if queue is None:
        study = RunDir(runs[0]).load_study()
        queue = study.queue.scheduler or load_settings().queue.get("scheduler") or "local"
    if queue == "local" or max_jobs is None or max_jobs >= len(runs):
        out = []
        for r in runs:
            res = submit_run(r, **options)
            out.append(res)
            if on_outcome:
                on_outcome(res)
        return out
    if max_jobs < 1:
        raise CellsimError(f"--max-jobs {max_jobs}: expected a positive number")
    state = campaign_file(runs)
    opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()}
    with WriterLock(Path(str(state) + ".lock"), str(state), wait_s=None):
        atomic_write_json(
            state,
            {
                "max_jobs": max_jobs,
                "options": opts,
                "runs": [{"run": str(r.resolve()), "state": "waiting"} for r in runs],
            },
        )
    campaign_advance(state)
    data = json.loads(state.read_text())
    out = []
    for entry in data["runs"]:
        res = entry.get("outcome")
        o = (
            SubmitOutcome(Path(entry["run"]), res["action"], res.get("job"), notes=res.get("notes", []))
            if res
            else (
                SubmitOutcome(
                    Path(entry["run"]), "waiting (campaign)", notes=[f"starts when a run ends (max {max_jobs} at once)"]
                )
            )
        )
        out.append(o)
        if on_outcome:
            on_outcome(o)
    return out


def campaign_advance(state: Path, finished: Path | None = None, after: str | None = None) -> list[str]:
    """Mark ``finished`` done and submit waiting runs while fewer than ``max_jobs`` are active; notes.

    ``after``: the finishing job; the next run's first job waits for it to end (never one job too many).
    """
    notes: list[str] = []
    with WriterLock(Path(str(state) + ".lock"), str(state), wait_s=None):
        try:
            data = json.loads(state.read_text())
        except (OSError, json.JSONDecodeError):
            return [f"{state}: campaign state unreadable; submit the remaining runs by hand"]
        opts = dict(data.get("options") or {})
        for key in ("launchpad", "qadapter"):
            if opts.get(key):
                opts[key] = Path(opts[key])
        for entry in data["runs"]:
            if finished is not None and Path(entry["run"]) == finished.resolve():
                entry["state"] = "done"
            elif entry["state"] == "active" and not live_jobs(RunDir(entry["run"])):
                entry["state"] = "done"  # its chain ended
        active = sum(e["state"] == "active" for e in data["runs"])
        for entry in data["runs"]:
            if active >= int(data["max_jobs"]):
                break
            if entry["state"] != "waiting":
                continue
            try:
                res = submit_run(Path(entry["run"]), campaign=state, after=after, **opts)
            except CellsimError as exc:
                entry.update(state="failed", error=str(exc))
                notes.append(f"{entry['run']}: {exc}")
                continue
            entry["outcome"] = {"action": res.action, "job": res.job, "notes": res.notes}
            if res.action in ("submitted", "already queued"):
                entry["state"] = "active"
                active += 1
                notes.append(f"campaign: submitted {entry['run']} (job {res.job})")
            else:
                entry["state"] = "done"
        atomic_write_json(state, data)
    return notes
