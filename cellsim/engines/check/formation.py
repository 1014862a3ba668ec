"""An engine's thermodynamics against the stored PBE phase diagram (:mod:`cellsim.references.pbe`).

Per phase: the formation energy per atom with the engine (its own relaxed crystal) minus PBE's, on the energy
scale the engine learned (raw PBE, or PBE + MP2020 anion corrections: :data:`SCALES`; meV/atom).
Per interface: the most exergonic metal + electrolyte reaction with the engine's energies beside PBE's, and
whether the signs agree. The reaction at these interfaces is decided by tens of meV/atom, so the thresholds
are tight: a formation-energy error up to 25 meV/atom is ok, up to 50 warn, beyond that fail (a typical
universal potential's error against its training DFT is 20-40 meV/atom).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.engines.check.settings import Row

if TYPE_CHECKING:
    from pymatgen.core import Structure

FORMATION_TOL = (0.025, 0.050)  # eV/atom: |engine - PBE| ok up to the first, warn up to the second
# Potentials trained on Materials Project data learned one of two energy scales: MP's corrected energies (PBE +
# MP2020 anion corrections) or the raw PBE ones, and a fit shifted onto its base model keeps the base's. Measured
# here: CHGNet 0.3.0's LiCl -2.117 eV/atom against PBE -1.852 and PBE + MP2020 -2.159 (corrected scale);
# SevenNet-0's -1.875 (raw PBE). An engine is judged on the scale it learned, read from its own numbers: the
# reference with the smaller median error over the phases (both medians are stated). Reaction energies that
# keep each anion an anion do not depend on the scale.
SCALES = {"PBE": False, "PBE + MP2020": True}


def formation_verdict(error_eV: float) -> str:
    """ok / warn / fail of a formation-energy error (eV/atom) by :data:`FORMATION_TOL`."""
    err = abs(error_eV)
    return "ok" if err <= FORMATION_TOL[0] else "warn" if err <= FORMATION_TOL[1] else "fail"


def engine_energies(
    energy_of: Callable[[str, Structure], float], elements: set[str]
) -> tuple[dict[str, float], dict[str, Any]]:
    """The engine's energy per atom of every stored PBE phase made of ``elements``, and those phases."""
    from cellsim.references import pbe

    stored = pbe.chemical_system(pbe.stored_phases(), elements)
    # one entry per formula, PBE's lowest (a published and a relaxed structure of one phase may both be stored)
    phases = {n: stored[n] for n in pbe.lowest_by_formula(stored).values()}
    return {n: float(energy_of(n, p.structure())) for n, p in phases.items()}, phases


def formation_rows(
    engine: str,
    energy_of: Callable[[str, Structure], float],
    elements: set[str],
    reactants: tuple[str, str] | None = None,
) -> list[Row]:
    """Rows of the engine check: formation energy vs PBE per phase, the worst phase, and the interface reaction.

    Parameters
    ----------
    engine
        The engine's key (first column of the rows).
    energy_of
        ``(label, structure) -> energy per atom`` of the engine's relaxed crystal (cached by the caller).
    elements
        The study's elements.
    reactants
        (electrolyte formula, metal formula): the reaction that decides the answer.
    """
    from cellsim.references import pbe

    energies, phases = engine_energies(energy_of, elements)
    if not phases or pbe.missing_corners(phases, elements):
        lacking = ", ".join(pbe.missing_corners(phases, elements)) or "any"
        return [
            Row(
                engine,
                "PBE phases",
                "formation energy vs PBE",
                None,
                None,
                "n/a",
                "",
                f"no stored PBE energy of {lacking}",
            )
        ]
    mine = pbe.formation_energies(pbe.with_energies(phases, energies))
    scale, ref, scale_row = _energy_scale(engine, mine, phases)
    rows = [scale_row, *_formation_error_rows(engine, mine, ref, scale)]
    if reactants is not None:
        rows.extend(_reaction_rows(engine, phases, energies, reactants))
    return rows


def _energy_scale(engine: str, mine: dict[str, float], phases: dict[str, Any]) -> tuple[str, dict[str, float], Row]:
    """The energy scale the engine follows (of :data:`SCALES`, the smaller median formation error), PBE's
    formation energies on it, and the row that says so."""
    from cellsim.references import pbe

    refs = {label: pbe.formation_energies(phases, mp2020=flag) for label, flag in SCALES.items()}

    def median_error(ref: dict[str, float]) -> float:
        errs = [abs(mine[n] - ref[n]) for n in ref if n in mine and abs(ref[n]) > 1e-9]
        return float(np.median(errs)) if errs else float("inf")

    medians = {label: median_error(ref) for label, ref in refs.items()}
    scale = min(medians, key=lambda k: medians[k])
    scale_note = "; ".join(f"median |error| vs {k} {1000 * v:.0f} meV/atom" for k, v in medians.items())
    row = Row(
        engine,
        "PBE phases",
        "energy scale",
        round(1000 * medians[scale], 1),
        scale,
        "n/a",
        "meV/atom",
        f"judged against {scale}, the scale its energies follow ({scale_note})",
    )
    return scale, refs[scale], row


def _formation_error_rows(engine: str, mine: dict[str, float], ref: dict[str, float], scale: str) -> list[Row]:
    """The engine's formation energy against PBE's per compound (most stable first), and the worst of them."""
    rows = []
    worst = ("", 0.0)
    for name in sorted(ref, key=lambda n: ref[n]):
        if name not in mine or abs(ref[name]) < 1e-9:  # the elements' corners are zero by definition
            continue
        err = mine[name] - ref[name]
        if abs(err) > abs(worst[1]):
            worst = (name, err)
        rows.append(
            Row(
                engine,
                name,
                "formation energy",
                round(mine[name], 4),
                round(ref[name], 4),
                formation_verdict(err),
                "eV/atom",
                f"engine - ({scale}) {1000 * err:+.0f} meV/atom",
            )
        )
    if worst[0]:
        rows.append(
            Row(
                engine,
                worst[0],
                "worst formation error",
                round(1000 * worst[1], 1),
                0.0,
                formation_verdict(worst[1]),
                "meV/atom",
                f"ok <= {1000 * FORMATION_TOL[0]:.0f}, warn <= {1000 * FORMATION_TOL[1]:.0f} meV/atom",
            )
        )
    return rows


def _reaction_rows(
    engine: str, phases: dict[str, Any], energies: dict[str, float], reactants: tuple[str, str]
) -> list[Row]:
    from cellsim.references import pbe

    ref = pbe.interface_thermo(*reactants, phases=phases)
    if "skipped" in ref:
        return [Row(engine, "+".join(reactants), "reaction vs PBE", None, None, "n/a", "", ref["skipped"])]
    mine = pbe.interface_thermo(*reactants, phases=pbe.with_energies(phases, energies))
    rows = []
    for key, what in (("closed", "interface reaction"), ("open_li", "reaction at the Li-In potential")):
        if key not in ref or key not in mine:
            continue
        r, m = ref[key], mine[key]
        agree = r["exergonic"] == m["exergonic"]
        rows.append(
            Row(
                engine,
                f"{r['metal']} + {r['electrolyte']}",
                what,
                round(m["mixing_eV_per_atom"], 4),
                round(r["mixing_eV_per_atom"], 4),
                "ok" if agree else "fail",
                "eV/atom",
                f"PBE: {r['reaction'] or 'none exergonic'}; engine: {m['reaction'] or 'none exergonic'}; "
                + ("signs agree" if agree else "the signs differ: the engine decides the reaction wrongly"),
            )
        )
    return rows
