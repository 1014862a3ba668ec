"""Benchmark: the fitted CHGNet (the teacher) beside candidate student architectures, per MD step (issue 37).

One run prints one table. Every row is one model driving ASE's velocity Verlet on the same 328-atom paper
interface (``workflows/li6ps5cl_in_fitted.yaml``, built here unless ``--poscar`` is given), one torch/XLA thread,
from the same seeded 300 K velocities; ``s/step`` is the median wall time of the timed steps (a warm-up step
first: graph compilation, JAX tracing), ``x teacher`` the teacher's s/step over the row's, ``peak MB`` the
process's peak resident memory (``resource.getrusage``: each row runs in its own process, so the number is that
model's, interpreter and libraries included).

Rows:

* ``teacher``: ``cellsim.engines.mlip.make_calculator('chgnet', <fit>, forces_only=True)``, what a study runs.
* ``mace-*``: mace-torch ScaleShiftMACE at sizes that could reach a force MAE of ~0.05 eV/A against the teacher
  (channels x L, spherical harmonics max_ell, correlation, interactions; r_max 5 A), untrained (speed does
  not depend on the weights), through mace-torch's own ``MACECalculator``.
* ``nequip-*``: SevenNet's NequIP-architecture network (sevenn, already a cellsim dependency) at small sizes,
  untrained, through ``SevenNetCalculator``.
* ``ace-*``: a linear ACE of ace-jax (``build_model``: correlation order, total degree; r_cut 5 A) through its
  ``ACECalculator`` (only when ace-jax is installed).
* ``student``: the trained student given by ``--student FOLDER`` (``cellsim.engines.student``), with its held-out
  force MAE against the teacher from its card; ``--record`` writes the measured speed into that card.

Run: ``.venv/bin/python bench/bench_student.py --student workflows/fits/student-in-pbe``
(``--steps N`` timed steps per candidate, ``--teacher-steps N``; ``--only NAME`` one row).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "workflows" / "li6ps5cl_in_fitted.yaml"
TEACHER = ROOT / "workflows" / "fits" / "chgnet-in-pbe" / "model.pth.tar"
SEED = 42
TEMPERATURE_K = 300.0
DT_FS = 2.0

# name -> (family, settings): the candidate architectures, untrained
CANDIDATES: dict[str, tuple[str, dict[str, Any]]] = {
    "mace-16x0e-l1-c2-i1": ("mace", {"channels": 16, "max_L": 0, "max_ell": 1, "correlation": 2, "interactions": 1}),
    "mace-32x0e-l1-c2-i1": ("mace", {"channels": 32, "max_L": 0, "max_ell": 1, "correlation": 2, "interactions": 1}),
    "mace-16x0e-l2-c2-i2": ("mace", {"channels": 16, "max_L": 0, "max_ell": 2, "correlation": 2, "interactions": 2}),
    "mace-32x1o-l2-c3-i2": ("mace", {"channels": 32, "max_L": 1, "max_ell": 2, "correlation": 3, "interactions": 2}),
    "nequip-16-l0-i2": ("nequip", {"channels": 16, "lmax": 0, "layers": 2}),
    "nequip-16-l1-i2": ("nequip", {"channels": 16, "lmax": 1, "layers": 2}),
    "nequip-32-l1-i3": ("nequip", {"channels": 32, "lmax": 1, "layers": 3}),
    "ace-o2-d10": ("ace", {"order": 2, "degree": 10}),
    "ace-o3-d8": ("ace", {"order": 3, "degree": 8}),
}


def interface_atoms(poscar: str | None) -> Any:
    """The 328-atom paper interface (built from the fitted study into a temporary folder unless given)."""
    from ase.io import read

    if poscar:
        return read(poscar, format="vasp")
    from cellsim.stages import build

    tmp = Path(tempfile.mkdtemp(prefix="bench-student-"))
    build(STUDY, tmp / "run")
    return read(tmp / "run" / "interface" / "POSCAR", format="vasp")


def _mace(atoms: Any, opts: dict[str, Any]) -> tuple[Any, int]:
    from mace.calculators import MACECalculator

    from cellsim.engines.student import StudentSettings, build_model

    species = sorted(set(int(z) for z in atoms.numbers))
    model = build_model(StudentSettings(**opts), species, [0.0] * len(species), 1.0, 30.0)
    return MACECalculator(models=model, device="cpu", default_dtype="float32"), _params(model)


def _nequip(atoms: Any, opts: dict[str, Any]) -> tuple[Any, int]:
    import sevenn._keys as key
    from sevenn._const import DEFAULT_E3_EQUIVARIANT_MODEL_CONFIG
    from sevenn.calculator import SevenNetCalculator
    from sevenn.model_build import build_E3_equivariant_model
    from sevenn.util import chemical_species_preprocess

    cfg = dict(DEFAULT_E3_EQUIVARIANT_MODEL_CONFIG)
    cfg.update(chemical_species_preprocess(sorted(set(atoms.get_chemical_symbols()))))
    cfg.update(
        {
            key.CUTOFF: 5.0,
            key.NODE_FEATURE_MULTIPLICITY: opts["channels"],
            key.LMAX: opts["lmax"],
            key.NUM_CONVOLUTION: opts["layers"],
            key.IS_PARITY: False,
            key.SHIFT: 0.0,
            key.SCALE: 1.0,
            key.CONV_DENOMINATOR: 30.0,
            key.CONVOLUTION_WEIGHT_NN_HIDDEN_NEURONS: [32, 32],
            key.SELF_CONNECTION_TYPE: "linear",
        }
    )
    model = build_E3_equivariant_model(cfg)
    return SevenNetCalculator(model, file_type="model_instance", device="cpu", sevennet_config=cfg), _params(model)


def _ace(atoms: Any, opts: dict[str, Any]) -> tuple[Any, int]:
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    from ace_jax import ACECalculator
    from ace_jax.basis.model import build_model

    basis = build_model(sorted(set(atoms.get_chemical_symbols())), opts["order"], opts["degree"], rcut=5.0)
    n = len(basis.aa_sig) if getattr(basis, "aa_sig", None) is not None else -1
    return ACECalculator(basis.model, basis.meta), n


def _params(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def measure(name: str, atoms: Any, steps: int, student: str | None) -> dict[str, Any]:
    """One row, in this process: load the model, a warm-up step, ``steps`` timed velocity-Verlet steps."""
    import resource

    import numpy as np
    from ase.md import velocitydistribution as vd
    from ase.md.verlet import VelocityVerlet
    from ase.units import fs

    from cellsim.engines.mlip import make_calculator, set_threads

    set_threads(1)
    extra: dict[str, Any] = {}
    if name == "teacher":
        calc, _ = make_calculator("chgnet", str(TEACHER), "cpu", forces_only=True)
        size = -1
    elif name == "student":
        from cellsim.engines.student import student_calculator

        assert student is not None
        calc, _ = student_calculator(student)
        card = json.loads((Path(student) / "card.json").read_text())
        size = int(card["model"]["parameters"])
        err = card["errors_after"]
        extra = {
            "mae_300": err.get("heldout/md-full-300K", {}).get("force_mae_eV_A"),
            "mae_450": err.get("heldout/md-full-450K", {}).get("force_mae_eV_A"),
        }
    else:
        family, opts = CANDIDATES[name]
        calc, size = {"mace": _mace, "nequip": _nequip, "ace": _ace}[family](atoms, opts)
    work = atoms.copy()
    thermalize = getattr(vd, "thermalize_momenta", None) or vd.MaxwellBoltzmannDistribution
    thermalize(work, temperature_K=TEMPERATURE_K, rng=np.random.default_rng(SEED))
    vd.Stationary(work)
    work.calc = calc
    dyn = VelocityVerlet(work, timestep=DT_FS * fs)
    t0 = time.perf_counter()
    dyn.run(1)
    warm = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        dyn.run(1)
        times.append(time.perf_counter() - t0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "name": name,
        "size": size,
        "s_per_step": float(np.median(times)),
        "warmup_s": warm,
        "steps": steps,
        "peak_mb": peak_mb,
        **extra,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--poscar", help="the interface POSCAR (default: build the fitted study's)")
    ap.add_argument("--student", help="a trained student folder (cellsim.engines.student)")
    ap.add_argument("--steps", type=int, default=10, help="timed MD steps per candidate")
    ap.add_argument("--teacher-steps", type=int, default=4, help="timed MD steps of the teacher")
    ap.add_argument("--only", help="one row, in this process (prints JSON; used by the table run)")
    ap.add_argument("--record", action="store_true", help="write the student's measured speed into its card")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()

    if args.only:
        atoms = interface_atoms(args.poscar)
        steps = args.teacher_steps if args.only == "teacher" else args.steps
        print("ROW " + json.dumps(measure(args.only, atoms, steps, args.student)))
        return

    poscar = args.poscar
    if poscar is None:
        tmp = Path(tempfile.mkdtemp(prefix="bench-student-"))
        from ase.io import write

        write(tmp / "POSCAR", interface_atoms(None), format="vasp", direct=True)
        poscar = str(tmp / "POSCAR")
    names = ["teacher", *CANDIDATES, *(["student"] if args.student else [])]
    try:
        import ace_jax  # noqa: F401
    except ImportError:
        names = [n for n in names if not n.startswith("ace-")]
    rows = []
    for name in names:
        cmd = [sys.executable, __file__, "--only", name, "--poscar", poscar, "--steps", str(args.steps)]
        cmd += ["--teacher-steps", str(args.teacher_steps)]
        if args.student:
            cmd += ["--student", args.student]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        line = next((x for x in res.stdout.splitlines() if x.startswith("ROW ")), None)
        if line is None:
            print(f"{name}: failed\n{res.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(line[4:]))
        print(f"  {name}: {rows[-1]['s_per_step']:.4f} s/step", file=sys.stderr, flush=True)
    teacher = next((r for r in rows if r["name"] == "teacher"), None)
    t_ref = teacher["s_per_step"] if teacher else float("nan")
    load = os.getloadavg()[0]
    print(f"328-atom Li6PS5Cl/In interface, velocity Verlet 2 fs, 1 thread, median of timed steps; load {load:.1f}")
    head = (
        f"{'model':<22} {'params/basis':>12} {'s/step':>8} {'us/atom-step':>13} {'x teacher':>9} {'peak MB':>8} "
        f"{'MAE300':>7} {'MAE450':>7}"
    )
    print(head)
    print("-" * len(head))
    natoms = 328
    for r in rows:
        m3 = "" if r.get("mae_300") is None else f"{r['mae_300']:.3f}"
        m4 = "" if r.get("mae_450") is None else f"{r['mae_450']:.3f}"
        print(
            f"{r['name']:<22} {r['size']:>12} {r['s_per_step']:>8.4f} {1e6 * r['s_per_step'] / natoms:>13.0f} "
            f"{t_ref / r['s_per_step']:>9.1f} {r['peak_mb']:>8.0f} {m3:>7} {m4:>7}"
        )
    print("MAE300/450: the student's force MAE (eV/A) against the teacher on held-out 300 K / 450 K trajectories")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    student_row = next((r for r in rows if r["name"] == "student"), None)
    if args.record and args.student and student_row and teacher:
        from cellsim.engines.student import record_speed

        record_speed(
            args.student,
            {
                "s_per_step": student_row["s_per_step"],
                "teacher_s_per_step": t_ref,
                "speedup": t_ref / student_row["s_per_step"],
                "peak_mb": student_row["peak_mb"],
                "teacher_peak_mb": teacher["peak_mb"],
                "system": "328-atom Li6PS5Cl/In interface (workflows/li6ps5cl_in_fitted.yaml)",
                "threads": 1,
                "load_average": os.getloadavg()[0],
                "measured_by": "bench/bench_student.py",
            },
        )


if __name__ == "__main__":
    main()
