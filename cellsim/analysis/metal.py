"""The metal electrode's order from the kept frames: RMS displacement from its sites (Lindemann), layers,
first-shell coordination (rules in :mod:`cellsim.analysis.diagnostics`)."""

from __future__ import annotations

import math

import numpy as np

from cellsim.analysis.checks import (
    COORDINATION_BUDGET,
    COORDINATION_CHANGE_WARN,
    COORDINATION_CUTOFF_FACTOR,
    LAYER_MIN_SPACING,
    LAYER_ORDER_WARN,
    LAYER_SPLIT,
    LAYER_TOLERANCE,
    RMSD_BLOCKS,
    Check,
    Diagnostics,
    rmsd_check,
)
from cellsim.analysis.neighbours import nearest_distance, neighbour_counts
from cellsim.core.numeric import median


def metal_series(
    d: Diagnostics,
    metal: str | None,
    kept_frac: list[np.ndarray],
    kept_cell: list[np.ndarray],
    coordination_cutoff: float | None,
) -> list[Check]:
    """RMSD, layers and coordination of the metal from the kept frames (unwrapped fractional positions)."""
    el = metal or "metal"
    frac = np.array(kept_frac)  # (n, m, 3) unwrapped
    cells = np.array(kept_cell)
    cart = np.einsum("fij,fjk->fik", frac, cells)
    centred = cart - cart.mean(axis=1, keepdims=True)  # drift of the whole slab is not disorder
    n = len(cart)
    nb = max(2, min(RMSD_BLOCKS, n // 2))
    edges = np.linspace(0, n, nb + 1).astype(int)
    ref = centred[edges[0] : edges[1]].mean(axis=0)
    disp2 = ((centred - ref) ** 2).sum(axis=2).mean(axis=1)  # per frame, over atoms
    t = d.frame_times_ps
    d.block_times_ps = np.array([t[edges[b] : edges[b + 1]].mean() for b in range(nb)])
    d.rmsd_A = np.sqrt([disp2[edges[b] : edges[b + 1]].mean() for b in range(nb)])
    # first-shell distance of the first block's mean positions: one thermal snapshot shortens it
    ref_frac = frac[edges[0] : edges[1]].mean(axis=0)
    nn = nearest_distance(ref_frac - np.floor(ref_frac), cells[0], np.arange(frac.shape[1]))
    d.summary["metal_nn_A"] = nn
    rmsd = rmsd_check(d, el, nn, plane_rmsd(centred, ref, cells[0], edges))
    checks = [rmsd]
    layer = layers(d, el, centred, ref, cells[0], edges)
    if layer is not None:
        checks.append(layer)
    coord = coordination(d, frac, cells, nn, el, coordination_cutoff)
    if coord is not None:
        checks.append(coord)
    return checks


def plane_rmsd(centred: np.ndarray, ref: np.ndarray, cell: np.ndarray, edges: np.ndarray) -> list[float] | None:
    """RMS displacement (A) over the last time block of the atoms of each atomic plane, lowest plane first.

    Displacements are about the whole metal's centre of mass (as the slab's RMSD): a plane that slides as a
    whole shows, and so does, slightly, the centre's shift when one plane's atoms drift together.

    ``None`` when the atoms form fewer than three planes along c (a bulk cell or no layering).
    """
    normal = np.cross(cell[0], cell[1])
    normal /= np.linalg.norm(normal)
    period = abs(float(cell[2] @ normal))
    h = ref @ normal
    planes = layer_planes(h, period)
    if len(planes) < 3 or median(np.diff(planes)) < LAYER_MIN_SPACING:
        return None
    dz = h[:, None] - planes[None, :]
    dz -= period * np.rint(dz / period)
    which = np.abs(dz).argmin(axis=1)
    last = centred[edges[-2] : edges[-1]]
    disp2 = ((last - ref[None]) ** 2).sum(axis=2).mean(axis=0)  # per atom, over the block
    # order by the atoms' own (centred, unwrapped) heights: the plane positions are folded into one period
    used = [k for k in range(len(planes)) if np.any(which == k)]
    used.sort(key=lambda k: float(h[which == k].mean()))
    return [float(np.sqrt(disp2[which == k].mean())) for k in used]


def layers(
    d: Diagnostics, el: str, centred: np.ndarray, ref: np.ndarray, cell: np.ndarray, edges: np.ndarray
) -> Check | None:
    """The "metal layers" check: how many metal atoms stay within LAYER_TOLERANCE of their planes."""
    normal = np.cross(cell[0], cell[1])
    normal /= np.linalg.norm(normal)
    period = abs(float(cell[2] @ normal))
    planes = layer_planes(ref @ normal, period)
    nb = len(edges) - 1
    d.layer_order = np.full(nb, np.nan)
    if len(planes) < 2:
        return None
    gaps = np.diff(np.concatenate([planes, [planes[0] + period]]))
    spacing = median(gaps)
    d.summary["layer_spacing_A"] = spacing
    d.summary["layer_planes"] = len(planes)
    if spacing < LAYER_MIN_SPACING:
        return None
    dz = (centred @ normal)[:, :, None] - planes[None, None, :]
    dz -= period * np.rint(dz / period)
    within = (np.abs(dz).min(axis=2) <= LAYER_TOLERANCE).mean(axis=1)  # per frame
    f_rand = min(1.0, 2 * LAYER_TOLERANCE / spacing)
    frac_in = np.array([within[edges[b] : edges[b + 1]].mean() for b in range(nb)])
    d.layer_order = (frac_in - f_rand) / (1.0 - f_rand) if f_rand < 1 else np.ones(nb)
    start, end = float(d.layer_order[0]), float(d.layer_order[-1])
    d.summary["layer_order_start"], d.summary["layer_order_end"] = start, end
    bad = end < LAYER_ORDER_WARN
    return Check(
        "metal layers",
        "warn" if bad else "ok",
        end,
        "",
        f"metal layers: {frac_in[-1]:.0%} of {el} atoms within {LAYER_TOLERANCE} A of their initial planes "
        f"at the end ({frac_in[0]:.0%} at the start, {f_rand:.0%} if random; {len(planes)} planes "
        f"{spacing:.2f} A apart); order {start:.2f} -> {end:.2f} "
        + "(1 sharp planes, 0 random heights)"
        + (": the layers have washed out" if bad else ""),
    )


def coordination(
    d: Diagnostics, frac: np.ndarray, cells: np.ndarray, nn: float, el: str, cutoff: float | None
) -> Check | None:
    """The "metal coordination" check: metal-metal neighbours within the cutoff, start against end."""
    cutoff = cutoff or (COORDINATION_CUTOFF_FACTOR * nn if math.isfinite(nn) else None)
    if cutoff is None:
        return None
    n, m = frac.shape[:2]
    step = max(1, math.ceil(n * m * m / COORDINATION_BUDGET))
    sel = np.arange(0, n, step)
    idx = np.arange(m)
    cn = neighbour_counts(frac[sel], cells[sel], idx, idx, cutoff).mean(axis=1)
    d.coordination_times_ps = d.frame_times_ps[sel]
    d.metal_coordination = cn.astype(float)
    k = max(1, len(cn) // RMSD_BLOCKS)
    start, end = float(cn[:k].mean()), float(cn[-k:].mean())
    change = (end - start) / start if start > 0 else 0.0
    d.summary["coordination_cutoff_A"] = cutoff
    d.summary["coordination_start"], d.summary["coordination_end"] = start, end
    bad = abs(change) > COORDINATION_CHANGE_WARN
    return Check(
        "metal coordination",
        "warn" if bad else "ok",
        end,
        "neighbours",
        f"metal coordination: {el}-{el} neighbours within {cutoff:.2f} A {start:.1f} -> {end:.1f} "
        f"({change:+.0%})" + (": the metal's first shell is changing (melting or reaction)" if bad else ""),
    )


def layer_planes(heights: np.ndarray, period: float, split: float = LAYER_SPLIT) -> np.ndarray:
    """Plane heights (sorted, in [0, period)) of atoms at ``heights`` along a periodic axis.

    Heights closer than ``split`` in sorted order form one plane; the cut starts after the widest gap so
    that a plane split by the periodic boundary stays one plane.
    """
    if len(heights) == 0:
        return np.empty(0)
    z = np.sort(np.mod(heights, period))
    gaps = np.diff(np.concatenate([z, [z[0] + period]]))
    k = int(np.argmax(gaps))
    z = np.concatenate([z[k + 1 :], z[: k + 1] + period])
    groups = np.split(z, np.flatnonzero(np.diff(z) > split) + 1)
    return np.sort(np.mod([g.mean() for g in groups], period))
