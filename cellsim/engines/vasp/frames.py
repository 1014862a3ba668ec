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
    and nothing is cut. The XDATCAR is read, and cut, by the one XDATCAR reader (:mod:`cellsim.io.xdatcar`),
    the CONTCAR by the one POSCAR reader (:mod:`cellsim.io.poscar`).
    """
    import warnings

    from cellsim.io.xdatcar import TruncatedTrajectoryWarning, cut_frames, iter_frames, read_header

    xd = seg / "XDATCAR"
    if not xd.is_file() or not (seg / "CONTCAR").is_file():
        return 0
    hdr = read_header(xd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedTrajectoryWarning)
        frames = [b.frac for b in iter_frames(xd, header=hdr)]
    if not frames:
        return 0
    keep = _last_match(np.concatenate(frames), _contcar_frac(seg / "CONTCAR"))
    if keep == 0:
        if strict:
            raise RunDirError(f"{seg}: CONTCAR matches no frame of XDATCAR; cannot continue this segment exactly")
        return 0
    _cut_file(xd, lambda text: cut_frames(text, hdr, keep))
    if (seg / "OSZICAR").is_file():
        _cut_file(seg / "OSZICAR", lambda text: _cut_oszicar(text, keep))
    return keep


def _contcar_frac(contcar: Path) -> np.ndarray | None:
    """CONTCAR's fractional coordinates in [0, 1); None when it cannot be read (cut off mid-write)."""
    from cellsim.io.poscar import PoscarError, read_poscar

    try:
        return read_poscar(contcar)[1]
    except (PoscarError, OSError):
        return None


def _last_match(frac: np.ndarray, cont: np.ndarray | None) -> int:
    """1 + the index of the last frame of ``frac`` at ``cont`` (within 1e-6, periodic); 0 when none is."""
    if cont is None or cont.shape != frac.shape[1:]:
        return 0
    for k in range(len(frac) - 1, -1, -1):
        d = np.abs(frac[k] - cont)
        if np.all(np.minimum(d, 1 - d) < 1e-6):
            return k + 1
    return 0


def _cut_file(path: Path, cut: Any) -> None:
    text = path.read_text()
    new = cut(text)
    if new != text:
        atomic_write_text(path, new)


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
