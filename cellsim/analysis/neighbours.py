"""Neighbour counts under periodic boundaries: the one neighbour kernel of the analysis.

Two forms, each run by the C kernels of :mod:`cellsim.core._native` with a NumPy fallback doing the same
arithmetic:

* :func:`neighbour_counts`: ligands within one cutoff of each centre, per frame, every periodic image (small
  cells); used by the unit counts' fallback, the metal coordination and the default pairs' "bonded" rule.
* :func:`kind_counts`: every atom's neighbours by element under several cutoff tables at once, minimum image
  (exact while every cutoff is below half the smallest cell width): the one search per sampled frame that the
  environments and the unit counts (PS4) share in the analysis pass.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from cellsim.analysis.rdf import block_images
from cellsim.core import _native
from cellsim.core.numeric import median


def half_width(cell: np.ndarray) -> float:
    """Half the smallest perpendicular width of a cell (rows a, b, c)."""
    return _half_width_of(np.ascontiguousarray(cell, dtype=np.float64).tobytes())


@functools.lru_cache(maxsize=1024)
def _half_width_of(cell: bytes) -> float:
    # by the cell's bytes: an NVT run asks for the same cell every block, and the NumPy below costs ~0.2 ms
    c = np.frombuffer(cell, dtype=np.float64).reshape(3, 3)
    vol = abs(float(np.linalg.det(c)))
    widths = [vol / float(np.linalg.norm(np.cross(c[(i + 1) % 3], c[(i + 2) % 3]))) for i in range(3)]
    return 0.5 * min(widths)


def neighbour_counts(
    frac: np.ndarray, cells: np.ndarray, centres: np.ndarray, ligands: np.ndarray, cutoff: float
) -> np.ndarray:
    """Ligands within ``cutoff`` of each centre, per frame: (n_frames, n_centres) integers.

    ``frac`` (n, N, 3) fractional coordinates (any range), ``cells`` (n, 3, 3). Every periodic image
    within the cutoff counts (small cells); an atom is never its own neighbour at zero shift.
    """
    n, nc, nl = len(frac), len(centres), len(ligands)
    out = np.zeros((n, nc), dtype=np.int64)
    if n == 0 or nc == 0 or nl == 0:
        return out
    m = block_images(cells, cutoff)
    lib = _native.load()
    if lib is not None:
        varies = len(cells) > 1 and not np.all(cells == cells[0])
        lib.neighbour_counts(
            np.ascontiguousarray(frac, dtype=np.float64).reshape(-1),
            n,
            frac.shape[1],
            np.ascontiguousarray(cells if varies else cells[:1], dtype=np.float64).reshape(-1),
            int(varies),
            np.ascontiguousarray(centres, dtype=np.int64),
            nc,
            np.ascontiguousarray(ligands, dtype=np.int64),
            nl,
            float(cutoff),
            np.ascontiguousarray(m, dtype=np.int64),
            out,
        )
        return out
    shifts = np.array(
        [(i, j, k) for i in range(-m[0], m[0] + 1) for j in range(-m[1], m[1] + 1) for k in range(-m[2], m[2] + 1)],
        dtype=float,
    )
    self_pair = centres[:, None] == ligands[None, :]
    chunk = max(1, int(4_000_000 // max(nc * nl * 3, 1)))
    cut2 = cutoff * cutoff
    for f0 in range(0, n, chunk):
        fr, cl = frac[f0 : f0 + chunk], cells[f0 : f0 + chunk]
        d = fr[:, None, ligands, :] - fr[:, centres, None, :]
        d -= np.rint(d)
        same_cell = bool(np.all(cl == cl[0]))
        for s in shifts:
            # one cell for the chunk (NVT): a plain matrix product, several times faster than per-frame cells
            v = (d + s) @ cl[0] if same_cell else np.matmul(d + s, cl[:, None])
            near = np.einsum("fijk,fijk->fij", v, v) < cut2
            if not s.any():
                near &= ~self_pair
            out[f0 : f0 + chunk] += near.sum(axis=2)
    return out


def kind_counts(frac: np.ndarray, cell: np.ndarray, kinds: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """Neighbours of every atom by element in one frame, for each cutoff table: (tables, natoms, nkinds).

    ``frac`` (N, 3) in [0, 1), ``cell`` (3, 3), ``kinds`` (N,) element index of each atom, ``cut``
    (tables, nkinds, nkinds) cutoffs in A (0: never a neighbour). Atom j counts for atom i in table t when
    ``d_ij < cut[t, kinds[i], kinds[j]]``, minimum image: the caller checks every cutoff is below
    :func:`half_width`.
    """
    ntab, nk = cut.shape[0], cut.shape[1]
    natoms = len(frac)
    lib = _native.load()
    if lib is not None:
        out = np.empty((ntab, natoms, nk), dtype=np.int64)
        lib.kind_counts(
            np.ascontiguousarray(frac, dtype=np.float64).reshape(-1),
            natoms,
            np.ascontiguousarray(cell, dtype=np.float64).reshape(-1),
            np.ascontiguousarray(kinds, dtype=np.int64),
            nk,
            np.ascontiguousarray(cut * cut, dtype=np.float64).reshape(-1),
            ntab,
            out,
            np.empty(4 * max(natoms, 1)),
        )
        return out
    d = frac[:, None, :] - frac[None, :, :]
    d -= np.round(d)
    cart = d @ cell
    dist2 = np.einsum("ijk,ijk->ij", cart, cart)
    out = np.zeros((ntab, natoms, nk), dtype=np.int64)
    for t in range(ntab):
        lim = cut[t][kinds][:, kinds]
        close = dist2 < lim * lim
        np.fill_diagonal(close, False)
        for k in range(nk):
            out[t, :, k] = close[:, kinds == k].sum(axis=1)
    return out


def nearest_distance(frac: np.ndarray, cell: np.ndarray, idx: np.ndarray, rmax: float = 6.0) -> float:
    """Median over atoms ``idx`` of the distance to their nearest neighbour among ``idx`` (one frame)."""
    if len(idx) == 0:
        return math.nan
    m = block_images(cell[None], rmax)
    shifts = [
        np.array((i, j, k), dtype=float)
        for i in range(-m[0], m[0] + 1)
        for j in range(-m[1], m[1] + 1)
        for k in range(-m[2], m[2] + 1)
    ]
    x = frac[idx]
    best = np.full(len(idx), np.inf)
    for c0 in range(0, len(idx), 256):
        d = x[None, :, :] - x[c0 : c0 + 256, None, :]
        d -= np.rint(d)
        for s in shifts:
            r = np.linalg.norm((d + s) @ cell, axis=2)
            if not s.any():
                r[np.arange(len(r)), np.arange(c0, c0 + len(r))] = np.inf
            best[c0 : c0 + 256] = np.minimum(best[c0 : c0 + 256], r.min(axis=1))
    finite = best[np.isfinite(best)]
    return median(finite)  # NaN when no atom has a neighbour within rmax


def with_neighbour(
    symbols: np.ndarray, frac: np.ndarray, cell: np.ndarray, centre: str, cutoffs: dict[str, float]
) -> np.ndarray:
    """Indices of the ``centre`` atoms with at least one neighbour of an element in ``cutoffs`` within its cutoff
    (one frame, every periodic image)."""
    idx = np.flatnonzero(symbols == centre)
    hit = np.zeros(len(idx), dtype=bool)
    for el, c in cutoffs.items():
        lig = np.flatnonzero(symbols == el)
        if len(idx) and len(lig):
            hit |= neighbour_counts(frac[None], cell[None], idx, lig, c)[0] > 0
    return idx[hit]
