"""Small NumPy helpers of the analysis path.

:func:`median` is ``np.median`` for 1-D data without its import of ``numpy.ma``: NumPy 2.4's median asks
whether its input is a masked array, which loads ``numpy.ma`` (5-10 ms of every ``cellsim analyze``) for
arrays that never are.
"""

from __future__ import annotations

import math

import numpy as np


def median(values: np.ndarray | list[float]) -> float:
    """Median of 1-D data as ``np.median`` gives it: the middle value, or the mean of the two middle ones (the
    same arithmetic, so the same float); NaN when the data hold a NaN or are empty."""
    a = np.asarray(values, dtype=np.float64).ravel()
    n = a.size
    if n == 0 or np.isnan(a).any():
        return math.nan
    k = n // 2
    if n % 2:
        return float(np.partition(a, k)[k])
    part = np.partition(a, (k - 1, k))
    return float((part[k - 1] + part[k]) / 2.0)
