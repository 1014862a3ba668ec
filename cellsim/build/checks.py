"""Geometry checks on a built model: closest pair, intact bonded units, stoichiometry, atomic planes."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pymatgen.core import Structure


def closest_pair(structure: Structure, search: float = 5.0, between: np.ndarray | None = None) -> dict[str, Any] | None:
    """The closest pair of atoms under periodic boundaries (indices, species, distance), or None.

    ``between``: optional boolean mask; only pairs with one atom inside and one outside count.
    """
    i, j, _, d = structure.get_neighbor_list(search)
    if between is not None:
        keep = between[i] != between[j]
        i, j, d = i[keep], j[keep], d[keep]
    if len(d) == 0:
        return None
    k = int(np.argmin(d))
    a, b = int(i[k]), int(j[k])
    return {
        "i": a,
        "j": b,
        "species": [structure[a].specie.symbol, structure[b].specie.symbol],
        "distance": round(float(d[k]), 4),
    }


def coordination(structure: Structure, centre: str, ligand: str, cutoff: float) -> np.ndarray:
    """Number of ``ligand`` atoms within ``cutoff`` of each ``centre`` atom (periodic)."""
    symbols = np.array([s.specie.symbol for s in structure])
    centres = np.flatnonzero(symbols == centre)
    counts = np.zeros(len(structure), dtype=int)
    if len(centres) == 0:
        return counts[centres]
    i, j, _, _ = structure.get_neighbor_list(cutoff)
    sel = (symbols[i] == centre) & (symbols[j] == ligand) & (i != j)
    np.add.at(counts, i[sel], 1)
    return counts[centres]


def bonded_units(
    structure: Structure, bulk: Structure, bonds: dict[tuple[str, str], float], indices: list[int]
) -> dict[str, Any]:
    """Check that each bonded unit (e.g. PS4) in ``structure[indices]`` has its bulk coordination.

    Returns, per bond ``A-B``: the bulk coordination, number of A centres, how many are whole, and the
    indices (in ``structure``) of the broken ones.
    """
    sub = structure.copy()
    sub.remove_sites([k for k in range(len(structure)) if k not in set(indices)])
    out: dict[str, Any] = {}
    for (a, b), cutoff in bonds.items():
        bulk_cn = coordination(bulk, a, b, cutoff)
        if len(bulk_cn) == 0:
            continue
        expected = int(np.bincount(bulk_cn).argmax())
        cn = coordination(sub, a, b, cutoff)
        centre_idx = [indices[k] for k, s in enumerate(sub) if s.specie.symbol == a]
        broken = [int(idx) for idx, c in zip(centre_idx, cn, strict=True) if c != expected]
        out[f"{a}-{b}"] = {
            "cutoff": cutoff,
            "bulk_coordination": expected,
            "centres": len(cn),
            "whole": int(np.sum(cn == expected)),
            "broken_indices": broken,
            "intact": not broken,
        }
    return out


def stoichiometry(symbols: list[str], bulk: Structure) -> dict[str, Any]:
    """Formula units of ``bulk`` in ``symbols`` and the deviation of each element from that ratio."""
    from pymatgen.core import Composition

    comp = Composition(dict(zip(*np.unique(symbols, return_counts=True), strict=True)))
    ref = bulk.composition.reduced_composition
    units = min(comp[el] / ref[el] for el in ref)
    deviation = {str(el): round(float(comp[el] - units * ref[el]), 6) for el in set(comp) | set(ref)}
    extra = [str(el) for el in comp if el not in ref]
    return {
        "formula": comp.formula.replace(" ", ""),
        "bulk_formula": ref.formula.replace(" ", ""),
        "formula_units": round(float(units), 6),
        "deviation_atoms": deviation,
        "stoichiometric": all(abs(v) < 1e-6 for v in deviation.values()) and not extra,
    }


def atomic_planes(z: np.ndarray, tol: float = 0.5) -> list[np.ndarray]:
    """Group indices of ``z`` into planes (a gap larger than ``tol`` starts a new plane), lowest first."""
    order = np.argsort(z)
    planes: list[list[int]] = [[int(order[0])]] if len(order) else []
    for prev, cur in itertools.pairwise(order):
        if z[cur] - z[prev] > tol:
            planes.append([])
        planes[-1].append(int(cur))
    return [np.array(p) for p in planes]
