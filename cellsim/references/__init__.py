"""Reference structures: the offline library shipped with cellsim (and, later, Materials Project)."""

from cellsim.references.library import (
    ReferencePhase,
    library,
    load_structure,
    resolve_phase,
)

__all__ = ["ReferencePhase", "library", "load_structure", "resolve_phase"]
