"""Interfacial energetics of the reduced Li6PS5Cl/In interface: PBE (CP2K) against each engine.

Which configurations: :func:`cellsim.engines.contacts.contact_moves` on the first 300 K snapshot of the held-out
set ``li6ps5cl_in_fit_md`` (the shipped fit's own MD of the 46-atom reduced interface; its PBE label is reused, so
the snapshot costs nothing): the interfacial S of a PS4 unit pulled tighter onto In and pulled off its P (2.7 and
3.1 A), the interfacial Cl moved half way and all the way onto In, an In atom pulled out to the S. Rigid moves of
one atom, so PBE and every engine see the same structures. CP2K at the parity settings (PBE, DZVP-MOLOPT-SR,
400 Ry, Gamma point), one job at a time, cached in ``li6ps5cl_in_contacts/jobs`` (a rerun skips finished ones).
Run from the repository root (niced, one core): ``.venv/bin/python data/pbe/li6ps5cl_in_contacts.py
[--engines-only]``. Writes ``li6ps5cl_in_contacts/contacts.json``; the set never trains a fit
(``cellsim.engines.fit.TEST_ONLY_SETS``) and the engine check reads it (``cellsim.engines.contacts``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ase.io import read

from cellsim.engines.contacts import ContactSet, contact_moves, engine_deltas, min_distance, structures
from cellsim.engines.cp2k import resolve_settings, single_point
from cellsim.engines.parity import PARITY_SETTINGS

HERE = Path(__file__).resolve().parent / "li6ps5cl_in_contacts"
SNAPSHOTS = Path(__file__).resolve().parent / "li6ps5cl_in_fit_md"
ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = "In20Li12Cl2P2S10-8910266c39ac0873.extxyz"  # 300 K, seed 10 (li6ps5cl_in_fit_md.py)


def label(settings: dict) -> ContactSet:
    """CP2K single points of the snapshot and of every configuration (cached, one job at a time)."""
    snap = read(SNAPSHOTS / "snapshots" / SNAPSHOT, index=0)
    ref = single_point(snap, HERE / "jobs", settings, label="snapshot", labels=[SNAPSHOTS / "jobs"])
    if ref.job_dir.parent != HERE / "jobs":  # keep the set self-contained: copy the reused label's folder
        import shutil

        shutil.copytree(ref.job_dir, HERE / "jobs" / ref.job_dir.name, dirs_exist_ok=True)
    configs = []
    moves = contact_moves(snap, "In")
    for k, mv in enumerate(moves):
        atoms = mv.apply(snap)
        t0 = time.time()
        print(f"[{k + 1}/{len(moves)}] {mv.name}: {mv.description}", flush=True)
        res = single_point(atoms, HERE / "jobs", settings, label=mv.name, meta={"move": mv.description})
        print(f"    E - E(snapshot) = {res.energy - ref.energy:+.3f} eV ({time.time() - t0:.0f} s)", flush=True)
        configs.append(
            {
                "name": mv.name,
                "description": mv.description,
                "job": res.job_dir.name,
                "energy_eV": res.energy,
                "delta_eV": res.energy - ref.energy,
                "min_distance_A": round(min_distance(atoms, mv.atom), 3),
                "wall_s": res.data.get("wall_s"),
            }
        )
    return ContactSet(
        source=f"li6ps5cl_in_fit_md/snapshots/{SNAPSHOT} (frame 0: the shipped fit's MD at 300 K)",
        metal="In",
        electrolyte="Li6PS5Cl",
        natoms=len(snap),
        reference=f"PBE (CP2K, {settings['basis_set']}, {settings['cutoff']} Ry, Gamma)",
        snapshot_job=ref.job_dir.name,
        snapshot_energy_eV=ref.energy,
        configs=configs,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--engines-only", action="store_true", help="only recompute the engines' energies")
    ap.add_argument("--engines", nargs="*", default=["chgnet", "sevennet"])
    ap.add_argument(
        "--models",
        nargs="*",
        default=[str(ROOT / "data/pbe/li6ps5cl_in_al/fits/chgnet-e2e4b8b3f11406a2/model.pth.tar")],
        help="more fitted CHGNet files (default: active-learning round 2)",
    )
    args = ap.parse_args()
    out = HERE / "contacts.json"
    cset = ContactSet.load(out) if args.engines_only else label(resolve_settings(PARITY_SETTINGS))
    cset.save(out)
    from cellsim.config.study import load_study
    from cellsim.engines.registry import load_calculator, select, study_model

    study = load_study("li6ps5cl_in_fitted")
    extra = [
        study_model(study.model_copy(update={"engine": study.engine.model_copy(update={"model_path": p})}))
        for p in args.models
    ]
    fitted = [study_model(study), *extra]
    # fits are all called model.pth.tar: name each by its folder (chgnet-in-pbe = the bundled fit)
    names = [f"fitted CHGNet ({Path(str(m.model_path)).parent.name})" for m in fitted if m is not None]
    models = [m for m in (*fitted, *select(args.engines, study)) if m is not None]
    names += [m.key for m in models[len(names) :]]
    frames = structures(cset, HERE)
    cset.engines = {}
    for name, m in zip(names, models, strict=True):
        calc = load_calculator(m)

        def energy(atoms, calc=calc):
            work = atoms.copy()
            work.calc = calc
            return float(work.get_potential_energy())

        cset.engines[name] = engine_deltas(energy, frames)
        print(name, {k: round(v, 3) for k, v in cset.engines[name].items()}, flush=True)
    cset.save(out)
    for c in cset.configs:
        row = "  ".join(f"{k} {v[c['name']] - c['delta_eV']:+.3f}" for k, v in cset.engines.items())
        print(f"{c['name']:>22}: PBE {c['delta_eV']:+.3f} eV | engine - PBE: {row}")


if __name__ == "__main__":
    main()
