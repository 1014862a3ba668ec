"""cellsim: AIMD studies of reactions at solid-electrolyte/metal interfaces.

Stages (one sub-package or module each, mirroring the run directory):
``study`` -> ``build`` -> ``md`` (inputs, engines) -> ``analysis`` -> ``products`` (match) -> ``reporting``.

The public Python API is the stage functions (:mod:`cellsim.stages`), the run-directory layout
(:class:`cellsim.rundir.RunDir`) and the result objects; see docs/python.md::

    import cellsim
    res = cellsim.analyze("XDATCAR", dt_fs=2, pairs="In-S,In-Cl", window_ps=0.5, out="out")
    res.to_dataframe()                      # the rdf.csv table
    verdict = cellsim.match("out")          # formed / possible / not seen, with intervals
    cellsim.report("out")                   # out/report/report.html
"""

from cellsim.rundir import RunDir, SegmentPlan

# ``build`` stays cellsim.stages.build: ``cellsim.build`` is the builder package
from cellsim.stages import analyze, inputs, match, report, run

__version__ = "0.2.0"

__all__ = ["RunDir", "SegmentPlan", "__version__", "analyze", "inputs", "match", "report", "run"]
