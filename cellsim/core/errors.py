"""Narrow exceptions. Every message names the file, field or pair at fault and what was expected."""


class CellsimError(Exception):
    """Base class: the CLI prints these as one clear line and exits with status 2."""


class StudyError(CellsimError):
    """A study file is unreadable, malformed, or has a field of the wrong kind or value."""


class PhaseNotFoundError(CellsimError):
    """A phase name is neither in the reference library nor a readable structure file."""


class StructureReadError(CellsimError):
    """A CIF/POSCAR file exists but cannot be parsed into a structure."""


class BuildError(CellsimError):
    """The interface builder cannot produce a model that satisfies the study's constraints."""


class AnalysisError(CellsimError):
    """Analysis settings do not fit the trajectory."""


class RunDirError(CellsimError):
    """A run directory is missing an artefact, or holds one that would be overwritten."""
