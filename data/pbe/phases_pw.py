"""PBE energies of the phases of Li-P-S-Cl-In with plane waves (GPAW): the project's own phase diagram.

Run from the repository root: ``.venv/bin/python data/pbe/phases_pw.py [--max N] [--list] [--convergence]``.
The structures are the stored ones of ``phases_build.py`` (``phases_pw/structures/``: CHGNet-relaxed
primitive cells, In at the PBE Bain minimum, three molecules in boxes). Each is one cached GPAW job under
``phases_pw/jobs/`` with energy, forces and stress (rerunning skips finished ones; ``index.json`` names them),
smallest cell first so that a partial set holds the most phases.

Settings: those of the stored In labels (``in_bain_pw``: PBE, PAW setups, plane waves 450 eV,
Marzari-Vanderbilt 0.1 eV), with a Gamma-centred k-mesh from a reciprocal-space density:
``n_i = ceil(2 pi |b_i| rho)`` (ASE's ``kptdensity2monkhorstpack`` rule) with rho = 3.5 A for compounds with
a gap and 6.0 A for the metals (In, Li, LiIn; In's 1-atom cell keeps the 14^3 mesh of its Bain path);
Gamma only for the molecules in boxes. In2S3's 40 atoms are in their Niggli-reduced cell (phases_build.NIGGLI).

``--convergence`` labels the convergence set instead (``phases_pw/convergence/``): the small phases that fix
the formation energies of the reactions at stake (Li, In, Li2S, LiCl, InS, InCl, InP, Li3P, LiIn) at 350 and 550 eV
(beside 450), at rho x 1.5, and the metals at 0.05 eV smearing. ``cellsim.products.pbe`` reads both sets.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "phases_pw"
METALS = {"In", "Li", "LiIn"}
MOLECULES = {"Cl2", "S8", "P4S10"}
RHO_GAP, RHO_METAL = 3.5, 6.0
# k-point density of the convergence set's low rows (rho x 0.57): what a coarser mesh would have cost in accuracy
RHO_LOW = 2.0
CONVERGENCE = ("Li", "In", "Li2S", "LiCl", "InS", "InCl", "InP", "Li3P", "LiIn")


def kmesh(atoms, rho: float) -> list[int]:  # type: ignore[no-untyped-def]
    """Gamma-centred mesh with ``rho`` points per reciprocal A (ASE's density rule, 2 pi |b_i| rho, rounded up)."""
    recip = np.linalg.norm(np.asarray(atoms.cell.reciprocal()), axis=1)
    return [max(1, math.ceil(2 * math.pi * r * rho - 1e-6)) for r in recip]


def overrides(name: str, atoms, *, rho_scale: float = 1.0) -> dict:  # type: ignore[no-untyped-def,type-arg]
    if name in MOLECULES:
        return {"kpts": [1, 1, 1]}
    if name == "In":
        return {"kpts": [14, 14, 14] if rho_scale == 1.0 else [21, 21, 21]}
    return {"kpts": kmesh(atoms, (RHO_METAL if name in METALS else RHO_GAP) * rho_scale)}


def structures() -> dict:  # type: ignore[type-arg]
    from ase.io import read

    index = json.loads((HERE / "structures" / "index.json").read_text())
    out = {name: (read(HERE / "structures" / f"{name}.json"), meta) for name, meta in index.items()}
    return dict(sorted(out.items(), key=lambda kv: (len(kv[1][0]), kv[0])))


def configurations() -> list[tuple[str, object, dict, dict]]:  # type: ignore[type-arg]
    return [
        (name, atoms, overrides(name, atoms), {"phase": name, **meta}) for name, (atoms, meta) in structures().items()
    ]


def convergence() -> list[tuple[str, object, dict, dict]]:  # type: ignore[type-arg]
    out = []
    phases = structures()
    for name in CONVERGENCE:
        atoms, _ = phases[name]
        base = overrides(name, atoms)
        out.append((f"{name}-ecut350", atoms, {**base, "ecut_eV": 350.0}, {"phase": name, "ecut_eV": 350.0}))
        out.append((f"{name}-ecut550", atoms, {**base, "ecut_eV": 550.0}, {"phase": name, "ecut_eV": 550.0}))
        out.append((f"{name}-k1.5", atoms, overrides(name, atoms, rho_scale=1.5), {"phase": name, "rho_scale": 1.5}))
        if name not in METALS and name != "In":
            low = RHO_LOW / RHO_GAP
            out.append(
                (f"{name}-k{low:.2f}", atoms, overrides(name, atoms, rho_scale=low), {"phase": name, "rho_scale": low})
            )
        if name in METALS:
            smear = {"name": "marzari-vanderbilt", "width": 0.05}
            out.append((f"{name}-mv0.05", atoms, {**base, "smearing": smear}, {"phase": name, "smearing_eV": 0.05}))
    return out


def main() -> None:
    from cellsim.engines.planewave import label_set

    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=None, help="label at most N new configurations")
    ap.add_argument("--list", action="store_true", help="print the configurations and whether each is labelled")
    ap.add_argument("--convergence", action="store_true", help="label the convergence set instead")
    ap.add_argument("--reverse", action="store_true", help="largest first (a second worker beside the first)")
    ap.add_argument("--skip", nargs="*", default=[], help="leave these configurations to another worker")
    ap.add_argument(
        "--prune", action="store_true", help="delete job folders no configuration names (rebuilt structures)"
    )
    args = ap.parse_args()
    if args.prune:
        import shutil

        from cellsim.engines.cp2k.jobs import job_dir
        from cellsim.engines.planewave import _physics, resolve_settings

        for root, configs in ((HERE, configurations()), (HERE / "convergence", convergence())):
            wanted = {job_dir(root / "jobs", a, _physics(resolve_settings(o)), True).name for _, a, o, _ in configs}
            for folder in sorted((root / "jobs").glob("*")):
                if folder.is_dir() and folder.name not in wanted:
                    print(f"pruned {folder}")
                    shutil.rmtree(folder)
        return
    configs = [c for c in (convergence() if args.convergence else configurations()) if c[0] not in args.skip]
    root = HERE / "convergence" if args.convergence else HERE
    if args.reverse:
        configs = configs[::-1]
    label_set(configs, root, max_new=args.max, list_only=args.list)


if __name__ == "__main__":
    main()
