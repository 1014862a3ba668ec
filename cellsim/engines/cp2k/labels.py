"""Where CP2K jobs go, the PBE labels kept with cellsim (data/pbe), and the Bain path's cells and minimum."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.core.resources import cache_root

if TYPE_CHECKING:
    from ase import Atoms


# --------------------------------------------------------------------------- stored labels and the Bain path


def cache_dir() -> Path:
    """Where CP2K jobs run by cellsim go: ``$CELLSIM_CACHE/cp2k`` (default ``~/.cache/cellsim/cp2k``)."""
    return cache_root() / "cp2k"


def stored_labels() -> list[Path]:
    """The CP2K job folders of the PBE labels kept with cellsim (``data/pbe/*/jobs``), if this install has them.

    Plane-wave (GPAW) label sets, ``data/pbe/*_pw/jobs``, are :func:`cellsim.engines.planewave.stored_labels`.
    """
    from cellsim.core.resources import shipped_dir

    try:
        root = shipped_dir("data") / "pbe"
    except FileNotFoundError:
        return []
    return sorted(p for p in root.glob("*/jobs") if p.is_dir() and not p.parent.name.endswith("_pw"))


# The Bain path of the stored labels (data/pbe/in_bain): In at 27.3 A^3/atom, the volume of the plane-wave
# reference in audits/science-2.md, on one k-mesh for every c/a so that the differences are not mesh jumps.
# 20x20x14: a 12x12x8 mesh is off by up to 7 meV/atom in E(c/a) - E(fcc); 16x16x11 and 20x20x14 agree
# within ~0.1 meV/atom (data/pbe/README.md)
BAIN_CA = (1.414, 1.46, 1.50, 1.52, 1.54, 1.58)
BAIN_VOLUME = {"In": 27.3}
BAIN_SETTINGS: dict[str, Any] = {"kpoints": {"mesh": [20, 20, 14]}}


def bain_cell(element: str, c_a: float, volume: float) -> Atoms:
    """The conventional 2-atom body-centred tetragonal cell (c/a = sqrt(2) is fcc, 1 is bcc) of ``volume`` A^3/atom."""
    from ase import Atoms

    a = (2 * volume / c_a) ** (1 / 3)
    return Atoms(f"{element}2", cell=[a, a, c_a * a], scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], pbc=True)


def parabola_minimum(x: Sequence[float], y: Sequence[float]) -> tuple[float | None, bool]:
    """Minimum of a parabola through the lowest point and its two neighbours.

    Returns
    -------
    (x_min, bracketed)
        ``bracketed`` is False when the lowest point is at an end of the scan (then ``x_min`` extrapolates,
        or is ``None`` for a curve with no minimum).
    """
    order = np.argsort(np.asarray(x, dtype=float))
    xs, ys = np.asarray(x, dtype=float)[order], np.asarray(y, dtype=float)[order]
    if len(xs) < 3:
        return None, False
    i = int(np.argmin(ys))
    lo = min(max(i - 1, 0), len(xs) - 3)
    x3, y3 = xs[lo : lo + 3], ys[lo : lo + 3]
    p = np.polyfit(x3, y3, 2)
    bracketed = 0 < i < len(xs) - 1
    # a curvature at rounding level (three points on a line) has no minimum
    flat = p[0] <= 1e-9 * max(float(np.ptp(y3)), 1e-300) / float(np.ptp(x3)) ** 2
    return (None if flat else float(-p[1] / (2 * p[0]))), bracketed
