"""Quantities with units on the command line: ``2fs``, ``0.5ps``, ``500 fs``, ``8A``, ``0.02 Å``.

Each option has a default unit that a bare number means (said in its help). Values must be finite and
positive; anything else is refused with one line naming the option and what is expected.
"""

from __future__ import annotations

import math
import re

from cellsim.core.errors import CellsimError

_QTY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zÅ]*)\s*$")

# unit -> factor to the base unit of the kind
_UNITS = {
    "time": {"fs": 1.0, "ps": 1000.0, "ns": 1.0e6},  # base fs
    "length": {"a": 1.0, "å": 1.0, "ang": 1.0, "angstrom": 1.0, "nm": 10.0, "pm": 0.01},  # base A
    "temperature": {"k": 1.0},
}


class QuantityError(CellsimError):
    """A command-line quantity is not a positive finite number with a known unit."""


def parse_quantity(text: str | float, kind: str, default_unit: str, option: str, allow_zero: bool = False) -> float:
    """``text`` in ``default_unit`` (a bare number means ``default_unit``).

    Parameters
    ----------
    text
        e.g. ``"2fs"``, ``"0.5 ps"``, ``"8"``.
    kind
        ``"time"``, ``"length"`` or ``"temperature"``.
    default_unit
        The unit of the result and of a bare number.
    option
        The option's name for messages (``--dt``).
    """
    units = _UNITS[kind]
    m = _QTY.match(str(text))
    known = ", ".join(units)
    if not m:
        raise QuantityError(
            f"{option} {text!r}: expected a number with an optional unit ({known}), e.g. 2{default_unit}"
        )
    value, unit = float(m.group(1)), m.group(2).lower() or default_unit.lower()
    if unit not in units:
        raise QuantityError(f"{option} {text!r}: unknown unit {m.group(2)!r}; expected one of {known}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise QuantityError(f"{option} {text!r}: expected a positive finite value")
    return value * units[unit] / units[default_unit.lower()]


def parse_time_ps(text: str | float, option: str = "--time") -> float:
    """A duration in ps ('2ps', '500 fs'; a bare number is ps)."""
    return parse_quantity(text, "time", "ps", option)
