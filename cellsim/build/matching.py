"""Lattice matching of two surface lattices with pymatgen's Zur-McGill (ZSL) search.

pymatgen's ``ZSLGenerator`` finds pairs of super-lattices of nearly equal area, lengths and angle. It
compares the unsigned angle, so a pair it returns can map one lattice onto the *mirror image* of the
other. Here every match is re-expressed with right-handed bases on both sides (a super-lattice has many
bases; the one with the smallest strain is kept) so the strained slab is only stretched and rotated,
never mirrored. The strain is that of the polar decomposition F = R U of the 2D map F taking the strained
super-cell onto the fixed one: principal strains are the eigenvalues of U minus one.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np


@functools.cache
def _zsl_module() -> ModuleType:
    """pymatgen's ``zsl`` module, loaded without its package ``__init__``.

    ``import pymatgen.analysis.interfaces`` pulls in coherent_interfaces -> core.interface -> local_env:
    3.3 s of a 6.9 s build measured here (cProfile), none of which lattice matching uses. The module file
    itself only needs numpy and monty.
    """
    import pymatgen.analysis

    name = "cellsim._pymatgen_zsl"
    path = Path(pymatgen.analysis.__path__[0]) / "interfaces" / "zsl.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # only while it executes: its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@dataclass(frozen=True)
class LatticeMatch:
    """A coincidence super-cell of a fixed (host) and a strained (guest) surface lattice.

    ``host_T`` and ``guest_T`` are integer 2x2 matrices whose rows give the super-cell vectors in
    units of each template's in-plane vectors (both right-handed).
    """

    host_T: np.ndarray
    guest_T: np.ndarray
    host_vectors: np.ndarray
    guest_vectors: np.ndarray
    principal_strains: tuple[float, float]
    rotation_deg: float

    @property
    def area(self) -> float:
        return float(abs(np.linalg.det(self.host_vectors)))

    @property
    def max_strain(self) -> float:
        return float(max(abs(s) for s in self.principal_strains))

    @property
    def area_strain(self) -> float:
        return float(abs(np.linalg.det(self.host_vectors)) / abs(np.linalg.det(self.guest_vectors)) - 1.0)

    @property
    def lengths(self) -> tuple[float, float]:
        a, b = np.linalg.norm(self.host_vectors, axis=1)
        return float(a), float(b)

    @property
    def gamma_deg(self) -> float:
        a, b = self.host_vectors
        return float(np.degrees(np.arccos(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))))

    @property
    def shape_penalty(self) -> float:
        """0 for a square cell; grows with elongation and skew (prefer compact lateral cells)."""
        a, b = self.lengths
        return max(a, b) / min(a, b) - 1.0 + abs(np.cos(np.radians(self.gamma_deg)))


def strain_of(guest: np.ndarray, host: np.ndarray) -> tuple[tuple[float, float], float, float]:
    """Principal strains, rotation (deg) and det of the map F with F @ guest_i = host_i (rows = vectors)."""
    F = host.T @ np.linalg.inv(guest.T)
    det = float(np.linalg.det(F))
    # polar decomposition via SVD: F = W S V^T, R = W V^T, U = V S V^T
    W, S, Vt = np.linalg.svd(F)
    R = W @ Vt
    strains = (float(S[0] - 1.0), float(S[1] - 1.0))
    rot = float(np.degrees(np.arctan2(R[1, 0], R[0, 0])))
    return strains, rot, det


def _bases(T: np.ndarray) -> list[np.ndarray]:
    """Right-handed bases of the same super-lattice (sign changes and swaps of the two rows)."""
    out = []
    for swap, s0, s1 in itertools.product((False, True), (1, -1), (1, -1)):
        rows = (T[1], T[0]) if swap else (T[0], T[1])
        B = np.array([s0 * rows[0], s1 * rows[1]])
        if np.linalg.det(B) > 0:
            out.append(B)
    return out


def find_matches(
    host_inplane: np.ndarray,
    guest_inplane: np.ndarray,
    max_strain: float,
    max_area: float,
) -> list[LatticeMatch]:
    """All proper coincidence super-cells with principal strains within ``max_strain``.

    Parameters
    ----------
    host_inplane, guest_inplane
        (2, 2) right-handed in-plane lattice vectors (rows) of the unstrained and strained slab.
    max_strain
        Largest allowed principal strain of the guest (fraction).
    max_area
        Largest super-cell area searched, A^2.
    """
    zsl = _zsl_module().ZSLGenerator(
        max_area_ratio_tol=2 * max_strain + max_strain**2,
        max_area=max_area,
        max_length_tol=max_strain,
        max_angle_tol=max_strain,
    )
    to3 = lambda v: np.column_stack([v, np.zeros(2)])  # noqa: E731
    g_inv = np.linalg.inv(guest_inplane)
    h_inv = np.linalg.inv(host_inplane)
    seen: set[tuple[int, ...]] = set()
    matches = []
    for m in zsl(to3(guest_inplane), to3(host_inplane)):
        g_sl = np.asarray(m.film_sl_vectors, dtype=float)[:, :2]
        h_sl = np.asarray(m.substrate_sl_vectors, dtype=float)[:, :2]
        Tg = np.rint(g_sl @ g_inv).astype(int)
        Th = np.rint(h_sl @ h_inv).astype(int)
        if np.linalg.det(Th) < 0:
            Th = np.array([Th[0], -Th[1]])
        best = None
        for Bg in _bases(Tg):
            gv = Bg @ guest_inplane
            hv = Th @ host_inplane
            strains, rot, _ = strain_of(gv, hv)
            cand = LatticeMatch(Th, Bg, hv, gv, strains, rot)
            if best is None or cand.max_strain < best.max_strain:
                best = cand
        if best is None or best.max_strain > max_strain + 1e-9:
            continue
        key = (*best.host_T.ravel(), *best.guest_T.ravel())
        if key in seen:
            continue
        seen.add(key)
        matches.append(best)
    matches.sort(key=lambda x: (round(x.area, 1), round(x.shape_penalty, 3), x.max_strain))
    return matches


def best_strain_any(host_inplane: np.ndarray, guest_inplane: np.ndarray, max_area: float) -> float | None:
    """Smallest strain reachable within ``max_area`` under a loose 15 % search (for error messages)."""
    matches = find_matches(host_inplane, guest_inplane, 0.15, max_area)
    return min((m.max_strain for m in matches), default=None)
