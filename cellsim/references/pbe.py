"""The PBE phase diagram of Li-P-S-Cl-In computed by this project, and what it says about an interface.

The energies are the stored plane-wave PBE single points of ``data/pbe/phases_pw`` (GPAW, PAW, 450 eV; one
job folder per phase with its inputs, structure, forces and stress; how they were made and converged:
data/pbe/README.md). From them pymatgen builds the hull (:class:`~pymatgen.analysis.phase_diagram.PhaseDiagram`)
and mixes two reactants at every ratio (:class:`~pymatgen.analysis.interface_reactions.InterfacialReactivity`);
at a fixed Li chemical potential (the Li-In alloy's, an open-Li electrode) the same on the grand potential
(:class:`~pymatgen.analysis.interface_reactions.GrandPotentialInterfacialReactivity`).

Why not only the engine's energies (:mod:`cellsim.products.thermo`): a potential checked against its own
phase diagram cannot be wrong there. The driving force at this interface is tens of meV/atom, the size of a
potential's errors; the sign needs the reference method. The engine's numbers stay beside PBE's as a second
column, so a reader sees where they agree.

MP2020 anion corrections (Materials Project's fitted shifts for sulfides and chlorides, fitted to
experimental formation enthalpies of VASP PBE energies) are applied by pymatgen's own
:class:`~pymatgen.entries.compatibility.MaterialsProject2020Compatibility` as a second reading, to say whether
they change a sign; they were fitted to VASP, not GPAW, energies, so the uncorrected hull is the primary one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pymatgen.analysis.phase_diagram import PhaseDiagram
    from pymatgen.entries.computed_entries import ComputedStructureEntry

SOURCE = "PBE (plane waves, GPAW, computed by cellsim: data/pbe/phases_pw)"
EV_A3_TO_GPA = 160.21766
# Li-In alloy electrode: the two-phase In + LiIn equilibrium fixes the Li chemical potential
LI_IN_ALLOY = ("LiIn", "In")


@dataclass(frozen=True)
class PbePhase:
    """One stored PBE phase: total energy per atom and how far its structure is from PBE's minimum."""

    name: str
    formula: str
    natoms: int
    energy_per_atom: float
    max_force: float
    pressure_GPa: float
    kpts: tuple[int, ...]
    molecule: bool
    job: Path

    def structure(self) -> Any:
        """The structure the energy belongs to (pymatgen Structure)."""
        from ase.io import read
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_structure(read(self.job / "structure.json", index=0))  # type: ignore[arg-type]


def default_root() -> Path | None:
    """``data/pbe/phases_pw`` of this checkout (``$CELLSIM_PBE_PHASES`` overrides), or None when absent."""
    env = os.environ.get("CELLSIM_PBE_PHASES")
    if env:
        return Path(env)
    from cellsim.core.resources import shipped_dir

    try:
        root = shipped_dir("data") / "pbe" / "phases_pw"
    except FileNotFoundError:
        return None
    return root if (root / "index.json").is_file() else None


@cache
def _load(root: Path) -> dict[str, PbePhase]:
    index = json.loads((root / "index.json").read_text())
    out: dict[str, PbePhase] = {}
    for name, folder in index.items():
        path = root / "jobs" / folder / "result.json"
        if not path.is_file():
            continue
        d = json.loads(path.read_text())
        forces = np.asarray(d["forces_eV_A"], dtype=float)
        stress = np.asarray(d.get("stress_eV_A3") or np.zeros((3, 3)), dtype=float)
        kpts = tuple(int(k) for k in d.get("kpoints") or d["settings"]["kpts"])
        out[name] = PbePhase(
            name=name,
            formula=str(d["formula"]),
            natoms=int(d["natoms"]),
            energy_per_atom=float(d["energy_eV"]) / int(d["natoms"]),
            max_force=float(np.linalg.norm(forces, axis=1).max()),
            # pressure = -trace(stress)/3 (ASE's stress sign: positive is tensile)
            pressure_GPa=float(-np.trace(stress) / 3 * EV_A3_TO_GPA),
            kpts=kpts,
            molecule=kpts == (1, 1, 1) and name in ("Cl2", "S8", "P4S10"),
            job=path.parent,
        )
    return out


def stored_phases(root: str | os.PathLike[str] | None = None) -> dict[str, PbePhase]:
    """The finished PBE phases by name (empty when this install has none)."""
    where = Path(root) if root is not None else default_root()
    if where is None or not (where / "index.json").is_file():
        return {}
    return dict(_load(where.resolve()))


def with_energies(phases: dict[str, PbePhase], energies: dict[str, float]) -> dict[str, PbePhase]:
    """The same phases with other energies per atom (an engine's), for the same hull and reactions; phases
    without one are left out."""
    from dataclasses import replace

    return {n: replace(p, energy_per_atom=float(energies[n])) for n, p in phases.items() if n in energies}


def chemical_system(phases: dict[str, PbePhase], elements: set[str]) -> dict[str, PbePhase]:
    """The phases made of ``elements`` only."""
    from pymatgen.core import Composition

    return {n: p for n, p in phases.items() if {str(el) for el in Composition(p.formula).elements} <= elements}


def missing_corners(phases: dict[str, PbePhase], elements: set[str]) -> list[str]:
    """The elements of ``elements`` with no stored elemental phase (a hull needs each)."""
    from pymatgen.core import Composition

    have = {
        str(Composition(p.formula).elements[0]) for p in phases.values() if len(Composition(p.formula).elements) == 1
    }
    return sorted(elements - have)


def lowest_by_formula(phases: dict[str, PbePhase]) -> dict[str, str]:
    """Reduced formula -> the name of its lowest-energy stored phase (a published and a relaxed structure of
    one phase, or polymorphs, may both be stored; the hull uses the lowest)."""
    from pymatgen.core import Composition

    out: dict[str, str] = {}
    for n, p in sorted(phases.items(), key=lambda kv: -kv[1].energy_per_atom):
        out[Composition(p.formula).reduced_formula] = n
    return out


def with_corners(phases: dict[str, PbePhase]) -> dict[str, PbePhase]:
    """The phases whose every element has a stored elemental phase (a hull needs each corner)."""
    from pymatgen.core import Composition

    corners = {
        str(Composition(p.formula).elements[0]) for p in phases.values() if len(Composition(p.formula).elements) == 1
    }
    return {n: p for n, p in phases.items() if {str(el) for el in Composition(p.formula).elements} <= corners}


def entries(phases: dict[str, PbePhase], *, mp2020: bool = False) -> list[ComputedStructureEntry]:
    """pymatgen entries of the phases (total energies), MP2020-corrected when asked."""
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    out = []
    for ph in phases.values():
        s = ph.structure()
        out.append(
            ComputedStructureEntry(
                s,
                ph.energy_per_atom * len(s),
                parameters={"run_type": "GGA", "hubbards": {}, "potcar_spec": []},
                data={"name": ph.name},
                entry_id=ph.name,
            )
        )
    if not mp2020:
        return out
    # GPAW is not VASP: the POTCAR check does not apply; the anion's bonding is checked from the structure
    import warnings

    compat = MaterialsProject2020Compatibility(check_potcar=False)
    with warnings.catch_warnings():
        # "Failed to guess oxidation states" for intermetallics (LiIn): no anion, no correction, as intended
        warnings.simplefilter("ignore", UserWarning)
        kept = compat.process_entries(out, clean=True, inplace=False, on_error="ignore")
    return list(kept)


def phase_diagram(phases: dict[str, PbePhase], *, mp2020: bool = False) -> PhaseDiagram:
    from pymatgen.analysis.phase_diagram import PhaseDiagram

    return PhaseDiagram(entries(phases, mp2020=mp2020))


def formation_energies(phases: dict[str, PbePhase], *, mp2020: bool = False) -> dict[str, float]:
    """Formation energy per atom (eV) of every compound against the stored elements (MP2020-corrected when
    asked: the scale of potentials trained on Materials Project's corrected energies, MPtrj)."""
    pd = phase_diagram(with_corners(phases), mp2020=mp2020)
    return {e.data["name"]: float(pd.get_form_energy_per_atom(e)) for e in pd.all_entries}


def hull_table(phases: dict[str, PbePhase], *, mp2020: bool = False) -> list[dict[str, Any]]:
    """Per phase: formation energy, energy above the hull and, when above it, what it decomposes to."""
    pd: Any = phase_diagram(with_corners(phases), mp2020=mp2020)
    rows = []
    for e in sorted(pd.all_entries, key=lambda e: e.data["name"]):
        decomp, ehull = pd.get_decomp_and_e_above_hull(e, allow_negative=True)
        rows.append(
            {
                "phase": e.data["name"],
                "formation_eV_per_atom": round(float(pd.get_form_energy_per_atom(e)), 4),
                "e_above_hull_eV_per_atom": round(float(ehull), 4),
                "decomposes_to": sorted(d.data["name"] for d in decomp) if ehull > 1e-6 else [],
            }
        )
    return rows


def _names(pd: Any, comps: Any) -> list[str]:
    by_formula = {
        e.composition.reduced_formula: e.data.get("name", e.composition.reduced_formula) for e in pd.stable_entries
    }
    return [by_formula.get(c.reduced_formula, c.reduced_formula) for c in comps]


def _kink_dict(kink: tuple[Any, ...], pd: Any) -> dict[str, Any]:
    _, x, energy, reaction, _ = kink
    products = sorted(_names(pd, [p.reduced_composition for p in reaction.products]))
    return {
        # pymatgen's x is the first reactant's (the electrolyte's) atomic fraction; the metal's is stated
        "metal_fraction": round(1.0 - float(x), 4),
        "energy_eV_per_atom": round(float(energy), 4),
        "reaction": str(reaction),
        "products": products,
        "reactants_react": len(reaction.reactants) >= 2,
    }


def _kinks(
    phases: dict[str, PbePhase], electrolyte: str, metal: str, mp2020: bool, mu_li: float | None
) -> list[dict[str, Any]]:
    """Every kink of the ``electrolyte`` + ``metal`` reaction (closed, or open to Li at ``mu_li``), by metal
    fraction: pymatgen's interfacial reactivity on the phases' diagram."""
    from pymatgen.analysis.interface_reactions import GrandPotentialInterfacialReactivity, InterfacialReactivity
    from pymatgen.analysis.phase_diagram import GrandPotentialPhaseDiagram
    from pymatgen.core import Composition, Element

    pd = phase_diagram(phases, mp2020=mp2020)
    c1 = Composition(phases[electrolyte].formula).reduced_composition
    c2 = Composition(phases[metal].formula).reduced_composition
    if mu_li is None:
        ir: Any = InterfacialReactivity(c1, c2, pd, norm=True, use_hull_energy=False)
    else:
        gpd = GrandPotentialPhaseDiagram(pd.all_entries, {Element("Li"): mu_li})
        ir = GrandPotentialInterfacialReactivity(
            c1, c2, gpd, pd, include_no_mixing_energy=True, norm=True, use_hull_energy=False
        )
    # the products are named by the closed diagram's stable entries in both cases
    return sorted((_kink_dict(k, pd) for k in ir.get_kinks()), key=lambda k: k["metal_fraction"])


def mixing(
    phases: dict[str, PbePhase],
    electrolyte: str,
    metal: str,
    *,
    mp2020: bool = False,
    mu_li: float | None = None,
) -> dict[str, Any]:
    """The most exergonic reaction of ``metal`` with ``electrolyte`` at any mixing ratio.

    Parameters
    ----------
    phases
        The stored PBE phases (:func:`stored_phases`); ``electrolyte`` and ``metal`` are names among them.
    mp2020
        Apply MP2020 anion corrections.
    mu_li
        A fixed Li chemical potential (eV, absolute, as the phases' energies): the open-Li reaction on the grand
        potential (Li exchanged with a reservoir, e.g. the Li-In alloy electrode).

    Returns
    -------
    dict
        ``reaction``, ``energy_eV_per_atom`` (per atom of the reacting mixture; for open Li, per atom of the
        non-Li part), ``mixing_eV_per_atom`` (that energy less what each reactant does on its own, the
        straight line between the ends: the driving force of the reaction *between* them), ``metal_fraction``,
        ``products``, ``exergonic`` (mixing energy < -0.1 meV/atom), ``electrolyte_alone`` / ``metal_alone``
        (the end's own reaction when exergonic: an electrolyte above the hull, or reduced by the Li reservoir),
        ``kinks`` (every kink).
    """
    kinks = _kinks(phases, electrolyte, metal, mp2020, mu_li)
    # the ends are each reactant on its own (with the Li reservoir, at fixed mu_Li): their own decomposition
    alone = {k["metal_fraction"]: k for k in kinks if k["metal_fraction"] in (0.0, 1.0)}
    e_el = alone[0.0]["energy_eV_per_atom"] if 0.0 in alone else 0.0
    e_me = alone[1.0]["energy_eV_per_atom"] if 1.0 in alone else 0.0
    for k in kinks:
        # what mixing adds beyond each reactant's own reaction: the kink below the line between the ends
        f = k["metal_fraction"]
        k["mixing_eV_per_atom"] = round(k["energy_eV_per_atom"] - ((1 - f) * e_el + f * e_me), 4)
    inner = [k for k in kinks if 1e-9 < k["metal_fraction"] < 1 - 1e-9 and k["reactants_react"]]
    best = min(inner, key=lambda k: k["mixing_eV_per_atom"]) if inner else None
    out: dict[str, Any] = {
        "electrolyte": electrolyte,
        "metal": metal,
        "mp2020": mp2020,
        "kinks": kinks,
        "exergonic": bool(best is not None and best["mixing_eV_per_atom"] < -1e-4),
        "electrolyte_alone": alone[0.0] if e_el < -1e-4 else None,
        "metal_alone": alone[1.0] if e_me < -1e-4 else None,
    }
    keys = ("reaction", "energy_eV_per_atom", "mixing_eV_per_atom", "metal_fraction", "products")
    if best is not None and out["exergonic"]:
        out.update({k: best[k] for k in keys})
    else:
        out.update(
            {
                "reaction": None,
                "energy_eV_per_atom": 0.0,
                "mixing_eV_per_atom": 0.0,
                "metal_fraction": None,
                "products": [],
            }
        )
    if mu_li is not None:
        out["mu_li_eV"] = round(mu_li, 5)
    return out


def li_potential(
    phases: dict[str, PbePhase], alloy: str = LI_IN_ALLOY[0], host: str = LI_IN_ALLOY[1]
) -> dict[str, Any]:
    """The Li chemical potential of the two-phase ``host`` + ``alloy`` electrode and its voltage vs Li metal.

    For LiIn/In: mu_Li = E(LiIn) - E(In) per formula unit; V = -(mu_Li - E(Li))/e (experiment: ~0.62 V).
    """
    from pymatgen.core import Composition

    a = Composition(phases[alloy].formula).reduced_composition
    if set(map(str, a.elements)) != {"Li", host} or len(Composition(phases[host].formula).elements) != 1:
        raise ValueError(f"{alloy} + {host}: expected a Li alloy of the element {host}")
    # alloy (per formula unit) = a[Li] Li + a[host] host: the Li that leaves it carries the rest
    mu = (phases[alloy].energy_per_atom * a.num_atoms - phases[host].energy_per_atom * a[host]) / a["Li"]
    e_li = phases["Li"].energy_per_atom
    return {"electrode": f"{host} + {alloy}", "mu_li_eV": round(mu, 5), "voltage_V": round(-(mu - e_li), 4)}


def _fmt(r: dict[str, Any]) -> str:
    own = r.get("electrolyte_alone")
    alone = (
        f"{r['electrolyte']} on its own: {own['reaction']} ({1000 * own['energy_eV_per_atom']:+.0f} meV/atom); "
        if own
        else ""
    )
    if not r.get("exergonic"):
        return (
            alone + f"no reaction between {r['metal']} and {r['electrolyte']} beyond that"
            if own
            else (f"no exergonic reaction between {r['metal']} and {r['electrolyte']}")
        )
    return alone + (
        f"{r['reaction']} ({1000 * r['energy_eV_per_atom']:+.0f} meV/atom of the mixture at metal atom fraction "
        f"{r['metal_fraction']:.2f}, {1000 * r['mixing_eV_per_atom']:+.0f} beyond each reactant on its own)"
    )


def interface_thermo(
    electrolyte_formula: str,
    metal_formula: str,
    phases: dict[str, PbePhase] | None = None,
) -> dict[str, Any]:
    """PBE's answer for one interface: the closed reaction, the open-Li one at the Li-In alloy's potential, the
    electrolyte's own decomposition, and the MP2020 reading of each.

    Returns ``{"skipped": reason}`` when a reactant or a phase of their elements is not stored.
    """
    from pymatgen.core import Composition

    phases = stored_phases() if phases is None else phases
    if not phases:
        return {"skipped": "no stored PBE phases in this install (data/pbe/phases_pw)", "source": SOURCE}
    by_formula = lowest_by_formula(phases)
    names = []
    for f in (electrolyte_formula, metal_formula):
        n = by_formula.get(Composition(f).reduced_formula)
        if n is None:
            return {"skipped": f"no stored PBE energy of {f}", "source": SOURCE}
        names.append(n)
    elements = {str(el) for f in (electrolyte_formula, metal_formula) for el in Composition(f).elements}
    elements_in = chemical_system(phases, elements)
    lacking = missing_corners(elements_in, elements)
    if lacking:
        return {"skipped": f"no stored PBE energy of elemental {', '.join(lacking)}", "source": SOURCE}
    el, metal = names
    closed = mixing(elements_in, el, metal)
    closed_mp = mixing(elements_in, el, metal, mp2020=True)
    pd: Any = phase_diagram(elements_in)
    entry = next(e for e in pd.all_entries if e.data["name"] == el)
    decomp, ehull = pd.get_decomp_and_e_above_hull(entry, allow_negative=True)
    out: dict[str, Any] = {
        "source": SOURCE,
        "phases": sorted(elements_in),
        "closed": closed,
        "closed_mp2020": closed_mp,
        "electrolyte_e_above_hull_eV_per_atom": round(float(ehull), 4),
        "electrolyte_decomposes_to": sorted(d.data["name"] for d in decomp) if ehull > 1e-6 else [],
        "mp2020_changes_sign": closed["exergonic"] != closed_mp["exergonic"],
    }
    if "Li" in elements and all(n in elements_in for n in (*LI_IN_ALLOY, "Li")):
        pot = li_potential(elements_in)
        out["li_electrode"] = pot
        out["open_li"] = mixing(elements_in, el, metal, mu_li=pot["mu_li_eV"])
        out["open_li_mp2020"] = mixing(elements_in, el, metal, mu_li=pot["mu_li_eV"], mp2020=True)
        out["mp2020_changes_sign"] = out["mp2020_changes_sign"] or (
            out["open_li"]["exergonic"] != out["open_li_mp2020"]["exergonic"]
        )
    out["sentence"] = f"PBE, closed: {_fmt(closed)}" + (
        f". At the Li-In alloy's Li potential ({out['li_electrode']['voltage_V']:.2f} V vs Li): {_fmt(out['open_li'])}"
        if "open_li" in out
        else ""
    )
    return out


def stored_engine_reactions(
    electrolyte: str, metal: str, root: str | os.PathLike[str] | None = None
) -> list[dict[str, Any]]:
    """Each offline engine's value of this interface's reactions as stored by ``data/pbe/engine_thermo.py``
    (``engines.json`` beside the phases): engine, quantity, engine's and PBE's eV/atom, verdict; empty if none."""
    where = Path(root) if root is not None else default_root()
    path = where / "engines.json" if where is not None else None
    if path is None or not path.is_file():
        return []
    data = json.loads(path.read_text())
    out = []
    for key, block in data.items():
        for r in block.get("rows", []):
            if r["phase"] == f"{metal} + {electrolyte}" and r["quantity"] in (
                "interface reaction",
                "reaction at the Li-In potential",
            ):
                out.append(
                    {
                        "engine": key,
                        "quantity": r["quantity"],
                        "engine_eV_per_atom": r["value"],
                        "pbe_eV_per_atom": r["reference"],
                        "verdict": r["verdict"],
                    }
                )
    return out
