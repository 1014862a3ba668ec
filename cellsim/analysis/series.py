"""Small numerical helpers of the diagnostics: equilibration time, linear drift, running and bin means."""

from __future__ import annotations

import numpy as np

EQUILIBRATION_BLOCKS = 20
EQUILIBRATION_SD = 2.0
MAX_PLOT_POINTS = 2000


def equilibration_time(t: np.ndarray, x: np.ndarray, n_blocks: int = EQUILIBRATION_BLOCKS) -> tuple[float, bool]:
    """When ``x(t)`` settles, and whether it settles in the first half of the run.

    The series is cut into ``n_blocks`` equal blocks (fewer when short: at least 5 samples each); the
    equilibration time is the end of the last block whose mean lies more than ``EQUILIBRATION_SD``
    per-sample sd from the mean of the second half (0 when no block does). The run has settled when that
    time lies in the first half.
    """
    n = len(x)
    if n < 4:
        return float(t[0]) if n else 0.0, False
    nb = max(2, min(n_blocks, n // 5))
    ref = x[n // 2 :]
    mu, sd = float(np.mean(ref)), float(np.std(ref))
    tol = EQUILIBRATION_SD * max(sd, 1e-12 * max(1.0, abs(mu)))
    edges = np.linspace(0, n, nb + 1).astype(int)
    means = np.array([x[edges[b] : edges[b + 1]].mean() for b in range(nb)])
    outside = np.flatnonzero(np.abs(means - mu) > tol)
    if len(outside) == 0:
        return 0.0, True
    end = edges[outside[-1] + 1]
    t_eq = float(t[end]) if end < n else float(t[-1])
    return t_eq, bool(end <= n // 2)


def linear_drift(t: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of ``x(t)`` and the sd of the residuals about the line."""
    if len(t) < 3 or np.ptp(t) == 0:
        return 0.0, float(np.std(x)) if len(x) else 0.0
    slope, icpt = np.polyfit(t, x, 1)
    return float(slope), float(np.std(x - (slope * t + icpt)))


def running_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Mean over a sliding window of ``width`` samples (only the full windows)."""
    width = max(1, min(width, len(x)))
    c = np.cumsum(np.concatenate([[0.0], x]))
    return (c[width:] - c[:-width]) / width


def bin_mean(t: np.ndarray, x: np.ndarray, n_max: int = MAX_PLOT_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n_max`` points: means over consecutive equal bins (for plotting a long series)."""
    if len(x) <= n_max:
        return t.copy(), x.copy()
    edges = np.linspace(0, len(x), n_max + 1).astype(int)
    counts = np.diff(edges)
    return np.add.reduceat(t, edges[:-1]) / counts, np.add.reduceat(x, edges[:-1]) / counts
