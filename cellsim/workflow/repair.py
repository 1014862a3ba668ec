"""Inspecting and repairing a run's workflow state: ``cellsim status`` (Fireworks and jobs) and the
``cellsim fw list|rerun|reset|detect-lost`` commands, which open the run's store under cellsim's lock and
refuse to change it while a job of the run is alive."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cellsim.config.rundir import RunDir
from cellsim.core.errors import RunDirError
from cellsim.workflow.jobs import live_jobs, read_jobs, read_submit_record
from cellsim.workflow.queue import job_alive


def run_overview(rd: RunDir) -> dict[str, Any]:
    """Firework states (the store as last written; no lock needed) and jobs of a run, for ``cellsim status``."""
    from cellsim.workflow.store import read_store_snapshot, run_id, store_for

    record = read_submit_record(rd)
    states: dict[str, int] = {}
    if not record.get("launchpad"):
        rid = run_id(rd)
        for fw in read_store_snapshot(store_for(rd)):
            if (fw.get("spec") or {}).get("_run_id", rid) == rid:
                states[fw["state"]] = states.get(fw["state"], 0) + 1
    jobs = read_jobs(rd)
    live = [j for j in jobs if not j.get("ended") and job_alive(str(j.get("tag"))) is True]
    return {"fireworks": states, "jobs": jobs, "live": live, "submit": record}


@contextmanager
def open_run_store(rd: RunDir, launchpad: Path | None = None, wait_s: float = 10.0) -> Iterator[Any]:
    """The run's workflow store for the ``cellsim fw`` commands, refused while a job of the run is alive."""
    from cellsim.workflow.store import LaunchPadBusy, WorkflowStore

    rd.require()
    record = read_submit_record(rd)
    if launchpad is None and record.get("launchpad"):
        launchpad = Path(record["launchpad"])
    try:
        store = WorkflowStore(rd, launchpad, wait_s=wait_s)
    except LaunchPadBusy:
        live = live_jobs(rd)
        who = f"job {live[-1]['tag'].split(':', 1)[1]}" if live else "another cellsim process"
        raise RunDirError(f"{rd.root}: {who} holds the run's workflow store; wait for it or cancel it") from None
    with store:
        yield store


def fw_list(rd: RunDir, launchpad: Path | None = None) -> list[dict[str, Any]]:
    """This run's Fireworks: id, name, state, and the job of the last launch."""
    from cellsim.workflow.store import LaunchPadBusy

    try:
        with open_run_store(rd, launchpad, wait_s=2.0) as store:
            rows = []
            for fw in store.fireworks():
                job = ""
                if fw.get("launches"):
                    launch = store.lpad.launches.find_one({"launch_id": fw["launches"][-1]}, {"fworker": 1})
                    job = str(((launch or {}).get("fworker") or {}).get("name", "")).rsplit(" ", 1)[-1]
                rows.append({"fw_id": fw["fw_id"], "name": fw["name"], "state": fw["state"], "job": job})
            return rows
    except (RunDirError, LaunchPadBusy):
        from cellsim.workflow.store import read_store_snapshot, run_id, store_for

        rid = run_id(rd)
        snap = [fw for fw in read_store_snapshot(store_for(rd)) if (fw.get("spec") or {}).get("_run_id") == rid]
        if not snap:
            raise
        return [
            {"fw_id": fw["fw_id"], "name": fw["name"], "state": fw["state"], "job": "(snapshot: a job holds the store)"}
            for fw in sorted(snap, key=lambda d: d["fw_id"])
        ]


def _refuse_if_live(rd: RunDir, what: str) -> None:
    live = live_jobs(rd)
    if live:
        ids = ", ".join(str(j["tag"]).split(":", 1)[1] for j in live)
        raise RunDirError(f"{rd.root}: job {ids} is queued or running this run; cancel it before `cellsim fw {what}`")


def fw_rerun(rd: RunDir, fw_ids: list[int] | None = None, launchpad: Path | None = None) -> list[int]:
    """Rerun the given Fireworks of this run (default: every FIZZLED one); the ids rerun."""
    _refuse_if_live(rd, "rerun")
    with open_run_store(rd, launchpad) as store:
        mine = {fw["fw_id"]: fw["state"] for fw in store.fireworks()}
        ids = fw_ids or [i for i, s in mine.items() if s == "FIZZLED"]
        for i in ids:
            if i not in mine:
                raise RunDirError(f"Firework {i} is not one of {rd.root}'s ({sorted(mine)})")
            store.lpad.rerun_fw(i)
        return ids


def fw_reset(rd: RunDir, launchpad: Path | None = None) -> int:
    """Delete this run's workflow(s) from the store (its MD files stay); the number of Fireworks removed."""
    _refuse_if_live(rd, "reset")
    with open_run_store(rd, launchpad) as store:
        fws = store.fireworks()
        done: set[int] = set()
        for fw in fws:
            if fw["fw_id"] in done:
                continue
            wf = store.lpad.workflows.find_one({"nodes": fw["fw_id"]}, {"nodes": 1})
            store.lpad.delete_wf(fw["fw_id"])
            done.update(wf["nodes"] if wf else [fw["fw_id"]])
        return len(fws)


def fw_detect_lost(rd: RunDir, launchpad: Path | None = None) -> list[int]:
    """Rerun this run's Fireworks left RUNNING by a job that is gone; their ids."""
    with open_run_store(rd, launchpad) as store:
        return list(store.rerun_lost(job_alive))
