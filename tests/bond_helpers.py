"""A match's bond record for one pair (``MatchResult.pairs[pair]["bonds"]``), as the answer's rule reads it."""

from __future__ import annotations

from typing import Any


def bond_record(
    base: float, late: float, margin: float = 2.0, formation: float | None = None, brk: float | None = None
) -> dict[str, Any]:
    """Baseline and late means, the noise margin, rose/fell by the rule, and the departure times given."""
    change = late - base
    return {
        "baseline_mean": base,
        "late_mean": late,
        "margin": margin,
        "change": change,
        "rose": change > margin,
        "fell": -change > margin,
        "formation_ps": formation,
        "break_ps": brk,
        "initial": int(base),
        "final": int(late),
        "min": 0,
        "max": 9,
    }
