"""Held-out PBE labels of snapshots from the shipped fit's own MD of the reduced interface, at 300 K and 450 K.

The engine check's parity set (``li6ps5cl_in_parity``) comes from base-CHGNet MD; a fitted model must also be
judged where it takes the system itself, and hotter (where active learning looks for its mistakes). Run from the
repository root (niced, one core): ``.venv/bin/python data/pbe/li6ps5cl_in_fit_md.py [-k 4] [--steps 500]
[--model workflows/fits/chgnet-in-pbe/model.pth.tar]``.

For each temperature: a FIRE relaxation and ``--steps`` of Langevin NVT of the fitted model on the 46-atom reduced
interface of the other interface labels, ``k`` snapshots evenly over the second half,
kept in ``li6ps5cl_in_fit_md/snapshots/``; each labelled with CP2K at the parity settings (one job each, cached in
``li6ps5cl_in_fit_md/jobs/``, so a rerun skips finished points); ``parity-<T>K.json`` compares the fitted model,
CHGNet 0.3.0 and SevenNet-0 on them. The set never trains a fit (``cellsim.engines.fit.TEST_ONLY_SETS``).

Independence: the training labels of ``li6ps5cl_in_interface`` come from the same protocol with seeds 0 (300 K) and 1
(450 K); a Langevin run with the same seed from the same start repeats their trajectory frame for frame, so these
runs use seeds 10 and 11: other trajectories, no frame shared with or adjacent to a training frame.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cellsim.config.study import load_study
from cellsim.engines.cp2k import resolve_settings
from cellsim.engines.parity import PARITY_SETTINGS, parity, table_rows
from cellsim.engines.registry import select, study_model
from cellsim.engines.snapshots import SnapshotPlan, engine_md_snapshots, estimate_seconds, reduced_interfaces

HERE = Path(__file__).resolve().parent / "li6ps5cl_in_fit_md"
ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-k", type=int, default=3, help="snapshots per temperature")
    ap.add_argument("--steps", type=int, default=500, help="MD steps per temperature (2 fs)")
    ap.add_argument("--temperatures", type=float, nargs="*", default=[300.0, 450.0])
    ap.add_argument("--model", default=str(ROOT / "workflows/fits/chgnet-in-pbe/model.pth.tar"))
    ap.add_argument("--engines", nargs="*", default=["chgnet", "sevennet"])
    args = ap.parse_args()
    base = load_study("li6ps5cl_in")
    study = base.model_copy(update={"engine": base.engine.model_copy(update={"model_path": args.model})})
    fitted = study_model(study)
    assert fitted is not None
    models = [fitted, *select(args.engines, study)]
    settings = resolve_settings(PARITY_SETTINGS)
    from pymatgen.io.ase import AseAtomsAdaptor

    reds = [s for red, s in reduced_interfaces(study) if red["electrolyte_layers"] == 1 and red["metal_thickness"] >= 8]
    atoms = AseAtomsAdaptor.get_atoms(reds[0])
    for i, temp in enumerate(args.temperatures):
        t0 = time.time()
        seed = 10 + i
        frames = engine_md_snapshots(
            atoms, fitted, args.k, temp, study.md.timestep_fs, args.steps, seed=seed, cache=HERE / "snapshots"
        )
        src = (
            f"reduced interface ({len(atoms)} atoms); {args.steps} steps of the fitted model's Langevin NVT at "
            f"{temp:g} K, seed {seed}"
        )
        plan = SnapshotPlan(src, frames, args.k * estimate_seconds(atoms, settings), [])
        print(f"{temp:g} K, {plan.source}: {len(plan.frames)} snapshots, ~{plan.estimate_s / 60:.0f} min", flush=True)

        def progress(what: str, i: int, n: int, info: object) -> None:
            if what == "cp2k-done":
                print(f"  snapshot {i + 1}/{n}: done ({info.data.get('wall_s')} s)", flush=True)  # type: ignore[attr-defined]

        res = parity(plan, models, settings, HERE / "jobs", progress=progress)
        res.notes.append(f"snapshots of the fitted model's own MD at {temp:g} K ({args.model})")
        res.save(HERE / f"parity-{temp:g}K.json")
        for row in table_rows(res):
            print(json.dumps(row))
        print(f"{temp:g} K: {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
