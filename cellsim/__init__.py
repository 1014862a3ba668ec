"""cellsim: AIMD studies of reactions at solid-electrolyte/metal interfaces.

Stages (one sub-package or module each, mirroring the run directory):
``study`` -> ``build`` -> ``md`` (inputs, engines) -> ``analysis`` -> ``products`` (match) -> ``reporting``.

The public Python API is the stage functions (:mod:`cellsim.stages`), the run-directory layout
(:class:`cellsim.config.rundir.RunDir`) and the result objects; see docs/python.md::

    import cellsim
    res = cellsim.analyze("XDATCAR", dt_fs=2, pairs="In-S,In-Cl", window_ps=0.5, out="out")
    res = cellsim.analyze(list_of_ase_atoms, dt_fs=2, out="out")   # or a pymatgen Trajectory, Structures, ...
    res.to_dataframe()                      # the rdf.csv table
    verdict = cellsim.match("out")          # formed / possible / not seen, with intervals
    cellsim.report("out")                   # out/report/report.html
    cellsim.compare(["run-a", "run-b"])     # several runs (or a study matrix) side by side, ranked
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cellsim import stages as stages  # the module itself (cellsim.stages.build); its functions load on first use
from cellsim.config.rundir import RunDir, SegmentPlan
from cellsim.core.errors import CellsimError
from cellsim.core.version import __version__

if TYPE_CHECKING:
    # ``build`` stays cellsim.stages.build: ``cellsim.build`` is the builder package
    from cellsim.analysis.analyze import AnalysisResult, AnalysisSettings
    from cellsim.analysis.diagnostics import Diagnostics
    from cellsim.engines.mlip import RunSummary
    from cellsim.inputsets.vasp import InputsReport
    from cellsim.products.match import CandidateVerdict, MatchResult, PairMatch
    from cellsim.stages import BuildOutcome, analyze, compare, inputs, match, report, run, screen


# result classes, imported on first use: they pull numpy, pandas and pymatgen, which `import cellsim` does not;
# the stage functions too (each stage's module is loaded when its function is first looked up)
_STAGES = ("BuildOutcome", "analyze", "compare", "inputs", "match", "report", "run", "screen")
_LAZY = {
    "AnalysisResult": "cellsim.analysis.analyze",
    "AnalysisSettings": "cellsim.analysis.analyze",
    "Diagnostics": "cellsim.analysis.diagnostics",
    "MatchResult": "cellsim.products.match",
    "CandidateVerdict": "cellsim.products.match",
    "PairMatch": "cellsim.products.match",
    "RunSummary": "cellsim.engines.mlip",
    "InputsReport": "cellsim.inputsets.vasp",
}

__all__ = [
    "AnalysisResult",
    "AnalysisSettings",
    "BuildOutcome",
    "CandidateVerdict",
    "CellsimError",
    "Diagnostics",
    "InputsReport",
    "MatchResult",
    "PairMatch",
    "RunDir",
    "RunSummary",
    "SegmentPlan",
    "__version__",
    "analyze",
    "compare",
    "inputs",
    "match",
    "report",
    "run",
    "screen",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY or name in _STAGES:
        import importlib

        value = getattr(importlib.import_module(_LAZY.get(name, "cellsim.stages")), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'cellsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
