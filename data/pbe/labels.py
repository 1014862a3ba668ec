"""Future fine-tuning labels (issue 22): small cells of the study's phases with CP2K PBE, one job at a time.

Run from the repository root: ``.venv/bin/python data/pbe/labels.py [NAME ...]`` (default: all, smallest
first). Each structure is one cached job under ``data/pbe/labels/jobs/``; ``data/pbe/labels/summary.csv``
lists every stored job. Settings: the shipped defaults (templates/cp2k/pbe.yaml), with a coarser k-spacing
for the gapped electrolyte phases (0.30 1/A: an insulator's energy converges much faster than a metal's)
and 0.20 1/A for the rattled metal supercells (forces, not meV energy differences).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from ase import Atoms
from pymatgen.io.ase import AseAtomsAdaptor

from cellsim.core.files import atomic_write_text
from cellsim.engines.cp2k import BAIN_VOLUME, bain_cell, load_result, resolve_settings, single_point
from cellsim.references.library import library

HERE = Path(__file__).resolve().parent / "labels"
INSULATOR = {"kpoints": {"kspacing": 0.30}}
METAL_FORCES = {"kpoints": {"kspacing": 0.20}}


def primitive(name: str) -> Atoms:
    """The library phase's primitive cell (reference lattice)."""
    return AseAtomsAdaptor.get_atoms(library()[name].structure().get_primitive_structure())


def strained(atoms: Atoms, eps: float) -> Atoms:
    out = atoms.copy()
    out.set_cell(atoms.cell * (1 + eps), scale_atoms=True)
    return out


def rattled(atoms: Atoms, sigma: float, seed: int) -> Atoms:
    out = atoms.copy()
    out.positions += np.random.default_rng(seed).normal(0.0, sigma, out.positions.shape)
    return out


def structures() -> dict[str, tuple[Atoms, dict]]:
    """Name -> (structure, settings override), smallest first."""
    li2s, licl = primitive("Li2S"), primitive("LiCl")
    in_cell = bain_cell("In", 1.52, BAIN_VOLUME["In"]).repeat((2, 2, 1))
    return {
        "LiCl-prim": (licl, INSULATOR),
        "Li2S-prim": (li2s, INSULATOR),
        "Li2S-prim-strain-0.02": (strained(li2s, -0.02), INSULATOR),
        "Li2S-prim-strain+0.02": (strained(li2s, 0.02), INSULATOR),
        "In8-bct1.52-rattle0.05-s0": (rattled(in_cell, 0.05, 0), METAL_FORCES),
        "In8-bct1.52-rattle0.10-s1": (rattled(in_cell, 0.10, 1), METAL_FORCES),
    }


def summarise() -> None:
    lines = ["name,formula,natoms,kpoints,energy_eV,max_force_eV_A,scf_steps,wall_s,job"]
    for res_file in sorted((HERE / "jobs").glob("*/result.json")):
        res = load_result(res_file.parent)
        assert res is not None
        d = res.data
        kp = "x".join(map(str, d["kpoints"])) if isinstance(d["kpoints"], list) else d["kpoints"]
        fmax = float(np.linalg.norm(res.forces, axis=1).max())
        lines.append(
            f"{d['label']},{d['formula']},{d['natoms']},{kp},{res.energy:.6f},{fmax:.4f},{d['scf_steps']},"
            f"{d['wall_s']},{res_file.parent.name}"
        )
    atomic_write_text(HERE / "summary.csv", "\n".join(lines) + "\n")


def main(names: list[str]) -> None:
    todo = structures()
    for name in names or list(todo):
        atoms, override = todo[name]
        res = single_point(atoms, HERE / "jobs", resolve_settings(override), stress=True, label=name)
        took = f"{res.data['wall_s']} s, cached {res.cached}"
        print(f"{name}: {len(atoms)} atoms, E {res.energy:.4f} eV, {took}", flush=True)
        summarise()


if __name__ == "__main__":
    main(sys.argv[1:])
