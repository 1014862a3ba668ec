"""Submitting runs to FireWorks and the batch queue, and what a queue job runs (``cellsim fw-launch RUN``).

**Jobs that resubmit themselves.** ``cellsim submit RUN --queue slurm`` renders ``RUN/workflow/queue/job.sh``
from the study's ``queue:`` section (over the user config's, over the defaults) and submits it. The job
(:func:`run_job`) first queues its successor, the same script with ``--dependency=afterany:<own id>``
(PBS: ``-W depend=afterany:<id>``), then runs the run's ready Fireworks while the scheduler's time lasts
(VASP is stopped cleanly ``walltime_margin_s`` before the end). If work is left, the successor picks it
up when this job ends, also when the scheduler killed it; if not, the job cancels its successor. A chain
of two jobs in a row that stored no new MD step stops itself. Every job of a run is listed in
``RUN/workflow/jobs.json``.

**Independent runs.** Each run has its own store (or its own ``spec._run_id`` on MongoDB), so jobs only
run their own run's work and submitting one run never waits for another's job. Fireworks left RUNNING
by a dead job are rerun when the next job or submit opens the store.

**Campaigns.** ``cellsim submit RUN1 RUN2 ... --max-jobs N`` (or a campaign YAML listing run
directories) submits at most N runs at once; when a run's job chain ends, its last job submits the next
waiting run (state in ``.cellsim-campaign-*.json`` beside the runs).
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cellsim.config.rundir import RunDir, campaign_file
from cellsim.config.settings import Settings, job_end_time, load_settings
from cellsim.core.errors import CellsimError, RunDirError
from cellsim.core.files import atomic_write_json, atomic_write_text

QUEUES = ("local", "slurm", "pbs", "pbspro", "torque")
SCHEDULER_OF = {"slurm": "slurm", "pbs": "pbspro", "pbspro": "pbspro", "torque": "torque"}
QUEUE_DEFAULTS: dict[str, Any] = {
    "nodes": 1,
    "ntasks_per_node": 1,
    "cpus_per_task": 1,
    "walltime": "24:00:00",
    "resubmit": True,
}
LAUNCHER_DEFAULT = {"slurm": "srun", "pbspro": "mpirun -np {ntasks}", "torque": "mpirun -np {ntasks}"}
SLURM_ALIVE = {"PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "RESIZING", "SIGNALING"}
FRUITLESS_JOBS = 2  # a chain stops after this many jobs in a row that stored no new MD step


class QueueError(CellsimError):
    """A queue setting is invalid for the scheduler, or the scheduler refused a job."""


# --------------------------------------------------------------------------- queue settings and scripts


@dataclass
class QueueSettings:
    """The resolved queue resources of a run's jobs (study ``queue:`` over user config over defaults)."""

    scheduler: str
    nodes: int
    ntasks_per_node: int
    cpus_per_task: int
    walltime: str
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    mem: str | None = None
    constraint: str | None = None
    modules: list[str] = field(default_factory=list)
    pre_commands: list[str] = field(default_factory=list)
    mpi_launcher: str = ""
    extra_directives: list[str] = field(default_factory=list)
    resubmit: bool = True

    @property
    def ntasks(self) -> int:
        return self.nodes * self.ntasks_per_node

    @property
    def walltime_s(self) -> int:
        from cellsim.config.study import QueueSpec

        return QueueSpec.walltime_seconds(self.walltime)


def resolve_queue(study: Any, settings: Settings, queue: str | None = None) -> QueueSettings:
    """The queue resources of ``study``'s jobs on scheduler ``queue`` (default: the study's or config's)."""
    merged: dict[str, Any] = dict(QUEUE_DEFAULTS)
    merged.update(settings.queue)
    merged.update(study.queue.model_dump(exclude_none=True))
    name = queue if queue and queue != "local" else merged.get("scheduler")
    if name is None:
        raise QueueError("no scheduler: give --queue slurm|pbs|torque or set queue.scheduler in the study or config")
    sched = SCHEDULER_OF.get(str(name))
    if sched is None:
        raise QueueError(f"queue.scheduler = {name!r}: expected slurm, pbs, pbspro or torque")
    merged.pop("scheduler", None)
    if merged.get("qos") and sched != "slurm":
        raise QueueError(
            f"queue.qos = {merged['qos']!r}: a SLURM setting; PBS has no QoS (use queue.partition or extra_directives)"
        )
    if merged.get("constraint") and sched == "pbspro" and "=" not in merged["constraint"]:
        raise QueueError(
            f"queue.constraint = {merged['constraint']!r}: PBS Pro takes a select resource key=value, e.g. model=icx"
        )
    for d in merged.get("extra_directives") or []:
        prefix = "#SBATCH" if sched == "slurm" else "#PBS"
        if not d.startswith(prefix):
            raise QueueError(f"queue.extra_directives: {d!r} does not start with {prefix} ({sched} script)")
    launcher = merged.pop("mpi_launcher", None) or LAUNCHER_DEFAULT[sched]
    q = QueueSettings(scheduler=sched, **merged)
    q.mpi_launcher = launcher.format(
        ntasks=q.ntasks, nodes=q.nodes, ntasks_per_node=q.ntasks_per_node, cpus_per_task=q.cpus_per_task
    )
    return q


def _mem(mem: str, scheduler: str, factor: int = 1) -> str:
    """``64G`` in the scheduler's spelling (SLURM ``64G``, PBS ``64gb``), times ``factor``."""
    import re

    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)B?", mem.strip(), re.IGNORECASE)
    if m is None:
        raise QueueError(f"queue.mem = {mem!r}: expected a size like 64G")
    value, unit = float(m.group(1)) * factor, (m.group(2) or "M").upper()
    if value != int(value):  # 1.5G -> 1536M
        steps = "KMGT"
        while value != int(value) and unit != "K":
            value, unit = value * 1024, steps[steps.index(unit) - 1]
    number = str(int(value))
    return f"{number}{unit}" if scheduler == "slurm" else f"{number}{unit.lower()}b"


def job_name(rd: RunDir, scheduler: str) -> str:
    name = f"cellsim-{rd.root.name}"
    return name if scheduler == "slurm" else name[:15]  # older PBS/Torque limit names to 15 characters


def job_exports(q: QueueSettings | None) -> dict[str, str]:
    """Environment of the job: cellsim's settings of this shell (explicit, for PBS without -V) and the launcher."""
    out = {
        k: v
        for k, v in sorted(os.environ.items())
        if (k.startswith("CELLSIM_") and k not in ("CELLSIM_JOB_START",)) or k == "PMG_VASP_PSP_DIR"
    }
    if q is not None:
        out["CELLSIM_MPI_LAUNCHER"] = q.mpi_launcher
        out["OMP_NUM_THREADS"] = str(q.cpus_per_task)
    return out


def job_command(rd: RunDir, launchpad: Path | None) -> str:
    # batch scripts may start login shells that reset PATH: call this very Python
    lp = f" --launchpad {shlex.quote(str(launchpad.resolve()))}" if launchpad else ""
    return f"{shlex.quote(sys.executable)} -m cellsim.cli fw-launch {shlex.quote(str(rd.root.resolve()))}{lp}"


def render_script(rd: RunDir, q: QueueSettings, command: str, exports: dict[str, str] | None = None) -> str:
    """The complete batch script of a run's jobs for ``q.scheduler`` (SLURM, PBS Pro or Torque)."""
    out_dir = rd.queue_dir.resolve()
    name = job_name(rd, q.scheduler)
    head: list[str] = []
    if q.scheduler == "slurm":
        d = "#SBATCH"
        head += [
            f"{d} --job-name={name}",
            f"{d} --nodes={q.nodes}",
            f"{d} --ntasks-per-node={q.ntasks_per_node}",
            f"{d} --cpus-per-task={q.cpus_per_task}",
            f"{d} --time={q.walltime}",
        ]
        for opt, value in (("partition", q.partition), ("account", q.account), ("qos", q.qos)):
            if value:
                head.append(f"{d} --{opt}={value}")
        if q.mem:
            head.append(f"{d} --mem={_mem(q.mem, 'slurm')}")
        if q.constraint:
            head.append(f"{d} --constraint={q.constraint}")
        head.append(f"{d} --output={out_dir}/cellsim-%j.out")
    else:
        d = "#PBS"
        head.append(f"{d} -N {name}")
        if q.scheduler == "pbspro":
            chunk = f"select={q.nodes}:ncpus={q.ntasks_per_node * q.cpus_per_task}:mpiprocs={q.ntasks_per_node}"
            chunk += f":ompthreads={q.cpus_per_task}"
            if q.mem:
                chunk += f":mem={_mem(q.mem, 'pbspro')}"
            if q.constraint:
                chunk += f":{q.constraint}"
            head.append(f"{d} -l {chunk}")
        else:
            nodes = f"nodes={q.nodes}:ppn={q.ntasks_per_node * q.cpus_per_task}"
            head.append(f"{d} -l {nodes}{':' + q.constraint if q.constraint else ''}")
            if q.mem:
                head.append(f"{d} -l mem={_mem(q.mem, 'torque', q.nodes)}")
        head.append(f"{d} -l walltime={_pbs_walltime(q.walltime_s)}")
        if q.partition:
            head.append(f"{d} -q {q.partition}")
        if q.account:
            head.append(f"{d} -A {q.account}")
        head += [f"{d} -j oe", f"{d} -o {out_dir}/", f"{d} -V"]
    head += list(q.extra_directives)
    lines = ["#!/bin/bash -l" if q.modules else "#!/bin/bash", *head, ""]
    lines += [
        f"# cellsim job of {rd.root.resolve()}: runs this run's ready Fireworks, queues the next job first",
        "# (afterany) and cancels it when nothing is left. Written by `cellsim submit`; resubmitted as it is.",
        "export CELLSIM_JOB_START=$(date +%s)",
    ]
    lines += [f"module load {m}" for m in q.modules]
    lines += list(q.pre_commands)
    for k, v in (exports or {}).items():
        lines.append(f"export {k}={shlex.quote(v)}")
    lines += [f"cd {shlex.quote(str(out_dir))}", command, ""]
    return "\n".join(lines)


def _pbs_walltime(secs: int) -> str:
    return f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"


def qadapter_script(rd: RunDir, qadapter: Path, command: str) -> tuple[str, str]:
    """(scheduler, script) rendered by a FireWorks queue adapter file (``--qadapter``)."""
    from fireworks.utilities.fw_serializers import load_object_from_file

    if not qadapter.is_file():
        raise QueueError(f"--qadapter {qadapter}: no such file")
    try:
        qa: Any = load_object_from_file(str(qadapter))
    except Exception as exc:  # FireWorks raises what the YAML/serializer raise
        raise QueueError(f"--qadapter {qadapter}: not a FireWorks queue adapter ({exc})") from None
    q_type = str(getattr(qa, "q_type", "")).upper()
    sched = {"SLURM": "slurm", "PBS": "pbspro"}.get(q_type)
    if sched is None:
        raise QueueError(f"--qadapter {qadapter}: _fw_q_type {q_type!r}; cellsim resubmits SLURM or PBS jobs")
    qa["rocket_launch"] = command
    if not qa.get("job_name"):
        qa["job_name"] = job_name(rd, sched)
    return sched, qa.get_script_str(str(rd.queue_dir.resolve()))


# --------------------------------------------------------------------------- schedulers


def _family(scheduler: str) -> str:
    return "slurm" if scheduler == "slurm" else ("local" if scheduler == "local" else "pbs")


def _clean_env() -> dict[str, str]:
    # a job submitting the next one must not hand it its own job's variables, nor this process's open store
    drop = ("CELLSIM_JOB_START", "MONGOMOCK_SERVERSTORE_FILE")
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PBS_")) and k not in drop}


def submit_script(scheduler: str, script: Path, after: str | None = None) -> str:
    """Submit ``script``; the job id. ``after``: start once that job has ended, however it ended."""
    fam = _family(scheduler)
    if fam == "slurm":
        cmd = ["sbatch", "--parsable"] + ([f"--dependency=afterany:{after}"] if after else []) + [str(script.resolve())]
    else:
        cmd = ["qsub"] + (["-W", f"depend=afterany:{after}"] if after else []) + [str(script.resolve())]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=_clean_env(), cwd=script.parent)
    except FileNotFoundError:
        raise QueueError(f"{cmd[0]} not found: is this a {scheduler} login node? (or use --queue local)") from None
    except subprocess.TimeoutExpired:
        raise QueueError(f"{cmd[0]} did not answer in 120 s") from None
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip().splitlines()
        raise QueueError(f"{cmd[0]} refused {script}: {msg[-1] if msg else f'exit status {r.returncode}'}")
    job = r.stdout.strip().split(";")[0].strip()
    if not job:
        raise QueueError(f"{cmd[0]} printed no job id for {script}")
    return job


def job_alive(tag: str) -> bool | None:
    """Whether the job ``slurm:ID`` / ``pbs:ID`` / ``local:HOST:PID`` is queued or running (None: unknown)."""
    kind, _, ident = tag.partition(":")
    try:
        if kind == "slurm":
            r = subprocess.run(["squeue", "-h", "-j", ident, "-o", "%T"], capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                return False if "Invalid job id" in r.stderr else None
            return bool(set(r.stdout.split()) & SLURM_ALIVE)
        if kind == "pbs":
            r = subprocess.run(["qstat", "-f", ident], capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                return False
            state = next((ln.split("=", 1)[1].strip() for ln in r.stdout.splitlines() if "job_state" in ln), "")
            return state in ("Q", "R", "H", "W", "T", "S", "B")
    except (OSError, subprocess.TimeoutExpired):
        return None
    if kind == "local":
        host, _, pid = ident.rpartition(":")
        if host != socket.gethostname():
            return None
        try:
            os.kill(int(pid), 0)
        except (ProcessLookupError, ValueError):
            return False
        except PermissionError:
            return True
        return True
    return None


def cancel_job(tag: str) -> None:
    kind, _, ident = tag.partition(":")
    cmd = {"slurm": ["scancel", ident], "pbs": ["qdel", ident]}.get(kind)
    if cmd:
        try:
            subprocess.run(cmd, capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            pass


def current_job() -> str:
    """This process's job tag: ``slurm:ID``, ``pbs:ID``, else ``local:HOST:PID``."""
    if os.environ.get("SLURM_JOB_ID"):
        return f"slurm:{os.environ['SLURM_JOB_ID']}"
    if os.environ.get("PBS_JOBID"):
        return f"pbs:{os.environ['PBS_JOBID']}"
    return f"local:{socket.gethostname()}:{os.getpid()}"


# --------------------------------------------------------------------------- the run's job records


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _jobs_lock(rd: RunDir) -> Any:
    return _flock(Path(str(rd.jobs_file) + ".lock"))


def read_jobs(rd: RunDir) -> list[dict[str, Any]]:
    try:
        data = json.loads(rd.jobs_file.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    return list(data.get("jobs", [])) if isinstance(data, dict) else []


def _write_jobs(rd: RunDir, jobs: list[dict[str, Any]]) -> None:
    atomic_write_json(rd.jobs_file, {"jobs": jobs})


def _job(jobs: list[dict[str, Any]], tag: str) -> dict[str, Any]:
    for j in jobs:
        if j.get("tag") == tag:
            return j
    j = {"tag": tag}
    jobs.append(j)
    return j


def live_jobs(rd: RunDir) -> list[dict[str, Any]]:
    """This run's jobs that have not ended (by their record and the scheduler)."""
    return [j for j in read_jobs(rd) if not j.get("ended") and job_alive(str(j.get("tag"))) is True]


def _fruitless(jobs: list[dict[str, Any]], me: dict[str, Any], frames_now: int) -> int:
    """Jobs in a row before ``me`` that stored no new MD step."""
    n, cur = 0, me
    while cur.get("predecessor"):
        prev = next((j for j in jobs if j.get("tag") == cur["predecessor"]), None)
        if prev is None or prev.get("frames_start") != frames_now:
            break
        n, cur = n + 1, prev
    return n


# --------------------------------------------------------------------------- submitting


@dataclass
class SubmitOutcome:
    """What ``cellsim submit`` did for one run."""

    run: Path
    action: str  # ran here | submitted | already queued | complete | nothing to run | waiting (campaign)
    job: str | None = None
    states: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def read_submit_record(rd: RunDir) -> dict[str, Any]:
    try:
        data = json.loads(rd.submit_file.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


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
    from cellsim import stages
    from cellsim.workflow.store import WorkflowStore

    rd = RunDir(run_dir).require()
    if engine not in ("vasp", "chgnet", "sevennet"):
        raise CellsimError(f"--engine {engine!r}: expected vasp, chgnet or sevennet")
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
    local_tag = None
    with _jobs_lock(rd):
        live = live_jobs(rd)
        if live:
            tags = ", ".join(str(j["tag"]).split(":", 1)[1] for j in live)
            notes.append(
                f"job {tags} is already queued or running this run" + (" (it runs to the new total)" if time_ps else "")
            )
            return SubmitOutcome(rd.root, "already queued", str(live[-1]["tag"]).split(":", 1)[1], notes=notes)
        store = WorkflowStore(rd, launchpad)
        keep_open = False
        try:
            lost = store.rerun_lost(job_alive)
            if lost:
                notes.append(f"lost run(s) {lost} (RUNNING after their job died) rerun")
            notes += _sync(store, rd, engine, rerun_fizzled=True)
            store.flush()
            from fireworks import FWorker

            ready = store.lpad.run_exists(FWorker(query=store.query()))
            atomic_write_json(rd.submit_file, record)
            if not ready:
                states = _fw_states(store)
                done = bool(states) and all(s == "COMPLETED" for s in states.values())
                return SubmitOutcome(rd.root, "complete" if done else "nothing to run", states=states, notes=notes)
            if queue != "local":
                rd.queue_dir.mkdir(parents=True, exist_ok=True)
                command = job_command(rd, launchpad)
                if qadapter is not None:
                    sched, script = qadapter_script(rd, qadapter, command)
                    script = script.replace(command, _with_exports(command, job_exports(None)))
                else:
                    assert qs is not None
                    sched, script = qs.scheduler, render_script(rd, qs, command, job_exports(qs))
                atomic_write_text(rd.job_script, script)
                rd.job_script.chmod(0o755)
                same = after is not None and after.split(":")[0] == _family(sched)
                job = submit_script(sched, rd.job_script, after=after.split(":", 1)[1] if same and after else None)
                tag = f"{_family(sched)}:{job}"
                jobs = read_jobs(rd)
                _job(jobs, tag).update({"submitted": time.time(), "by": "submit"})
                _write_jobs(rd, jobs)
                return SubmitOutcome(rd.root, "submitted", job, _fw_states(store), notes)
            local_tag = current_job()
            jobs = read_jobs(rd)
            _job(jobs, local_tag).update({"submitted": time.time(), "started": time.time(), "by": "submit"})
            _write_jobs(rd, jobs)
            keep_open = True
        finally:
            if not keep_open:
                store.close()
    # --queue local: run here, the store open, the job lock released (status may read the records)
    try:
        _launch_loop(store, rd, local_tag, None, settings)
        notes += _sync(store, rd, engine)
        states = _fw_states(store)
    finally:
        store.close()
        _end_job(rd, local_tag, "ran here")
    return SubmitOutcome(rd.root, "ran here", None, states, notes)


def _with_exports(command: str, exports: dict[str, str]) -> str:
    pre = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in exports.items())
    return f"export CELLSIM_JOB_START=$(date +%s)\n{pre}{command}"


def _sync(store: Any, rd: RunDir, engine: str, rerun_fizzled: bool = False) -> list[str]:
    from cellsim.workflow.tasks import sync_workflow

    return sync_workflow(store, rd, engine, rerun_fizzled)


def _end_job(rd: RunDir, tag: str | None, outcome: str) -> None:
    if tag is None:
        return
    with _jobs_lock(rd):
        jobs = read_jobs(rd)
        _job(jobs, tag).update({"ended": time.time(), "outcome": outcome})
        _write_jobs(rd, jobs)


def _launch_loop(store: Any, rd: RunDir, tag: str | None, end: float | None, settings: Settings) -> str:
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


# --------------------------------------------------------------------------- the job


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
    with _jobs_lock(rd):
        jobs = read_jobs(rd)
        for j in jobs:
            if j.get("started") and not j.get("ended") and j.get("tag") != tag and job_alive(str(j["tag"])) is False:
                j.update({"ended": time.time(), "outcome": "killed (ended without cleaning up)"})
        me = _job(jobs, tag)
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
                _job(jobs, successor).update({"submitted": time.time(), "by": tag, "predecessor": tag})
                me["successor"] = successor
        _write_jobs(rd, jobs)
    reason, more = "error", True
    try:
        with WorkflowStore(rd, launchpad) as store:
            lost = store.rerun_lost(job_alive)
            if lost:
                notes.append(f"lost run(s) {lost} rerun")
            notes += _sync(store, rd, engine)
            store.flush()
            end = job_end_time(settings) if in_queue else None
            reason = _launch_loop(store, rd, tag, end, settings)
            notes += _sync(store, rd, engine)
            from fireworks import FWorker

            more = store.lpad.run_exists(FWorker(query=store.query()))
    finally:
        with _jobs_lock(rd):
            jobs = read_jobs(rd)
            me = _job(jobs, tag)
            me.update({"ended": time.time(), "outcome": reason, "frames_end": done_steps(rd.root)})
            if not more and successor is not None:
                cancel_job(successor)
                _job(jobs, successor).update({"ended": time.time(), "outcome": "cancelled: nothing left to run"})
            _write_jobs(rd, jobs)
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


# --------------------------------------------------------------------------- campaigns


def load_campaign_yaml(path: Path) -> tuple[list[Path], int | None]:
    """Run directories (relative to the file) and ``max_jobs`` of a campaign YAML file."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CellsimError(f"{path}: cannot read the campaign file ({str(exc).splitlines()[0]})") from None
    if isinstance(data, list):
        data = {"runs": data}
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list) or not data["runs"]:
        raise CellsimError(f"{path}: expected `runs:` with a list of run directories (and optionally `max_jobs:`)")
    unknown = sorted(set(data) - {"runs", "max_jobs"})
    if unknown:
        raise CellsimError(f"{path}: unknown field {unknown[0]!r} (expected runs, max_jobs)")
    runs = [(path.parent / str(r)).resolve() for r in data["runs"]]
    mj = data.get("max_jobs")
    if mj is not None and (not isinstance(mj, int) or mj < 1):
        raise CellsimError(f"{path}: max_jobs: expected a positive whole number, got {mj!r}")
    return runs, mj


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
    with _flock(Path(str(state) + ".lock")):
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
    with _flock(Path(str(state) + ".lock")):
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


# --------------------------------------------------------------------------- status and workflow commands


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
