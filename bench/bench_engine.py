"""Benchmark: the embedded engine on the paper's interface (CHGNet, 1 torch thread).

Side by side, on the same atoms, model and thermostat:
  * the bare ASE loop a user would write: ``NoseHooverChainNVT(...).run(N)`` with the CHGNet calculator;
  * ``cellsim run``'s loop (``run_mlip``): the same steps plus XDATCAR/OSZICAR output every step and a
    checkpoint every ``checkpoint_every`` steps.
Prints seconds per step, ps/day at 2 fs, and cellsim's overhead over the bare loop (target < 5 %).

Run: ``.venv/bin/python bench/bench_engine.py [--steps 30]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    n = args.steps
    from ase.io import read
    from ase.md.nose_hoover_chain import NoseHooverChainNVT
    from ase.md.velocitydistribution import Stationary
    from ase.units import fs

    from cellsim.config.study import load_study
    from cellsim.engines.mlip import make_calculator, run_mlip, set_threads
    from cellsim.stages import build as run_build

    tmp = Path(tempfile.mkdtemp())
    try:
        run = tmp / "run"
        run_build("li6ps5cl_in", run)
        study = load_study(run / "study.yaml")
        study.md.relax_steps = 0
        set_threads(1)
        calc, _ = make_calculator("chgnet")
        atoms = read(run / "interface" / "POSCAR", format="vasp")
        atoms.calc = calc
        import numpy as np
        from ase.md import velocitydistribution as vd

        thermalize = getattr(vd, "thermalize_momenta", None) or vd.MaxwellBoltzmannDistribution
        thermalize(atoms, temperature_K=300, rng=np.random.default_rng(0))
        Stationary(atoms)
        dyn = NoseHooverChainNVT(atoms, timestep=2 * fs, temperature_K=300, tdamp=80 * fs)
        dyn.run(2)  # warm-up (first call builds graphs)
        t0 = time.perf_counter()
        dyn.run(n)
        bare = (time.perf_counter() - t0) / n

        run_mlip(run, study, total_steps=2)  # warm-up, model load
        summary = run_mlip(run, study, total_steps=2 + n)
        ours = summary.seconds / summary.steps_run
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    natoms = len(atoms)
    print(f"{natoms}-atom Li6PS5Cl/In interface, CHGNet 0.3.0, 1 torch thread, {n} NVT steps of 2 fs")
    print(f"{'loop':<44} {'s/step':>8} {'ps/day':>8}")
    for name, sec in (("bare ASE NoseHooverChainNVT.run", bare), ("cellsim run (output + checkpoints)", ours)):
        print(f"{name:<44} {sec:8.3f} {86400 / sec * 0.002:8.1f}")
    print(f"cellsim overhead over the bare loop: {100 * (ours / bare - 1):+.1f} %")


if __name__ == "__main__":
    main()
