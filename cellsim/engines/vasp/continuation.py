"""Continuing a VASP run: the next segment from CONTCAR, the run's state and the stitched trajectory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from cellsim.config.rundir import RunDir, segment_parts
from cellsim.config.settings import Settings
from cellsim.core.errors import RunDirError
from cellsim.core.files import atomic_write_text
from cellsim.engines.vasp.frames import (
    INPUT_FILES,
    WALLTIME_ERROR,
    _count_frames,
    _whole_frames,
    _write_record,
    parts_frames,
    planned_nsw,
    read_record,
    reconcile,
    segment_frames,
)
from cellsim.engines.vasp.segment import run_segment, segment_corrections

# --------------------------------------------------------------------------- continuation


def segments(run_dir: Path) -> list[Path]:
    return RunDir(run_dir).segments()


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

    from cellsim.io.stitching import iter_segments
    from cellsim.io.vaspfiles import xdatcar_frame, xdatcar_header
    from cellsim.io.xdatcar import TruncatedTrajectoryWarning

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
