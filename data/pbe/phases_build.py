"""The crystals of the PBE phase diagram of Li-P-S-Cl-In (``phases_pw.py`` labels them): built once, stored.

Run from the repository root: ``.venv/bin/python data/pbe/phases_build.py [--only NAME ...]``. Writes
``phases_pw/structures/NAME.json`` (ASE JSON, the primitive cell) and ``phases_pw/structures/index.json``
(origin of each start structure, how it was relaxed, CHGNet's energy before/after); a stored structure is
never rebuilt unless named with ``--only``.

Protocol (the same for every phase, so their errors are alike): the start structure (the offline reference
library's CIF, or a published/constructed one below) is reduced to its primitive cell and relaxed, cell and
positions, with CHGNet 0.3.0 (trained on Materials Project PBE relaxations, so its lattices are PBE-like)
to 0.02 eV/A. The PBE single point (``phases_pw.py``) then reports the remaining PBE forces and stress, the
measure of how far each structure is from its PBE minimum. Two exceptions, both stated in the index:

- In: the 1-atom bct cell at the plane-wave PBE Bain minimum (c/a 1.54, 27.3 A^3/atom, data/pbe/in_bain_pw),
  because every offline engine relaxes In to fcc (c/a 1.414), 5.7 meV/atom above PBE's minimum.
- Cl2, S8 and P4S10: isolated molecules in a 13-14 A box (positions relaxed, box fixed). Their crystals are
  bound by dispersion, which PBE misses almost entirely, so the molecule is what PBE describes; the elements'
  corners are not products of any metal + electrolyte reaction, and P4S10 matters only for the electrolyte's
  oxidation. Their energies are upper bounds on the PBE crystal's by its (small) PBE lattice energy.

New start structures (not in the reference library; provenance also in cellsim/references/data/ADDED.md):

- InP: zinc blende F-43m, a = 5.8687 A (room-temperature experiment), In 4a, P 4c.
- black P: Cmce (Cmca), a 3.3136, b 10.478, c 4.3763 A, P 8f (0, 0.10168, 0.08056) (Brown and Rundqvist,
  Acta Cryst. 19, 684 (1965)); P-P 2.22/2.24 A checked. Kept as published, not relaxed: CHGNet opens its van
  der Waals gap (b 10.48 -> 15.1 A) and leaves PBE forces of 1.13 eV/A on the puckered layers.
- InPS4: I-4, a 5.623, c 9.058 A (defect-chalcopyrite/thiogallate type; P 2a, S 8g from the ideal zinc-blende
  anion site (1/4, 1/4, 1/8)); the In site (2b, 2c or 2d, each gives every S one P and one In neighbour) is
  the one of the three with the lowest CHGNet energy after relaxation (all three are written to the index).
- Li4P2S6: P-31m, a 6.0708, c 6.577 A (Mercier et al. 1982); P2S6 staggered units, P 2e (0, 0, 0.172) for a
  P-P bond of 2.26 A, S 6k (0.32, 0, 0.25), Li 2c and 2d: an ordered model of the (partly disordered) phase.
- Li7PS6: ordered approximant of the argyrodite, from the library's ordered Li6PS5Cl (13-atom primitive cell)
  with Cl replaced by S and one Li added; 24 seeded random Li positions (>= 1.9 A from every atom) relaxed with
  CHGNet, the lowest kept.
- Li3InCl6: ordered model on InCl3's cubic-close-packed Cl (C2/m, the library's InCl3 cell, In4Cl12): two In
  replaced by Li and four of the eight empty Cl6 octahedra filled with Li; all 420 arrangements scored by
  CHGNet's static energy, the 8 lowest relaxed, the lowest kept.

Not built (no coordinates to be had offline; said in ADDED.md): In6S7, Li7P3S11.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "phases_pw" / "structures"
FMAX = 0.02


def _calc():  # type: ignore[no-untyped-def]
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    return CHGNetCalculator(model=CHGNet.load(model_name="0.3.0", verbose=False), use_device="cpu")


def relax(atoms, calc, *, cell: bool = True, steps: int = 600):  # type: ignore[no-untyped-def]
    """CHGNet relaxation (FIRE; cell too unless ``cell`` is False); returns (atoms, E/atom before, after)."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    atoms = atoms.copy()
    atoms.calc = calc
    e0 = atoms.get_potential_energy() / len(atoms)
    target = FrechetCellFilter(atoms) if cell else atoms
    FIRE(target, logfile=None).run(fmax=FMAX, steps=steps)
    e1 = atoms.get_potential_energy() / len(atoms)
    atoms.calc = None
    return atoms, float(e0), float(e1)


def primitive(structure):  # type: ignore[no-untyped-def]
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    prim = SpacegroupAnalyzer(structure, symprec=0.1).get_primitive_standard_structure()
    return AseAtomsAdaptor.get_atoms(prim)


def symmetrize(atoms, symprec: float = 0.01):  # type: ignore[no-untyped-def]
    """The primitive standard cell with exact symmetry (relaxation leaves ~1e-5 A of noise, which costs GPAW its
    k-point symmetry: bcc Li's 16^3 mesh kept 2052 of 4096 points instead of ~145) and its space group."""
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    sga = SpacegroupAnalyzer(AseAtomsAdaptor.get_structure(atoms), symprec=symprec)
    sym = sga.get_refined_structure()
    prim = SpacegroupAnalyzer(sym, symprec=symprec).get_primitive_standard_structure()
    return AseAtomsAdaptor.get_atoms(prim), f"{sga.get_space_group_symbol()} ({sga.get_space_group_number()})"


def niggli(atoms):  # type: ignore[no-untyped-def]
    """The same crystal in its Niggli-reduced cell (compact: a smaller FFT grid for plane waves)."""
    from ase.build import niggli_reduce

    out = atoms.copy()
    niggli_reduce(out)
    return out


def from_sg(sg: str, lattice: list[float], species: list[str], coords: list[list[float]]):  # type: ignore[no-untyped-def]
    from pymatgen.core import Lattice, Structure

    lat = Lattice.from_parameters(*lattice)
    return Structure.from_spacegroup(sg, lat, species, coords, tol=1e-3)


def molecule(name: str, box: float):  # type: ignore[no-untyped-def]
    from ase import Atoms

    if name == "Cl2":
        pos = [[0, 0, 0], [0, 0, 1.99]]
        symbols = "Cl2"
    elif name == "S8":  # crown ring, D4d: S-S 2.05 A, S-S-S 108 deg (radius 2.346, height 0.989 A)
        r, h = 2.346, 0.989
        pos = [[r * np.cos(k * np.pi / 4), r * np.sin(k * np.pi / 4), h / 2 * (-1) ** k] for k in range(8)]
        symbols = "S8"
    elif name == "P4S10":  # adamantane P4S6 cage + 4 terminal S (P-S bridge 2.09 A, P=S 1.91 A)
        t = 1.203
        ps = [np.array(v) * t for v in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1))]
        bridges = [np.array(v) * 2.417 for v in ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1))]
        terminal = [p + 1.91 * p / np.linalg.norm(p) for p in ps]
        pos = [*ps, *bridges, *terminal]
        symbols = "P4S10"
    else:
        raise ValueError(name)
    atoms = Atoms(symbols, positions=pos, cell=[box, box, box], pbc=True)
    atoms.center()
    return atoms


def _li7ps6(calc):  # type: ignore[no-untyped-def]
    from cellsim.references.library import library

    base = primitive(library()["Li6PS5Cl"].structure())
    base.symbols[[i for i, s in enumerate(base.get_chemical_symbols()) if s == "Cl"]] = "S"
    rng = np.random.default_rng(20261207)
    best, tried = None, []
    while len(tried) < 24:
        frac = rng.random(3)
        cart = frac @ np.asarray(base.cell)
        trial = base.copy()
        trial.append("Li")
        trial.positions[-1] = cart
        if trial.get_distances(len(trial) - 1, range(len(base)), mic=True).min() < 1.9:
            continue
        out, _, e1 = relax(trial, calc)
        tried.append(round(e1, 5))
        if best is None or e1 < best[1]:
            best = (out, e1)
    assert best is not None
    return best[0], {"candidates_eV_per_atom": sorted(tried)}


def _octahedral_holes(atoms, anion: str = "Cl") -> np.ndarray:  # type: ignore[no-untyped-def]
    """Fractional centres of the anion octahedra: grid points with six anions at near-equal distance."""
    cell = np.asarray(atoms.cell)
    grid = np.stack(np.meshgrid(*(np.arange(0, 1, 1 / 24),) * 3, indexing="ij"), -1).reshape(-1, 3)
    frac = atoms.get_scaled_positions()[[i for i, s in enumerate(atoms.get_chemical_symbols()) if s == anion]]
    shifts = np.array(list(itertools.product((-1, 0, 1), repeat=3)))
    holes = []
    for f in grid:
        d = np.linalg.norm(((frac - f)[:, None, :] + shifts[None]).reshape(-1, 3) @ cell, axis=1)
        ds = np.sort(d)[:7]
        if ds[5] - ds[0] < 0.25 and ds[0] > 2.3 and ds[6] > ds[5] + 0.4:
            holes.append((float(ds[:6].std()), f))
    holes.sort(key=lambda t: t[0])
    kept: list[np.ndarray] = []
    for _, f in holes:  # one point per hole: drop grid points within 1 A of a kept one (minimum image)
        if all(np.linalg.norm(((f - k + 0.5) % 1 - 0.5) @ cell) > 1.0 for k in kept):
            kept.append(f)
    return np.array(kept)


def _li3incl6(calc):  # type: ignore[no-untyped-def]
    from pymatgen.io.ase import AseAtomsAdaptor

    from cellsim.references.library import library

    base = AseAtomsAdaptor.get_atoms(library()["InCl3"].structure())
    cell = np.asarray(base.cell)
    holes = _octahedral_holes(base)
    ins = [i for i, s in enumerate(base.get_chemical_symbols()) if s == "In"]
    inf = base.get_scaled_positions()[ins]
    empty = [h for h in holes if all(np.linalg.norm(((h - f + 0.5) % 1 - 0.5) @ cell) > 1.0 for f in inf)]
    if len(empty) != 8:
        raise RuntimeError(f"expected 8 empty Cl6 octahedra in InCl3's cell, found {len(empty)}")
    scored = []
    for swap in itertools.combinations(ins, 2):
        for fill in itertools.combinations(range(8), 4):
            trial = base.copy()
            for k in swap:
                trial.symbols[k] = "Li"
            for k in fill:
                trial.append("Li")
                trial.positions[-1] = empty[k] @ cell
            trial.calc = calc
            scored.append((trial.get_potential_energy() / len(trial), swap, fill, trial))
    scored.sort(key=lambda t: t[0])
    best = None
    relaxed = []
    for e_static, swap, fill, trial in scored[:8]:
        trial.calc = None
        out, _, e1 = relax(trial, calc)
        relaxed.append(
            {
                "static": round(float(e_static), 5),
                "relaxed": round(e1, 5),
                "swap": [int(k) for k in swap],
                "fill": [int(k) for k in fill],
            }
        )
        if best is None or e1 < best[1]:
            best = (out, e1)
    assert best is not None
    return best[0], {"arrangements": len(scored), "relaxed_candidates_eV_per_atom": relaxed}


def _inps4(calc):  # type: ignore[no-untyped-def]
    lat = [5.623, 5.623, 9.058, 90, 90, 90]
    options = {"2b": [0, 0, 0.5], "2c": [0, 0.5, 0.25], "2d": [0, 0.5, 0.75]}
    results = {}
    best = None
    for site, xyz in options.items():
        s = from_sg("I-4", lat, ["P", "In", "S"], [[0, 0, 0], xyz, [0.25, 0.25, 0.125]])
        out, _, e1 = relax(primitive(s), calc)
        results[site] = round(e1, 5)
        if best is None or e1 < best[1]:
            best = (out, e1, site)
    assert best is not None
    return best[0], {"in_site_eV_per_atom": results, "in_site": best[2]}


NEW = {
    "InP": lambda: from_sg("F-43m", [5.8687] * 3 + [90] * 3, ["In", "P"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    "P": lambda: from_sg("Cmce", [3.3136, 10.478, 4.3763, 90, 90, 90], ["P"], [[0, 0.10168, 0.08056]]),
    "Li4P2S6": lambda: from_sg(
        "P-31m",
        [6.0708, 6.0708, 6.577, 90, 90, 120],
        ["P", "S", "Li", "Li"],
        [[0, 0, 0.172], [0.32, 0, 0.25], [1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.5]],
    ),
}
SEARCHED = {"Li7PS6": _li7ps6, "Li3InCl6": _li3incl6, "InPS4": _inps4}
# library phases whose CHGNet-relaxed cell kept large PBE forces (InS: 1.05 eV/A): the published structure as
# well, as a second entry NAME_exp; the hull takes the lower of the two
EXPERIMENTAL = ("InS", "In2S3")
# the primitive standard cell of body-centred beta-In2S3 (c/a 4.3) is skewed (angles 37 and 154 deg): its FFT
# grid made one SCF iteration take ~7 CPU minutes; the Niggli-reduced cell of the same 40 atoms is compact
NIGGLI = ("In2S3",)
MOLECULES = {"Cl2": 13.0, "S8": 13.0, "P4S10": 14.0}


def names() -> list[str]:
    from cellsim.references.library import library

    return [*library(), *NEW, *SEARCHED, *MOLECULES, *(f"{n}_exp" for n in EXPERIMENTAL)]


def build(name: str, calc) -> tuple:  # type: ignore[no-untyped-def,type-arg]
    """(atoms, meta) of one phase."""
    from cellsim.engines.planewave import primitive_bct_cell
    from cellsim.references.library import library

    if name == "In":
        return primitive_bct_cell("In", 1.54, 27.3), {
            "origin": "plane-wave PBE Bain minimum (data/pbe/in_bain_pw): c/a 1.54, 27.3 A^3/atom",
            "relaxed": "PBE (Bain path, fixed volume)",
        }
    if name.endswith("_exp"):
        base = name.removesuffix("_exp")
        start = primitive(library()[base].structure())
        return (niggli(start) if base in NIGGLI else start), {
            "origin": f"reference library {library()[base].file} (published structure)",
            "relaxed": "not relaxed: the published structure, beside the CHGNet-relaxed one",
        }
    if name == "P":  # CHGNet opens black P's van der Waals gap (b 10.48 -> 15.1 A) and leaves 1.13 eV/A in PBE
        return primitive(NEW["P"]()), {
            "origin": "published crystallography (phases_build.py docstring)",
            "relaxed": "not relaxed: the experimental structure (CHGNet's relaxation opened the interlayer gap "
            "to b = 15.1 A and left PBE forces of 1.13 eV/A)",
        }
    if name in MOLECULES:
        out, e0, e1 = relax(molecule(name, MOLECULES[name]), calc, cell=False)
        return out, {
            "origin": f"isolated {name} molecule in a {MOLECULES[name]} A box",
            "relaxed": "CHGNet 0.3.0, positions",
            "chgnet_before": e0,
            "chgnet_after": e1,
        }
    extra: dict = {}  # type: ignore[type-arg]
    if name in library():
        start = primitive(library()[name].structure())
        origin = f"reference library {library()[name].file}"
    elif name in NEW:
        start = primitive(NEW[name]())
        origin = "published crystallography (phases_build.py docstring)"
    else:
        start, extra = SEARCHED[name](calc)
        origin = "constructed, CHGNet-screened (phases_build.py docstring)"
    out, e0, e1 = relax(start, calc)
    return out, {
        "origin": origin,
        "relaxed": "CHGNet 0.3.0, cell and positions, fmax 0.02 eV/A",
        "chgnet_before": e0,
        "chgnet_after": e1,
        **extra,
    }


def main() -> None:
    from ase.io import write

    from cellsim.core.files import atomic_write_json

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None, help="(re)build these phases only")
    ap.add_argument("--symmetrize", action="store_true", help="symmetrize the stored structures (no rebuild)")
    args = ap.parse_args()
    HERE.mkdir(parents=True, exist_ok=True)
    index_path = HERE / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    if args.symmetrize:
        from ase.io import read

        for name in list(index):
            if name in MOLECULES or name == "In" or name.endswith("_exp") or name == "P":
                continue
            atoms, sg = symmetrize(read(HERE / f"{name}.json"))
            if name in NIGGLI:
                atoms = niggli(atoms)
            write(HERE / f".{name}.json.tmp", atoms, format="json")
            os.replace(HERE / f".{name}.json.tmp", HERE / f"{name}.json")
            index[name].update({"spacegroup": sg, "natoms": len(atoms)})
            print(name, sg, len(atoms))
        atomic_write_json(index_path, dict(sorted(index.items())))
        return
    calc = _calc()
    for name in args.only or names():
        if name in index and not args.only:
            continue
        atoms, meta = build(name, calc)
        if name not in MOLECULES and name != "In" and not name.endswith("_exp") and name != "P":
            atoms, meta["spacegroup"] = symmetrize(atoms)
        if name in NIGGLI:
            atoms = niggli(atoms)
        tmp = HERE / f".{name}.json.tmp"
        write(tmp, atoms, format="json")
        os.replace(tmp, HERE / f"{name}.json")
        index[name] = {"formula": atoms.get_chemical_formula(mode="metal"), "natoms": len(atoms), **meta}
        atomic_write_json(index_path, dict(sorted(index.items())))
        print(f"{name}: {len(atoms)} atoms, {meta.get('chgnet_after', '')}", flush=True)


if __name__ == "__main__":
    main()
