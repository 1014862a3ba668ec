"""Peaks of RDF curves, peaks that appear during the run, and when bonds first form.

A small NumPy peak finder is used instead of ``scipy.signal.find_peaks``: importing scipy.signal costs
1.2 s here (python -X importtime), more than the whole analysis of a 10,000-frame trajectory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from cellsim.analysis.result import AnalysisData


def smooth(y: np.ndarray, sigma_bins: float) -> np.ndarray:
    """Gaussian smoothing (reflecting edges) to keep histogram noise from making peaks."""
    if sigma_bins <= 0:
        return y.astype(float)
    half = max(1, int(4 * sigma_bins))
    x = np.arange(-half, half + 1)
    kern = np.exp(-0.5 * (x / sigma_bins) ** 2)
    kern /= kern.sum()
    yf = y.astype(float)
    if half < len(yf):  # np.pad(mode="reflect") by slicing: the same array, without np.pad's ~0.1 ms a call
        padded = np.concatenate([yf[half:0:-1], yf, yf[-2 : -half - 2 : -1]])
    else:
        padded = np.pad(yf, half, mode="reflect")
    return np.convolve(padded, kern, mode="valid")


def find_peaks(y: np.ndarray, min_prominence: float) -> list[tuple[int, float]]:
    """Local maxima of ``y`` with their prominence, keeping those with prominence >= ``min_prominence``.

    Prominence: the height above the higher of the two lowest points between the peak and the nearest
    higher point on each side (or the array end), as in topography and scipy.
    """
    n = len(y)
    if n < 3:
        return []
    left, mid, right = y[:-2], y[1:-1], y[2:]
    cand = np.flatnonzero((mid > left) & (mid >= right)) + 1
    out = []
    for k in cand:
        h = y[k]
        higher_left = np.flatnonzero(y[:k] > h)
        lo = higher_left[-1] if len(higher_left) else 0
        higher_right = np.flatnonzero(y[k + 1 :] > h)
        hi = k + 1 + higher_right[0] if len(higher_right) else n - 1
        base = max(y[lo : k + 1].min(), y[k : hi + 1].min())
        prom = float(h - base)
        if prom >= min_prominence:
            out.append((int(k), prom))
    return out


def window_peaks(r: np.ndarray, g: np.ndarray, dr: float) -> list[dict[str, float]]:
    """Peaks of one window's g(r): position, smoothed height and prominence."""
    gs = smooth(g, sigma_bins=max(1.0, 0.04 / dr))
    top = float(gs.max()) if len(gs) else 0.0
    if top <= 0:
        return []
    peaks = []
    for k, prom in find_peaks(gs, min_prominence=0.1 * top):
        peaks.append(
            {
                "r": round(float(r[k]), 4),
                "g": round(float(gs[k]), 5),
                "prominence": round(prom, 5),
            }
        )
    return peaks


def new_peaks(
    r: np.ndarray,
    n_first: np.ndarray,
    n_late: np.ndarray,
    late_peaks: list[dict[str, float]],
    half_width: float = 0.2,
    ratio: float = 0.5,
) -> list[dict[str, float]]:
    """Peaks of a late window that the first window lacks.

    A late peak at ``r0`` is new when the first window holds less than ``ratio`` times as many neighbours
    (``n_per_atom`` summed over ``r0 +/- half_width``) as the late window does there.
    """
    out = []
    for p in late_peaks:
        sel = np.abs(r - p["r"]) <= half_width
        late = float(n_late[sel].sum())
        first = float(n_first[sel].sum())
        if late > 0 and first < ratio * late:
            out.append({**p, "n_first": round(first, 5), "n_late": round(late, 5)})
    return out


def bond_events(times: np.ndarray, counts: np.ndarray) -> dict[str, Any]:
    """Initial/final/min/max bond counts and when bonds first form or first grow.

    ``first_formation_ps``: time of the first frame with a bond when the first frame has none (None
    otherwise, see ``present_at_start``). ``first_increase_ps``: first frame with more bonds than the
    first frame. ``sustained_increase_ps``: start of the first run of frames, at least 5 % of the
    trajectory (and >= 10 frames) long, during which the count stays above the initial one.
    """
    if len(counts) == 0:
        return {"frames": 0}
    # pooled replicas give mean counts (2.5 bonds): compare with the first count itself, never its integer part,
    # which dated "more bonds than the first frame" at the first frame
    c0 = float(counts[0])
    above = counts > c0
    first_inc = float(times[np.argmax(above)]) if above.any() else None
    need = max(10, int(0.05 * len(counts)))
    sustained = None
    run = 0
    for k, a in enumerate(above):
        run = run + 1 if a else 0
        if run == need:
            sustained = float(times[k - need + 1])
            break
    return {
        "frames": len(counts),
        "initial": _count(c0),
        "final": _count(counts[-1]),
        "min": _count(counts.min()),
        "max": _count(counts.max()),
        "present_at_start": c0 > 0,
        "first_formation_ps": (float(times[np.argmax(counts > 0)]) if (c0 == 0 and (counts > 0).any()) else None),
        "first_increase_ps": first_inc,
        "sustained_increase_ps": sustained,
    }


def _count(x: float) -> int | float:
    """A bond count as written: whole for one trajectory, the replica mean to 3 decimals when pooled."""
    v = float(x)
    return int(v) if v.is_integer() else round(v, 3)


def departure_time(
    times: np.ndarray, counts: np.ndarray, baseline_frames: int, min_margin: float = 2.0, sustain_frames: int = 10
) -> dict[str, Any]:
    """When a bond count first leaves its starting baseline, up (bonds form) or down (bonds break).

    Baseline: mean and standard deviation of the first ``baseline_frames`` frames. The count *leaves*
    it when its running mean over ``sustain_frames`` frames moves more than
    ``margin = max(3 sd, min_margin, 10 % of the mean)`` away and stays away for ``sustain_frames``
    frames; the time given is the first frame of that stretch. Contacts made before the MD (a
    pre-relaxation) are part of the baseline, so they are not a formation.
    """
    n = len(counts)
    if n == 0:
        return {"formation_ps": None, "break_ps": None}
    nb = max(1, min(baseline_frames, n))
    base = counts[:nb].astype(float)
    mu, sd = float(base.mean()), float(base.std())
    margin = max(3.0 * sd, min_margin, 0.1 * mu)
    w = max(1, min(sustain_frames, n))
    # run_mean[k] = mean(k..k+w-1), as a sum divided once: summing the w-ths rounds, and a count that sits
    # exactly on the margin (10 -> 8 bonds, margin 2) then read as outside it for some counts and not others
    run_mean = np.convolve(counts.astype(float), np.ones(w), mode="valid") / w
    # pooled replicas give fractional counts (7/3 -> 13/3), whose sums round either side of an exact margin: the
    # edge is "more than the margin" by a relative 1e-9, far below a bond and far above the rounding
    edge = margin + 1e-9 * max(1.0, abs(mu) + margin)

    def first(mask: np.ndarray, frame_out: np.ndarray) -> float | None:
        # the first stretch (after the baseline) where the running mean stays outside for w starts; the time is
        # that of the first frame in it that is itself outside (the running mean leads a step by up to w frames)
        need = max(1, min(w, len(mask)))
        run = 0
        for k in range(nb, len(mask)):
            run = run + 1 if mask[k] else 0
            if run == need:
                start = k - need + 1
                hits = np.flatnonzero(frame_out[start:])
                return float(times[start + (int(hits[0]) if len(hits) else 0)])
        return None

    late = counts[-max(1, n // 3) :].astype(float)
    return {
        "baseline_mean": round(mu, 3),
        "baseline_sd": round(sd, 3),
        "margin": round(margin, 3),
        "late_mean": round(float(late.mean()), 3),
        "formation_ps": first(run_mean > mu + edge, counts > mu + edge),
        "break_ps": first(run_mean < mu - edge, counts < mu - edge),
    }


def peaks_report(res: AnalysisData) -> dict[str, Any]:
    """The content of peaks.json."""
    s = res.settings
    times = res.frame_times
    out: dict[str, Any] = {
        "normalisation": s.normalisation,
        "dt_frame_fs": s.dt_fs,
        "frames": res.n_frames,
        "window_ps": s.window_ps,
        "windows": len(res.window_frames),
        "definitions": {
            "peaks": "local maxima of g(r) smoothed with a 0.04 A Gaussian, prominence >= 10 % of the maximum",
            "new_peaks": "peaks of the last window whose +/-0.2 A neighbourhood holds < 50 % as many neighbours "
            "(n_per_atom) in the first window; also listed per window against the first",
            "first_formation_ps": "first frame with a bond (d < cutoff) when the first frame has none",
            "formation_ps": "first time the bond count's running mean leaves its starting baseline upwards by more "
            "than max(3 sd, 2 bonds, 10 %) for as long as the running mean's width (peaks.departure_time)",
            "break_ps": "the same, downwards (bonds break)",
            "first_above_as_built_ps": "first frame with more bonds than the as-built interface (run directories)",
        },
        "pairs": {},
    }
    for p in s.pairs:
        per_window: list[dict[str, Any]] = []
        for w in range(len(res.window_frames)):
            per_window.append(
                {
                    "window": w,
                    "t_start_ps": round(float(res.t_start[w]), 6),
                    "t_end_ps": round(float(res.t_end[w]), 6),
                    "peaks": window_peaks(res.r, res.g[p][w], s.bin_width),
                }
            )
        first_new: dict[float, dict[str, Any]] = {}
        for w in range(1, len(per_window)):
            for pk in new_peaks(res.r, res.n_per_atom[p][0], res.n_per_atom[p][w], per_window[w]["peaks"]):
                key = round(pk["r"] / 0.2)  # same peak in later windows: keep its first appearance
                if key not in first_new:
                    first_new[key] = {**pk, "first_window": w, "first_t_ps": per_window[w]["t_start_ps"]}
        last = len(per_window) - 1
        late_new = (
            new_peaks(res.r, res.n_per_atom[p][0], res.n_per_atom[p][last], per_window[last]["peaks"])
            if last > 0
            else []
        )
        events = bond_events(times, res.bonds[p])
        events.update(departure_time(times, res.bonds[p], baseline_frames(res)))
        if p in res.baseline_bonds:
            built = res.baseline_bonds[p]
            events["as_built"] = built
            grown = res.bonds[p] > built
            events["first_above_as_built_ps"] = float(times[np.argmax(grown)]) if grown.any() else None
        out["pairs"][p] = {
            "bond_cutoff": res.cutoffs[p],
            "windows": per_window,
            "new_peaks": late_new,
            "new_peak_first_seen": sorted(first_new.values(), key=lambda d: d["r"]),
            "bonds": events,
        }
    return out


def baseline_frames(res: AnalysisData) -> int:
    """Frames of the starting baseline: the first window, at most 0.2 ps and 10 % of the run, at least 5."""
    per_02ps = max(1, round(200.0 / res.settings.dt_fs))
    return max(5, min(res.settings.frames_per_window, per_02ps, res.n_frames // 10))
