"""What the phase diagram expects: the most exergonic reaction between the two reactants, beside what the MD shows.

pymatgen's :class:`~pymatgen.analysis.interface_reactions.InterfacialReactivity` mixes the two reactants at
every ratio and finds the products on the convex hull. The hull is built from the energies per atom of the
reactants and the candidate products, computed by the study's own engine (relaxed crystals, cached with the
engine check's relaxations; :func:`cellsim.engines.check.relaxed_energies`), so the cross-check says what
*that* potential predicts, the same potential that ran the MD.

Elements without a pure phase among them (P, S, Cl) get a terminal entry far above every compound
(:data:`ELEMENT_OFFSET` above the highest energy per atom): pymatgen's hull needs a corner per element, and
these can never be products. The hull then holds the given compounds only; reaction energies are differences
of total energies, independent of the placeholder.
"""

from __future__ import annotations

from typing import Any

ELEMENT_OFFSET = 10.0  # eV/atom above the highest compound: a placeholder corner that is never stable


def cross_check(
    reactants: dict[str, Any],
    candidates: dict[str, Any],
    energies: dict[str, float],
    source: str,
) -> dict[str, Any]:
    """The most exergonic reaction of the first two reactants (by formula units in the run) and its products.

    Parameters
    ----------
    reactants, candidates
        pymatgen Structures by name.
    energies
        Energy per atom (eV) of every phase named in ``reactants`` and ``candidates`` that has one.
    source
        Where the energies come from (engine and model), for the record.

    Returns
    -------
    dict
        ``reaction`` (text), ``energy_eV_per_atom`` (of the reacting mixture), ``products``, ``ratio`` (the
        metal's mole fraction at the minimum), ``phases`` used and ``source``; or ``skipped`` with the reason.
    """
    from pymatgen.analysis.interface_reactions import InterfacialReactivity
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition, Element

    names = [n for n in reactants if n in energies]
    if len(names) < 2:
        return {"skipped": "needs two reactants with energies (an electrolyte and a metal)", "source": source}
    entries = []
    for name, s in {**reactants, **candidates}.items():
        if name in energies:
            comp = s.composition.reduced_composition
            entries.append(PDEntry(comp, energies[name] * comp.num_atoms, name=name))
    elements = {el for e in entries for el in e.composition.elements}
    have = {e.composition.elements[0] for e in entries if len(e.composition.elements) == 1}
    top = max(e.energy_per_atom for e in entries)
    for el in sorted(elements - have, key=str):
        corner = Composition({Element(el.symbol): 1})
        entries.append(PDEntry(corner, top + ELEMENT_OFFSET, name=f"{el.symbol} (placeholder)"))
    pd = PhaseDiagram(entries)
    c1 = reactants[names[0]].composition.reduced_composition
    c2 = reactants[names[1]].composition.reduced_composition
    ir = InterfacialReactivity(c1, c2, pd, norm=True, use_hull_energy=False)
    kinks = list(ir.get_kinks())
    inner = [k for k in kinks if 1e-9 < k[1] < 1 - 1e-9]
    # a reactant above the hull on its own (CHGNet's ordered Li6PS5Cl) shows up at an end of the mixing line:
    # reported apart, the interface reaction is the best mixture of the two
    own = [k for k in kinks if k not in inner and k[2] < -1e-6]
    best = min(inner or kinks, key=lambda k: k[2])
    _, x, energy, reaction, _ = best
    products = [str(p.reduced_formula) for p in reaction.products]
    text = str(reaction)
    try:
        from cellsim.engines.check import balance, reaction_label

        formulas = [str(c.reduced_formula) for c in reaction.reactants]
        text = reaction_label(formulas, products, balance(formulas, products))
    except Exception:
        pass
    alone = [f"{k[3]} ({k[2]:+.3f} eV/atom)" for k in own]
    # the best mixture may leave one reactant a spectator (In beside CHGNet's self-decomposing Li6PS5Cl)
    both = len(reaction.reactants) >= 2
    return {
        "reactant_decomposes": alone,
        "reactants_react": both,
        "reaction": text,
        "energy_eV_per_atom": round(float(energy), 4),
        "products": products,
        "ratio": round(float(x), 4),
        "reactants": names[:2],
        "phases": sorted(n for n in {**reactants, **candidates} if n in energies),
        "source": source,
        "exergonic": bool(both and energy < -1e-6),
    }


def _is_metal(structure: Any) -> bool:
    return all(el.is_metal for el in structure.composition.elements)


def pbe_cross_check(reactants: dict[str, Any], engine_result: dict[str, Any]) -> dict[str, Any]:
    """The phase-diagram record of a match: PBE's answer (:func:`cellsim.references.pbe.interface_thermo`) where
    the stored PBE phases cover the reactants, the engine's (:func:`cross_check`) beside it as ``engine``.

    The top-level keys (``reaction``, ``energy_eV_per_atom``, ``exergonic``, ``reactants_react``, ``source`` ...)
    are PBE's when PBE covers the pair, else the engine's, so every reader shows the reference method first.
    """
    from cellsim.references import pbe

    metals = [n for n, s in reactants.items() if _is_metal(s)]
    others = [n for n in reactants if n not in metals]
    if not metals or not others:
        return {**engine_result, "engine": engine_result, "pbe": {"skipped": "needs a metal and an electrolyte"}}
    el, metal = others[0], metals[0]
    ref = pbe.interface_thermo(reactants[el].composition.reduced_formula, reactants[metal].composition.reduced_formula)
    if "skipped" in ref:
        return {**engine_result, "engine": engine_result, "pbe": ref}
    closed = ref["closed"]
    decomposes = (
        [
            f"{el} -> {' + '.join(ref['electrolyte_decomposes_to'])} "
            f"({ref['electrolyte_e_above_hull_eV_per_atom']:+.3f} eV/atom above the PBE hull)"
        ]
        if ref["electrolyte_decomposes_to"]
        else []
    )
    return {
        "reaction": closed["reaction"] or f"{metal} + {el}: no reaction",
        "energy_eV_per_atom": closed["energy_eV_per_atom"],
        "products": closed["products"],
        "metal_fraction": closed["metal_fraction"],
        "mixing_eV_per_atom": closed["mixing_eV_per_atom"],
        "reactants": [el, metal],
        "reactants_react": bool(closed["exergonic"]),
        "exergonic": bool(closed["exergonic"]),
        "reactant_decomposes": decomposes,
        "phases": ref["phases"],
        "source": pbe.SOURCE,
        "sentence": ref["sentence"],
        "pbe": ref,
        "engine": engine_result,
        # every offline engine's value of the same reactions, where stored (data/pbe/engine_thermo.py)
        "engines": pbe.stored_engine_reactions(el, metal),
    }


def engine_energies_check(engine: str, compute: bool) -> Any:
    """A ``thermo`` callable for :func:`cellsim.products.match.match_analysis`: the stored PBE phase diagram
    (:func:`pbe_cross_check`) with the energies of ``engine`` (cached, or computed when ``compute``) beside it."""

    def run(reactants: dict[str, Any], candidates: dict[str, Any]) -> dict[str, Any]:
        try:
            mine = _run(reactants, candidates)
        except Exception as exc:
            mine = {"skipped": f"not computed ({type(exc).__name__}: {exc})"[:300], "source": engine}
        try:
            return pbe_cross_check(reactants, mine)
        except Exception as exc:  # the engine's record stands alone; say why PBE is missing
            return {**mine, "engine": mine, "pbe": {"skipped": f"{type(exc).__name__}: {exc}"[:300]}}

    def _run(reactants: dict[str, Any], candidates: dict[str, Any]) -> dict[str, Any]:
        from pymatgen.core import Composition

        from cellsim.engines.check import relaxed_energies
        from cellsim.engines.registry import select
        from cellsim.references.library import library

        model = select([engine])[0]
        # every library compound of the reactants' elements, not only the matched candidates: the hull must
        # hold whatever the reactants could become (Li3P and LiCl for Li on Li6PS5Cl even when no Li-P was analysed)
        elements = {el.symbol for s in reactants.values() for el in s.composition}
        pool = dict(candidates)
        from cellsim.references import pbe

        # the stored PBE phases too: the engine's column then holds the same phases as PBE's
        for name, ph in pbe.chemical_system(pbe.stored_phases(), set(elements)).items():
            if name not in reactants and name not in pool and not ph.molecule:
                pool[name] = ph.structure()
        for name, phase in library().items():
            if name in reactants or name in pool:
                continue
            try:
                comp = Composition(name)
            except ValueError:
                continue
            if {el.symbol for el in comp} <= elements:
                pool[name] = phase.structure()
        phases = {**reactants, **pool}
        energies, missing = relaxed_energies(engine, phases, cached_only=not compute)
        source = f"{model.key} energies of the relaxed crystals"
        if missing:  # a hull without some of the phases could name the wrong products: none at all
            return {
                "skipped": f"energies of {', '.join(missing)} not computed yet; `cellsim match --thermo` relaxes "
                f"them with {engine} (about a minute, cached)",
                "missing": missing,
                "source": source,
            }
        return cross_check(reactants, pool, energies, source)

    return run


def _engine_line(eng: dict[str, Any]) -> str:
    if eng.get("skipped"):
        return f"engine ({eng.get('source', '?')}): {eng['skipped']}"
    if eng.get("reactants_react") is False or not eng.get("exergonic"):
        return f"engine ({eng['source']}): no exergonic reaction between {' and '.join(eng['reactants'])}"
    return f"engine ({eng['source']}): {eng['reaction']}, {eng['energy_eV_per_atom']:+.3f} eV/atom"


def thermo_lines(th: dict[str, Any]) -> list[str]:
    """The phase-diagram evidence as sentences: PBE's answer first (closed, at the Li-In potential, MP2020),
    the engine's beside it. Empty when nothing was computed."""
    if not th:
        return []
    ref = th.get("pbe") or {}
    eng = th.get("engine") or {}
    lines = []
    if ref.get("closed"):
        text = ref["sentence"]  # it states the electrolyte's own decomposition where there is one
        text += (
            "; MP2020 anion corrections change a sign"
            if ref.get("mp2020_changes_sign")
            else "; MP2020 anion corrections change no sign"
        )
        lines.append(text)
    elif ref.get("skipped"):
        lines.append(f"PBE: {ref['skipped']}")
    if eng:
        lines.append(_engine_line(eng))
    stored = th.get("engines") or []
    if stored:
        per = [
            f"{r['engine']} {1000 * r['engine_eV_per_atom']:+.0f} meV/atom"
            + ("" if r["verdict"] == "ok" else " (sign differs from PBE)")
            for r in stored
            if r["quantity"] == "interface reaction" and r["engine_eV_per_atom"] is not None
        ]
        if per:
            lines.append(
                "the most exergonic reaction with each engine's energies (0 = none exergonic; PBE "
                f"{1000 * stored[0]['pbe_eV_per_atom']:+.0f} meV/atom): {'; '.join(per)}"
            )
    elif not ref and (th.get("reaction") or th.get("skipped")):  # a record written before PBE was stored
        lines.append(_engine_line(th))
    return lines
