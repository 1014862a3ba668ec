"""Stage 4: time-resolved partial RDFs, bond counts, local environments and diagnostics (``cellsim analyze``).

Modules: :mod:`~cellsim.io.sources` (any trajectory in), :mod:`~cellsim.analysis.analyze` (the streaming
analysis and its result), :mod:`~cellsim.analysis.rdf`, :mod:`~cellsim.analysis.peaks`,
:mod:`~cellsim.analysis.environments`, :mod:`~cellsim.analysis.diagnostics`. The stage function is
:func:`cellsim.analyze`.
"""

from cellsim.analysis.analyze import AnalysisResult, AnalysisSettings

__all__ = ["AnalysisResult", "AnalysisSettings"]
