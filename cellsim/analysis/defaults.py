"""What to analyse when nobody said: the metal electrode, the element pairs and their bond cutoffs, all derived
from the system's own elements (and its first frame), never copied from another study.

Rules (docs/analysis.md states them for users)
----------------------------------------------
* **Metal electrode** (:func:`guess_metal`): an element with metallic character (pymatgen
  ``Element.is_metal``: alkali, alkaline-earth, transition, post-transition metals, lanthanoids, actinoids;
  not H, not the metalloids B, Si, Ge, As, Sb, Te). Alkali metals are left out when they sit next to anions:
  Li of a Li electrolyte cannot be told from a Li anode by symbols, so that case stays unresolved (a study
  names its metal). Several candidate metals (La and Zr of LLZO next to Pt, Sn of Li10SnP2S12 next to In) are
  told apart with the first frame: the electrode is the metal whose atoms have no anion within the bond
  cutoff; when that still leaves several (an alloy) or none, the metal is unknown. Atom counts never decide.
* **Pairs** (:func:`default_pairs`), in this order, each once:

  1. metal-anion: every electrode element with every anion of the electrolyte (O, S, Se, Te, F, Cl, Br, I,
     N): sulfides, halides, oxides, nitrides forming at the interface (Cu-S, Cu-Cl);
  2. metal-other non-metal: the electrode with the electrolyte's other non-metals (P, Ge, Si, B, C, H, ...):
     phosphides, germanides, silicides, hydrides (Cu-P, Pt-H);
  3. framework: each non-alkali cation of the electrolyte (P, Ge, Si, Zr, La, H, ...) with each anion it is
     bonded to in the first frame (at least half of its atoms have one within the cutoff): P-S, Ge-S, Zr-O,
     H-O; never a pair the electrolyte does not hold (P-Cl in Li6PS5Cl);
  4. alkali-anion: Li, Na, K, Rb, Cs of the electrolyte with its anions (Li-S, Li-Cl: Li2S, LiCl).

* **Bonded** (framework pairs, electrode atoms): closer than 1.2 x the sum of the two covalent radii
  (:func:`covalent_cutoff`; Cordero et al. 2008, ASE's ``covalent_radii``; pymatgen's ``CovalentBondNN``).
* **Bond cutoffs** of pairs nobody gave one for: :func:`cellsim.analysis.analyze.default_cutoff`, with where
  each comes from (:func:`rule_cutoff`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# chalcogens, halogens and nitrogen: the anions of solid electrolytes (sulfides, oxides, halides, nitrides)
ANIONS = ("O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N")
ALKALI = frozenset({"Li", "Na", "K", "Rb", "Cs"})
# a framework pair is bonded in the electrolyte: at least this share of the centre atoms have such a neighbour
FRAMEWORK_BONDED_SHARE = 0.5
# an electrode atom has no anion neighbour; a cation of the electrolyte does (allowing a few interface atoms)
ELECTRODE_MAX_ANION_SHARE = 0.5


def covalent_cutoff(pair: str) -> float:
    """1.2 x (r_cov(A) + r_cov(B)), covalent radii of ASE (Cordero 2008), A: pymatgen's ``CovalentBondNN``
    tolerance. Used here to tell whether two elements are bonded in a frame."""
    from cellsim.core.elements import covalent_radius

    a, b = pair.split("-")
    return round(1.2 * float(covalent_radius(a) + covalent_radius(b)), 3)


def rule_cutoff(pair: str) -> tuple[float, str]:
    """The analysis' bond cutoff of a pair nobody gave one for (:func:`cellsim.analysis.analyze.default_cutoff`)
    and where it comes from: ``"reference first sphere"`` or ``"covalent radii"``."""
    value = default_cutoff(pair)
    return value, "covalent radii" if abs(value - covalent_cutoff(pair)) < 1e-6 else "reference first sphere"


def is_metal(symbol: str) -> bool:
    """Metallic character by pymatgen (``Element.is_metal``); metalloids and H are not metals."""
    from cellsim.core.elements import is_metal as metallic

    return metallic(symbol)


def _ordered(symbols: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(symbols))


def metal_candidates(symbols: Sequence[str]) -> list[str]:
    """Elements that may be the electrode, in order of appearance (see the module docstring)."""
    elements = _ordered(symbols)
    anions = [e for e in elements if e in ANIONS]
    metals = [e for e in elements if is_metal(e)]
    if anions:
        # next to anions an alkali metal is the electrolyte's cation as far as symbols tell
        metals = [e for e in metals if e not in ALKALI]
    return metals


def _anion_share(symbols: np.ndarray, frac: np.ndarray, cell: np.ndarray, element: str) -> float:
    """Share of ``element``'s atoms with an anion within the radius cutoff (periodic, every image)."""
    from cellsim.analysis.neighbours import with_neighbour

    anions = sorted({str(e) for e in symbols} & set(ANIONS))
    idx = np.flatnonzero(symbols == element)
    if not anions or not len(idx):
        return 0.0
    cutoffs = {x: covalent_cutoff(f"{element}-{x}") for x in anions}
    return float(len(with_neighbour(symbols, frac, cell, element, cutoffs)) / len(idx))


def guess_metal(symbols: Sequence[str], frac: np.ndarray | None = None, cell: np.ndarray | None = None) -> str | None:
    """The metal electrode's element by metallic character (never by atom count), or None when unclear.

    Parameters
    ----------
    symbols
        Per-atom (or per-element) symbols.
    frac, cell
        A frame (fractional positions, (N, 3); cell rows, (3, 3)) of the same atoms as per-atom ``symbols``:
        tells the electrode apart from metal cations of the electrolyte when there are several candidates.
    """
    elements = _ordered(symbols)
    if len(elements) == 1:
        return elements[0]
    cands = metal_candidates(symbols)
    if len(cands) == 1:
        return cands[0]
    if len(cands) < 2 or frac is None or cell is None or len(symbols) != len(frac):
        return None
    sym = np.asarray(list(symbols))
    bare = [e for e in cands if _anion_share(sym, np.asarray(frac), np.asarray(cell), e) < ELECTRODE_MAX_ANION_SHARE]
    return bare[0] if len(bare) == 1 else None


def phase_metals(elements: Sequence[str]) -> list[str]:
    """The electrode elements of a metal phase's composition: all of them, non-alkali ones first (LiIn: In, Li)."""
    els = _ordered(elements)
    return sorted(els, key=lambda e: (e in ALKALI, els.index(e)))


def phase_metal(elements: Sequence[str]) -> str | None:
    """The one element that stands for a metal phase in the diagnostics: a pure metal's element, else its only
    non-alkali metal (LiIn -> In), else None."""
    els = _ordered(elements)
    if len(els) == 1:
        return els[0]
    heavy = [e for e in els if is_metal(e) and e not in ALKALI]
    return heavy[0] if len(heavy) == 1 else None


@dataclass
class PairChoice:
    """Pairs chosen by :func:`default_pairs`, by rule, with the metal they were built around."""

    pairs: list[str]
    metal: list[str]
    metal_source: str
    groups: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "metal": self.metal, "metal_source": self.metal_source, "groups": self.groups}


def default_pairs(
    species: Sequence[str],
    metal: Sequence[str] | None = None,
    frame: tuple[np.ndarray, np.ndarray] | None = None,
    electrolyte: Sequence[str] | None = None,
    metal_source: str = "",
) -> PairChoice:
    """The pairs a trajectory with ``species`` is analysed for when nobody listed them (module docstring).

    Parameters
    ----------
    species
        Per-atom symbols (per-element symbols suffice without ``frame``).
    metal
        The electrode's elements (a study's metal phase); None: :func:`guess_metal`.
    frame
        ``(frac, cell)`` of the first frame: framework pairs are those bonded in it (without: every
        centre-anion pair).
    electrolyte
        The electrolyte's elements (a study's electrolyte phase); None: every element outside the metal.
    metal_source
        How ``metal`` was found, for the record.
    """
    elements = _ordered(species)
    frac, cell = frame if frame is not None else (None, None)
    if metal is None:
        guessed = guess_metal(species, frac, cell)
        metal_els = [guessed] if guessed else []
        metal_source = "by metallic character" if guessed else "none found"
    else:
        metal_els = [e for e in phase_metals(metal) if e in elements]
        metal_source = metal_source or "given"
    if electrolyte is None:
        elec = [e for e in elements if e not in metal_els]
    else:
        elec = [e for e in elements if e in set(electrolyte)]
    anions = [e for e in elec if e in ANIONS]
    others = [e for e in elec if e not in ANIONS and not is_metal(e)]
    centres = [e for e in elec if e not in ANIONS and e not in ALKALI and e not in metal_els]
    groups: dict[str, list[str]] = {
        "metal-anion": [f"{m}-{x}" for m in metal_els for x in anions if m != x],
        "metal-non-metal": [f"{m}-{x}" for m in metal_els for x in others if m != x],
        "framework": [f"{c}-{x}" for c in centres for x in anions if _bonded(species, frame, c, x)],
        "alkali-anion": [f"{a}-{x}" for a in elec if a in ALKALI for x in anions],
    }
    pairs: list[str] = []
    for name, members in groups.items():
        kept = [p for p in members if p not in pairs and "-".join(reversed(p.split("-"))) not in pairs]
        groups[name] = kept
        pairs.extend(kept)
    return PairChoice(pairs, metal_els, metal_source, groups)


def _bonded(species: Sequence[str], frame: tuple[np.ndarray, np.ndarray] | None, centre: str, anion: str) -> bool:
    """Whether ``centre`` is bonded to ``anion`` in ``frame`` (at least half of its atoms); True without one."""
    if frame is None or len(species) != len(frame[0]):
        return True
    from cellsim.analysis.neighbours import with_neighbour

    sym = np.asarray(list(species))
    idx = np.flatnonzero(sym == centre)
    if not len(idx):
        return False
    frac = np.asarray(frame[0]) - np.floor(frame[0])
    with_anion = with_neighbour(sym, frac, np.asarray(frame[1]), centre, {anion: covalent_cutoff(f"{centre}-{anion}")})
    return len(with_anion) >= FRAMEWORK_BONDED_SHARE * len(idx)


def default_cutoff(pair: str) -> float:
    """Bond cutoff of a pair the study does not list, A: the reference phases' first coordination sphere.

    When a phase of the offline library bonds A to B (its shortest A-B distance is within 1.3 x the sum of
    covalent radii): 1.1 x the longest A-B distance of its first sphere (the shortest distance and every next
    one up to a gap of more than 0.4 A, within 1.3 x the shortest), largest over such phases: InCl's 2.92 and
    3.17 A shells -> 3.49 A, PS4's 2.07 A -> 2.28 A. A pair no library phase bonds: 1.2 x the sum of covalent
    radii (ASE's table; pymatgen's CovalentBondNN tolerance). Covalent radii alone cut ionic first spheres
    short (In-Cl 2.93 A would miss InCl's 3.17 A shell) and stretch covalent ones (P-S 2.54 A would keep a
    breaking PS4 bond). The per-pair distances are computed once from the CIFs and stored
    (:func:`cellsim.references.library.first_spheres`).
    """
    from cellsim.core.elements import covalent_radius
    from cellsim.references.library import first_spheres

    a, b = sorted(pair.split("-"))
    sphere = first_spheres().get(f"{a}-{b}")
    if sphere is not None:
        return round(1.1 * sphere, 2)
    return round(1.2 * float(covalent_radius(a) + covalent_radius(b)), 3)
