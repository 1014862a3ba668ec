"""The time between frames and the temperature of a trajectory, each with where it came from: an option, an
INCAR beside the first file (POTIM x NBLOCK, TEBEG), vasprun.xml's own INCAR, the embedded engine's
``engine.json``, the study of a run directory, and last a stated default with a warning. Objects in memory take
the ``dt_fs`` argument or their own time step; without either they are refused, not given an assumed one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cellsim.io.formats import detect_format
from cellsim.io.memory import MemorySource
from cellsim.io.vasprun import vasprun_incar

DEFAULT_DT_FS = 2.0
DEFAULT_TEMPERATURE_K = 300.0


@dataclass
class MDConditions:
    dt_fs: float
    dt_source: str
    temperature_K: float
    temperature_source: str
    warnings: list[str] = field(default_factory=list)


def _incar_value(tags: dict[str, str], name: str) -> float | None:
    if name not in tags:
        return None
    try:
        v = float(tags[name].split()[0])
    except (ValueError, IndexError):
        return None
    return v if np.isfinite(v) else None


def _memory_conditions(src: MemorySource, dt_fs: float | None, temperature_K: float | None) -> MDConditions:
    """Objects in memory have no INCAR beside them: the time step is the argument or their own, never assumed."""
    from cellsim.core.errors import AnalysisError

    dt, dt_src = (dt_fs, "option") if dt_fs is not None else (src.dt_fs, src.dt_source)
    if dt is None:
        raise AnalysisError(
            f"{src.label}: these objects carry no time between frames; give dt_fs, e.g. "
            "cellsim.analyze(frames, dt_fs=2.0) for frames 2 fs apart"
        )
    notes: list[str] = []
    t, t_src = _temperature_or_default(temperature_K, "option", f"no temperature_K given for {src.label}", notes)
    return MDConditions(float(dt), dt_src, float(t), t_src, notes)


def _temperature_or_default(t: float | None, src: str, why: str, notes: list[str]) -> tuple[float, str]:
    """The temperature found, or the stated default with a note saying why (``why``: what was missing)."""
    if t is not None:
        return t, src
    notes.append(f"no temperature known ({why}): assumed {DEFAULT_TEMPERATURE_K} K for the reference broadening")
    return DEFAULT_TEMPERATURE_K, "default"


def resolve_md_conditions(
    first_file: Path | MemorySource,
    dt_fs: float | None = None,
    temperature_K: float | None = None,
    study: Any = None,
) -> MDConditions:
    """Time between frames and temperature, each with where it came from (see the module docstring)."""
    from cellsim.core.errors import AnalysisError
    from cellsim.io.incar import read_incar_tags

    if isinstance(first_file, MemorySource):
        return _memory_conditions(first_file, dt_fs, temperature_K)
    folder = first_file.parent
    dt_cands: list[tuple[float | None, str]] = [(dt_fs, "option")]
    t_cands: list[tuple[float | None, str]] = [(temperature_K, "option")]
    incar = folder / "INCAR"
    tags = read_incar_tags(incar)
    if tags:
        potim = _incar_value(tags, "POTIM")
        nblock = _incar_value(tags, "NBLOCK") or 1.0
        if potim is not None and potim <= 0:
            raise AnalysisError(f"{incar}: POTIM = {tags['POTIM']}: expected a positive time step in fs")
        dt_cands.append((potim * nblock if potim else None, f"INCAR {incar} (POTIM x NBLOCK)"))
        t_cands.append((_incar_value(tags, "TEBEG"), f"INCAR {incar} (TEBEG)"))
    if detect_format(first_file) == "vasprun":
        vtags = vasprun_incar(first_file)
        # vasprun.xml stores every ionic step, whatever NBLOCK says
        dt_cands.append((_incar_value(vtags, "POTIM"), f"{first_file.name} (POTIM)"))
        t_cands.append((_incar_value(vtags, "TEBEG"), f"{first_file.name} (TEBEG)"))
    eng = folder / "engine.json"
    damaged: list[str] = []
    if eng.is_file():
        try:
            info = json.loads(eng.read_text())
            dt_cands.append((float(info["timestep_fs"]) * int(info.get("nblock", 1)), f"{eng}"))
            t_cands.append((float(info.get("temperature_K", 0)) or None, f"{eng}"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # said, not skipped in silence: the time step then comes from further down the chain
            damaged.append(f"{eng}: unreadable ({type(exc).__name__}: {exc}); its time step and temperature not used")
    if study is not None:
        dt_cands.append((study.md.timestep_fs * study.md.nblock, "study md.timestep_fs x md.nblock"))
        t_cands.append((study.md.temperature, "study md.temperature"))
    notes = list(damaged)
    dt, dt_src = next(((v, s) for v, s in dt_cands if v is not None), (None, ""))
    if dt is None:
        dt, dt_src = DEFAULT_DT_FS, "default"
        notes.append(
            f"no time step known (no --dt, no INCAR beside {first_file.name}): assumed {DEFAULT_DT_FS} fs "
            "between frames; times are wrong if it differs"
        )
    found, found_src = next(((v, s) for v, s in t_cands if v is not None), (None, ""))
    t, t_src = _temperature_or_default(found, found_src, "no --temperature, no INCAR TEBEG", notes)
    return MDConditions(float(dt), dt_src, float(t), t_src, notes)
