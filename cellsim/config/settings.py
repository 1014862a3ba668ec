"""Machine settings (not science): VASP commands, custodian polling, walltime margin, queue defaults.

Read from the environment first, then from a YAML file (``$CELLSIM_CONFIG`` or
``~/.config/cellsim/config.yaml``), like atomate2's VASP_CMD settings:

| setting | environment | default |
|---|---|---|
| vasp_cmd | CELLSIM_VASP_CMD | ``vasp_std`` |
| vasp_gamma_cmd | CELLSIM_VASP_GAMMA_CMD | ``vasp_gam`` (used for a Gamma-only 1x1x1 KPOINTS) |
| mpi_launcher | CELLSIM_MPI_LAUNCHER | unset: VASP runs as given (a queue job sets it from ``queue.mpi_launcher``) |
| custodian_polling_s | CELLSIM_CUSTODIAN_POLLING_S | 10 |
| walltime_s | CELLSIM_WALLTIME_S | unset: the job's end time is asked from the scheduler |
| walltime_margin_s | CELLSIM_WALLTIME_MARGIN_S | 300 (STOPCAR this long before the job's end) |
| launchpad | CELLSIM_LAUNCHPAD | unset: each run's embedded store (a ``my_launchpad.yaml`` for MongoDB) |
| queue | (file only) | ``queue:`` defaults for every study (partition, account, modules, ...) |

The end of a batch job (:func:`job_end_time`) comes from the scheduler: SLURM_JOB_END_TIME, else
``squeue -h -j $SLURM_JOB_ID -o %e``; PBS: ``qstat -f`` (Walltime.Remaining or Resource_List.walltime -
resources_used.walltime), else PBS_WALLTIME from the job's start. custodian's WalltimeHandler alone reads
only SBATCH_TIMELIMIT / PBS_WALLTIME, which a SLURM batch job does not have.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cellsim.core.errors import CellsimError

LAUNCHERS = ("srun", "mpirun", "mpiexec", "mpiexec.hydra", "aprun", "ibrun", "jsrun", "orterun")


@dataclass(frozen=True)
class Settings:
    vasp_cmd: tuple[str, ...] = ("vasp_std",)
    vasp_gamma_cmd: tuple[str, ...] = ("vasp_gam",)
    custodian_polling_s: float = 10.0
    walltime_s: float | None = None
    walltime_margin_s: float = 300.0
    mpi_launcher: tuple[str, ...] = ()
    launchpad: Path | None = None
    queue: dict[str, Any] = field(default_factory=dict)

    def vasp_commands(self) -> tuple[list[str], list[str]]:
        """The standard and Gamma-only VASP commands with the MPI launcher in front (unless they have one)."""

        def full(cmd: tuple[str, ...]) -> list[str]:
            if not self.mpi_launcher or (cmd and Path(cmd[0]).name in LAUNCHERS):
                return list(cmd)
            return [*self.mpi_launcher, *cmd]

        return full(self.vasp_cmd), full(self.vasp_gamma_cmd)


def config_path() -> Path:
    return Path(os.environ.get("CELLSIM_CONFIG") or Path.home() / ".config" / "cellsim" / "config.yaml")


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CellsimError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise CellsimError(f"{path}: expected a mapping of settings")
    known = {f for f in Settings.__dataclass_fields__}
    unknown = sorted(set(loaded) - known)
    if unknown:
        raise CellsimError(f"{path}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return loaded


def load_settings() -> Settings:
    path = config_path()
    file = _read_config(path)

    def get(key: str, env: str, default: object) -> object:
        # a set environment variable, else the file's value, else the default; 0 and "" in the file are
        # values (an empty environment variable counts as unset, as in a shell)
        if os.environ.get(env):
            return os.environ[env]
        value = file.get(key)
        return default if value is None else value

    def cmd(key: str, value: object) -> tuple[str, ...]:
        if isinstance(value, str):
            out = tuple(shlex.split(value))
        elif isinstance(value, list | tuple):
            out = tuple(str(v) for v in value)
        else:
            raise CellsimError(f"{path}: {key}: expected a command (a string or a list of words), got {value!r}")
        if not out and key != "mpi_launcher":
            raise CellsimError(f"{path}: {key}: empty command")
        return out

    def number(key: str, env: str, default: float | None, zero: bool = False) -> float | None:
        """Seconds from ``env`` or the file; 0 only where ``zero`` (it means "none" there, not "unset")."""
        raw = get(key, env, default)
        if raw is None:
            return None
        try:
            value = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise CellsimError(f"{env} / {path}: {key}: expected a number of seconds, got {raw!r}") from None
        if value != value or value < 0 or (value == 0 and not zero):
            bound = ">= 0" if zero else "above 0"
            raise CellsimError(f"{env} / {path}: {key}: expected a number of seconds {bound}, got {raw!r}")
        return value

    def seconds(key: str, env: str, default: float, zero: bool = False) -> float:
        value = number(key, env, default, zero)
        assert value is not None  # a default is given
        return value

    queue = file.get("queue") or {}
    if queue:
        from pydantic import ValidationError

        from cellsim.config.study import QueueSpec

        try:
            queue = QueueSpec.model_validate(queue).model_dump(exclude_none=True)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise CellsimError(f"{path}: queue.{where}: {err['msg']}") from None
    lp = get("launchpad", "CELLSIM_LAUNCHPAD", None)
    wall = number("walltime_s", "CELLSIM_WALLTIME_S", None)
    return Settings(
        vasp_cmd=cmd("vasp_cmd", get("vasp_cmd", "CELLSIM_VASP_CMD", "vasp_std")),
        vasp_gamma_cmd=cmd("vasp_gamma_cmd", get("vasp_gamma_cmd", "CELLSIM_VASP_GAMMA_CMD", "vasp_gam")),
        custodian_polling_s=seconds("custodian_polling_s", "CELLSIM_CUSTODIAN_POLLING_S", 10.0),
        walltime_s=wall,
        walltime_margin_s=seconds("walltime_margin_s", "CELLSIM_WALLTIME_MARGIN_S", 300.0, zero=True),
        mpi_launcher=cmd("mpi_launcher", get("mpi_launcher", "CELLSIM_MPI_LAUNCHER", "")),
        launchpad=Path(str(lp)).expanduser() if lp else None,
        queue=dict(queue),
    )


# --------------------------------------------------------------------------- the job's end time


def _run(cmd: list[str], timeout: float = 20.0) -> str | None:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout if r.returncode == 0 else None


def _hms(text: str) -> float | None:
    try:
        parts = [float(p) for p in text.strip().split(":")]
    except ValueError:
        return None
    secs = 0.0
    for p in parts:
        secs = secs * 60 + p
    return secs


def job_start_time() -> float:
    """When this batch job started (the script exports CELLSIM_JOB_START), else when this process did."""
    raw = os.environ.get("CELLSIM_JOB_START")
    try:
        return float(raw) if raw else _process_start()
    except ValueError:
        return _process_start()


def _process_start() -> float:
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


class WalltimeUnknownWarning(UserWarning):
    """Inside a batch job whose end time could not be found: VASP will not be stopped before the scheduler kills it."""


def _unknown_end(scheduler: str, why: str) -> None:
    import warnings

    warnings.warn(
        WalltimeUnknownWarning(
            f"{scheduler} job: its end time could not be found ({why}); walltime protection is off (VASP is not "
            "stopped before the scheduler kills it); set walltime_s in the machine settings to restore it"
        ),
        stacklevel=3,
    )


def job_end_time(settings: Settings | None = None) -> float | None:
    """Epoch seconds at which the scheduler ends this job, or None outside a job with a time limit.

    ``walltime_s`` (setting) wins: the job's start + that many seconds. Inside a SLURM or PBS job whose end
    cannot be found (the query failed, or gave no time) a :class:`WalltimeUnknownWarning` says so.
    """
    s = settings or load_settings()
    if s.walltime_s is not None:
        return job_start_time() + s.walltime_s
    if os.environ.get("SLURM_JOB_ID"):
        end = os.environ.get("SLURM_JOB_END_TIME")
        if end and end.isdigit():
            return float(end)
        out = _run(["squeue", "-h", "-j", os.environ["SLURM_JOB_ID"], "-o", "%e"])
        if out and out.strip() and out.strip()[0].isdigit():
            from datetime import datetime

            try:  # squeue prints local time
                return datetime.fromisoformat(out.strip().splitlines()[0]).timestamp()
            except ValueError:
                pass
        if out and out.strip().upper() in ("UNLIMITED", "NONE", "N/A"):
            return None  # a job without a time limit: nothing to protect
        _unknown_end("SLURM", f"`squeue -j {os.environ['SLURM_JOB_ID']} -o %e` gave {(out or '').strip()[:60]!r}")
        return None
    job = os.environ.get("PBS_JOBID")
    if job:
        out = _run(["qstat", "-f", job]) or ""
        fields: dict[str, str] = {}
        for line in out.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                fields[k.strip()] = v.strip()
        if "Walltime.Remaining" in fields:  # Torque
            left = _hms(fields["Walltime.Remaining"])
            if left is not None:
                return time.time() + left
        limit = _hms(fields.get("Resource_List.walltime", "") or "")
        if limit:
            used = _hms(fields.get("resources_used.walltime", "") or "") or 0.0
            return time.time() + limit - used
        if os.environ.get("PBS_WALLTIME", "").isdigit():
            return job_start_time() + float(os.environ["PBS_WALLTIME"])
        _unknown_end("PBS", f"`qstat -f {job}` gave no walltime and PBS_WALLTIME is not set")
    return None
