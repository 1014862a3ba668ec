"""Assemble a metal/electrolyte slab interface and its build report.

Geometry (documented in docs/builder.md): the metal slab sits at the bottom, the electrolyte slab on top
of it at ``gap`` above the topmost metal plane, then ``vacuum`` (centred: half below, half above), or a
periodic sandwich when ``vacuum = 0`` (the electrolyte's top faces the metal's bottom across ``gap``).
The strained slab (metal by default) is mapped onto the unstrained slab's super-cell: its in-plane
fractional coordinates are kept, its heights are kept (no Poisson correction; relax before MD).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.build.checks import atomic_planes, bonded_units, closest_pair, stoichiometry
from cellsim.build.matching import LatticeMatch, best_strain_any, find_matches
from cellsim.build.slabs import SlabTemplate, slab_templates, with_both_faces
from cellsim.config.study import InterfaceSpec, SlabSpec
from cellsim.core.errors import BuildError
from cellsim.core.files import atomic_write_json, atomic_write_text
from cellsim.core.version import __version__
from cellsim.references.library import resolve_phase

if TYPE_CHECKING:
    from pymatgen.core import Lattice, Structure


@dataclass
class Layout:
    """Layer counts chosen for one lattice match."""

    match: LatticeMatch
    electrolyte_layers: int
    metal_layers: int
    electrolyte_atoms: int
    metal_atoms: int
    electrolyte_thickness: float
    metal_thickness: float

    @property
    def atoms(self) -> int:
        return self.electrolyte_atoms + self.metal_atoms

    def describe(self) -> str:
        a, b = self.match.lengths
        return (
            f"{a:.2f} x {b:.2f} A (area {self.match.area:.1f} A^2, strain {100 * self.match.max_strain:.2f} %), "
            f"{self.electrolyte_layers} electrolyte + {self.metal_layers} metal layers: {self.atoms} atoms"
        )


@dataclass
class InterfaceModel:
    """A built interface: the structure (species grouped, metal first in z) and its report."""

    structure: Structure
    report: dict[str, Any] = field(default_factory=dict)


def _bond_dict(spec: InterfaceSpec, electrolyte: Structure) -> dict[tuple[str, str], float]:
    if spec.intact_bonds is not None:
        return {tuple(k.split("-")): v for k, v in spec.intact_bonds.items()}  # type: ignore[misc]
    elements = {el.symbol for el in electrolyte.composition}
    return {("P", "S"): 2.3} if {"P", "S"} <= elements else {}


def _pick_termination(templates: list[SlabTemplate], side: SlabSpec, field_name: str) -> SlabTemplate:
    idx = side.termination or 0
    if idx >= len(templates):
        listing = "; ".join(f"{k}: bottom {t.bottom}, top {t.top}" for k, t in enumerate(templates))
        raise BuildError(
            f"{field_name}.termination: {idx} is out of range; {templates[0].phase}{list(side.miller)} "
            f"has {len(templates)} allowed termination(s): {listing}"
        )
    return templates[idx]


def _growth(
    match: LatticeMatch,
    host_is_electrolyte: bool,
    elec: SlabTemplate,
    metal: SlabTemplate,
    spec: InterfaceSpec,
) -> list[Layout]:
    """Layer counts for one match, step by step: first the minimum for the thickness floors, then one
    more layer on the thinner slab (automatic sides only) until ``min_atoms`` is reached."""
    n_host = round(abs(np.linalg.det(match.host_T)))
    n_guest = round(abs(np.linalg.det(match.guest_T)))
    ne_cells, nm_cells = (n_host, n_guest) if host_is_electrolyte else (n_guest, n_host)
    per_e, per_m = len(elec.species) * ne_cells, len(metal.species) * nm_cells
    te, tm = elec.layer_thickness, metal.layer_thickness
    grow_e, grow_m = spec.electrolyte.layers is None, spec.metal.layers is None
    le = spec.electrolyte.layers or max(1, math.ceil(spec.min_thickness("electrolyte") / te - 1e-9))
    lm = spec.metal.layers or max(1, math.ceil(spec.min_thickness("metal") / tm - 1e-9))
    steps = [Layout(match, le, lm, le * per_e, lm * per_m, le * te, lm * tm)]
    while steps[-1].atoms < spec.min_atoms and (grow_e or grow_m):
        if grow_e and (not grow_m or le * te <= lm * tm):
            le += 1
        else:
            lm += 1
        steps.append(Layout(match, le, lm, le * per_e, lm * per_m, le * te, lm * tm))
    return steps


def _supercell_positions(
    template: SlabTemplate, n_layers: int, T: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Species, in-plane fractional coordinates in the super-cell ``T`` and heights of a stacked slab."""
    species, pos = template.stacked(n_layers)
    frac = pos[:, :2] @ np.linalg.inv(template.inplane)  # in template in-plane units
    corners = np.array([[0, 0], T[0], T[1], T[0] + T[1]])
    lo, hi = corners.min(axis=0) - 1, corners.max(axis=0) + 1
    shifts = np.array([(i, j) for i in range(lo[0], hi[0] + 1) for j in range(lo[1], hi[1] + 1)])
    tinv = np.linalg.inv(T.astype(float))
    all_f = (frac[None, :, :] + shifts[:, None, :]) @ tinv  # (n_shift, n_atom, 2)
    inside = np.all((all_f > -1e-8) & (all_f < 1 - 1e-8), axis=2)
    s_idx, a_idx = np.nonzero(inside)
    n_cells = round(abs(np.linalg.det(T)))
    if len(a_idx) != n_cells * len(species):
        raise BuildError(
            f"{template.phase}: super-cell expansion gave {len(a_idx)} atoms, expected "
            f"{n_cells * len(species)} (numerical tolerance problem; please report)"
        )
    f = all_f[s_idx, a_idx] % 1.0
    return [species[k] for k in a_idx], f, pos[a_idx, 2]


def _element_order(electrolyte: Structure, metal: Structure) -> list[str]:
    """Fixed POSCAR species order: electrolyte elements as in its formula, then new metal elements."""
    order: list[str] = []
    for s in (electrolyte, metal):
        for el in s.composition.elements:
            if el.symbol not in order:
                order.append(el.symbol)
    return order


def plan_layouts(spec: InterfaceSpec, elec: SlabTemplate, metal: SlabTemplate) -> tuple[list[list[Layout]], bool]:
    """Growth sequences of every candidate match, in order of preference (area, compactness, strain)."""
    host_is_electrolyte = spec.strained == "metal"
    host, guest = (elec, metal) if host_is_electrolyte else (metal, elec)
    matches = find_matches(host.inplane, guest.inplane, spec.max_strain, spec.max_area)
    if not matches:
        best = best_strain_any(host.inplane, guest.inplane, spec.max_area)
        hint = (
            f"the best match within {spec.max_area:.0f} A^2 needs {100 * best:.1f} % strain"
            if best
            else (f"no match below 15 % strain within {spec.max_area:.0f} A^2")
        )
        raise BuildError(
            f"interface: no lattice match for {elec.phase}{list(elec.miller)} / {metal.phase}{list(metal.miller)} "
            f"with strain <= {100 * spec.max_strain:.1f} % (interface.max_strain); {hint}. Raise "
            "interface.max_strain or interface.max_area, or choose other Miller indices"
        )
    return [_growth(m, host_is_electrolyte, elec, metal, spec) for m in matches], host_is_electrolyte


def choose_layout(spec: InterfaceSpec, candidates: list[list[Layout]]) -> Layout:
    """The first layout with both in-plane vectors >= min_lateral and min_atoms <= atoms <= max_atoms."""
    wide = [steps for steps in candidates if min(steps[0].match.lengths) >= spec.min_lateral - 1e-6]
    if not wide:
        longest = max(min(steps[0].match.lengths) for steps in candidates)
        raise BuildError(
            f"interface.min_lateral: no super-cell within interface.max_area ({spec.max_area:.0f} A^2) has "
            f"both in-plane vectors >= {spec.min_lateral} A (best {longest:.2f} A); raise max_area or "
            "lower min_lateral"
        )
    for steps in wide:
        if spec.min_atoms <= steps[-1].atoms <= spec.max_atoms:
            return steps[-1]
    # nothing satisfies both bounds: say what would fit under max_atoms (largest fitting step per match)
    fits = [
        max((x for x in steps if x.atoms <= spec.max_atoms), key=lambda x: x.atoms)
        for steps in wide
        if steps[0].atoms <= spec.max_atoms
    ]
    if fits:
        options = "; ".join(lay.describe() for lay in sorted(fits, key=lambda x: -x.atoms)[:5])
        raise BuildError(
            f"interface: no model reaches min_atoms={spec.min_atoms} without exceeding max_atoms="
            f"{spec.max_atoms}. What fits under max_atoms: {options}. Lower min_atoms, raise max_atoms, or "
            "fix the layer counts (interface.electrolyte.layers / interface.metal.layers)"
        )
    smallest = min((steps[0] for steps in wide), key=lambda x: x.atoms)
    raise BuildError(
        f"interface.max_atoms: the smallest model has {smallest.atoms} atoms > max_atoms={spec.max_atoms} "
        f"({smallest.describe()}); nothing fits. Raise max_atoms, or lower the min_thickness / layers "
        "of the slabs"
    )


def build_interface(spec: InterfaceSpec, base_dir: Path | None = None) -> InterfaceModel:
    """Build the interface described by ``spec``.

    Parameters
    ----------
    spec
        The ``interface`` section of a study.
    base_dir
        Folder that relative structure paths are read from (the study file's folder).

    Returns
    -------
    InterfaceModel
        The structure (POSCAR order: electrolyte elements, then metal elements) and a JSON-able report.
    """
    e_name, e_bulk = resolve_phase(spec.electrolyte.phase, base_dir, "interface.electrolyte.phase")
    m_name, m_bulk = resolve_phase(spec.metal.phase, base_dir, "interface.metal.phase")
    bonds = _bond_dict(spec, e_bulk)
    # each cut with its two faces: the electrolyte meets the metal with a template's bottom face, the metal with
    # its top face, and a cut whose faces differ is offered both ways (later indices)
    e_terms = with_both_faces(slab_templates(e_bulk, spec.electrolyte.miller, e_name, bonds or None))
    m_terms = with_both_faces(slab_templates(m_bulk, spec.metal.miller, m_name, None))
    elec = _Side(
        e_name, spec.electrolyte, _pick_termination(e_terms, spec.electrolyte, "interface.electrolyte"), e_terms
    )
    metal = _Side(m_name, spec.metal, _pick_termination(m_terms, spec.metal, "interface.metal"), m_terms)

    layouts, host_is_electrolyte = plan_layouts(spec, elec.template, metal.template)
    lay = choose_layout(spec, layouts)
    stack = _stack(spec, lay, elec.template, metal.template, host_is_electrolyte)
    order = _element_order(e_bulk, m_bulk)
    structure, fixed = _ordered_structure(spec, stack, order)

    pair = closest_pair(structure)
    if pair is not None and pair["distance"] < spec.min_distance:
        a, b = pair["species"]
        raise BuildError(
            f"interface: atoms {pair['i']} ({a}) and {pair['j']} ({b}) are {pair['distance']:.3f} A apart, "
            f"closer than interface.min_distance = {spec.min_distance} A; increase interface.gap or choose "
            "another termination"
        )
    e_mask = np.array([s.properties["region"] == "electrolyte" for s in structure])
    e_idx = [int(k) for k in np.flatnonzero(e_mask)]
    units = bonded_units(structure, e_bulk, bonds, e_idx) if bonds else {}
    stoich = stoichiometry([structure[k].specie.symbol for k in e_idx], e_bulk)
    report = _report(spec, structure, order, stack, lay, elec, metal, host_is_electrolyte)
    report.update(
        {
            "fixed_atoms": int(fixed.sum()),
            "closest_pair": pair,
            "closest_interface_pair": closest_pair(structure, spec.gap + 3.0, between=e_mask),
            "bonded_units": units,
            "ps4": _ps4_summary(units),
            "electrolyte_stoichiometry": stoich,
            "candidates_considered": len(layouts),
        }
    )
    return InterfaceModel(structure, report)


@dataclass(frozen=True)
class _Side:
    """One slab of the interface: its phase's name, its part of the study, the termination used and those offered."""

    name: str
    spec: SlabSpec
    template: SlabTemplate
    terms: list[SlabTemplate]


@dataclass
class _Stack:
    """The metal slab (bottom) and the electrolyte slab stacked in one cell, metal atoms first."""

    lattice: Lattice
    c: float
    species: list[str]
    frac: np.ndarray  # fractional coordinates, centred in the vacuum
    is_metal: np.ndarray
    T_e: np.ndarray  # each slab's super-cell of its template
    T_m: np.ndarray
    e_z: np.ndarray  # heights before centring (metal bottom at 0)
    m_z: np.ndarray


def _stack(
    spec: InterfaceSpec, lay: Layout, elec: SlabTemplate, metal: SlabTemplate, host_is_electrolyte: bool
) -> _Stack:
    """Both slabs expanded to the layout's super-cell, the electrolyte ``gap`` above the metal, then vacuum."""
    from pymatgen.core import Lattice

    match = lay.match
    T_e, T_m = (match.host_T, match.guest_T) if host_is_electrolyte else (match.guest_T, match.host_T)
    m_sp, m_f, m_z = _supercell_positions(metal, lay.metal_layers, T_m)
    e_sp, e_f, e_z = _supercell_positions(elec, lay.electrolyte_layers, T_e)
    m_z = m_z - m_z.min()
    metal_top = float(m_z.max())
    e_z = e_z - e_z.min() + metal_top + spec.gap
    top = float(e_z.max())
    if spec.vacuum > 0:
        c = top + spec.vacuum
        offset = spec.vacuum / 2
    else:
        c = top + spec.gap
        offset = 0.0
    vecs = match.host_vectors
    lattice = Lattice([[vecs[0, 0], vecs[0, 1], 0.0], [vecs[1, 0], vecs[1, 1], 0.0], [0.0, 0.0, c]])
    frac = np.column_stack([np.vstack([m_f, e_f]), (np.concatenate([m_z, e_z]) + offset) / c])
    is_metal = np.array([True] * len(m_sp) + [False] * len(e_sp))
    return _Stack(lattice, c, m_sp + e_sp, frac, is_metal, T_e, T_m, e_z, m_z)


def _ordered_structure(spec: InterfaceSpec, stack: _Stack, order: list[str]) -> tuple[Structure, np.ndarray]:
    """The structure in POSCAR order (by element, then height), with its regions and fixed bottom metal planes;
    and which atoms (in the stack's order) are fixed."""
    from pymatgen.core import Structure

    species, frac, is_metal = stack.species, stack.frac, stack.is_metal
    planes = atomic_planes(stack.m_z)
    if spec.fixed_metal_layers >= len(planes):
        raise BuildError(
            f"interface.fixed_metal_layers: {spec.fixed_metal_layers} would fix the whole metal slab "
            f"({len(planes)} atomic planes); fix fewer planes"
        )
    fixed = np.zeros(len(species), dtype=bool)
    for p in planes[: spec.fixed_metal_layers]:
        fixed[p] = True
    rank = np.array([order.index(s) for s in species])
    perm = np.lexsort((frac[:, 2], rank))
    props: dict[str, Any] = {"region": ["metal" if is_metal[k] else "electrolyte" for k in perm]}
    if spec.fixed_metal_layers:
        props["selective_dynamics"] = [[not fixed[k]] * 3 for k in perm]
    structure = Structure(
        stack.lattice, [species[k] for k in perm], frac[perm], site_properties=props, to_unit_cell=True
    )
    return structure, fixed


def _report(
    spec: InterfaceSpec,
    structure: Structure,
    order: list[str],
    stack: _Stack,
    lay: Layout,
    elec: _Side,
    metal: _Side,
    host_is_electrolyte: bool,
) -> dict[str, Any]:
    """The report's cell, slabs and strain (the checks of the built structure are added by the caller)."""
    match = lay.match
    zero = {"principal": [0.0, 0.0], "max_abs": 0.0, "area": 0.0, "rotation_deg": 0.0}
    guest_strain = {
        "principal": [round(s, 6) for s in match.principal_strains],
        "max_abs": round(match.max_strain, 6),
        "area": round(match.area_strain, 6),
        "rotation_deg": round(match.rotation_deg, 3),
    }
    a_len, b_len = match.lengths
    return {
        "cellsim_version": __version__,
        "n_atoms": len(structure),
        "formula": structure.composition.formula.replace(" ", ""),
        "composition": {el.symbol: int(n) for el, n in structure.composition.items()},
        "species_order": [el for el in order if el in structure.composition],
        "cell": {
            "matrix": np.round(stack.lattice.matrix, 6).tolist(),
            "a": round(a_len, 4),
            "b": round(b_len, 4),
            "c": round(stack.c, 4),
            "gamma_deg": round(match.gamma_deg, 4),
        },
        "area": round(match.area, 4),
        "electrolyte": _side_report(
            elec.name,
            elec.spec,
            elec.template,
            elec.terms,
            stack.T_e,
            lay.electrolyte_layers,
            lay.electrolyte_atoms,
            stack.e_z,
            facing_bottom=True,
        ),
        "metal": _side_report(
            metal.name,
            metal.spec,
            metal.template,
            metal.terms,
            stack.T_m,
            lay.metal_layers,
            lay.metal_atoms,
            stack.m_z,
            facing_bottom=False,
        ),
        "strained": "metal" if host_is_electrolyte else "electrolyte",
        "strain": {
            "metal": guest_strain if host_is_electrolyte else zero,
            "electrolyte": zero if host_is_electrolyte else guest_strain,
        },
        "gap": spec.gap,
        "vacuum": spec.vacuum,
        "periodic_sandwich": spec.vacuum == 0,
    }


def _side_report(
    name: str,
    side: SlabSpec,
    t: SlabTemplate,
    terms: list[SlabTemplate],
    T: np.ndarray,
    layers: int,
    atoms: int,
    z: np.ndarray,
    facing_bottom: bool,
) -> dict[str, Any]:
    """Report of one slab; the electrolyte (top slab) meets the metal with its bottom face."""
    return {
        "phase": name,
        "miller": list(side.miller),
        "supercell": T.tolist(),
        "layers": layers,
        "atoms": atoms,
        # what min_thickness is checked against: whole layers (the slab's periodic repeat along the normal)
        "thickness": round(layers * t.layer_thickness, 4),
        "layer_thickness": round(t.layer_thickness, 4),
        "min_thickness": side.min_thickness if side.layers is None else None,  # null: layers given, no floor
        "atom_extent": round(float(z.max() - z.min()), 4),
        "termination": {
            "index": next(k for k, x in enumerate(terms) if x is t),
            "shift": round(t.shift, 6),
            "bottom": t.bottom,
            "top": t.top,
            "facing_interface": t.bottom if facing_bottom else t.top,
            "turned_over": t.turned_over,
        },
        "terminations_available": [
            {
                "index": k,
                "shift": round(x.shift, 6),
                "bottom": x.bottom,
                "top": x.top,
                "turned_over": x.turned_over,
                "facing_interface": x.bottom if facing_bottom else x.top,
            }
            for k, x in enumerate(terms)
        ],
    }


def _ps4_summary(units: dict[str, Any]) -> dict[str, Any] | None:
    ps = units.get("P-S")
    if ps is None:
        return None
    return {"count": ps["whole"], "p_atoms": ps["centres"], "intact": ps["intact"]}


def write_interface(model: InterfaceModel, run_dir: Path, title: str = "cellsim interface") -> dict[str, Path]:
    """Write ``interface/POSCAR``, ``interface.cif`` and ``interface.json`` atomically."""
    from pymatgen.io.cif import CifWriter

    from cellsim.config.rundir import RunDir
    from cellsim.io.poscar import pymatgen_poscar_text

    out = RunDir(run_dir).interface_dir
    s = model.structure.copy()
    s.remove_site_property("region")
    paths = {
        "poscar": atomic_write_text(out / "POSCAR", pymatgen_poscar_text(s, f"{title} ({len(s)} atoms)")),
        "cif": atomic_write_text(out / "interface.cif", str(CifWriter(s))),
        "json": atomic_write_json(out / "interface.json", model.report),
    }
    return paths
