"""The stages as plain functions: build -> inputs -> run -> analyze -> match -> report.

The CLI, the FireWorks tasks, the demo, the tests and notebooks all call these (as ``cellsim.stages.<name>``);
the CLI only parses and prints. One module per stage: :mod:`~cellsim.stages.building` (build, inputs),
:mod:`~cellsim.stages.md` (run, engine check), :mod:`~cellsim.stages.analysis` (analyze),
:mod:`~cellsim.stages.products` (match, report), :mod:`~cellsim.stages.screening` (a study matrix's runs:
build_runs, screen; compare across runs). Heavy modules (pymatgen, torch, matplotlib) are imported
inside the stage that needs them, so ``import cellsim`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cellsim.stages.analysis import analyze
    from cellsim.stages.building import BuildOutcome, build, inputs
    from cellsim.stages.md import engine_check, run
    from cellsim.stages.products import _analysis_folder, match, replica_support, report
    from cellsim.stages.screening import build_runs, compare, screen

PathLike = str | Path

__all__ = [
    "AUTO_WINDOWS",
    "MIN_WINDOWS",
    "BuildOutcome",
    "PathLike",
    "_analysis_folder",
    "_study_metal",
    "analyze",
    "build",
    "build_runs",
    "compare",
    "count_frames",
    "default_pairs",
    "engine_check",
    "inputs",
    "match",
    "parse_pairs",
    "replica_support",
    "report",
    "run",
    "screen",
]

# the analysis package's decisions, importable from here as before; on first use, since they pull numpy and
# `import cellsim` does not
_FROM_SETUP = {
    "AUTO_WINDOWS": "AUTO_WINDOWS",
    "MIN_WINDOWS": "MIN_WINDOWS",
    "count_frames": "count_frames",
    "default_pairs": "default_pairs",
    "parse_pairs": "parse_pairs",
    "_study_metal": "study_metal",
}


# each stage's module on first use: an analysis does not import the builder's, the MD's or the matcher's
# modules (their engine registry, hashing, ~8 ms of every `cellsim analyze`)
_STAGE_OF = {
    "analyze": "cellsim.stages.analysis",
    "BuildOutcome": "cellsim.stages.building",
    "build": "cellsim.stages.building",
    "inputs": "cellsim.stages.building",
    "engine_check": "cellsim.stages.md",
    "run": "cellsim.stages.md",
    "_analysis_folder": "cellsim.stages.products",
    "match": "cellsim.stages.products",
    "replica_support": "cellsim.stages.products",
    "report": "cellsim.stages.products",
    "build_runs": "cellsim.stages.screening",
    "compare": "cellsim.stages.screening",
    "screen": "cellsim.stages.screening",
}


def __getattr__(name: str) -> Any:
    if name in _STAGE_OF:
        import importlib

        value = getattr(importlib.import_module(_STAGE_OF[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _FROM_SETUP:
        from cellsim.analysis import setup

        return getattr(setup, _FROM_SETUP[name])
    raise AttributeError(f"module 'cellsim.stages' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
