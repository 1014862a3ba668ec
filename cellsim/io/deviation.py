"""The engine-deviation record an embedded run writes beside its trajectory (``deviation.csv`` in each MD segment).

One line every ``engine.monitor_every`` MD steps (:mod:`cellsim.engines.committee` writes it): the step, its time,
the largest and the mean per-atom force deviation of the committee (or of the student from its teacher), and the
atom, element and height (z, A) of the largest. The analysis reads it here into the "engine deviation" check.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEVIATION_FILE = "deviation.csv"
DEVIATION_HEADER = "step,time_ps,max_eV_A,mean_eV_A,atom,element,z_A\n"


@dataclass
class DeviationSeries:
    """The deviation lines of a run's segments, in time order."""

    time_ps: np.ndarray
    max_eV_A: np.ndarray
    mean_eV_A: np.ndarray
    element: list[str]
    z_A: np.ndarray

    def __len__(self) -> int:
        return len(self.time_ps)


def read_deviation(files: Sequence[str | os.PathLike[str]]) -> DeviationSeries | None:
    """The ``deviation.csv`` files of a run's segments joined in order; None when there are none.

    A damaged line (a kill mid-write) ends that file's record: the lines before it are kept.
    """
    t: list[float] = []
    mx: list[float] = []
    mn: list[float] = []
    el: list[str] = []
    z: list[float] = []
    found = False
    for name in files:
        p = Path(name)
        if not p.is_file():
            continue
        found = True
        for raw in p.read_text(errors="replace").splitlines()[1:]:
            parts = raw.split(",")
            try:
                tt, a, b, zz = float(parts[1]), float(parts[2]), float(parts[3]), float(parts[6])
            except (IndexError, ValueError):
                break
            if not all(np.isfinite([tt, a, b])):
                break
            t.append(tt)
            mx.append(a)
            mn.append(b)
            el.append(parts[5])
            z.append(zz)
    if not found:
        return None
    return DeviationSeries(np.array(t), np.array(mx), np.array(mn), el, np.array(z))
