"""Benchmark: N replicas of the interface MD, one after another (ASE, as cellsim runs them) vs batched (torch-sim).

Project issue 14 asks whether running N replicas of the same interface as *one* batched MD (every step one
model call on a graph holding all N copies) gives more trajectory per hour than N separate runs. Both sides
use the same atoms, model weights, temperature and time step; each replica k starts from Maxwell-Boltzmann
velocities seeded with ``seed + k``:

  * sequential: what ``cellsim run --replica k`` does for k = 0..N-1 today: ASE ``NoseHooverChainNVT``
    (3 thermostats, tdamp = 40 dt) driving cellsim's calculator (``make_calculator``), one replica after
    the other (no output files: ``bench/bench_engine.py`` measures that overhead, < 5 %);
  * batched: torch-sim's batched NVT over one ``SimState`` of N systems. The integrator is
    ``nvt_langevin`` (gamma = 1/tdamp): torch-sim 0.3.0's ``nvt_nose_hoover`` keeps one chain for the whole
    batch and fails for N > 1 (checked below), so Langevin is the closest torch-sim NVT that batches;
    the integrator's cost is negligible next to the model call either way.
    Models: SevenNet through torch-sim's own ``SevenNetModel`` wrapper (torch-sim 0.3.0 imports a name
    that sevenn 0.13 no longer has; a one-line alias makes it import); CHGNet, which torch-sim 0.3.0 does
    not wrap (its CHGNet wrapper needs torch-sim >= 0.4, Python >= 3.12), through a small ModelInterface
    adapter below that makes one CHGNet call on the batch of N crystal graphs.

Figures: ``s/step`` is the wall time to advance all N replicas by one step (sequential: N single steps);
``ps/day/rep`` is the simulated time each replica gets per day when all N are wanted (dt / (s/step));
``ps/day tot`` = N x that, the trajectory produced per day; ``batch x`` = sequential s/step / batched
s/step for the same model, cell, threads and N (> 1: the batched run wins); ``scale`` = N x batched s/step
at N = 1 / batched s/step at N, the gain from batching itself (> 1: one call on N copies is cheaper than
N calls). The two differ at N = 1 because cellsim's CHGNet calculator also computes stress and magnetic
moments every step (a second backward pass), which NVT does not need and the batched adapter skips.

Run: ``.venv/bin/python bench/bench_replicas.py`` (CHGNet + SevenNet, 328-atom interface, N = 1 2 4 8,
1 and 2 torch threads, 2 warm-up + 5 timed steps); ``--quick`` (144-atom cell, N = 1 2, 1 thread, CHGNet,
1 + 2 steps) for a smoke run; ``--device cuda`` (or ``auto``) on a GPU machine, unchanged.
Needs torch-sim-atomistic (``pip install torch-sim-atomistic``; 0.3.0 is the last release for Python 3.11).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad", category=UserWarning)
warnings.filterwarnings("ignore", message="No tensor product accelerator", category=UserWarning)

TEMPERATURE_K = 300.0
DT_FS = 2.0
TDAMP_STEPS = 40  # cellsim's default thermostat time constant, in time steps
SEED = 42


# --------------------------------------------------------------------------- systems


def build_systems(which: str, tmp: Path) -> dict[str, Any]:
    """label -> ase.Atoms: the paper's interface (328 atoms) and/or the thinnest one cellsim builds (144 atoms)."""
    from ase.io import read

    from cellsim.core.resources import bundled_workflows
    from cellsim.stages import build

    out: dict[str, Any] = {}
    if which in ("interface", "both"):
        build("li6ps5cl_in", tmp / "interface")
        out["interface"] = read(tmp / "interface" / "interface" / "POSCAR", format="vasp")
    if which in ("small", "both"):
        # same study, one Li6PS5Cl layer on the thinnest In slab: 144 atoms
        text = bundled_workflows()["li6ps5cl_in"].read_text()
        for a, b in (
            ("min_thickness: 10.0", "min_thickness: 4.0"),
            ("min_thickness: 8.0", "min_thickness: 3.0"),
            ("min_atoms: 250", "min_atoms: 60"),
            ("max_atoms: 450", "max_atoms: 200"),
            ("name: li6ps5cl_in", "name: li6ps5cl_in_small"),
        ):
            assert a in text, a
            text = text.replace(a, b)
        study = tmp / "small.yaml"
        study.write_text(text)
        build(study, tmp / "small")
        out["small"] = read(tmp / "small" / "interface" / "POSCAR", format="vasp")
    return out


def thermalized(atoms: Any, seed: int) -> Any:
    """A copy of ``atoms`` with cellsim's starting velocities (seeded Maxwell-Boltzmann, zero momentum)."""
    import numpy as np
    from ase.md import velocitydistribution as vd

    a = atoms.copy()
    thermalize = getattr(vd, "thermalize_momenta", None) or vd.MaxwellBoltzmannDistribution
    thermalize(a, temperature_K=TEMPERATURE_K, rng=np.random.default_rng(seed))
    vd.Stationary(a)
    return a


# --------------------------------------------------------------------------- sequential (ASE, cellsim's way)


def ase_calculator(engine: str, device: str) -> Any:
    """cellsim's calculator; on a GPU the same model and class with the device changed (cellsim pins CPU)."""
    from cellsim.engines.mlip import _CHGNET_MODELS, _SEVENNET_MODELS, make_calculator

    if device == "cpu":
        return make_calculator(engine)[0]
    if engine in _CHGNET_MODELS:
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        model = CHGNet.load(model_name=_CHGNET_MODELS[engine], verbose=False)
        return CHGNetCalculator(model, use_device=device, on_isolated_atoms="ignore")
    from sevenn.calculator import SevenNetCalculator

    name, modal, _ = _SEVENNET_MODELS[engine]
    kwargs: dict[str, Any] = {"modal": modal} if modal else {}
    return SevenNetCalculator(name, device=device, **kwargs)


def lean_chgnet(calc: Any) -> Any:
    """cellsim's CHGNet calculator asking the model for energy and forces only (task 'ef'), same weights.

    CHGNetCalculator always runs task 'efsm': stress needs a second backward pass that NVT never uses.
    """
    from chgnet.model.dynamics import CHGNetCalculator

    class EFOnly(CHGNetCalculator):
        def calculate(self, atoms: Any = None, properties: Any = None, system_changes: Any = None, task: Any = "ef"):
            super().calculate(atoms, properties, system_changes, task="ef")

    return EFOnly(calc.model, use_device=str(calc.device), on_isolated_atoms="ignore")


def run_sequential(calc: Any, atoms: Any, n: int, warmup: int, steps: int, device: str) -> float:
    """Seconds per step of N replicas run one after another (sum over the replicas of their timed steps)."""
    from ase.md.nose_hoover_chain import NoseHooverChainNVT
    from ase.units import fs

    total = 0.0
    for k in range(n):
        a = thermalized(atoms, SEED + k)
        a.calc = calc
        dyn = NoseHooverChainNVT(a, timestep=DT_FS * fs, temperature_K=TEMPERATURE_K, tdamp=TDAMP_STEPS * DT_FS * fs)
        dyn.run(warmup if k == 0 else min(warmup, 1))  # the first step evaluates the starting forces too
        _sync(device)
        t0 = time.perf_counter()
        dyn.run(steps)
        _sync(device)
        total += time.perf_counter() - t0
    return total / steps


# --------------------------------------------------------------------------- batched (torch-sim)


def _torch_sim() -> Any:
    # torch-sim 0.3.0's SevenNet wrapper imports sevenn.calculator.torch_script_type, gone in sevenn 0.13
    import sevenn.calculator as sevenn_calc
    import torch

    if not hasattr(sevenn_calc, "torch_script_type"):
        sevenn_calc.torch_script_type = torch.jit.ScriptModule  # type: ignore[attr-defined]
    import torch_sim

    return torch_sim


def chgnet_batch_model(engine: str, device: str) -> Any:
    """A torch-sim ModelInterface that evaluates all systems of a state in one CHGNet call."""
    import torch
    from chgnet.model import CHGNet
    from pymatgen.core import Lattice, Structure
    from torch_sim.models.interface import ModelInterface

    from cellsim.engines.mlip import _CHGNET_MODELS

    class CHGNetBatch(ModelInterface):
        def __init__(self) -> None:
            super().__init__()
            self._device = torch.device(device)
            self._dtype = torch.float32
            self._compute_forces = True
            self._compute_stress = False
            self.model = CHGNet.load(model_name=_CHGNET_MODELS[engine], verbose=False).to(self._device).eval()

        def forward(self, state: Any, **_: Any) -> dict[str, torch.Tensor]:
            pos = state.positions.detach().cpu().double().numpy()
            cells = state.cell.detach().cpu().double().numpy()  # torch-sim keeps lattice vectors as columns
            z = state.atomic_numbers.cpu().numpy()
            sizes = torch.bincount(state.system_idx).tolist()
            graphs, start = [], 0
            for b, nb in enumerate(sizes):
                s = Structure(
                    Lattice(cells[b].T), z[start : start + nb], pos[start : start + nb], coords_are_cartesian=True
                )
                graphs.append(self.model.graph_converter(s).to(self._device))
                start += nb
            pred = self.model(graphs, task="ef")
            energy = pred["e"].detach()
            if self.model.is_intensive:
                energy = energy * torch.tensor(sizes, device=energy.device, dtype=energy.dtype)
            forces = torch.cat([f.detach() for f in pred["f"]]).to(state.positions.dtype)
            return {"energy": energy.to(state.positions.dtype), "forces": forces}

    return CHGNetBatch()


def sevennet_batch_model(engine: str, device: str) -> Any:
    from sevenn.calculator import SevenNetCalculator

    from cellsim.engines.mlip import _SEVENNET_MODELS

    _torch_sim()
    from torch_sim.models.sevennet import SevenNetModel

    name, modal, _ = _SEVENNET_MODELS[engine]
    # a model of its own: the wrapper switches it to batch mode, which an ASE calculator must not share
    kwargs: dict[str, Any] = {"modal": modal} if modal else {}
    raw = SevenNetCalculator(name, device="cpu", **kwargs).model
    return SevenNetModel(raw, modal=modal, device=device)


def batch_model(engine: str, device: str) -> Any:
    _torch_sim()
    return chgnet_batch_model(engine, device) if engine.startswith("chgnet") else sevennet_batch_model(engine, device)


def batched_state(atoms: Any, n: int, device: str) -> Any:
    """One torch-sim MD state holding N copies of ``atoms``, replica k with the velocities seeded SEED + k."""
    import numpy as np
    import torch
    from torch_sim.integrators import MDState

    reps = [thermalized(atoms, SEED + k) for k in range(n)]
    dev, dt = torch.device(device), torch.float32
    # ASE momenta are amu*Å/(ASE time); torch-sim's are amu*Å/(Å*sqrt(amu/eV)) = ASE's, both eV-Å-amu units
    mom = np.concatenate([a.get_momenta() for a in reps])
    nat = len(atoms)
    return MDState(
        positions=torch.tensor(np.concatenate([a.positions for a in reps]), dtype=dt, device=dev),
        masses=torch.tensor(np.concatenate([a.get_masses() for a in reps]), dtype=dt, device=dev),
        cell=torch.tensor(np.stack([a.cell.array.T for a in reps]), dtype=dt, device=dev),
        pbc=bool(atoms.pbc.all()),
        atomic_numbers=torch.tensor(np.concatenate([a.numbers for a in reps]), dtype=torch.int64, device=dev),
        system_idx=torch.arange(n, device=dev).repeat_interleave(nat),
        momenta=torch.tensor(mom, dtype=dt, device=dev),
        energy=torch.zeros(n, dtype=dt, device=dev),
        forces=torch.zeros(n * nat, 3, dtype=dt, device=dev),
    )


def run_batched(model: Any, atoms: Any, n: int, warmup: int, steps: int, device: str) -> float:
    """Seconds per batched step that advances all N replicas."""
    import torch

    ts = _torch_sim()
    state = batched_state(atoms, n, device)
    units = ts.units.MetalUnits
    dt = torch.tensor(DT_FS * 1e-3 * units.time, device=state.device, dtype=state.dtype)
    kT = torch.tensor(TEMPERATURE_K * units.temperature, device=state.device, dtype=state.dtype)
    gamma = 1.0 / (TDAMP_STEPS * dt)
    init, update = ts.nvt_langevin(model=model, dt=dt, kT=kT, gamma=gamma, seed=SEED)
    torch.manual_seed(SEED)
    state = init(state)
    for _ in range(warmup):
        state = update(state)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        state = update(state)
    _sync(device)
    return (time.perf_counter() - t0) / steps


def nose_hoover_batches(model: Any, atoms: Any, device: str) -> str:
    """Whether torch-sim's nvt_nose_hoover runs a batch of 2 systems (one init + one step)."""
    import torch

    ts = _torch_sim()
    from torch_sim.integrators.nvt import nvt_nose_hoover

    state = batched_state(atoms, 2, device)
    units = ts.units.MetalUnits
    dt = torch.tensor(DT_FS * 1e-3 * units.time, device=state.device, dtype=state.dtype)
    kT = torch.tensor(TEMPERATURE_K * units.temperature, device=state.device, dtype=state.dtype)
    init, update = nvt_nose_hoover(model=model, dt=dt, kT=kT)
    try:
        update(
            init(
                ts.SimState(
                    positions=state.positions,
                    masses=state.masses,
                    cell=state.cell,
                    pbc=state.pbc,
                    atomic_numbers=state.atomic_numbers,
                    system_idx=state.system_idx,
                )
            )
        )
    except Exception as exc:  # reported, not handled
        return f"no ({type(exc).__name__}: {str(exc)[:70]})"
    return "yes"


# --------------------------------------------------------------------------- driver


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


@dataclass
class Row:
    model: str
    system: str
    natoms: int
    threads: int
    n: int
    seq: float | None
    bat: float | None
    note: str = ""
    lean: float | None = None  # CHGNet sequential with task 'ef' (N = 1 only)


def _timed(fn: Any, *args: Any) -> tuple[float | None, str]:
    try:
        return fn(*args), ""
    except (RuntimeError, MemoryError) as exc:  # out of memory on a big batch: report, go on
        gc.collect()
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--sizes", default="1,2,4,8", help="replica counts N (comma-separated)")
    p.add_argument("--threads", default="1,2", help="torch CPU thread counts (comma-separated)")
    p.add_argument("--models", default="chgnet,sevennet", help="cellsim engine names (comma-separated)")
    p.add_argument(
        "--system",
        default="interface",
        choices=["interface", "small", "both"],
        help="interface: the paper's 328 atoms; small: 144 atoms (1 Li6PS5Cl layer)",
    )
    p.add_argument("--steps", type=int, default=5, help="timed MD steps per measurement")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before each measurement")
    p.add_argument("--quick", action="store_true", help="smoke run: small cell, N = 1 2, 1 thread, CHGNet, 1+2 steps")
    args = p.parse_args()
    if args.quick:
        args.system, args.sizes, args.threads, args.models = "small", "1,2", "1", "chgnet"
        args.steps, args.warmup = 2, 1

    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    sizes = [int(x) for x in args.sizes.split(",")]
    threads = [int(x) for x in args.threads.split(",")]
    models = [m.strip() for m in args.models.split(",")]
    _torch_sim()

    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    rows: list[Row] = []
    nh_note = ""
    t_start = time.perf_counter()
    try:
        systems = build_systems(args.system, tmp)
        for engine in models:
            torch.set_num_threads(threads[0])
            calc = ase_calculator(engine, device)
            lean = lean_chgnet(calc) if engine.startswith("chgnet") else None
            bmodel = batch_model(engine, device)
            if not nh_note:
                first = next(iter(systems.values()))
                nh_note = nose_hoover_batches(bmodel, first, device)
            for label, atoms in systems.items():
                for th in threads:
                    torch.set_num_threads(th)
                    for n in sizes:
                        seq, e1 = _timed(run_sequential, calc, atoms, n, args.warmup, args.steps, device)
                        bat, e2 = _timed(run_batched, bmodel, atoms, n, args.warmup, args.steps, device)
                        rows.append(Row(engine, label, len(atoms), th, n, seq, bat, e1 or e2))
                        if n == 1 and engine.startswith("chgnet"):
                            rows[-1].lean = _timed(run_sequential, lean, atoms, 1, args.warmup, args.steps, device)[0]
                        r = rows[-1]
                        print(
                            f"  ... {engine} {label} threads={th} N={n}: seq {r.seq} s/step, batched {r.bat} s/step"
                            f" {r.note}",
                            flush=True,
                        )
            del calc, bmodel, lean
            gc.collect()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    dev_name = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU ({os.cpu_count()} cores)"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print()
    print(
        f"N replicas of NVT {TEMPERATURE_K:.0f} K, dt {DT_FS} fs, on {dev_name}; torch {torch.__version__}, "
        f"torch-sim {_version('torch-sim-atomistic')}; {args.warmup} warm-up + {args.steps} timed steps; "
        f"load average {load:.2f}"
    )
    print(
        "sequential = ASE NoseHooverChainNVT + cellsim calculator, replicas one after another; "
        "batched = torch-sim nvt_langevin, one model call for all N"
    )
    trio = f"{'ps/day/rep':>10} {'ps/day tot':>10}"
    hdr = (
        f"{'model':<9} {'atoms':>5} {'thr':>3} {'N':>2} | {'seq s/step':>10} {trio} | "
        f"{'bat s/step':>10} {trio} | {'batch x':>7} {'scale':>5}"
    )
    print(hdr)
    print("-" * len(hdr))

    def cols(sec: float | None, n: int) -> str:
        if sec is None:
            return f"{'-':>10} {'-':>10} {'-':>10}"
        per_rep = 86400.0 / sec * DT_FS * 1e-3
        return f"{sec:10.3f} {per_rep:10.2f} {n * per_rep:10.2f}"

    one = {(r.model, r.natoms, r.threads): r.bat for r in rows if r.n == 1}
    for r in rows:
        gain = f"{r.seq / r.bat:7.2f}" if r.seq and r.bat else f"{'-':>7}"
        b1 = one.get((r.model, r.natoms, r.threads))
        scale = f"{r.n * b1 / r.bat:5.2f}" if b1 and r.bat else f"{'-':>5}"
        head = f"{r.model:<9} {r.natoms:>5} {r.threads:>3} {r.n:>2}"
        print(f"{head} | {cols(r.seq, r.n)} | {cols(r.bat, r.n)} | {gain} {scale}" + (f"  {r.note}" if r.note else ""))
    for r in rows:
        if r.lean and r.seq:
            print(
                f"{r.model} {r.natoms} atoms, {r.threads} thread(s), N = 1, sequential ASE with task 'ef' (no stress,"
                f" no magmoms): {r.lean:.3f} s/step, {r.seq / r.lean:.2f}x cellsim's calculator today"
            )
    print(f"torch-sim nvt_nose_hoover with 2 systems in a batch: {nh_note}")
    print(f"total benchmark time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
