"""Stage 4: time-resolved partial RDFs, bond counts and new peaks (``cellsim analyze``)."""

from cellsim.analysis.analyze import AnalysisResult, AnalysisSettings, analyze, write_outputs

__all__ = ["AnalysisResult", "AnalysisSettings", "analyze", "write_outputs"]
