"""A VASP segment's record (segment.json) and parts, and the frames kept whole after a kill."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from cellsim.config.rundir import part_file, segment_parts, segment_record
from cellsim.core.errors import RunDirError
from cellsim.core.files import atomic_write_json, atomic_write_text

INPUT_FILES = ("INCAR", "KPOINTS", "POTCAR", "POTCAR.spec")
PART_OUTPUTS = ("XDATCAR", "OSZICAR", "OUTCAR")  # kept per part (OUTCAR for the record; renamed, not copied)
WALLTIME_ERROR = "Walltime reached"


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
