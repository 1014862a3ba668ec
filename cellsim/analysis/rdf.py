"""Partial pair-distance histograms under periodic boundaries and their normalisations.

Conventions (also in docs/analysis.md and the header of rdf.csv):

* ``hist[k]``: number of A-B pairs with ``k * dr <= d < (k + 1) * dr``, summed over frames; unordered
  pairs when A == B (each pair once), every image within ``rmax`` counted.
* ``n_per_atom[k]``: mean number of B atoms in shell k around an A atom (ordered pairs / (N_A * frames)).
  Needs no volume: it is the same in a slab with vacuum as in a bulk cell.
* ``cn[k]``: running coordination number, the sum of ``n_per_atom`` up to the shell's outer edge.
* ``g[k] = n_per_atom[k] / (rho_B * shell_volume_k)`` with ``rho_B = N_B / V`` (``N_B - 1`` when A == B).
  ``V`` is the mean cell volume (``cell``: comparable with pymatgen, ASE, MDAnalysis, freud; in a slab
  with vacuum g does not tend to 1) or the mean occupied volume (``occupied``: cell area times the extent
  of the atoms along c, i.e. the cell less its largest empty gap; g of a slab then tends towards 1).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from cellsim.core import _native
from cellsim.core.errors import CellsimError

# periodic image vectors scanned per pair at most: beyond this the cell is too thin for rmax (a scan of
# 1e6 images costs seconds per frame even for a few atoms; a degenerate cell would need ~1e36)
MAX_IMAGES = 1_000_000


class PeriodicImageError(CellsimError):
    """The cell is too thin or degenerate for rmax: the periodic-image scan would be absurdly long."""


def cell_widths(cell: np.ndarray) -> np.ndarray:
    """Perpendicular widths of a cell (rows a, b, c): distance between opposite faces (0 when degenerate)."""
    vol = abs(np.linalg.det(cell))
    a, b, c = cell
    areas = np.array([np.linalg.norm(np.cross(b, c)), np.linalg.norm(np.cross(c, a)), np.linalg.norm(np.cross(a, b))])
    with np.errstate(divide="ignore", invalid="ignore"):
        w = vol / areas
    return np.where(np.isfinite(w), w, 0.0)


def image_range(cell: np.ndarray, rmax: float) -> np.ndarray:
    """Periodic images to scan along a, b, c so every pair image within ``rmax`` is found.

    After wrapping a separation into [-1/2, 1/2) (fractional), an image within ``rmax`` has
    ``|s_k + n_k| <= rmax / w_k``, so ``|n_k| <= floor(rmax / w_k + 1/2)``. All zeros (minimum image, the
    fast path) whenever ``rmax < w_min / 2``: then at most one image of a pair lies within ``rmax``.

    Raises
    ------
    PeriodicImageError
        ``rmax`` is not a positive finite number, or the cell is so thin (or degenerate) that more than
        :data:`MAX_IMAGES` image vectors would be scanned.
    """
    if not (np.isfinite(rmax) and rmax > 0):
        raise PeriodicImageError(f"rmax must be a positive finite distance in A, got {rmax}")
    w = cell_widths(cell)
    if np.all(rmax < w / 2):
        return np.zeros(3, dtype=np.int64)
    # counted in floating point first: a degenerate cell gives counts an int64 cannot hold
    with np.errstate(divide="ignore", over="ignore"):
        mf = np.floor(rmax / w + 0.5)
        n_images = float(np.prod(2.0 * mf + 1.0))
    if not n_images <= MAX_IMAGES:
        widths = ", ".join(f"{x:.3g}" for x in w)
        raise PeriodicImageError(
            f"cell widths {widths} A are too thin for rmax {rmax:g} A: the periodic-image scan would need "
            f"{n_images:.3g} image vectors (at most {MAX_IMAGES:.0e}); lower rmax or check the cell"
        )
    return mf.astype(np.int64)


def pair_histogram(
    frac: np.ndarray,
    cells: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    same: bool,
    rmax: float,
    dr: float,
    bond_cut: float,
    hist: np.ndarray,
    bonds: np.ndarray,
    images: np.ndarray | None = None,
) -> None:
    """Accumulate the A-B histogram of ``frac`` (n, N, 3) into ``hist`` and per-frame bond counts into ``bonds``.

    ``cells`` is (n, 3, 3); ``images`` (see :func:`block_images`) is computed when not given.
    """
    nbins = len(hist)
    varies = _varies(cells)
    used_cells = cells if varies else cells[:1]
    m = block_images(cells, rmax) if images is None else images
    lib = _native.load()
    if lib is not None:  # the C kernel wraps the coordinates into [0, 1) itself, as below
        lib.pair_histogram(
            np.ascontiguousarray(frac, dtype=np.float64).reshape(-1),
            len(frac),
            frac.shape[1],
            np.ascontiguousarray(used_cells, dtype=np.float64).reshape(-1),
            int(varies),
            np.ascontiguousarray(ia, dtype=np.int64),
            len(ia),
            np.ascontiguousarray(ib, dtype=np.int64),
            len(ib),
            int(same),
            rmax,
            dr,
            nbins,
            np.ascontiguousarray(m, dtype=np.int64),
            bond_cut,
            hist,
            bonds,
            np.empty(7 * max(len(ib), 1)),
            np.empty(3 * max(len(ib), 1) + 18, dtype=np.int64),
        )
        return
    if frac.size and (frac.min() < 0.0 or frac.max() >= 1.0):
        frac = frac - np.floor(frac)  # the minimum-image wrap expects [0, 1)
    _pair_histogram_numpy(frac, cells, ia, ib, same, rmax, dr, bond_cut, m, hist, bonds)


def block_images(cells: np.ndarray, rmax: float) -> np.ndarray:
    """Image range that covers every frame of a block (the most demanding frame decides).

    Raises :class:`PeriodicImageError` (see :func:`image_range`) instead of starting an absurdly long scan.
    """
    used = cells if _varies(cells) else cells[:1]
    m = np.max(
        [_image_range_of(np.ascontiguousarray(c, dtype=np.float64).tobytes(), float(rmax)) for c in used], axis=0
    )
    n_images = float(np.prod(2.0 * m + 1.0))
    if n_images > MAX_IMAGES:  # each frame fits, but the frames together ask for more
        raise PeriodicImageError(
            f"the cells of frames in one block are too thin for rmax {rmax:g} A together: the periodic-image "
            f"scan would need {n_images:.3g} image vectors (at most {MAX_IMAGES:.0e}); lower rmax or check the cells"
        )
    return m


@functools.lru_cache(maxsize=1024)
def _image_range_of(cell: bytes, rmax: float) -> np.ndarray:
    """:func:`image_range` of a cell given as its bytes (an NVT run asks for the same cell every block)."""
    m = image_range(np.frombuffer(cell, dtype=np.float64).reshape(3, 3), rmax)
    m.flags.writeable = False
    return m


def _varies(cells: np.ndarray) -> bool:
    return len(cells) > 1 and not np.all(cells == cells[0])


def _pair_histogram_numpy(
    frac: np.ndarray,
    cells: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    same: bool,
    rmax: float,
    dr: float,
    bond_cut: float,
    m: np.ndarray,
    hist: np.ndarray,
    bonds: np.ndarray,
) -> None:
    """The same arithmetic as the C kernel, vectorised over pairs (used without a C compiler)."""
    nbins = len(hist)
    images = bool(np.any(m))
    if same:
        iu, ju = np.triu_indices(len(ia), k=0 if images else 1)
        pi, pj = ia[iu], ib[ju]
    else:
        pi, pj = np.repeat(ia, len(ib)), np.tile(ib, len(ia))
    offsets = [
        np.array((n0, n1, n2), dtype=float)
        for n0 in range(-m[0], m[0] + 1)
        for n1 in range(-m[1], m[1] + 1)
        for n2 in range(-m[2], m[2] + 1)
    ]
    # an atom with its own images: each +/- pair of offsets once, never the atom itself
    self_pair = pi == pj
    for f in range(len(frac)):
        d = frac[f, pj] - frac[f, pi]
        d -= np.rint(d)
        for off in offsets:
            lex_positive = tuple(off) > (0.0, 0.0, 0.0)
            use = ~self_pair | lex_positive
            v = (d[use] + off) @ cells[f]
            r2 = np.einsum("ij,ij->i", v, v)
            k = (np.sqrt(r2[r2 < rmax * rmax]) / dr).astype(np.int64)
            np.add.at(hist, k[k < nbins], 1)
            bonds[f] += int(np.sum(r2 < bond_cut * bond_cut))


def shell_volumes(nbins: int, dr: float) -> np.ndarray:
    edges = np.arange(nbins + 1) * dr
    return 4.0 / 3.0 * math.pi * (edges[1:] ** 3 - edges[:-1] ** 3)


def normalise(
    hist: np.ndarray, n_frames: int, n_a: int, n_b: int, same: bool, volume: float, dr: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(g, n_per_atom, cn)`` from a raw histogram (see the module docstring for the definitions)."""
    ordered = hist * (2.0 if same else 1.0)
    denom = max(n_a * n_frames, 1)
    n_per_atom = ordered / denom
    cn = np.cumsum(n_per_atom)
    rho = (n_b - 1 if same else n_b) / volume if volume > 0 else 0.0
    shell = shell_volumes(len(hist), dr)
    g = n_per_atom / (rho * shell) if rho > 0 else np.zeros_like(n_per_atom)
    return g, n_per_atom, cn


def occupied_fraction(frac: np.ndarray) -> np.ndarray:
    """Per frame, the fraction of the c axis the atoms occupy: 1 minus the largest empty gap along c.

    ``frac`` is (n_frames, natoms, 3) fractional coordinates in [0, 1] (the reader wraps them); the gap across
    the periodic boundary counts. The C kernel finds the gap from buckets along c without sorting (the same
    doubles as the sort below; see ``occupied_fractions`` in _kernels.c); coordinates outside [0, 1] are sorted.
    """
    if frac.ndim != 3 or frac.shape[2] != 3:
        raise ValueError(f"occupied_fraction: frac must be (n_frames, natoms, 3), got shape {frac.shape}")
    nframes, natoms = frac.shape[:2]
    lib = _native.load()
    if lib is not None and natoms:
        out = np.empty(nframes)
        work = (np.empty(natoms + 1), np.empty(natoms + 1))
        flat = np.ascontiguousarray(frac, dtype=np.float64).reshape(-1)
        if lib.occupied_fractions(flat, nframes, natoms, out, *work) == 0:
            return out
    z = np.sort(frac[:, :, 2], axis=1)
    gaps = np.diff(z, axis=1)
    wrap = z[:, 0] + 1.0 - z[:, -1]
    largest = np.maximum(gaps.max(axis=1, initial=0.0), wrap)
    return 1.0 - largest
