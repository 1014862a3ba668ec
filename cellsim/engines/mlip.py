"""The embedded engine: the study's NVT MD on a universal machine-learned potential, through ASE.

Physics: a short fixed-cell FIRE relaxation of the interface (so NVT does not start hundreds of kelvin
hot), then NVT at ``md.temperature`` with ``md.timestep_fs`` using ASE's Nose-Hoover chain (3 thermostats,
time constant ``engine.tdamp_fs``, default 40 time steps: the thermostat period of VASP's SMASS = 0).
Velocities start from a seeded Maxwell-Boltzmann distribution with zero total momentum. Atoms fixed by
selective dynamics in the interface POSCAR stay fixed.

Files (paths from :class:`cellsim.config.rundir.RunDir`): the relaxation (CONTCAR, relax.log), then one folder per
segment with POSCAR (start), XDATCAR (every NBLOCK steps), OSZICAR (every step), CONTCAR with velocities
(at the end), engine.json and checkpoint.npz. A checkpoint holds positions, momenta, thermostat variables
and the byte lengths of XDATCAR and OSZICAR; running again after a kill truncates both files to those
lengths and continues from there, so no frame is lost or written twice. Asking for more time extends the
last segment up to the segment length, then opens new segments, each starting from the previous one's
final state.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from cellsim.config.engines import MLIP_ENGINES, MODELS, mlip_for
from cellsim.config.rundir import RunDir, SegmentPlan, segment_parts
from cellsim.core.errors import CellsimError, RunDirError
from cellsim.core.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from cellsim.io.deviation import DEVIATION_FILE, DEVIATION_HEADER
from cellsim.io.vaspfiles import oszicar_line, species_blocks, xdatcar_frame, xdatcar_header

if TYPE_CHECKING:
    from ase import Atoms
    from ase.calculators.calculator import Calculator

    from cellsim.config.study import Study
    from cellsim.engines.committee import DeviationMonitor

# the embedded engines: every offline model of the registry, and CP2K through ASE's cp2k_shell
ENGINES = (*MLIP_ENGINES, "cp2k")
# engine name -> CHGNet.load model_name / (sevenn pretrained name, modal (fidelity head), label)
_CHGNET_MODELS = {m.name: m.load_name for m in MODELS if m.family == "CHGNet"}
_SEVENNET_MODELS: dict[str, tuple[str, str | None, str]] = {
    m.name: (m.load_name, m.modal, f"SevenNet-{m.version}") for m in MODELS if m.family == "SevenNet"
}


class EngineError(CellsimError):
    """The embedded engine cannot start or continue."""


@dataclass
class RunSummary:
    engine: str
    steps_total: int
    steps_run: int
    time_ps: float
    seconds: float
    segments: list[str]

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / self.steps_run if self.steps_run else 0.0


def set_threads(threads: int) -> None:
    """Torch threads (1 by default: two spinning threads on a shared 2-core machine ran 3-30x slower)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(threads)


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without a GPU is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise EngineError("--device cuda: torch sees no CUDA GPU here (use --device cpu or auto)")
    if device not in ("cpu", "cuda"):
        raise EngineError(f"--device {device!r}: expected auto, cpu or cuda")
    return device


def make_calculator(
    engine: str, model_path: str | None = None, device: str = "cpu", forces_only: bool = False
) -> tuple[Calculator, dict[str, Any]]:
    """An ASE calculator for ``engine`` and a description of the model (for engine.json).

    ``model_path`` replaces the bundled weights by a model file of the same family (for a multi-fidelity
    SevenNet engine the same head is used); ``device`` is ``cpu`` or ``cuda`` (see :func:`resolve_device`).
    ``forces_only`` (NVT MD): CHGNet is asked for energy and forces, not stress and magnetic moments, whose
    extra backward pass NVT never uses (1.5x faster per step on the 328-atom interface, bench/bench_replicas.py).
    """
    import warnings

    if engine in _CHGNET_MODELS:
        # CHGNet 0.3 converts a grad-tracking tensor once per call; harmless, but it floods the output
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad", category=UserWarning)
        import contextlib
        import io

        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        # CHGNet prints "CHGNet v0.3.0 initialized with ..." whatever `verbose` says: the console is cellsim's
        with contextlib.redirect_stdout(io.StringIO()):
            if model_path:
                model = CHGNet.from_file(model_path, verbose=False)
            else:
                model = CHGNet.load(model_name=_CHGNET_MODELS[engine], verbose=False)
        info = {
            "engine": engine,
            "model": model_path or f"CHGNet {getattr(model, 'version', '')} (bundled)",
            "device": device,
        }
        cls = CHGNetCalculator
        if forces_only:

            class _EnergyForces(CHGNetCalculator):
                def calculate(
                    self,
                    atoms: Any = None,
                    properties: Any = None,
                    system_changes: Any = None,
                    task: Any = "ef",
                ) -> None:
                    super().calculate(atoms, properties, system_changes, task="ef")

            cls = _EnergyForces
        # CHGNetCalculator prints "CHGNet will run on cpu" on every construction; cellsim's info says the device
        with contextlib.redirect_stdout(io.StringIO()):
            calc = cls(model, use_device=device, on_isolated_atoms="ignore")
        return calc, info
    if engine in _SEVENNET_MODELS:
        # sevenn warns on every calculator that no GPU tensor-product accelerator is enabled (CPU run)
        warnings.filterwarnings("ignore", message="No tensor product accelerator", category=UserWarning)
        from sevenn.calculator import SevenNetCalculator

        name, modal, label = _SEVENNET_MODELS[engine]
        kwargs: dict[str, Any] = {"modal": modal} if modal else {}
        return SevenNetCalculator(model_path or name, device=device, **kwargs), {
            "engine": engine,
            "model": model_path or f"{label} (bundled)",
            "device": device,
        }
    raise EngineError(f"engine '{engine}' is not an embedded engine (choose one of: {', '.join(ENGINES)})")


def parse_time_ps(text: str) -> float:
    """'2ps', '500 fs', '0.5' (ps) -> ps (see :mod:`cellsim.core.units`)."""
    from cellsim.core.units import QuantityError
    from cellsim.core.units import parse_time_ps as parse

    try:
        return parse(text)
    except QuantityError:
        raise EngineError(f"--time {text!r}: expected a duration such as 2ps or 500fs") from None


# --------------------------------------------------------------------------- state and checkpoints


class ThermostatState:
    """Save and restore the state of ASE's NoseHooverChainNVT: the one place that touches its internals.

    ASE keeps the integrator's positions/momenta and the chain variables in private attributes (ASE 3.23-3.26
    names checked here). Resuming must restore them exactly; if a new ASE renames them, :meth:`check`
    fails loudly instead of resuming with a reset thermostat.
    """

    ATTRS = ("_q", "_p", "_thermostat")
    CHAIN = ("_eta", "_p_eta")

    @classmethod
    def check(cls, dyn: Any) -> None:
        import ase

        missing = [a for a in cls.ATTRS if not hasattr(dyn, a)]
        th = getattr(dyn, "_thermostat", None)
        missing += [f"_thermostat.{a}" for a in cls.CHAIN if th is None or not hasattr(th, a)]
        if missing:
            raise EngineError(
                f"ASE {ase.__version__}: NoseHooverChainNVT has no {', '.join(missing)}; cellsim cannot checkpoint "
                "its thermostat exactly with this ASE (pin ase to a version cellsim supports, see pyproject.toml)"
            )

    @classmethod
    def capture(cls, dyn: Any) -> dict[str, np.ndarray]:
        cls.check(dyn)
        return {"eta": np.array(dyn._thermostat._eta), "p_eta": np.array(dyn._thermostat._p_eta)}

    @classmethod
    def restore(cls, dyn: Any, atoms: Atoms, state: dict[str, Any] | None) -> None:
        """Point the integrator at ``atoms``' positions/momenta and, if given, the saved chain variables."""
        cls.check(dyn)
        dyn._q = atoms.get_positions()
        dyn._p = atoms.get_momenta()
        if state is not None:
            dyn._thermostat._eta = np.array(state["eta"], dtype=float)
            dyn._thermostat._p_eta = np.array(state["p_eta"], dtype=float)


def nose_hoover_nvt(atoms: Atoms, timestep: float, temperature_K: float, tdamp: float) -> Any:
    """ASE's ``NoseHooverChainNVT`` (3 thermostats) that honours the atoms' constraints (selective dynamics).

    ASE 3.29's integrator keeps its own momenta and never reads back what ``FixAtoms`` does to them: fixed
    atoms are put back in place but gather momentum from their forces, and the chain thermostats count it as
    heat over 3N degrees of freedom. Measured on a 96-atom EMT Cu slab with 32 atoms fixed (300 K, 2 fs, tdamp
    80 fs): the moving atoms fell to 5 K; on the 328-atom Li6PS5Cl/In slab with two In planes fixed (CHGNet)
    to 212 K. Here the integrator's positions and momenta are re-read after each update, so the constraints act
    on them, and the chain targets the degrees of freedom the constraints leave (as ``Atoms.get_temperature``
    counts them). Without constraints both are exact no-ops: the trajectory is ASE's to the last bit.
    """
    from ase.md.nose_hoover_chain import NoseHooverChainNVT, NoseHooverChainThermostat

    class _Constrained(NoseHooverChainNVT):
        def _update_atoms(self) -> None:
            super()._update_atoms()
            if self.atoms.constraints:
                self._q = self.atoms.get_positions()
                self._p = self.atoms.get_momenta()

        def _integrate_p(self, delta: float) -> None:
            super()._integrate_p(delta)
            if self.atoms.constraints:  # the kick, constrained before the thermostat sees it
                self.atoms.set_momenta(self._p)
                self._p = self.atoms.get_momenta()

    chain = 3  # thermostats in the chain (ASE's default; engine.json says so)
    dyn = _Constrained(atoms, timestep=timestep, temperature_K=temperature_K, tdamp=tdamp, tchain=chain)
    removed = sum(c.get_removed_dof(atoms) for c in atoms.constraints)
    if removed:
        ThermostatState.check(dyn)
        # 3 N' k T with N' = (3N - removed) / 3: the thermostat's only use of the atom count
        dyn._thermostat = NoseHooverChainThermostat(
            num_atoms_global=(3 * len(atoms) - removed) / 3,
            masses=dyn.masses,
            temperature_K=temperature_K,
            tdamp=tdamp,
            tchain=chain,
        )
    return dyn


def _save_checkpoint(
    seg: Path, atoms: Atoms, dyn: Any, steps_done: int, xd_len: int, osz_len: int, dev_len: int | None = None
) -> None:
    import io

    buf = io.BytesIO()
    arrays: dict[str, Any] = {
        "positions": atoms.get_positions(),
        "momenta": atoms.get_momenta(),
        **ThermostatState.capture(dyn),
        "steps_done": steps_done,
        "xdatcar_bytes": xd_len,
        "oszicar_bytes": osz_len,
    }
    if dev_len is not None:
        arrays["deviation_bytes"] = dev_len
    np.savez(buf, **arrays)
    atomic_write_bytes(seg / "checkpoint.npz", buf.getvalue())


def _load_checkpoint(seg: Path) -> dict[str, Any]:
    with np.load(seg / "checkpoint.npz") as z:
        return {k: z[k] for k in z.files}


# what VASP leaves in a segment folder (``cellsim inputs`` writes only INCAR, POSCAR, KPOINTS, POTCAR)
_VASP_OUTPUTS = ("XDATCAR", "OSZICAR", "OUTCAR", "vasprun.xml")


def _segment_done(seg: Path, target: int) -> bool:
    """The segment's checkpoint holds ``target`` steps: the run skips it without writing."""
    return (seg / "checkpoint.npz").is_file() and int(_load_checkpoint(seg)["steps_done"]) >= target


def _check_own_segment(seg: Path, engine: str) -> None:
    """Refuse to write into ``seg`` when it holds another engine's MD output.

    The embedded engine writes ``engine.json`` before its XDATCAR/OSZICAR, so outputs without it are
    VASP's (or a foreign tool's); an ``engine.json`` naming another embedded engine is that engine's.
    """
    info_file = seg / "engine.json"
    if info_file.is_file():
        try:
            owner = json.loads(info_file.read_text()).get("engine")
        except (OSError, ValueError, AttributeError) as exc:
            raise EngineError(f"{info_file}: unreadable ({exc}); cannot tell which engine wrote {seg}") from None
        if owner not in (None, engine):
            raise EngineError(
                f"{seg}: holds output of engine '{owner}' (see {info_file}); engine '{engine}' does not write "
                f"over it (run '{owner}' again, or use another run directory)"
            )
        return
    found = [f for f in _VASP_OUTPUTS if (seg / f).exists()] + [p.name for p in segment_parts(seg)]
    if found:
        raise EngineError(
            f"{seg}: holds VASP output ({', '.join(found)}) and no engine.json of the embedded engine; the "
            "embedded engine does not overwrite another engine's output (use another run directory, or "
            f"remove {seg} to discard that output)"
        )


def _read_interface(rd: RunDir) -> Atoms:
    from cellsim.io.poscar import read_poscar_atoms

    poscar = rd.interface_poscar
    if not poscar.is_file():
        raise RunDirError(f"{poscar}: no interface yet; run `cellsim build STUDY -o {rd.root}` first")
    return read_poscar_atoms(poscar)


# --------------------------------------------------------------------------- the run


def md_engine_name(study: Study, engine: str | None = None) -> str:
    """The engine an embedded MD runs: ``engine``, else the study's (its stand-in model if it says ``vasp``)."""
    name = study.engine.name
    return engine or (name if name == "cp2k" else mlip_for(name))


@dataclass
class _MDRun:
    """What the segments of one :func:`run_mlip` call share: the atoms, the run's fixed parts and its counters."""

    study: Study
    atoms: Atoms
    info: dict[str, Any]
    monitor: DeviationMonitor | None
    header: str  # the XDATCAR title of every segment
    names: list[str]
    counts: list[int]
    tdamp: float  # ASE time units
    seed: int
    replica: int | None
    total: int
    progress: Callable[[int, int, float], None] | None
    stop_after: int | None
    done_total: int = 0  # MD steps in the segments before the current one
    run_steps: int = 0  # steps made by this call
    seconds: float = 0.0


def _calculator(
    rd: RunDir,
    study: Study,
    name: str,
    student: str | None,
    atoms: Atoms,
    threads: int | None,
    device: str | None,
    replica: int | None,
) -> tuple[Calculator, dict[str, Any], DeviationMonitor | None]:
    """The engine's calculator, its description for engine.json and the deviation monitor (models only)."""
    eng = study.engine
    if name == "cp2k":
        from cellsim.engines.cp2k_md import md_calculator

        calc, info = md_calculator(atoms, study, rd.md_root(replica) / "cp2k")
        return calc, info, None
    from cellsim.engines.committee import monitor_for

    set_threads(threads or eng.threads)
    torch_device = resolve_device(device or eng.device)
    if student:
        from cellsim.engines.student import student_calculator

        calc, info = student_calculator(student, torch_device, teacher=eng.model_path)
        info = {**info, "engine": f"{name}+student"}
    else:
        calc, info = make_calculator(name, eng.model_path, torch_device, forces_only=True)
    monitor = monitor_for(
        name,
        eng.model_path,
        eng.monitor_every,
        torch_device,
        eng.committee,
        student,
        factory=lambda e, m, d: make_calculator(e, m, d, forces_only=True)[0],
    )
    if monitor is not None:
        info = {**info, "deviation": monitor.describe()}
    return calc, info, monitor


def _relax(rd: RunDir, study: Study, atoms: Atoms) -> None:
    """The fixed-cell FIRE relaxation (redone if it did not finish; replicas share it), applied to ``atoms``."""
    from ase.optimize import FIRE

    from cellsim.io.poscar import read_poscar_atoms, write_atoms_ase_poscar

    relax_dir = rd.relax_dir
    relaxed = relax_dir / "CONTCAR"
    if study.md.relax_steps > 0 and not relaxed.is_file():
        relax_dir.mkdir(parents=True, exist_ok=True)
        opt = FIRE(atoms, logfile=str(relax_dir / "relax.log"))
        opt.run(fmax=study.engine.relax_fmax, steps=study.md.relax_steps)
        tmp = relax_dir / ".CONTCAR.tmp"
        write_atoms_ase_poscar(tmp, atoms)
        tmp.replace(relaxed)
    if relaxed.is_file():
        relaxed_atoms = read_poscar_atoms(relaxed)
        atoms.set_positions(relaxed_atoms.get_positions())


def _open_segment(
    run: _MDRun, seg: Path, state: dict[str, Any] | None, prev_state: dict[str, Any] | None, meta: dict[str, Any]
) -> tuple[int, dict[str, Any] | None]:
    """Set the atoms to where segment ``seg`` goes on and ready its files; the steps it holds and the chain state.

    With a checkpoint (``state``) the segment resumes: XDATCAR, OSZICAR (and the deviation file) are cut back
    to the checkpoint's lengths. Without one it starts from the previous segment's final state, or from
    seeded Maxwell-Boltzmann velocities for the first segment, and its files are written new.
    """
    from ase.md import velocitydistribution as vd

    atoms, study = run.atoms, run.study
    xd, osz, dev = seg / "XDATCAR", seg / "OSZICAR", seg / DEVIATION_FILE
    if state is not None:  # resume this segment
        atoms.set_positions(state["positions"])
        atoms.set_momenta(state["momenta"])
        for f, n in ((xd, int(state["xdatcar_bytes"])), (osz, int(state["oszicar_bytes"]))):
            with open(f, "r+b") as fh:
                fh.truncate(n)
        if "deviation_bytes" in state and dev.is_file():
            with open(dev, "r+b") as fh:
                fh.truncate(int(state["deviation_bytes"]))
        if run.monitor is not None and not dev.is_file():
            atomic_write_text(dev, DEVIATION_HEADER)
        return int(state["steps_done"]), state
    if prev_state is not None:  # continue from the previous segment's final state
        atoms.set_positions(prev_state["positions"])
        atoms.set_momenta(prev_state["momenta"])
        th_state = prev_state
    else:
        # ASE >= 3.29 names it thermalize_momenta; MaxwellBoltzmannDistribution before
        thermalize = getattr(vd, "thermalize_momenta", None) or vd.MaxwellBoltzmannDistribution
        thermalize(atoms, temperature_K=study.md.temperature, rng=np.random.default_rng(run.seed))
        vd.Stationary(atoms)
        th_state = None
    # engine.json first: it marks the XDATCAR/OSZICAR below as this engine's (see _check_own_segment)
    atomic_write_json(seg / "engine.json", {**meta, "steps_done": 0})
    # the segment's start (after relaxation); a POSCAR written by `cellsim inputs` for VASP stays
    start = seg / ("POSCAR" if not (seg / "INCAR").is_file() else "POSCAR.mlip")
    _write_poscar(start, atoms, f"cellsim {study.name} {seg.name} start")
    atomic_write_text(xd, xdatcar_header(run.names, run.counts, atoms.cell.array, run.header))
    atomic_write_text(osz, "")
    if run.monitor is not None:
        atomic_write_text(dev, DEVIATION_HEADER)
    return 0, th_state


def _run_steps(run: _MDRun, seg: Path, dyn: Any, steps_done: int, target: int) -> int:
    """MD steps in ``seg`` from ``steps_done`` to ``target``: OSZICAR every step, XDATCAR every NBLOCK, the
    deviation every ``monitor.every`` and a checkpoint every ``checkpoint_every`` steps and at the end."""
    atoms, md, monitor = run.atoms, run.study.md, run.monitor
    dt_fs, every = md.timestep_fs, run.study.engine.checkpoint_every
    xd, osz, dev = seg / "XDATCAR", seg / "OSZICAR", seg / DEVIATION_FILE
    inv = np.linalg.inv(atoms.cell.array)
    with open(xd, "a") as fx, open(osz, "a") as fo, open(dev, "a") if monitor else nullcontext() as fd:
        t_seg = time.perf_counter()
        while steps_done < target:
            t0 = time.perf_counter()
            dyn.step()
            steps_done += 1
            run.run_steps += 1
            e_pot = float(atoms.get_potential_energy())
            e_kin = float(atoms.get_kinetic_energy())
            fo.write(oszicar_line(steps_done, atoms.get_temperature(), e_pot + e_kin, e_pot, e_kin))
            if steps_done % md.nblock == 0:
                frac = (atoms.get_positions() @ inv) % 1.0
                fx.write(xdatcar_frame(steps_done // md.nblock, frac))
            if monitor is not None and fd is not None and steps_done % monitor.every == 0:
                fd.write(monitor.line(steps_done, (run.done_total + steps_done) * dt_fs / 1000.0, atoms))
            if steps_done % every == 0 or steps_done == target:
                _flush(fx, fo, fd)
                _save_checkpoint(
                    seg, atoms, dyn, steps_done, fx.tell(), fo.tell(), fd.tell() if fd is not None else None
                )
            dt_step = time.perf_counter() - t0
            if run.progress is not None:
                run.progress(run.done_total + steps_done, run.total, dt_step)
            if run.stop_after is not None and run.run_steps >= run.stop_after:
                _flush(fx, fo, fd)
                raise KeyboardInterrupt(f"stopped after {run.run_steps} steps (test hook)")
        run.seconds += time.perf_counter() - t_seg
    return steps_done


def _flush(*files: IO[str] | None) -> None:
    for fh in files:
        if fh is not None:
            fh.flush()


def _run_segment(
    run: _MDRun, seg: Path, target: int, state: dict[str, Any] | None, prev_state: dict[str, Any] | None
) -> dict[str, Any]:
    """Run segment ``seg`` to ``target`` steps, resuming its checkpoint ``state`` if it has one, else from the
    previous segment's final checkpoint ``prev_state``; returns its own final checkpoint."""
    from ase.units import fs

    md = run.study.md
    seg.mkdir(parents=True, exist_ok=True)
    meta = {
        **run.info,
        "segment": seg.name,
        "timestep_fs": md.timestep_fs,
        "nblock": md.nblock,
        "temperature_K": md.temperature,
        "tdamp_fs": run.tdamp / fs,
        "thermostat": "Nose-Hoover chain (ASE NoseHooverChainNVT, 3 thermostats)",
        "steps_target": target,
        "seed": run.seed,
        "replica": run.replica,
        "status": "running",
    }
    dyn = nose_hoover_nvt(run.atoms, md.timestep_fs * fs, md.temperature, run.tdamp)
    steps_done, th_state = _open_segment(run, seg, state, prev_state, meta)
    ThermostatState.restore(dyn, run.atoms, th_state)
    atomic_write_json(seg / "engine.json", {**meta, "steps_done": steps_done})
    steps_done = _run_steps(run, seg, dyn, steps_done, target)
    _write_poscar(seg / "CONTCAR", run.atoms, f"cellsim {run.study.name} {seg.name} end", velocities=True)
    atomic_write_json(seg / "engine.json", {**meta, "steps_done": steps_done, "status": "complete"})
    run.done_total += steps_done
    return _load_checkpoint(seg)


def run_mlip(
    run_dir: Path,
    study: Study,
    engine: str | None = None,
    total_steps: int | None = None,
    threads: int | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    stop_after: int | None = None,
    replica: int | None = None,
    device: str | None = None,
) -> RunSummary:
    """Relax, then run NVT segments until ``total_steps`` MD steps exist in ``run_dir/md``.

    Parameters
    ----------
    run_dir
        Run directory with ``interface/POSCAR``.
    study
        The resolved study (``md`` and ``engine`` sections).
    engine
        An offline model (``chgnet``, ``sevennet``, ...) or ``cp2k`` (PBE through CP2K's shell,
        :mod:`cellsim.engines.cp2k_md`); default: the study's engine (its stand-in model if it says ``vasp``).
    total_steps
        MD steps wanted in all segments together (default: ``md.total_time_ps / md.timestep_fs``).
    threads
        Torch threads (default: the study's, 1).
    progress
        Called after each step with (steps done, steps wanted, seconds per step).
    stop_after
        Stop (raise KeyboardInterrupt) after this many steps of this call: a test hook that simulates a kill.
    device
        ``auto``, ``cpu`` or ``cuda`` (default: the study's ``engine.device``).
    replica
        Run replica ``replica`` (its own segment folders, see RunDir; velocities seeded with ``engine.seed + replica``),
        starting from the same relaxed interface as every other replica.
    """
    from ase.units import fs

    md, eng = study.md, study.engine
    name, student, owner = _engine_of(study, engine)
    rd = RunDir(run_dir)
    plan, atoms, names, counts = _check_run(rd, study, total_steps, replica, owner)
    calc, info, monitor = _calculator(rd, study, name, student, atoms, threads, device, replica)
    atoms.calc = calc
    run = _MDRun(
        study=study,
        atoms=atoms,
        info=info,
        monitor=monitor,
        header=f"cellsim {study.name} {name}",
        names=names,
        counts=counts,
        tdamp=(eng.tdamp_fs or 40 * md.timestep_fs) * fs,
        seed=eng.seed + (replica or 0),
        replica=replica,
        total=plan.total_steps,
        progress=progress,
        stop_after=stop_after,
    )
    segments = []
    try:
        _relax(rd, study, atoms)
        prev_state: dict[str, Any] | None = None
        for k, target in enumerate(plan.nsw):
            seg = rd.segment_dir(k, replica)
            segments.append(seg.name)
            state = _load_checkpoint(seg) if (seg / "checkpoint.npz").is_file() else None
            if state is not None and int(state["steps_done"]) >= target:
                prev_state = state
                run.done_total += int(state["steps_done"])
                continue
            prev_state = _run_segment(run, seg, target, state, prev_state)
    finally:
        if hasattr(calc, "close"):  # CP2K's shell process: ended on a kill too
            calc.close()
    done = run.done_total
    return RunSummary(owner, done, run.run_steps, done * md.timestep_fs / 1000.0, run.seconds, segments)


def _engine_of(study: Study, engine: str | None) -> tuple[str, str | None, str]:
    """The embedded engine's name, the student folder that drives the MD instead (if any) and the segments' owner."""
    eng = study.engine
    name = md_engine_name(study, engine)
    if name not in ENGINES:
        raise EngineError(f"engine '{name}' is not an embedded engine (choose one of: {', '.join(ENGINES)})")
    # opt-in: a student distilled from the study's model drives the MD (cellsim.engines.student); its segments are
    # its own ("<engine>+student" in engine.json), and the teacher checks its forces every monitor_every steps
    student = eng.student if name == eng.name and name != "cp2k" else None
    return name, student, f"{name}+student" if student else name


def check_run(
    run_dir: Path, study: Study, engine: str | None = None, total_steps: int | None = None, replica: int | None = None
) -> None:
    """What :func:`run_mlip` refuses before it loads a model, without running: an engine that is not embedded,
    nothing to run, no interface, ungrouped species, a segment to run that holds another engine's output."""
    _, _, owner = _engine_of(study, engine)
    _check_run(RunDir(run_dir), study, total_steps, replica, owner)


def _check_run(
    rd: RunDir, study: Study, total_steps: int | None, replica: int | None, owner: str
) -> tuple[SegmentPlan, Atoms, list[str], list[int]]:
    """The segment plan and the interface (with its species blocks), after refusing what cannot run.

    Refused before any model is loaded: nothing to run, no interface or ungrouped species, and a segment
    still to run that holds another engine's output (:func:`_check_own_segment`).
    """
    plan = SegmentPlan.from_study(study, total_steps)
    if plan.total_steps < 1:
        raise EngineError(f"nothing to run: {plan.total_steps} MD steps requested")
    atoms = _read_interface(rd)
    names, counts = species_blocks(atoms.get_chemical_symbols())
    if len(set(names)) != len(names):
        raise EngineError(f"{rd.interface_poscar}: species are not grouped ({names}); rebuild the interface")
    for k, target in enumerate(plan.nsw):
        seg = rd.segment_dir(k, replica)
        if not _segment_done(seg, target):
            _check_own_segment(seg, owner)
    return plan, atoms, names, counts


def _write_poscar(path: Path, atoms: Atoms, comment: str, velocities: bool = False) -> None:
    """POSCAR/CONTCAR in pymatgen's layout, with VASP's Cartesian velocity block (A/fs) when asked."""
    from cellsim.io.poscar import write_atoms_poscar

    write_atoms_poscar(path, atoms, comment, velocities)


def segment_info(seg: Path) -> dict[str, Any] | None:
    """engine.json of a segment, if the embedded engine wrote it."""
    f = seg / "engine.json"
    return json.loads(f.read_text()) if f.is_file() else None
