"""A fast student potential distilled from the study's fitted model (the teacher): issue 37.

Why: the fitted CHGNet costs ~0.4-1 s per MD step on the 328-atom paper interface on one core, so the paper's
10 ps is an hour per seed. A small MACE (mace-torch) trained on the teacher's own energies and forces runs the
same MD 10-50x faster (``bench/bench_student.py`` measures both side by side). The student is only as good as the
structures the teacher labelled for it, so every run it drives also computes the teacher's forces every
``engine.monitor_every`` steps (the ``teacher`` kind of :class:`cellsim.engines.committee.DeviationMonitor`).

* **Data** (:func:`make_frames`): teacher Langevin MD of the study's interface and of its reduced interface
  (:func:`cellsim.engines.snapshots.reduced_interfaces`) at the study's temperature and above, rattled and
  strained copies of both, and the structures of the stored DFT label sets a fit trains on
  (:func:`cellsim.engines.fit.training_sets`); every frame labelled by the teacher. The held-out frames are
  whole trajectories of their own seed (``DataSettings.heldout_seeds``), never frames next to training ones.
  The frames are cached in ``ROOT/data-<hash>/frames.extxyz`` (hash: teacher file, start structures, settings).
* **Model** (:func:`train_student`): MACE with one energy shift per element (least squares on the teacher's
  energies) and the teacher's force RMS as scale; Adam on per-atom energy and force MSE, seeded.
* **Folder** ``ROOT/student-<hash>/`` (hash: teacher file's sha256, data hash, settings, recipe version):
  ``model.pt`` (state dict), ``card.json`` and ``card.md`` (teacher path and sha, data, settings, errors on
  the training and held-out frames per group, speed). The card holds everything to rebuild and retrain it.
* **Recipe**: :func:`cellsim.engines.distill.distill` runs both steps for a built run directory (``data.source``).
* **Use**: ``engine: {name: chgnet, model_path: TEACHER, student: FOLDER}`` in a study (opt-in): the embedded
  engine drives MD with the student (:func:`student_calculator`) and records the teacher's deviation.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from cellsim.core.errors import CellsimError
from cellsim.core.files import file_sha256
from cellsim.engines.fit import FitResult

if TYPE_CHECKING:
    from ase import Atoms
    from ase.calculators.calculator import Calculator
    from torch import nn

__all__ = [
    "CARD_FILE",
    "MODEL_FILE",
    "DataSettings",
    "StudentError",
    "StudentResult",
    "StudentSettings",
    "build_model",
    "data_key",
    "evaluate",
    "load_student",
    "make_frames",
    "student_calculator",
    "student_key",
    "teacher_sha256",
    "train_student",
    "write_card",
]

STUDENT_VERSION = 1  # bump when the recipe changes: old student folders are not reused
CARD_FILE = "card.json"
MODEL_FILE = "model.pt"
FRAMES_FILE = "frames.extxyz"
# per-frame labels in the extxyz files (ASE's own "energy"/"forces" would be taken by a SinglePointCalculator)
E_KEY, F_KEY = "teacher_energy", "teacher_forces"


class StudentError(CellsimError):
    """A student cannot be trained, found or loaded."""


@dataclass(frozen=True)
class DataSettings:
    """What the teacher labels (every field goes into the data's hash and the card).

    Attributes
    ----------
    temperatures
        Langevin MD temperatures (K) of the full and the reduced interface.
    reduced_extra_temperatures
        More temperatures for the reduced interface only (hotter, cheap: the student sees larger distortions).
    timestep_fs, friction_per_fs
        MD time step and Langevin friction.
    full_steps, full_every
        MD steps per trajectory of the full interface, and a frame every ``full_every`` steps.
    reduced_steps, reduced_every
        The same for the reduced interface.
    skip_steps
        Steps at the start of each trajectory that give no frame (the first kick out of the built structure).
    train_seeds, heldout_seeds
        Velocity seeds of the training trajectories and of the held-out ones (whole trajectories).
    rattles
        Gaussian displacement amplitudes (A) of rattled copies of each start structure (one copy each).
    strains
        Isotropic cell strains of scaled copies of each start structure (one copy each).
    dft_sets
        Also label the structures of the stored DFT label sets (:func:`cellsim.engines.fit.training_sets`).
    metal_strains, metal_volumes
        Bulk cells of the study's metal, strained along c at constant volume by each of ``metal_strains`` (In:
        from c/a 1.54 down to fcc's 1.414 and up) and scaled in volume by each of ``metal_volumes``, slightly
        rattled (:func:`cellsim.engines.distill.metal_frames`). Without them the first shipped student put In's
        minimum at fcc, 6 meV/atom below the teacher's c/a 1.538: its energy error (2-4 meV/atom) is the size of
        the whole Bain path, and the interface frames never strain the metal's c axis.
    """

    temperatures: tuple[float, ...] = (300.0, 450.0)
    reduced_extra_temperatures: tuple[float, ...] = (600.0,)
    timestep_fs: float = 2.0
    friction_per_fs: float = 0.02
    full_steps: int = 64
    full_every: int = 4
    reduced_steps: int = 240
    reduced_every: int = 8
    skip_steps: int = 8
    train_seeds: tuple[int, ...] = (0,)
    heldout_seeds: tuple[int, ...] = (1,)
    rattles: tuple[float, ...] = (0.05, 0.1, 0.15)
    strains: tuple[float, ...] = (-0.02, 0.02)
    dft_sets: bool = True
    metal_strains: tuple[float, ...] = (-0.1, -0.08, -0.06, -0.04, -0.02, 0.0, 0.02, 0.04)
    metal_volumes: tuple[float, ...] = (0.97, 1.03)


@dataclass(frozen=True)
class StudentSettings:
    """The student's architecture and training (every field goes into its hash and card).

    Attributes
    ----------
    arch
        ``mace`` (mace-torch's ScaleShiftMACE).
    channels, max_L
        Hidden features: ``channels`` scalars (``max_L`` 0) or scalars and vectors (``max_L`` 1).
    max_ell, correlation, interactions
        Spherical harmonics of the edges, body order of the product basis minus one, message-passing layers.
    r_max, num_bessel, num_cutoff, radial_mlp
        Cutoff (A), radial basis, its polynomial envelope and the radial MLP's hidden widths.
    epochs, learning_rate, lr_final, batch_size
        Adam, cosine-annealed from ``learning_rate`` to ``lr_final``; frames per batch.
    energy_weight, force_weight
        Weights of the per-atom energy MSE (eV^2/atom^2) and the force MSE (eV^2/A^2).
    group_energy_weights
        (group, factor) pairs: the energy term of frames of that group (``info['group']``) counts ``factor`` times.
        Bulk cells of the metal carry their signal in the energy only (their forces are near zero), and In's whole
        Bain path spans ~10 meV/atom, the size of a small student's energy error.
    seed
        Seeds the weights and the batch order.
    """

    arch: str = "mace"
    channels: int = 16
    max_L: int = 0
    max_ell: int = 1
    correlation: int = 2
    interactions: int = 1
    r_max: float = 5.0
    num_bessel: int = 8
    num_cutoff: int = 5
    radial_mlp: tuple[int, ...] = (32, 32)
    epochs: int = 60
    learning_rate: float = 1e-2
    lr_final: float = 5e-4
    batch_size: int = 4
    energy_weight: float = 10.0
    force_weight: float = 1.0
    group_energy_weights: tuple[tuple[str, float], ...] = ()
    seed: int = 0


class StudentResult(FitResult):
    """A trained student: its folder, model file and card (the fields of a fit's result)."""


# --------------------------------------------------------------------------- keys


def teacher_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of the teacher's model file (hex)."""
    return file_sha256(path)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _structure_digest(atoms: Atoms) -> str:
    return _digest(
        {
            "cell": np.round(np.asarray(atoms.cell), 5).tolist(),
            "symbols": atoms.get_chemical_symbols(),
            "pos": np.round(atoms.get_positions(), 5).tolist(),
        }
    )


def data_key(teacher_sha: str, starts: Sequence[Atoms], settings: DataSettings, extra: Sequence[str] = ()) -> str:
    """Hash of what the frames depend on: the teacher, the start structures, the settings, other sources."""
    return _digest(
        {
            "v": STUDENT_VERSION,
            "teacher": teacher_sha,
            "starts": [_structure_digest(a) for a in starts],
            "settings": asdict(settings),
            "extra": list(extra),
        }
    )


def student_key(teacher_sha: str, data_hash: str, settings: StudentSettings) -> str:
    """Hash naming a student's folder: the teacher file, the data and the settings (a new teacher, a new key)."""
    return _digest({"v": STUDENT_VERSION, "teacher": teacher_sha, "data": data_hash, "settings": asdict(settings)})


# --------------------------------------------------------------------------- data


def _labelled(atoms: Atoms, energy: float, forces: np.ndarray, **info: Any) -> Atoms:
    out = atoms.copy()
    out.calc = None
    out.info.update(info)
    out.info[E_KEY] = float(energy)
    out.arrays[F_KEY] = np.asarray(forces, dtype=float).copy()
    return out


def _label(atoms: Atoms, teacher: Calculator, **info: Any) -> Atoms:
    work = atoms.copy()
    work.calc = teacher
    return _labelled(atoms, float(work.get_potential_energy()), np.asarray(work.get_forces()), **info)


def _teacher_md(
    start: Atoms,
    teacher: Calculator,
    system: str,
    temperature: float,
    seed: int,
    steps: int,
    every: int,
    s: DataSettings,
    split: str,
) -> list[Atoms]:
    """Frames of one teacher Langevin trajectory (a frame every ``every`` steps after ``skip_steps``)."""
    from ase.md import velocitydistribution as vd
    from ase.md.langevin import Langevin
    from ase.units import fs

    work = start.copy()
    work.calc = teacher
    rng = np.random.default_rng(seed)
    # ASE >= 3.29 names it thermalize_momenta; MaxwellBoltzmannDistribution before
    thermalize = getattr(vd, "thermalize_momenta", None) or vd.MaxwellBoltzmannDistribution
    thermalize(work, temperature_K=temperature, rng=rng)
    vd.Stationary(work)
    friction = s.friction_per_fs / fs
    dyn = Langevin(
        work, timestep=s.timestep_fs * fs, temperature_K=temperature, friction=friction, fixcm=False, rng=rng
    )
    group = f"md-{system}-{temperature:g}K"
    frames = []
    for step in range(1, steps + 1):
        dyn.run(1)
        if step > s.skip_steps and step % every == 0:
            frames.append(
                _labelled(
                    work,
                    float(work.get_potential_energy()),
                    np.asarray(work.get_forces()),
                    group=group,
                    split=split,
                    system=system,
                    temperature=float(temperature),
                    seed=seed,
                    step=step,
                )
            )
    return frames


def _system_frames(
    system: str,
    start: Atoms,
    temps: Sequence[float],
    steps: int,
    every: int,
    teacher: Calculator,
    s: DataSettings,
    say: Callable[[str], None],
) -> list[Atoms]:
    """The teacher-labelled frames of one start structure: its MD trajectories (training and held-out seeds, each
    temperature), then its rattled and strained copies."""
    frames: list[Atoms] = []
    for split, seeds in (("train", s.train_seeds), ("heldout", s.heldout_seeds)):
        for seed in seeds:
            for temp in temps:
                t0 = time.perf_counter()
                got = _teacher_md(start, teacher, system, temp, seed, steps, every, s, split)
                frames.extend(got)
                dt = time.perf_counter() - t0
                say(f"{system} {temp:g} K seed {seed} ({split}): {len(got)} frames, {dt:.0f} s")
    rng = np.random.default_rng(12345)
    for amp in s.rattles:
        work = start.copy()
        work.positions += rng.normal(0.0, amp, work.positions.shape)
        frames.append(_label(work, teacher, group=f"rattled-{system}", split="train", system=system, amp=amp))
    for eps in s.strains:
        work = start.copy()
        work.set_cell(work.cell.array * (1.0 + eps), scale_atoms=True)
        frames.append(_label(work, teacher, group=f"strained-{system}", split="train", system=system, strain=eps))
    say(f"{system}: {len(s.rattles)} rattled and {len(s.strains)} strained cells")
    return frames


def make_frames(
    teacher_path: str | os.PathLike[str],
    teacher: Calculator,
    full: Atoms,
    reduced: Atoms | None,
    settings: DataSettings | None = None,
    root: str | os.PathLike[str] = "cellsim-students",
    *,
    dft_atoms: Sequence[Atoms] = (),
    extra_atoms: Sequence[Atoms] = (),
    progress: Callable[[str], None] | None = None,
) -> tuple[list[Atoms], str]:
    """The teacher-labelled frames (cached in ``root/data-<hash>/frames.extxyz``) and their hash.

    Parameters
    ----------
    teacher_path
        The teacher's model file (its sha256 goes into the data hash).
    teacher
        The teacher's calculator (``cellsim.engines.mlip.make_calculator(engine, teacher_path, forces_only=True)``).
    full, reduced
        The study's interface and its reduced interface (None: none).
    settings
        What to label (:class:`DataSettings`).
    root
        Folder of the data and student folders.
    dft_atoms
        Structures of the stored DFT label sets (labelled by the teacher when ``settings.dft_sets``).
    extra_atoms
        More structures to label, training only (e.g. frames of a run the student drove, where the teacher's
        check disagreed: :func:`cellsim.engines.distill.student_run_frames`); ``info['group']`` names them.
    progress
        Called with a line per trajectory or set.

    Returns
    -------
    frames, key
        Every frame (``info``: ``group``, ``split`` = ``train`` / ``heldout``, ``system``) and the data hash.
    """
    from ase.io import read, write

    s = settings or DataSettings()
    say = progress or (lambda _m: None)
    sha = teacher_sha256(teacher_path)
    starts = [full] if reduced is None else [full, reduced]
    dft = list(dft_atoms) if s.dft_sets else []
    extra = list(extra_atoms)
    key = data_key(sha, starts, s, [_structure_digest(a) for a in (*dft, *extra)])
    folder = Path(root) / f"data-{key}"
    path = folder / FRAMES_FILE
    if path.is_file():
        got = read(path, index=":")
        return (list(got) if isinstance(got, list) else [got]), key
    frames: list[Atoms] = []
    systems = [("full", full, s.temperatures, s.full_steps, s.full_every)]
    if reduced is not None:
        temps = (*s.temperatures, *s.reduced_extra_temperatures)
        systems.append(("reduced", reduced, temps, s.reduced_steps, s.reduced_every))
    for system, start, temps, steps, every in systems:
        frames += _system_frames(system, start, temps, steps, every, teacher, s, say)
    for k, atoms in enumerate(dft):
        frames.append(_label(atoms, teacher, group="dft-structures", split="train", system="dft", index=k))
    if dft:
        say(f"{len(dft)} structures of the stored DFT label sets")
    for k, atoms in enumerate(extra):
        group = str(atoms.info.get("group", "extra"))
        frames.append(_label(atoms, teacher, group=group, split="train", system="extra", index=k))
    if extra:
        say(f"{len(extra)} extra structures")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{FRAMES_FILE}.tmp"
    write(tmp, frames, format="extxyz")
    tmp.replace(path)
    return frames, key


# --------------------------------------------------------------------------- model


def _species(frames: Sequence[Atoms]) -> list[int]:
    return sorted({int(z) for a in frames for z in a.numbers})


def element_shifts(frames: Sequence[Atoms], species: Sequence[int]) -> np.ndarray:
    """Energy per atom of each element (eV), least squares on the frames' teacher energies."""
    counts = np.array([[np.sum(a.numbers == z) for z in species] for a in frames], dtype=float)
    energies = np.array([a.info[E_KEY] for a in frames], dtype=float)
    shifts, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return np.asarray(shifts, dtype=float)


def build_model(
    settings: StudentSettings,
    species: Sequence[int],
    shifts: Sequence[float] | np.ndarray,
    scale: float,
    avg_neighbours: float,
) -> nn.Module:
    """The student network (untrained): mace-torch's ScaleShiftMACE with these settings."""
    if settings.arch != "mace":
        raise StudentError(f"student arch {settings.arch!r}: only 'mace' is implemented")
    try:
        import torch
        from e3nn import o3
        from mace import modules
    except ImportError as exc:  # an optional dependency (docs/student.md: how it is installed)
        raise StudentError(f"the student needs mace-torch ({exc}): `make install`, or see docs/student.md") from None

    torch.manual_seed(settings.seed)
    ch = settings.channels
    hidden = f"{ch}x0e" if settings.max_L == 0 else f"{ch}x0e+{ch}x1o"
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    model: nn.Module = modules.ScaleShiftMACE(
        atomic_inter_scale=float(scale),
        atomic_inter_shift=0.0,
        r_max=settings.r_max,
        num_bessel=settings.num_bessel,
        num_polynomial_cutoff=settings.num_cutoff,
        max_ell=settings.max_ell,
        interaction_cls=block,
        interaction_cls_first=block,
        num_interactions=settings.interactions,
        num_elements=len(species),
        hidden_irreps=o3.Irreps(hidden),
        MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.asarray(shifts, dtype=float),
        avg_num_neighbors=float(avg_neighbours),
        atomic_numbers=list(species),
        correlation=settings.correlation,
        gate=torch.nn.functional.silu,
        radial_MLP=list(settings.radial_mlp),
    )
    return model.float()


def _graphs(
    frames: Sequence[Atoms], species: Sequence[int], r_max: float, weights: dict[str, float] | None = None
) -> list[Any]:
    """MACE's AtomicData of each frame, with the teacher's energy and forces as targets, and a weight of its energy
    term by its group (``weights``; 1 for every other frame)."""
    import torch
    from mace import data as mace_data
    from mace.tools import AtomicNumberTable

    keyspec = mace_data.KeySpecification(info_keys={"energy": E_KEY}, arrays_keys={"forces": F_KEY})
    table = AtomicNumberTable(list(species))
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        out = []
        for a in frames:
            config = mace_data.config_from_atoms(a, key_specification=keyspec)
            config.weight = float((weights or {}).get(str(a.info.get("group", "")), 1.0))
            out.append(mace_data.AtomicData.from_config(config, z_table=table, cutoff=r_max))
        return out
    finally:
        torch.set_default_dtype(prev)


def _avg_neighbours(graphs: Sequence[Any]) -> float:
    edges = sum(int(g.edge_index.shape[1]) for g in graphs)
    nodes = sum(int(g.num_nodes) for g in graphs)
    return edges / max(1, nodes)


def _predict(model: nn.Module, graphs: Sequence[Any], batch_size: int = 4) -> list[tuple[float, np.ndarray]]:
    from mace.tools.torch_geometric import DataLoader

    out: list[tuple[float, np.ndarray]] = []
    model.eval()
    for batch in DataLoader(cast(Any, list(graphs)), batch_size=batch_size, shuffle=False):
        res = model(batch.to_dict(), training=False, compute_force=True)
        energies = res["energy"].detach().numpy()
        forces = res["forces"].detach().numpy()
        ptr = batch.ptr.numpy()
        for k in range(len(energies)):
            out.append((float(energies[k]), forces[ptr[k] : ptr[k + 1]].astype(float)))
    return out


def evaluate(model: nn.Module, frames: Sequence[Atoms], graphs: Sequence[Any]) -> dict[str, dict[str, float]]:
    """Student vs teacher per ``split/group`` and per split: force MAE and RMSE (eV/A), energy MAE (meV/atom)."""
    preds = _predict(model, graphs)
    groups: dict[str, list[int]] = {}
    for k, a in enumerate(frames):
        split = str(a.info.get("split", "train"))
        groups.setdefault(f"{split}/{a.info.get('group', 'frames')}", []).append(k)
        groups.setdefault(split, []).append(k)
    out: dict[str, dict[str, float]] = {}
    for name, idx in sorted(groups.items()):
        df = np.concatenate([np.abs(preds[k][1] - frames[k].arrays[F_KEY]).ravel() for k in idx])
        de = np.array([abs(preds[k][0] - frames[k].info[E_KEY]) / len(frames[k]) for k in idx])
        out[name] = {
            "frames": len(idx),
            "force_mae_eV_A": float(df.mean()),
            "force_rmse_eV_A": float(np.sqrt((df**2).mean())),
            "energy_mae_meV_atom": float(1000.0 * de.mean()),
        }
    return out


# --------------------------------------------------------------------------- training


def train_student(
    teacher_path: str | os.PathLike[str],
    frames: Sequence[Atoms],
    data_hash: str,
    settings: StudentSettings | None = None,
    root: str | os.PathLike[str] = "cellsim-students",
    *,
    data: DataSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> StudentResult:
    """Train a student on teacher-labelled ``frames`` into ``root/student-<hash>/`` (reused when it exists).

    Parameters
    ----------
    teacher_path
        The teacher's model file (its sha256 names the folder).
    frames
        Frames from :func:`make_frames` (``info['split']``: ``train`` frames train, ``heldout`` ones test).
    data_hash
        The frames' hash (:func:`make_frames`' second value).
    settings
        Architecture and training (:class:`StudentSettings`).
    root
        Where the folder goes.
    data
        The data settings (written to the card).
    progress
        Called with a line every few epochs.

    Returns
    -------
    StudentResult
        The folder, model file and card; ``cached`` when the folder existed.
    """
    import torch

    s = settings or StudentSettings()
    say = progress or (lambda _m: None)
    sha = teacher_sha256(teacher_path)
    key = student_key(sha, data_hash, s)
    folder = Path(root) / f"student-{key}"
    if (folder / CARD_FILE).is_file() and (folder / MODEL_FILE).is_file():
        card = json.loads((folder / CARD_FILE).read_text())
        return StudentResult(folder, folder / MODEL_FILE, card, cached=True)
    train = [a for a in frames if a.info.get("split", "train") == "train"]
    if not train:
        raise StudentError("no training frames (every frame is held out)")
    species = _species(frames)
    shifts = element_shifts(train, species)
    forces = np.concatenate([a.arrays[F_KEY].ravel() for a in train])
    scale = float(np.sqrt(np.mean(forces**2))) or 1.0
    graphs = _graphs(frames, species, s.r_max, dict(s.group_energy_weights))
    train_graphs = [g for g, a in zip(graphs, frames, strict=True) if a.info.get("split", "train") == "train"]
    avg = _avg_neighbours(train_graphs)
    model = build_model(s, species, shifts, scale, avg)
    loader, opt, sched = _optimiser(model, train_graphs, s)
    before = evaluate(model, frames, graphs)
    history, train_cpu = _train_epochs(model, loader, opt, sched, s, say)
    after = evaluate(model, frames, graphs)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / MODEL_FILE)
    card = {
        "student_version": STUDENT_VERSION,
        "key": key,
        "teacher": {"path": str(teacher_path), "sha256": sha, "engine": "chgnet"},
        "data": _data_entry(data_hash, data, frames, len(train)),
        "settings": asdict(s),
        "model": _model_entry(model, species, shifts, scale, avg),
        "training": {"cpu_seconds": train_cpu, "loss_first": history[0]["loss"], "loss_last": history[-1]["loss"]},
        "errors_before": before,
        "errors_after": after,
        "speed": None,
    }
    card = json.loads(json.dumps(card))  # as the file holds it (tuples as lists)
    write_card(folder, card)
    return StudentResult(folder, folder / MODEL_FILE, card)


def _optimiser(model: nn.Module, train_graphs: Sequence[Any], s: StudentSettings) -> tuple[Any, Any, Any]:
    """The seeded, shuffled loader of the training graphs, Adam and its cosine schedule."""
    import torch
    from mace.tools.torch_geometric import DataLoader

    gen = torch.Generator().manual_seed(s.seed)
    loader = DataLoader(cast(Any, train_graphs), batch_size=s.batch_size, shuffle=True, generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=s.learning_rate, amsgrad=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, s.epochs), eta_min=s.lr_final)
    return loader, opt, sched


def _train_epochs(
    model: nn.Module, loader: Any, opt: Any, sched: Any, s: StudentSettings, say: Callable[[str], None]
) -> tuple[list[dict[str, float]], float]:
    """``s.epochs`` of per-atom energy and force MSE; each epoch's mean loss, and the CPU seconds taken."""
    import torch

    history: list[dict[str, float]] = []
    t0 = time.process_time()
    for epoch in range(1, s.epochs + 1):
        model.train()
        total, nb = 0.0, 0
        for batch in loader:
            opt.zero_grad()
            res = model(batch.to_dict(), training=True, compute_force=True)
            natoms = (batch.ptr[1:] - batch.ptr[:-1]).to(res["energy"].dtype)
            # MACE's per-graph weight (1 unless the frame's group has a factor in group_energy_weights)
            e_loss = torch.mean(batch.weight * ((res["energy"] - batch.energy) / natoms) ** 2)
            f_loss = torch.mean((res["forces"] - batch.forces) ** 2)
            loss = s.energy_weight * e_loss + s.force_weight * f_loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            total += float(loss.detach())
            nb += 1
        sched.step()
        history.append({"epoch": epoch, "loss": total / max(1, nb)})
        if epoch % 10 == 0 or epoch == s.epochs:
            say(f"epoch {epoch}/{s.epochs}: loss {total / max(1, nb):.4g} ({time.process_time() - t0:.0f} s CPU)")
    return history, time.process_time() - t0


def _data_entry(data_hash: str, data: DataSettings | None, frames: Sequence[Atoms], n_train: int) -> dict[str, Any]:
    """The card's ``data``: the frames' hash and settings, and how many frames of each split and group."""
    return {
        "key": data_hash,
        "settings": asdict(data) if data is not None else None,
        "frames": len(frames),
        "train_frames": n_train,
        "heldout_frames": len(frames) - n_train,
        "groups": _group_counts(frames),
    }


def _model_entry(model: nn.Module, species: list[int], shifts: np.ndarray, scale: float, avg: float) -> dict[str, Any]:
    """The card's ``model``: what rebuilds the network (:func:`build_model`), its size and the libraries."""
    return {
        "species": species,
        "energy_shifts_eV": [float(x) for x in shifts],
        "force_scale_eV_A": scale,
        "avg_num_neighbors": avg,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "library": _library_versions(),
    }


def _group_counts(frames: Sequence[Atoms]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in frames:
        name = f"{a.info.get('split', 'train')}/{a.info.get('group', 'frames')}"
        out[name] = out.get(name, 0) + 1
    return dict(sorted(out.items()))


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("mace-torch", "e3nn", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "?"
    return out


def write_card(folder: Path, card: dict[str, Any]) -> None:
    """Write ``card.json`` and ``card.md`` into a student's folder (atomically)."""
    from cellsim.core.files import atomic_write_json, atomic_write_text

    atomic_write_json(folder / CARD_FILE, card)
    atomic_write_text(folder / "card.md", card_markdown(card))


def record_speed(folder: str | os.PathLike[str], speed: dict[str, Any]) -> dict[str, Any]:
    """Write a measured speed (``bench/bench_student.py``) into a student's card; returns the card."""
    return record_card(folder, "speed", speed)


def record_card(folder: str | os.PathLike[str], field: str, value: Any) -> dict[str, Any]:
    """Write one measured entry (``speed``, ``lattice``) into a student's card (JSON and Markdown); returns it."""
    f = Path(folder)
    card = json.loads((f / CARD_FILE).read_text())
    card[field] = value
    write_card(f, card)
    return card


def card_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown: teacher, data, settings, errors after training, speed."""
    lines = [
        f"# Student {card['key']} (distilled from a CHGNet teacher)",
        "",
        f"- teacher: `{card['teacher']['path']}` (sha256 {card['teacher']['sha256'][:16]}...)",
        f"- data: {card['data']['frames']} frames ({card['data']['train_frames']} train, "
        f"{card['data']['heldout_frames']} held out by trajectory), key {card['data']['key']}",
        f"- model: MACE, {card['model']['parameters']} parameters, species {card['model']['species']}",
        f"- settings: {json.dumps(card['settings'])}",
        f"- training: {card['training']['cpu_seconds']:.0f} s CPU",
        "",
        "| frames | n | force MAE (eV/A) | force RMSE (eV/A) | energy MAE (meV/atom) |",
        "|---|---|---|---|---|",
    ]
    for name, e in card["errors_after"].items():
        lines.append(
            f"| {name} | {e['frames']} | {e['force_mae_eV_A']:.4f} | {e['force_rmse_eV_A']:.4f} | "
            f"{e['energy_mae_meV_atom']:.2f} |"
        )
    lattice = card.get("lattice")
    if lattice:
        lines += ["", "| lattice (relaxed) | student | teacher | difference | within 0.01 |", "|---|---|---|---|---|"]
        for r in lattice:
            diff = f"{r['difference'] * 100:+.2f} %" if r["relative"] else f"{r['difference']:+.4f}"
            lines.append(
                f"| {r['phase']} {r['quantity']} | {r['student']:.4f} | {r['teacher']:.4f} | {diff} | "
                f"{'yes' if r['ok'] else 'no'} |"
            )
    speed = card.get("speed")
    if speed:
        lines += ["", f"speed: {json.dumps(speed)}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- loading


def load_student(folder: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network and its card from a student folder.

    Raises
    ------
    StudentError
        The folder has no card or model file, or the card's recipe version is not this one.
    """
    import torch

    f = Path(folder).expanduser()
    card_file, model_file = f / CARD_FILE, f / MODEL_FILE
    if not card_file.is_file() or not model_file.is_file():
        raise StudentError(f"engine.student {f}: not a student folder (no {CARD_FILE} and {MODEL_FILE})")
    card = json.loads(card_file.read_text())
    if card.get("student_version") != STUDENT_VERSION:
        raise StudentError(
            f"{card_file}: student recipe version {card.get('student_version')}, this cellsim reads {STUDENT_VERSION}"
        )
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in card["settings"].items()}
    settings = StudentSettings(**fields)
    m = card["model"]
    model = build_model(settings, m["species"], m["energy_shifts_eV"], m["force_scale_eV_A"], m["avg_num_neighbors"])
    model.load_state_dict(torch.load(model_file, map_location="cpu", weights_only=True))
    model.eval()
    return model, card


def student_calculator(
    folder: str | os.PathLike[str], device: str = "cpu", teacher: str | os.PathLike[str] | None = None
) -> tuple[Calculator, dict[str, Any]]:
    """An ASE calculator (mace-torch's MACECalculator) of the student in ``folder`` and its engine.json info.

    Parameters
    ----------
    folder
        The student's folder (:func:`train_student`).
    device
        ``cpu`` or ``cuda``.
    teacher
        The model file the run takes as teacher (a study's ``engine.model_path``): when given, it must be the file
        the student was distilled from (same sha256), else a new fit of the teacher would be checked against a
        student of the old one.

    Raises
    ------
    StudentError
        Not a student folder, or distilled from another teacher.
    """
    import contextlib
    import io
    import logging

    model, card = load_student(folder)
    if teacher is not None:
        sha = teacher_sha256(teacher)
        if sha != card["teacher"]["sha256"]:
            raise StudentError(
                f"engine.student {folder}: distilled from a teacher with sha256 {card['teacher']['sha256'][:16]}..., "
                f"but engine.model_path {teacher} has sha256 {sha[:16]}... (train a student of this teacher: "
                "docs/student.md)"
            )
    from mace.calculators import MACECalculator

    # MACECalculator logs its setup through the root logger; cellsim's console stays its own
    with contextlib.redirect_stdout(io.StringIO()):
        logging.disable(logging.INFO)
        try:
            calc = MACECalculator(models=model.to(device), device=device, default_dtype="float32")
        finally:
            logging.disable(logging.NOTSET)
    info = {
        "engine": "student",
        "model": str(Path(folder).expanduser()),
        "student_key": card["key"],
        "teacher": card["teacher"]["path"],
        "teacher_sha256": card["teacher"]["sha256"],
        "device": device,
    }
    return calc, info
