"""VASP segments under custodian: run one, continue it or the next from CONTCAR, report state, stitch.

Segments are jobs: the first one holds the inputs of ``cellsim inputs``; each later segment starts from
the previous CONTCAR (positions and velocities; VASP also keeps its predictor-corrector block there) with
NSW = min(segment length, steps still missing). Exact continuation assumes NBLOCK = 1 (VASP updates
CONTCAR every step, XDATCAR every NBLOCK steps).

No step is lost or made twice:

* **Restarts inside a segment.** custodian's corrections (EDDDAV/ZHEGV, frozen job, ...) copy CONTCAR
  to POSCAR and start VASP again, which overwrites XDATCAR and OSZICAR. :class:`MDVaspJob` runs before
  every start of VASP: it cuts the partial XDATCAR/OSZICAR to the last whole frame that matches CONTCAR,
  moves them to ``XDATCAR.part-N`` / ``OSZICAR.part-N``, continues from that CONTCAR and sets NSW to the
  steps the segment still lacks. A segment is its parts then its XDATCAR (``RunDir.trajectory_files``).
* **A segment cut short** (walltime STOPCAR, ``scancel``, node failure) is continued in place the same
  way by the next job: its whole frames become a part and VASP makes only the missing steps.
* **Walltime.** custodian's WalltimeHandler reads only SBATCH_TIMELIMIT / PBS_WALLTIME, which a SLURM
  batch job lacks; cellsim gives it the job's real end time (:func:`cellsim.config.settings.job_end_time`), so
  VASP stops cleanly (STOPCAR, LSTOP) ``walltime_margin_s`` before the scheduler would kill it.

cellsim's record of a segment (``segment.json``) holds its planned NSW, its parts and the corrections of
every custodian run in it (each run replaces custodian.json).

custodian handlers (MD-safe, ../shared/DESIGN.md): VaspErrorHandler, MeshSymmetryErrorHandler,
PositiveEnergyErrorHandler, FrozenJobErrorHandler, StdErrHandler, LargeSigmaHandler,
IncorrectSmearingHandler, WalltimeHandler. Never UnconvergedErrorHandler (it would turn MD into a
relaxation), nor the POTIM/drift handlers.
"""

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

import numpy as np
from custodian.vasp.handlers import WalltimeHandler
from custodian.vasp.jobs import VaspJob

from cellsim.config.rundir import RunDir, part_file, segment_parts, segment_record
from cellsim.config.settings import Settings, config_path, job_end_time, load_settings
from cellsim.core.errors import CellsimError, RunDirError
from cellsim.core.files import atomic_write_json, atomic_write_text

INPUT_FILES = ("INCAR", "KPOINTS", "POTCAR", "POTCAR.spec")
PART_OUTPUTS = ("XDATCAR", "OSZICAR", "OUTCAR")  # kept per part (OUTCAR for the record; renamed, not copied)
WALLTIME_ERROR = "Walltime reached"


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


# --------------------------------------------------------------------------- segment record and parts


def read_record(seg: Path) -> dict[str, Any]:
    path = segment_record(seg)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_record(seg: Path, rec: dict[str, Any]) -> None:
    atomic_write_json(segment_record(seg), rec)


def _incar_nsw(seg: Path) -> int | None:
    from cellsim.io.incar import read_incar_tags

    if not (seg / "INCAR").is_file():
        return None
    text = read_incar_tags(seg / "INCAR").get("NSW")
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None


def parts_frames(seg: Path) -> int:
    """Whole frames in the segment's parts (the runs of VASP before its last restart)."""
    return sum(_count_frames(p) for p in segment_parts(seg))


def planned_nsw(seg: Path) -> int | None:
    """The segment's NSW as planned (its INCAR's NSW shrinks when VASP is restarted inside it)."""
    rec = read_record(seg)
    if isinstance(rec.get("nsw"), int):
        return int(rec["nsw"])
    nsw = _incar_nsw(seg)
    return None if nsw is None else nsw + parts_frames(seg)


def segment_frames(seg: Path) -> int:
    """Whole frames of a segment: its parts plus its XDATCAR."""
    return parts_frames(seg) + _whole_frames(seg)


def keep_partial(seg: Path) -> int:
    """Before VASP starts (again) in ``seg``: keep the whole frames made so far as a part; steps still to run.

    The XDATCAR/OSZICAR are cut to the last frame that matches CONTCAR, VASP continues from that CONTCAR
    (copied to POSCAR) with NSW = the steps the segment still lacks, and the cut files become
    ``XDATCAR.part-N`` / ``OSZICAR.part-N``. Frames that match no CONTCAR (VASP died before writing
    one) are left for VASP to overwrite: it redoes those steps from POSCAR. Safe to repeat after a kill
    at any point: POSCAR and INCAR are updated before the files are moved.
    """
    from pymatgen.io.vasp import Incar

    (seg / "STOPCAR").unlink(missing_ok=True)  # a walltime stop of an earlier job must not stop this run
    rec = read_record(seg)
    if not isinstance(rec.get("nsw"), int):
        nsw = _incar_nsw(seg)
        if nsw is None:
            raise RunDirError(f"{seg / 'INCAR'}: no NSW; write the inputs again with `cellsim inputs`")
        rec["nsw"] = nsw + parts_frames(seg)
        _write_record(seg, rec)
    planned = int(rec["nsw"])
    done = parts_frames(seg)
    keep = reconcile(seg, strict=False) if (seg / "XDATCAR").is_file() else 0
    left = planned - done - keep
    if keep == 0:
        return planned - done
    cont = seg / "CONTCAR"
    tmp = seg / ".POSCAR.cellsim"
    shutil.copyfile(cont, tmp)
    os.replace(tmp, seg / "POSCAR")
    if left > 0:
        incar = Incar.from_file(seg / "INCAR")
        if incar.get("NSW") != left:
            incar["NSW"] = left
            incar.write_file(seg / "INCAR")
    k = len(segment_parts(seg)) + 1
    for name in PART_OUTPUTS:
        if (seg / name).is_file():
            os.replace(seg / name, part_file(seg, name, k))
    rec.setdefault("parts", []).append({"part": k, "frames": keep, "time": time.time()})
    _write_record(seg, rec)
    return left


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


# --------------------------------------------------------------------------- continuation


def segments(run_dir: Path) -> list[Path]:
    return RunDir(run_dir).segments()


def _count_frames(xd: Path) -> int:
    import warnings

    from cellsim.io.xdatcar import TruncatedTrajectoryWarning, iter_frames

    if not xd.is_file() or xd.stat().st_size == 0:
        return 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedTrajectoryWarning)
        return sum(len(b) for b in iter_frames(xd))


def _whole_frames(seg: Path) -> int:
    return _count_frames(seg / "XDATCAR")


def reconcile(seg: Path, strict: bool = True) -> int:
    """Cut a segment's XDATCAR/OSZICAR to the whole frames that end at CONTCAR; return that count.

    With ``strict`` a XDATCAR whose frames all differ from CONTCAR is an error; without, 0 is returned
    and nothing is cut.
    """
    import warnings

    from pymatgen.io.vasp import Poscar

    from cellsim.io.xdatcar import TruncatedTrajectoryWarning, iter_frames

    xd = seg / "XDATCAR"
    if not xd.is_file() or not (seg / "CONTCAR").is_file():
        return 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedTrajectoryWarning)
        frames = [b.frac for b in iter_frames(xd)]
    if not frames:
        return 0
    frac = np.concatenate(frames)
    try:
        cont = Poscar.from_file(seg / "CONTCAR").structure.frac_coords % 1.0
    except (ValueError, IndexError, OSError):  # a CONTCAR cut off mid-write
        cont = None
    keep = 0
    if cont is not None and cont.shape == frac.shape[1:]:
        for k in range(len(frac) - 1, -1, -1):
            d = np.abs(frac[k] - cont)
            if np.all(np.minimum(d, 1 - d) < 1e-6):
                keep = k + 1
                break
    if keep == 0:
        if strict:
            raise RunDirError(f"{seg}: CONTCAR matches no frame of XDATCAR; cannot continue this segment exactly")
        return 0
    _cut_file(xd, lambda text: _cut_xdatcar(text, keep))
    if (seg / "OSZICAR").is_file():
        _cut_file(seg / "OSZICAR", lambda text: _cut_oszicar(text, keep))
    return keep


def _cut_file(path: Path, cut: Any) -> None:
    text = path.read_text()
    new = cut(text)
    if new != text:
        atomic_write_text(path, new)


def _cut_xdatcar(text: str, keep: int) -> str:
    pos, seen = 0, 0
    while True:
        nxt = text.find("Direct configuration=", pos + 1 if seen else 0)
        if nxt < 0:
            return text
        if seen == keep:
            return text[:nxt]
        seen += 1
        pos = nxt


def _cut_oszicar(text: str, keep: int) -> str:
    """The OSZICAR up to its ``keep``-th MD line (electronic-step lines come before each MD line)."""
    out, seen = [], 0
    for line in text.splitlines(keepends=True):
        if seen == keep:
            break
        out.append(line)
        if " T=" in line and line.endswith("\n"):
            seen += 1
    return "".join(out)


def total_steps(study: Any) -> int:
    from cellsim.inputsets.vasp import plan_segments

    return sum(plan_segments(study))


def done_steps(run_dir: Path) -> int:
    """Whole frames stored in all segments, read only (a running job may be writing the last one)."""
    return sum(segment_frames(seg) for seg in segments(run_dir))


def next_segment(run_dir: Path, study: Any) -> Path | None:
    """The segment to run next, its inputs written; None when the MD is complete.

    A segment that was never run is run as it is; one cut short (walltime, kill) is continued in place
    (:func:`keep_partial`); after a complete one a new segment starts from its CONTCAR.
    """
    from cellsim.inputsets.vasp import plan_segments

    segs = segments(run_dir)
    if not segs or not (segs[0] / "INCAR").is_file():
        raise RunDirError(f"{RunDir(run_dir).segment_dir(0)}: no VASP inputs; run `cellsim inputs {run_dir}` first")
    done = 0
    for seg in segs:
        # the last segment may end in frames that match no CONTCAR (VASP died before writing it): they
        # are redone when it is continued
        done += parts_frames(seg) + reconcile(seg, strict=seg != segs[-1])
    last = segs[-1]
    if not (last / "XDATCAR").is_file() and not segment_parts(last):
        return last  # written but never run: run it as it is
    target = total_steps(study)
    if done >= target:
        return None
    planned = planned_nsw(last)
    if planned is not None and segment_frames(last) < planned:
        return last  # cut short: continue it in place
    per = plan_segments(study)[0]
    nxt = RunDir(run_dir).next_segment_dir()
    nxt.mkdir(parents=True, exist_ok=True)
    for f in INPUT_FILES:
        # the INCAR of the last segment: custodian's corrections (ALGO, LREAL, ...) carry on
        src = last if f == "INCAR" else segs[0]
        if (src / f).is_file():
            shutil.copy2(src / f, nxt / f)
    shutil.copy2(last / "CONTCAR", nxt / "POSCAR")
    from pymatgen.io.vasp import Incar

    incar = Incar.from_file(nxt / "INCAR")
    incar["NSW"] = min(per, target - done)
    incar.write_file(nxt / "INCAR")
    _write_record(nxt, {"nsw": int(incar["NSW"])})
    return nxt


def run_md(
    run_dir: Path, study: Any, settings: Settings | None = None, max_segments: int | None = None
) -> list[dict[str, Any]]:
    """Run (or continue) the VASP segments in-process until the study's total time is reached.

    A segment stopped for the walltime ends the loop (the next job continues it).
    """
    out = []
    n = 0
    while (seg := next_segment(run_dir, study)) is not None:
        info = run_segment(seg, settings)
        out.append({"segment": seg.name, **info})
        n += 1
        if info["walltime_stop"] or (max_segments is not None and n >= max_segments):
            break
    return out


def status(run_dir: Path, study: Any) -> dict[str, Any]:
    """Frames, parts, corrections and state of every segment, and how much of the planned MD exists."""
    rows = []
    total = 0
    for seg in segments(run_dir):
        parts = [_count_frames(p) for p in segment_parts(seg)]
        frames = sum(parts) + _whole_frames(seg)
        total += frames
        nsw = planned_nsw(seg)
        corrections = segment_corrections(seg)
        fixes = [c for c in corrections if WALLTIME_ERROR not in c["errors"]]
        stops = len(read_record(seg).get("walltime_stops", []))
        state = "complete" if nsw is not None and frames >= nsw else ("not started" if frames == 0 else "partial")
        if (seg / "engine.json").is_file():
            state = json.loads((seg / "engine.json").read_text()).get("status", state)
        rows.append(
            {
                "segment": seg.name,
                "nsw": nsw,
                "frames": frames,
                "parts": [*parts, _whole_frames(seg)] if parts else [],
                "state": state,
                "corrections": len(fixes),
                "errors": sorted({e for c in fixes for e in c["errors"]}),
                "walltime_stops": stops,
            }
        )
    return {"segments": rows, "frames": total, "planned_steps": total_steps(study)}


def stitch(run_dir: Path, out: Path) -> int:
    """One XDATCAR with every frame of every segment (and segment part) in order, configurations renumbered."""
    import warnings

    from cellsim.io.vaspfiles import xdatcar_frame, xdatcar_header
    from cellsim.io.xdatcar import TruncatedTrajectoryWarning, iter_segments

    paths = RunDir(run_dir).trajectory_files()
    if not paths:
        raise RunDirError(f"{RunDir(run_dir).md_dir}: no XDATCAR to stitch")
    parts: list[str] = []
    n = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedTrajectoryWarning)
        for hdr, block in iter_segments(paths):
            if not parts:
                parts.append(
                    xdatcar_header(hdr.symbols, hdr.counts, block.cells[0], f"cellsim stitched {run_dir.name}")
                )
            for f in block.frac:
                n += 1
                parts.append(xdatcar_frame(n, f))
    atomic_write_text(out, "".join(parts))
    return n
