"""One VASP MD segment under custodian: the MD-safe handlers, the job end time, the custodian job that
continues a segment exactly, and running it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

from custodian.vasp.handlers import WalltimeHandler
from custodian.vasp.jobs import VaspJob

from cellsim.config.settings import Settings, config_path, job_end_time, load_settings
from cellsim.core.errors import CellsimError
from cellsim.engines.vasp.frames import (
    WALLTIME_ERROR,
    _write_record,
    keep_partial,
    planned_nsw,
    read_record,
    segment_frames,
)


class VaspRunError(CellsimError):
    """custodian could not finish a segment, or VASP cannot be started."""


class JobEndWalltimeHandler(WalltimeHandler):
    """custodian's WalltimeHandler with the job's end time given (epoch seconds), not read from variables.

    STOPCAR (LSTOP) is written when less than ``max(3 x time per step, buffer_time)`` is left, so VASP
    finishes its current step and stops cleanly before the scheduler kills the job.
    """

    def __init__(self, end_time: float, buffer_time: float = 300) -> None:
        from datetime import datetime

        super().__init__(wall_time=max(1, int(end_time - time.time())), buffer_time=int(buffer_time))
        # the base class counts from CUSTODIAN_WALLTIME_START (set once per process): count from now
        self.start_time = datetime.now()
        self.prev_check_time = self.start_time
        self.end_time = end_time


class _WalltimeStopIsNoError(logging.Filter):
    """custodian logs a walltime stop as an unrecoverable error; for segments it is the plan."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "WalltimeHandler" not in record.getMessage()


def md_handlers(end_time: float | None = None, margin_s: float = 300.0, walltime_s: float | None = None) -> list[Any]:
    """The MD-safe handlers; the WalltimeHandler stops VASP ``margin_s`` before ``end_time`` (epoch s)."""
    from custodian.vasp.handlers import (
        FrozenJobErrorHandler,
        IncorrectSmearingHandler,
        LargeSigmaHandler,
        MeshSymmetryErrorHandler,
        PositiveEnergyErrorHandler,
        StdErrHandler,
        VaspErrorHandler,
    )

    wall: Any = (
        JobEndWalltimeHandler(end_time, margin_s) if end_time is not None else WalltimeHandler(wall_time=walltime_s)
    )
    return [
        VaspErrorHandler(),
        MeshSymmetryErrorHandler(),
        PositiveEnergyErrorHandler(),
        FrozenJobErrorHandler(),
        StdErrHandler(),
        LargeSigmaHandler(),
        IncorrectSmearingHandler(),
        wall,
    ]


class MDVaspJob(VaspJob):
    """custodian's VaspJob for MD segments: every start of VASP continues the segment exactly.

    custodian calls ``setup`` once and ``run`` for every attempt (after each correction): ``run`` first
    keeps the frames of the previous attempt (:func:`keep_partial`). ``setup`` keeps the first
    ``*.orig`` backups of a segment that is continued by a later job.
    """

    def setup(self, directory: str = "./") -> None:
        if (Path(directory) / "POSCAR.orig").is_file():
            backup, self.backup = self.backup, False
            try:
                super().setup(directory)
            finally:
                self.backup = backup
        else:
            super().setup(directory)

    def run(self, directory: str = "./") -> Any:
        import subprocess

        seg = Path(directory)
        if keep_partial(seg) > 0:
            return super().run(directory)
        # every planned step is already stored (VASP failed after its last step): nothing to run
        with open(seg / self.output_file, "w") as out, open(seg / self.stderr_file, "w") as err:
            self._vasp_process = subprocess.Popen([sys.executable, "-c", ""], cwd=seg, stdout=out, stderr=err)
        return self._vasp_process


# --------------------------------------------------------------------------- running one segment


def check_vasp_command(settings: Settings | None = None, where: str = "on this machine") -> list[str]:
    """The VASP command words custodian will run; a VaspRunError naming the settings when none is found."""
    s = settings or load_settings()
    std, gam = s.vasp_commands()
    # custodian runs the Gamma-only command for a Gamma 1x1x1 KPOINTS when its last word is found, else
    # the standard one
    found = [c for c in (gam, std) if shutil.which(c[-1])]
    if not found:
        raise VaspRunError(
            f"VASP not found {where}: neither {gam[-1]!r} (vasp_gamma_cmd) nor {std[-1]!r} (vasp_cmd) is on PATH; "
            f"set vasp_cmd / vasp_gamma_cmd in {config_path()} (or CELLSIM_VASP_CMD / CELLSIM_VASP_GAMMA_CMD), "
            "or load VASP's module (the study's queue.modules)"
        )
    if found[0][0] != found[0][-1] and not shutil.which(found[0][0]):
        raise VaspRunError(f"MPI launcher {found[0][0]!r} of the VASP command {' '.join(found[0])!r} is not on PATH")
    return found[0]


def _fold_custodian_log(seg: Path) -> None:
    """Move the corrections of a finished custodian run (custodian.json) into the segment record."""
    log = seg / "custodian.json"
    if not log.is_file():
        return
    try:
        entries = json.loads(log.read_text())
    except (OSError, json.JSONDecodeError):
        entries = []
    rec = read_record(seg)
    rec.setdefault("custodian", []).append(_corrections(entries))
    _write_record(seg, rec)
    log.unlink()


def _corrections(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for entry in log:
        for c in entry.get("corrections", []):
            handler = c.get("handler")
            name = handler.get("@class") if isinstance(handler, dict) else type(handler).__name__
            out.append({"errors": list(c.get("errors", [])), "handler": name, "actions": c.get("actions")})
    return out


def segment_corrections(seg: Path) -> list[dict[str, Any]]:
    """Every custodian correction made in the segment, over all its custodian runs."""
    out = [c for run in read_record(seg).get("custodian", []) for c in run]
    if (seg / "custodian.json").is_file():
        try:
            out.extend(_corrections(json.loads((seg / "custodian.json").read_text())))
        except (OSError, json.JSONDecodeError):
            pass
    return out


def run_segment(
    seg: Path, settings: Settings | None = None, max_errors: int = 5, end_time: float | None = None
) -> dict[str, Any]:
    """Run (or continue) VASP in ``seg`` under custodian.

    Parameters
    ----------
    seg
        The segment folder (inputs written by :func:`next_segment` or ``cellsim inputs``).
    settings
        Machine settings (default: :func:`cellsim.config.settings.load_settings`).
    max_errors
        custodian's limit on corrections in this run.
    end_time
        When the batch job ends (epoch s); default: asked from the scheduler. VASP is stopped cleanly
        ``walltime_margin_s`` before it.

    Returns
    -------
    dict
        ``corrections`` (this run's), ``walltime_stop`` (VASP stopped for the walltime), ``frames`` and
        ``nsw`` (the segment's stored and planned steps).
    """
    from custodian import Custodian
    from custodian.custodian import CustodianError

    s = settings or load_settings()
    std, gam = s.vasp_commands()
    check_vasp_command(s, f"on {socket.gethostname()}")
    custodian_log = logging.getLogger("custodian.custodian")
    if not any(isinstance(f, _WalltimeStopIsNoError) for f in custodian_log.filters):
        custodian_log.addFilter(_WalltimeStopIsNoError())
    end = end_time if end_time is not None else job_end_time(s)
    _fold_custodian_log(seg)
    job = MDVaspJob(vasp_cmd=std, gamma_vasp_cmd=gam, auto_gamma=True, auto_npar=False, final=True, backup=True)
    c = Custodian(
        md_handlers(end, s.walltime_margin_s, s.walltime_s),
        [job],
        max_errors=max_errors,
        polling_time_step=s.custodian_polling_s,
        monitor_freq=3,
        directory=str(seg),
    )
    try:
        log = c.run()
    except CustodianError as exc:
        raise VaspRunError(f"{seg}: custodian gave up: {exc}") from exc
    corrections = _corrections(log)
    stopped = any(WALLTIME_ERROR in c["errors"] for c in corrections)
    (seg / "STOPCAR").unlink(missing_ok=True)
    if stopped:
        rec = read_record(seg)
        job_id = os.environ.get("SLURM_JOB_ID") or os.environ.get("PBS_JOBID")
        rec.setdefault("walltime_stops", []).append({"time": time.time(), "job": job_id})
        _write_record(seg, rec)
    return {
        "corrections": corrections,
        "walltime_stop": stopped,
        "frames": segment_frames(seg),
        "nsw": planned_nsw(seg),
    }
