"""Stage 4: time-resolved partial RDFs, bond counts, local environments and diagnostics (``cellsim analyze``).

One pass over the frames (:mod:`~cellsim.analysis.driver`) feeds the accumulators
(:mod:`~cellsim.analysis.accumulators`: :mod:`~cellsim.analysis.rdf`, :mod:`~cellsim.analysis.environments`,
:mod:`~cellsim.analysis.diagnostics`) from one neighbour search per sampled frame
(:mod:`~cellsim.analysis.neighbours`); :mod:`~cellsim.analysis.analyze` runs it, :mod:`~cellsim.analysis.result`
and :mod:`~cellsim.analysis.store` hold and save what it found, :mod:`~cellsim.analysis.setup` decides what to
analyse when nobody said, :mod:`~cellsim.analysis.pooling` pools replicas. Trajectories come in through
:mod:`cellsim.io.sources`. The stage function is :func:`cellsim.analyze`.
"""

from cellsim.analysis.analyze import AnalysisResult, AnalysisSettings

__all__ = ["AnalysisResult", "AnalysisSettings"]
