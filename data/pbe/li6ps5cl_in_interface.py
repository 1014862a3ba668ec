"""Training labels of the Li6PS5Cl/In interface for a fitted potential: CP2K PBE on reduced-interface snapshots.

Run from the repository root (niced, one core): ``.venv/bin/python data/pbe/li6ps5cl_in_interface.py
[--max N] [--list]``. The reduced interface is the study's own builder at a smaller size (the 46-atom
Li12P2S10Cl2 + In20 of ``li6ps5cl_in_parity``); the snapshots come from a Langevin NVT at 300 K of the
shipped fit (workflows/fits/chgnet-in-pbe), the model whose interfacial In plane disorders: these are the
configurations that fit visits and its labels never covered (In next to S and Cl). Two runs: 300 K (the
study's temperature) and 450 K (seed 1: the more disordered interfacial configurations the fit drifts
into, where PBE's restoring forces matter most); of each, K = 6 frames evenly over the second half of 600
steps of 2 fs, stored in ``li6ps5cl_in_interface/snapshots/``, labelled in an order that spreads the first
ones over the run (a partial set is still a sample of the whole run), the 300 K run first. CP2K
settings as the parity labels (Gamma point, as the paper's AIMD). The parity snapshots (a base-CHGNet MD)
stay out of every fit: they are the held-out interface test.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ase import Atoms

from cellsim.config.study import load_study
from cellsim.engines.cp2k import label_set
from cellsim.engines.parity import PARITY_SETTINGS
from cellsim.engines.registry import study_model
from cellsim.engines.snapshots import engine_md_snapshots, reduced_interfaces

HERE = Path(__file__).resolve().parent / "li6ps5cl_in_interface"
K, STEPS = 6, 600
RUNS = ((300.0, 0), (450.0, 1))  # (temperature K, seed)
ORDER = (5, 2, 4, 1, 3, 0)  # last frame first, then spread over the run


def configurations() -> list[tuple[str, Atoms, dict, dict]]:
    """The snapshots of both runs in labelling order: K frames of each Langevin run of the shipped fit on the
    46-atom reduced interface (cached in ``snapshots/``)."""
    from pymatgen.io.ase import AseAtomsAdaptor

    study = load_study("li6ps5cl_in_fitted")
    model = study_model(study)
    assert model is not None
    reds = [s for red, s in reduced_interfaces(study) if red["electrolyte_layers"] == 1 and red["metal_thickness"] >= 8]
    atoms = AseAtomsAdaptor.get_atoms(reds[0])
    dt = study.md.timestep_fs
    out: list[tuple[str, Atoms, dict, dict]] = []
    for t, seed in RUNS:
        frames = engine_md_snapshots(atoms, model, K, t, dt, STEPS, seed=seed, cache=HERE / "snapshots")
        src = f"{STEPS} steps of the shipped fit, Langevin {t:g} K (seed {seed})"
        for i in ORDER:
            out.append((f"interface-{t:g}K-{i}", frames[i], PARITY_SETTINGS, {"source": f"{src}, frame {i} of {K}"}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--max", type=int, default=None, help="label at most N new snapshots")
    ap.add_argument("--list", action="store_true", help="print the snapshots and whether each is labelled")
    args = ap.parse_args()
    label_set(configurations(), HERE, max_new=args.max, list_only=args.list)


if __name__ == "__main__":
    main()
