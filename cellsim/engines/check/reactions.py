"""Balanced reactions among library phases and their energies."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
    pass
from cellsim.engines.check.references import REACTIONS

# --------------------------------------------------------------------------- reactions


def _composition(formula: str) -> dict[str, float]:
    parts = re.findall(r"([A-Z][a-z]?)(\d*\.?\d*)", formula)
    if not parts or "".join(e + n for e, n in parts) != formula:
        raise CellsimError(f"'{formula}': not a plain chemical formula")
    comp: dict[str, float] = {}
    for el, n in parts:
        comp[el] = comp.get(el, 0.0) + (float(n) if n else 1.0)
    return comp


def balance(reactants: Sequence[str], products: Sequence[str]) -> tuple[list[int], list[int]]:
    """Smallest positive integer coefficients of ``reactants -> products`` (formulas).

    The coefficients span the null space of the element-by-species matrix (products counted negative);
    a reaction with no or more than one independent balance is refused.
    """
    species = [*reactants, *products]
    comps = [_composition(s) for s in species]
    elements = sorted({e for c in comps for e in c})
    a = np.array([[c.get(e, 0.0) * (1 if i < len(reactants) else -1) for i, c in enumerate(comps)] for e in elements])
    _, sv, vt = np.linalg.svd(a)
    rank = int(np.sum(sv > 1e-9))
    if len(species) - rank != 1:
        raise CellsimError(f"{' + '.join(reactants)} -> {' + '.join(products)}: no unique balance")
    v = vt[-1]
    v = v / v[np.argmax(np.abs(v))]
    if np.any(v <= 1e-9):
        raise CellsimError(f"{' + '.join(reactants)} -> {' + '.join(products)}: cannot be balanced with these sides")
    fracs = [Fraction(float(x)).limit_denominator(60) for x in v]
    lcm = math.lcm(*(f.denominator for f in fracs))
    ints = [int(f * lcm) for f in fracs]
    g = math.gcd(*ints)
    ints = [i // g for i in ints]
    if np.abs(a @ np.array(ints, dtype=float)).max() > 1e-6:
        raise CellsimError(f"{' + '.join(reactants)} -> {' + '.join(products)}: balance failed")
    return ints[: len(reactants)], ints[len(reactants) :]


def reaction_label(reactants: Sequence[str], products: Sequence[str], coeffs: tuple[list[int], list[int]]) -> str:
    def side(names: Sequence[str], c: list[int]) -> str:
        return " + ".join(f"{k} {n}" if k != 1 else n for n, k in zip(names, c, strict=True))

    return f"{side(reactants, coeffs[0])} -> {side(products, coeffs[1])}"


def reaction_energy(
    reactants: Sequence[str],
    products: Sequence[str],
    coeffs: tuple[list[int], list[int]],
    energy_per_atom: dict[str, float],
) -> float:
    """Reaction energy per atom (eV/atom) from each phase's energy per atom."""
    atoms = {s: sum(_composition(s).values()) for s in (*reactants, *products)}
    e_r = sum(k * atoms[s] * energy_per_atom[s] for s, k in zip(reactants, coeffs[0], strict=True))
    e_p = sum(k * atoms[s] * energy_per_atom[s] for s, k in zip(products, coeffs[1], strict=True))
    n = sum(k * atoms[s] for s, k in zip(reactants, coeffs[0], strict=True))
    return (e_p - e_r) / n


def pick_reactions(
    elements: set[str], available: set[str], limit: int
) -> list[tuple[tuple[str, ...], tuple[str, ...], str | None, str]]:
    """The first ``limit`` candidate reactions among ``available`` phases made of ``elements`` only."""
    out = []
    for reac, prod, sign, why in REACTIONS:
        names = (*reac, *prod)
        els = {e for n in names for e in _composition(n)}
        if els <= elements and all(n in available for n in names):
            out.append((reac, prod, sign, why))
        if len(out) >= limit:
            break
    return out
