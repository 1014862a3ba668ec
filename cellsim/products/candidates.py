"""Candidate products: the offline library, the Materials Project (with a key), or phases the user names;
the pool a run is matched against holds only the elements of its new pairs and its reactants."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from cellsim.config.study import MatchSpec
    from cellsim.references.reactants import Reactants


@dataclass
class Candidate:
    """A crystal a run's products are compared with."""

    name: str
    formula: str
    spacegroup: str
    source: str
    structure: Structure
    elements: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, name: str, formula: str, spacegroup: str, source: str, structure: Structure) -> Candidate:
        """A candidate with the elements of its structure."""
        return cls(name, formula, spacegroup, source, structure, frozenset(el.symbol for el in structure.composition))


def _library_candidates() -> list[Candidate]:
    from cellsim.references.library import library

    out = []
    for p in library().values():
        s = p.structure()
        mp = f", {p.mp_id}" if p.mp_id else ""
        out.append(Candidate.of(p.name, s.composition.reduced_formula, p.spacegroup, f"library:{p.key}{mp}", s))
    return out


def mp_key_set() -> bool:
    import os

    return bool(os.environ.get("MP_API_KEY"))


def _mp_candidates(spec: MatchSpec, elements: set[str], notes: list[str]) -> list[Candidate]:
    from cellsim.references import mp

    if not spec.use_mp:
        return []
    try:
        mp.fetch("-".join(sorted(elements)), spec.energy_above_hull)
    except mp.MPUnavailable as exc:
        notes.append(f"Materials Project not used ({exc}); offline library and MP cache only")
    out = []
    for p in mp.cached():
        if p.energy_above_hull > spec.energy_above_hull:
            continue
        s = p.structure()
        source = f"MP:{p.material_id} (E_hull {p.energy_above_hull:.3f} eV/atom)"
        out.append(Candidate.of(p.name, p.formula, p.spacegroup, source, s))
    return out


def named_candidates(names: list[str], base_dir: Path | None = None) -> list[Candidate]:
    """Candidates named by the user: library names or structure files (relative to ``base_dir``)."""
    from cellsim.references.library import get_phase, resolve_phase

    out = []
    for n in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            label, s = resolve_phase(n, base_dir, "match.candidates")
        phase = get_phase(n)
        source = (
            f"library:{phase.key}" + (f", {phase.mp_id}" if phase and phase.mp_id else "") if phase else f"file:{n}"
        )
        sg = phase.spacegroup if phase else s.get_space_group_info(symprec=0.1)[0]
        out.append(Candidate.of(label, s.composition.reduced_formula, sg, source, s))
    return out


def _unique(cands: list[Candidate]) -> list[Candidate]:
    seen, out = set(), []
    for c in cands:
        if c.name not in seen:
            seen.add(c.name)
            out.append(c)
    return out


def candidate_pool(
    spec: MatchSpec,
    reactants: Reactants,
    react_structs: dict[str, Structure],
    new_pairs: list[str],
    pairs: list[str],
    run_elements: set[str],
    base_dir: Path | None,
    notes: list[str],
) -> list[Candidate]:
    """The study's ``match.candidates``, else every library (and MP) phase that holds a pair that changed (any
    analysed pair when none did) and no element beyond the new pairs' and the reactants' (the run's when the
    reactants are unknown), the reactants themselves left out."""
    if spec.candidates is not None:
        return named_candidates(spec.candidates, base_dir)
    new_elements = {el for p in new_pairs for el in p.split("-")}
    allowed = set(new_elements)
    for s in react_structs.values():
        allowed |= {el.symbol for el in s.composition}
    if not react_structs:
        allowed |= run_elements
    pool = _library_candidates() + _mp_candidates(spec, new_elements, notes)
    wanted = new_pairs or pairs
    return _unique(
        [
            c
            for c in pool
            if c.elements <= allowed
            and any(set(p.split("-")) <= c.elements for p in wanted)
            and c.name not in reactants.phases
        ]
    )


def uncovered_pairs(
    pairs: dict[str, dict[str, Any]], candidates: list[Candidate], spec: MatchSpec, notes: list[str]
) -> None:
    """Mark the pairs that changed (or could: interfacial) but no candidate holds: never "not seen" for phases
    nobody looked for. Each pair's ``candidates`` lists those that hold it."""
    for pair, info in pairs.items():
        holding = [c.name for c in candidates if set(pair.split("-")) <= c.elements]
        info["candidates"] = holding
        if not holding and (info["has_new"] or info["kind"] == "interfacial pair"):
            info["no_candidates"] = (
                f"no candidate phase holds {pair} (offline library"
                + (", Materials Project" if spec.use_mp and mp_key_set() else "")
                + "): nothing was looked for; set MP_API_KEY (`cellsim refs fetch "
                + "-".join(sorted(set(pair.split("-"))))
                + "`) or give candidate structures (`--candidate FILE.cif`, `match.candidates`)"
            )
            notes.append(info["no_candidates"])
