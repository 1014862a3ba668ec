"""VASP segments under custodian: run one, continue the next from CONTCAR, report state, stitch.

Segments are jobs: the first segment folder holds the inputs of ``cellsim inputs``; each later segment starts from
the previous CONTCAR (positions and velocities; VASP also keeps its predictor-corrector block there) with
NSW = min(segment length, steps still missing). A segment killed by the queue or a node failure keeps its
whole frames: before continuing, its XDATCAR is cut to the last whole frame that matches CONTCAR, so the
next segment starts exactly after it and no step is lost or counted twice. Exact continuation assumes
NBLOCK = 1 (VASP updates CONTCAR every step, XDATCAR every NBLOCK steps).

custodian handlers (MD-safe, ../shared/DESIGN.md): VaspErrorHandler, MeshSymmetryErrorHandler,
PositiveEnergyErrorHandler, FrozenJobErrorHandler, StdErrHandler, LargeSigmaHandler,
IncorrectSmearingHandler, WalltimeHandler. Never UnconvergedErrorHandler (it would turn MD into a
relaxation), nor the POTIM/drift handlers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from cellsim.errors import CellsimError, RunDirError
from cellsim.fileio import atomic_write_text
from cellsim.rundir import RunDir
from cellsim.settings import Settings, load_settings

INPUT_FILES = ("INCAR", "KPOINTS", "POTCAR", "POTCAR.spec")


class VaspRunError(CellsimError):
    """custodian could not finish a segment."""


def md_handlers(walltime_s: float | None = None) -> list[Any]:
    from custodian.vasp.handlers import (
        FrozenJobErrorHandler,
        IncorrectSmearingHandler,
        LargeSigmaHandler,
        MeshSymmetryErrorHandler,
        PositiveEnergyErrorHandler,
        StdErrHandler,
        VaspErrorHandler,
        WalltimeHandler,
    )

    return [
        VaspErrorHandler(),
        MeshSymmetryErrorHandler(),
        PositiveEnergyErrorHandler(),
        FrozenJobErrorHandler(),
        StdErrHandler(),
        LargeSigmaHandler(),
        IncorrectSmearingHandler(),
        WalltimeHandler(wall_time=walltime_s),
    ]


def run_segment(seg: Path, settings: Settings | None = None, max_errors: int = 5) -> dict[str, Any]:
    """Run VASP in ``seg`` under custodian; returns custodian's run log (corrections made)."""
    from custodian import Custodian
    from custodian.custodian import CustodianError
    from custodian.vasp.jobs import VaspJob

    s = settings or load_settings()
    job = VaspJob(
        vasp_cmd=list(s.vasp_cmd),
        gamma_vasp_cmd=list(s.vasp_gamma_cmd),
        auto_gamma=True,
        auto_npar=False,
        final=True,
        backup=True,
    )
    c = Custodian(
        md_handlers(s.walltime_s),
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
    corrections = [
        {"errors": list(c.get("errors", [])), "handler": type(c.get("handler")).__name__, "actions": c.get("actions")}
        for entry in log
        for c in entry.get("corrections", [])
    ]
    return {"corrections": corrections}


# --------------------------------------------------------------------------- continuation


def segments(run_dir: Path) -> list[Path]:
    return RunDir(run_dir).segments()


def _whole_frames(seg: Path) -> int:
    import warnings

    from cellsim.trajectory import TruncatedTrajectoryWarning, iter_frames

    xd = seg / "XDATCAR"
    if not xd.is_file() or xd.stat().st_size == 0:
        return 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedTrajectoryWarning)
        return sum(len(b) for b in iter_frames(xd))


def reconcile(seg: Path) -> int:
    """Cut a segment's XDATCAR/OSZICAR to the whole frames that end at CONTCAR; return that count."""
    import warnings

    from pymatgen.io.vasp import Poscar

    from cellsim.trajectory import TruncatedTrajectoryWarning, iter_frames

    xd = seg / "XDATCAR"
    if not xd.is_file() or not (seg / "CONTCAR").is_file():
        return 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedTrajectoryWarning)
        frames = [b.frac for b in iter_frames(xd)]
    if not frames:
        return 0
    frac = np.concatenate(frames)
    cont = Poscar.from_file(seg / "CONTCAR").structure.frac_coords % 1.0
    keep = len(frac)
    for k in range(len(frac) - 1, -1, -1):
        d = np.abs(frac[k] - cont)
        if np.all(np.minimum(d, 1 - d) < 1e-6):
            keep = k + 1
            break
    else:
        raise RunDirError(f"{seg}: CONTCAR matches no frame of XDATCAR; cannot continue this segment exactly")
    _cut_file(xd, lambda text: _cut_xdatcar(text, keep))
    if (seg / "OSZICAR").is_file():
        _cut_file(seg / "OSZICAR", lambda text: "".join(text.splitlines(keepends=True)[:keep]))
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


def total_steps(study: Any) -> int:
    from cellsim.md.inputs import plan_segments

    return sum(plan_segments(study))


def next_segment(run_dir: Path, study: Any) -> Path | None:
    """Reconcile the last segment and write the inputs of the next one; None when the MD is complete."""
    from cellsim.md.inputs import plan_segments

    segs = segments(run_dir)
    if not segs or not (segs[0] / "INCAR").is_file():
        raise RunDirError(f"{RunDir(run_dir).segment_dir(0)}: no VASP inputs; run `cellsim inputs {run_dir}` first")
    done = 0
    for seg in segs:
        done += reconcile(seg)
    last = segs[-1]
    if not (last / "XDATCAR").is_file():
        return last  # written but never run: run it as it is
    target = total_steps(study)
    if done >= target:
        return None
    per = plan_segments(study)[0]
    nxt = RunDir(run_dir).next_segment_dir()
    nxt.mkdir(parents=True, exist_ok=True)
    for f in INPUT_FILES:
        if (segs[0] / f).is_file():
            shutil.copy2(segs[0] / f, nxt / f)
    shutil.copy2(last / "CONTCAR", nxt / "POSCAR")
    from pymatgen.io.vasp import Incar

    incar = Incar.from_file(nxt / "INCAR")
    incar["NSW"] = min(per, target - done)
    incar.write_file(nxt / "INCAR")
    return nxt


def run_md(
    run_dir: Path, study: Any, settings: Settings | None = None, max_segments: int | None = None
) -> list[dict[str, Any]]:
    """Run (or continue) the VASP segments in-process until the study's total time is reached."""
    out = []
    n = 0
    while (seg := next_segment(run_dir, study)) is not None:
        info = run_segment(seg, settings)
        out.append({"segment": seg.name, **info})
        n += 1
        if max_segments is not None and n >= max_segments:
            break
    return out


def status(run_dir: Path, study: Any) -> dict[str, Any]:
    """Frames and state of every segment, and how much of the planned MD exists."""
    from cellsim.analysis.analyze import read_incar_tags

    rows = []
    total = 0
    for seg in segments(run_dir):
        frames = _whole_frames(seg)
        total += frames
        nsw_text = read_incar_tags(seg / "INCAR").get("NSW")
        nsw = int(nsw_text.split()[0]) if nsw_text else None
        corrections = 0
        if (seg / "custodian.json").is_file():
            log = json.loads((seg / "custodian.json").read_text())
            corrections = sum(len(e.get("corrections", [])) for e in log)
        engine = (seg / "engine.json").is_file()
        state = "complete" if nsw is not None and frames >= nsw else ("not started" if frames == 0 else "partial")
        if engine:
            state = json.loads((seg / "engine.json").read_text()).get("status", state)
        rows.append({"segment": seg.name, "nsw": nsw, "frames": frames, "state": state, "corrections": corrections})
    return {"segments": rows, "frames": total, "planned_steps": total_steps(study)}


def stitch(run_dir: Path, out: Path) -> int:
    """One XDATCAR with every frame of every segment in order (configurations renumbered)."""
    import warnings

    from cellsim.md.vaspfiles import xdatcar_frame, xdatcar_header
    from cellsim.trajectory import TruncatedTrajectoryWarning, iter_segments

    paths = [s / "XDATCAR" for s in segments(run_dir) if (s / "XDATCAR").is_file()]
    if not paths:
        raise RunDirError(f"{run_dir}/md: no XDATCAR to stitch")
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
