"""Training/validation labels for a fitted In potential: plane-wave PBE (GPAW) on bulk In configurations.

Run from the repository root: ``.venv/bin/python data/pbe/in_bulk_pw.py [--max N] [--list]``. The
configurations are fixed (seeded), made in this order so that a partial set is balanced:

1. ``strain-*``: 1-atom bct cells (14^3 k-points, ~20 s each): E(V) at c/a 1.414 (fcc) and 1.54 (the PBE
   Bain minimum, data/pbe/in_bain_pw), and small random symmetric strains of the c/a 1.54 cell (stress labels
   for the elastic response);
2. ``rattle-*``: 4-atom cells (2 x 1 x 1 conventional bct, 6 x 12 x 8 k-points, ~3 min each on one core)
   with Gaussian displacements of 0.08, 0.12 and 0.16 A per component (RMS 0.14-0.28 A, what 150-600 K
   gives in In; Debye estimate 0.31 A at 300 K is the 3D RMS) and a random +-1.5 % strain, at c/a 1.414,
   1.50 and 1.54.

Each configuration is one cached job under ``in_bulk_pw/jobs/`` (rerunning skips finished ones);
``in_bulk_pw/index.json`` maps configuration names to job folders and is rewritten after every job.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import Atoms

from cellsim.engines.cp2k import bain_cell
from cellsim.engines.planewave import label_set, primitive_bct_cell

HERE = Path(__file__).resolve().parent / "in_bulk_pw"
V0 = 27.3  # A^3/atom, the Bain path's volume


def _strained(atoms: Atoms, eps: np.ndarray) -> Atoms:
    out = atoms.copy()
    out.set_cell(np.asarray(atoms.cell) @ (np.eye(3) + eps), scale_atoms=True)
    return out


def configurations() -> list[tuple[str, Atoms, dict, dict]]:
    """(name, atoms, settings overrides, meta) in labelling order."""
    out: list[tuple[str, Atoms, dict, dict]] = []
    for ca in (1.414, 1.54):
        for v in (25.5, 26.4, 28.2, 29.1):
            out.append((f"strain-ev-ca{ca}-v{v}", primitive_bct_cell("In", ca, v), {}, {"c_a": ca, "volume": v}))
    rng = np.random.default_rng(20261202)
    for k in range(6):
        e = rng.uniform(-0.02, 0.02, (3, 3))
        eps = (e + e.T) / 2
        cell = _strained(primitive_bct_cell("In", 1.54, V0), eps)
        out.append((f"strain-random-{k}", cell, {}, {"strain": eps.tolist()}))
    for k in range(18):
        ca = (1.414, 1.50, 1.54)[k % 3]
        sigma = (0.08, 0.12, 0.16)[(k // 3) % 3]
        rng = np.random.default_rng(1000 + k)
        atoms = bain_cell("In", ca, V0) * (2, 1, 1)
        e = rng.uniform(-0.015, 0.015, (3, 3))
        atoms = _strained(atoms, (e + e.T) / 2)
        atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
        out.append((f"rattle-{k:02d}-ca{ca}-s{sigma}", atoms, {"kpts": [6, 12, 8]}, {"c_a": ca, "sigma_A": sigma}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=None, help="label at most N new configurations")
    ap.add_argument("--list", action="store_true", help="print the configurations and whether each is labelled")
    args = ap.parse_args()
    label_set(configurations(), HERE, max_new=args.max, list_only=args.list)


if __name__ == "__main__":
    main()
