"""Can the time between frames be right? Per-frame displacements against thermal speeds.

An atom at temperature T moves at most ballistically between two frames: with the Maxwell speed
distribution, the median atom covers ``v50 * dt`` (``v50 = 1.538 sqrt(kT/m)``; the RMS speed is
``sqrt(3kT/m)``), less once it bounces off its neighbours. The median (over the atoms of an element) of
the minimum-image displacement between consecutive frames, divided by ``v50``, is therefore the shortest
time those moves can have taken (the *free-flight time*); the frames cannot be closer in time than that.
In bulk Li6PS5Cl stored every 100 fs, Li moves ~0.67 A per frame: 65 fs of free flight at 300 K, so a
2 fs assumption is impossible.

An upper bound exists only while the motion between frames is ballistic, which shows as consecutive
displacements pointing the same way (median cosine >= :data:`BALLISTIC_CORRELATION` for every element):
then the free-flight time is the frame interval itself.

Both bounds allow :data:`TOLERANCE` (x2 in time, i.e. atoms up to 4x hotter or colder than T, a hot spot
of an exothermic reaction or a wrong TEBEG), so a real trajectory at its own time step never fails.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cellsim.core import _native
from cellsim.core.numeric import median

# a factor 2 in time = a factor 4 in kinetic energy: no thermostatted run is that far from its T
TOLERANCE = 2.0
# consecutive displacements this aligned (median cosine) mean the frames resolve the atoms' flight
BALLISTIC_CORRELATION = 0.8
# kept per-step statistics (evenly strided over the run, like the diagnostics' frames)
MAX_STEPS = 2000
MIN_STEPS = 2
KB_EV = 8.617333262e-5
# sqrt(eV / amu) in A/fs
_SPEED_UNIT = math.sqrt(1.602176634e-19 / 1.66053906660e-27) * 1e-5


def start_stride(expected: int | None, cap: int) -> int:
    """The stride a thinned sample of ``expected`` items ends on when it doubles each time it holds more than
    ``cap`` (the smallest power of two s with ceil(expected / s) <= cap); 1 when ``expected`` is unknown.

    Starting on it keeps exactly the items the doubling would keep, without computing the ones it drops later
    (at 10,000 frames ~70 % of the step statistics and ~80 % of the diagnostics' unit counts). It may only
    err low: an ``expected`` above the real count could start too sparse, so callers pass a lower bound.
    """
    s = 1
    if expected is not None and expected > cap:
        while -(-expected // s) > cap:
            s *= 2
    return s


def maxwell_ppf(q: float) -> float:
    """Quantile of the Maxwell distribution of unit scale (``scipy.stats.maxwell.ppf``), by Newton steps on its
    CDF ``erf(x / sqrt 2) - sqrt(2 / pi) x exp(-x^2 / 2)``: scipy costs ~1 s of import on the analysis path."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must lie in (0, 1), got {q}")
    c = math.sqrt(2.0 / math.pi)
    x = math.sqrt(2.0)  # the mode
    for _ in range(100):
        cdf = math.erf(x / math.sqrt(2.0)) - c * x * math.exp(-x * x / 2.0)
        step = (cdf - q) / (c * x * x * math.exp(-x * x / 2.0))
        x = max(x - step, x / 2.0)
        if abs(step) <= 1e-15 * x:
            break
    return x


MAXWELL_MEDIAN = maxwell_ppf(0.5)
MAXWELL_P95 = maxwell_ppf(0.95)


def thermal_speeds(element: str, temperature_K: float) -> tuple[float, float, float]:
    """Median, 95th-percentile and RMS Maxwell speeds of ``element`` at ``temperature_K``, A/fs."""
    from cellsim.core.elements import atomic_mass

    scale = math.sqrt(KB_EV * temperature_K / atomic_mass(element)) * _SPEED_UNIT
    return MAXWELL_MEDIAN * scale, MAXWELL_P95 * scale, math.sqrt(3.0) * scale


class StepDisplacements:
    """Per element and frame step: median and 95th percentile (over atoms) of the minimum-image displacement,
    and the mean cosine between an atom's consecutive displacements. Fed the trajectory's blocks in order."""

    def __init__(self, species: Sequence[str], max_steps: int = MAX_STEPS, expected_steps: int | None = None) -> None:
        sym = np.array(list(species))
        self.elements = list(dict.fromkeys(sym.tolist()))
        self._idx = [np.flatnonzero(sym == e) for e in self.elements]
        # the C kernel's view of the same groups: atom indices element by element, and where each starts
        self._order = np.ascontiguousarray(np.concatenate(self._idx), dtype=np.int64)
        self._starts = np.cumsum([0] + [len(i) for i in self._idx]).astype(np.int64)
        self.max_steps = max(4, int(max_steps))
        self.stride = start_stride(expected_steps, self.max_steps)  # a lower bound of the steps to come
        self.n_steps = 0
        self._kept: list[int] = []
        self._rows: list[np.ndarray] = []  # per kept step: (3, elements): median, p95, cosine
        self._last_frac: np.ndarray | None = None
        self._last_step: np.ndarray | None = None

    def update(self, frac: np.ndarray, cells: np.ndarray) -> None:
        """Take the next frames (``frac`` (n, N, 3), ``cells`` (n, 3, 3)), continuing the previous block."""
        if len(frac) == 0:
            return
        if self._last_frac is None:
            seq, cell_of_step = frac, cells[1:]
        else:
            seq, cell_of_step = np.concatenate([self._last_frac[None], frac]), cells
        self._last_frac = frac[-1].copy()
        if len(seq) < 2:
            return
        n = len(seq) - 1
        steps = self.n_steps + np.arange(n)
        self.n_steps += n
        sel = np.flatnonzero(steps % self.stride == 0)
        lib = _native.load()
        if lib is not None:
            rows = self._rows_native(lib, seq, cell_of_step, sel)
        else:
            rows = self._rows_numpy(seq, cell_of_step, sel)
        if rows is None:
            return
        for k, row in zip(sel, rows, strict=True):
            if steps[k] % self.stride:
                continue  # the stride doubled within this block (keeping it would sample the run unevenly)
            self._kept.append(int(steps[k]))
            self._rows.append(row)
            if len(self._kept) > self.max_steps:
                self.stride *= 2
                keep = [i for i, s in enumerate(self._kept) if s % self.stride == 0]
                self._kept = [self._kept[i] for i in keep]
                self._rows = [self._rows[i] for i in keep]

    def _rows_numpy(self, seq: np.ndarray, cell_of_step: np.ndarray, sel: np.ndarray) -> np.ndarray | None:
        """The statistics of the kept steps ``sel`` of ``seq`` in NumPy (no C compiler); None when none is kept."""
        n = len(seq) - 1
        last = self._last_step
        if len(sel) == n:  # every step kept (stride 1): whole arrays, no gathering
            d = np.diff(seq, axis=0)
            d -= np.rint(d)
            c = cell_of_step
            vec = d @ c[0] if np.all(c == c[0]) else np.einsum("snk,skl->snl", d, c)
            v_sel = vec
            a = np.empty_like(vec)
            a[1:] = vec[:-1]
        else:
            # only the kept steps, the steps before them and the block's last step are needed as vectors
            need = np.union1d(np.union1d(sel, sel[sel > 0] - 1), [n - 1])
            d = seq[need + 1] - seq[need]
            d -= np.rint(d)
            c = cell_of_step[need]
            vec = d @ c[0] if np.all(c == c[0]) else np.einsum("snk,skl->snl", d, c)
            v_sel = vec[np.searchsorted(need, sel)] if len(sel) else vec[:0]
            # the step before each kept one: within the block, or the previous block's last (none before the first)
            a = vec[np.searchsorted(need, np.maximum(sel - 1, 0))]
        self._last_step = vec[-1].copy()  # both ways, the block's last step comes last
        if not len(sel):
            return None
        if sel[0] == 0:
            a[0] = last if last is not None else v_sel[0]
        dist = np.linalg.norm(v_sel, axis=2)
        norm = np.linalg.norm(a, axis=2) * dist
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = np.where(norm > 0, np.einsum("snk,snk->sn", a, v_sel) / norm, np.nan)
        if last is None and sel[0] == 0:
            cos[0] = np.nan  # the very first step has no step before it
        rows = np.empty((len(sel), 3, len(self.elements)))
        for j, idx in enumerate(self._idx):
            d = dist[:, idx]
            rows[:, 0, j] = np.median(d, axis=1)
            rows[:, 1, j] = np.percentile(d, 95, axis=1)
            c = cos[:, idx]
            finite = np.isfinite(c)
            n_fin = finite.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                rows[:, 2, j] = np.where(n_fin > 0, np.where(finite, c, 0.0).sum(axis=1) / n_fin, np.nan)
        return rows

    def _rows_native(self, lib: Any, seq: np.ndarray, cell_of_step: np.ndarray, sel: np.ndarray) -> np.ndarray | None:
        """:meth:`_rows_numpy` by the C kernel ``step_stats``, which computes only the kept steps' vectors."""
        n, natoms = len(seq) - 1, seq.shape[1]
        seq = np.ascontiguousarray(seq, dtype=np.float64)
        cells = np.ascontiguousarray(np.broadcast_to(cell_of_step, (n, 3, 3)), dtype=np.float64)
        sel64 = np.ascontiguousarray(sel, dtype=np.int64)
        last = self._last_step
        prev = np.ascontiguousarray(last, dtype=np.float64) if last is not None else np.zeros((natoms, 3))
        rows = np.empty((len(sel), 3, len(self.elements)))
        last_out = np.empty((natoms, 3))
        work = np.empty(8 * natoms)
        steps = (seq, n, natoms, cells, sel64, len(sel), prev, int(last is not None))
        lib.step_stats(*steps, self._order, self._starts, len(self.elements), rows, last_out, work)
        self._last_step = last_out
        return rows if len(sel) else None

    def judge(self, dt_fs: float, temperature_K: float, assumed: bool) -> dict[str, Any] | None:
        """The ``dt_check`` record (module docstring), or None with fewer than :data:`MIN_STEPS` steps."""
        if len(self._rows) < MIN_STEPS:
            return None
        rows = np.array(self._rows)  # (steps, 3, elements)
        per: dict[str, dict[str, float | None]] = {}
        flights, ballistic = [], True
        for j, el in enumerate(self.elements):
            med = median(rows[:, 0, j])
            cos_vals = rows[:, 2, j][np.isfinite(rows[:, 2, j])]
            corr = median(cos_vals)  # NaN when there are none
            v50, _, vrms = thermal_speeds(el, temperature_K)
            flight = med / v50
            flights.append(flight)
            ballistic = ballistic and math.isfinite(corr) and corr >= BALLISTIC_CORRELATION
            per[el] = {
                "median_A": round(med, 4),
                "p95_A": round(median(rows[:, 1, j]), 4),
                "largest_A": round(float(np.max(rows[:, 1, j])), 4),
                "thermal_speed_rms_A_per_fs": round(vrms, 5),
                "free_flight_fs": round(flight, 3),
                "step_correlation": round(corr, 3) if math.isfinite(corr) else None,
            }
        j_max = int(np.argmax(flights))
        longest = flights[j_max]
        lo = longest / TOLERANCE
        hi = longest * TOLERANCE if ballistic else None
        ok = dt_fs >= lo and (hi is None or dt_fs <= hi)
        return {
            "status": "ok" if ok else "implausible",
            "assumed": assumed,
            "dt_fs": dt_fs,
            "implied_dt_fs": [round(lo, 3), round(hi, 3) if hi is not None else None],
            "temperature_K": temperature_K,
            "tolerance": TOLERANCE,
            "ballistic": ballistic,
            "deciding_element": self.elements[j_max],
            "steps": len(self._rows),
            "elements": per,
        }


def message(record: dict[str, Any]) -> str:
    """The check's line in plain words."""
    el = record["deciding_element"]
    e = record["elements"][el]
    lo, hi = record["implied_dt_fs"]
    dt, t = record["dt_fs"], record["temperature_K"]
    how = "assumed (no --dt, no INCAR/vasprun/engine record)" if record["assumed"] else "given"
    moves = (
        f"{el} moves {e['median_A']:.3g} A between frames (median over atoms), {e['free_flight_fs']:.3g} fs of "
        f"free flight at {t:g} K"
    )
    span = f">= {lo:.3g} fs" if hi is None else f"{lo:.3g}-{hi:.3g} fs"
    if record["status"] == "ok":
        return f"time step: {dt:g} fs per frame ({how}) fits the displacements: {moves}"
    fix = "give the real one with --dt" if record["assumed"] else "check --dt, POTIM x NBLOCK or the frame stride"
    return (
        f"time step: {dt:g} fs per frame ({how}) cannot be right: {moves}; the frames imply {span} per frame; "
        f"every time and rate is off by that factor ({fix})"
    )
