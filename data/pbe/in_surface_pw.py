"""Labels of In surfaces for a fitted potential: plane-wave PBE (GPAW) on In(001) slabs.

Run from the repository root: ``.venv/bin/python data/pbe/in_surface_pw.py [--max N] [--list]``. Fixed,
seeded configurations, labelled one at a time in this order: 1 x 1 In(001) slabs of the PBE bct cell (c/a
1.54 at 27.3 A^3/atom) with 4 and 6 atomic planes, 12 A of vacuum; then the 6-plane slab rattled by 0.08, 0.12
and 0.16 A per component (two seeds each). Gamma-centred 12 x 12 x 1 k-points, otherwise the settings of
``in_bain_pw``. Each configuration is one cached job under ``in_surface_pw/jobs/``; ``index.json`` names
them. Why: the fitted model's bulk labels say nothing about under-coordinated In, and a slab melts from its
surfaces first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import Atoms

from cellsim.engines.planewave import label_set

HERE = Path(__file__).resolve().parent / "in_surface_pw"
V0, CA, VACUUM = 27.3, 1.54, 12.0


def slab(planes: int) -> Atoms:
    """A 1 x 1 In(001) slab of the bct cell: one atom per (001) plane, planes c/2 apart, vacuum along z."""
    a = (2 * V0 / CA) ** (1 / 3)
    c = CA * a
    pos = [[(k % 2) * a / 2, (k % 2) * a / 2, k * c / 2] for k in range(planes)]
    height = (planes - 1) * c / 2 + VACUUM
    atoms = Atoms(f"In{planes}", positions=pos, cell=[a, a, height], pbc=True)
    atoms.positions[:, 2] += VACUUM / 2
    return atoms


def configurations() -> list[tuple[str, Atoms, dict, dict]]:
    over = {"kpts": [12, 12, 1]}
    out: list[tuple[str, Atoms, dict, dict]] = [
        (f"slab-{n}", slab(n), over, {"planes": n, "vacuum_A": VACUUM}) for n in (4, 6)
    ]
    for k, sigma in enumerate((0.08, 0.08, 0.12, 0.12, 0.16, 0.16)):
        atoms = slab(6)
        atoms.positions += np.random.default_rng(2000 + k).normal(0.0, sigma, atoms.positions.shape)
        out.append((f"slab-6-rattle-{k}-s{sigma}", atoms, over, {"planes": 6, "sigma_A": sigma}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=None, help="label at most N new configurations")
    ap.add_argument("--list", action="store_true", help="print the configurations and whether each is labelled")
    args = ap.parse_args()
    label_set(configurations(), HERE, max_new=args.max, list_only=args.list)


if __name__ == "__main__":
    main()
