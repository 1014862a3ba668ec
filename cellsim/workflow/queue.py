"""Batch-scheduler adapters: a run's queue settings, its batch script (SLURM, PBS Pro, Torque or a FireWorks
queue adapter file), and submitting, watching and cancelling jobs by their tag (``slurm:ID``, ``pbs:ID``,
``local:HOST:PID``)."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellsim.config.rundir import RunDir
from cellsim.config.settings import Settings
from cellsim.core.errors import CellsimError

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


def scheduler_family(scheduler: str) -> str:
    return "slurm" if scheduler == "slurm" else ("local" if scheduler == "local" else "pbs")


def _clean_env() -> dict[str, str]:
    # a job submitting the next one must not hand it its own job's variables, nor this process's open store
    drop = ("CELLSIM_JOB_START", "MONGOMOCK_SERVERSTORE_FILE")
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PBS_")) and k not in drop}


def submit_script(scheduler: str, script: Path, after: str | None = None) -> str:
    """Submit ``script``; the job id. ``after``: start once that job has ended, however it ended."""
    fam = scheduler_family(scheduler)
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
