"""Fine-tune an offline potential (CHGNet) on stored PBE labels: `cellsim engines fit`.

The labels are DFT job folders (``result.json`` + ``structure.json``: :mod:`cellsim.engines.planewave`,
:mod:`cellsim.engines.cp2k`), computed once and kept as data (``data/pbe``), or any DFT output a group has
(vasprun.xml, OUTCAR, ML_AB, extxyz, ASE databases: :mod:`cellsim.engines.label_sources`, docs/labels.md,
with trajectory frames held out as whole time blocks, :func:`split_labels`). A fit is reproducible from them:
its folder is named by a hash of the labels and the settings, holds the model file (``model.pth.tar``,
loadable as ``engine: {name: chgnet, model_path: ...}``), the training log and a card (``card.json``,
``card.md``) with the data, the errors on the training and held-out labels before and after, and the
metal's Bain-path c/a; a second call with the same labels and settings reuses it.

Choices, and why (measured on the In labels of data/pbe, 2 December 2026):

* **Energies and forces, not stress.** GPAW's stress at 450 eV carries an isotropic Pulay offset of about
  +2 GPa (In at its E(V) minimum, 27.2 A^3/atom, reads +2.1 GPa); E(V), the Bain path and the strained cells'
  energies hold the same elastic information without it.
* **One energy shift per element**, fitted by least squares to E(DFT) - E(base model) per atom before
  training, per code and functional (:func:`shift_group`): each DFT code has its own energy zero (GPAW's PAW
  setups, CP2K's GTH pseudopotentials, the base model's VASP-MP references), and a constant is not physics the
  network should spend its weights on.
* **Energy weight 100** (per-atom energies in eV, forces in eV/A, MSE): the Bain path is a 5 meV/atom feature;
  with CHGNet's default weight 1 the fit kept fcc (energy MAE 3-6 meV/atom), with 100 it reaches ~1 meV/atom
  and In's c/a.
* **Frozen embeddings and first three convolutions** (CHGNet's own fine-tuning recipe): a few dozen labels
  retrain the readout and the last interaction layers, and the chemistry the labels do not cover (Li, P, S,
  Cl) moves less.
* **Held out**: every fifth multi-atom configuration, ranked by a hash of its job folder name (so the split
  does not depend on the order of the folders); 1-atom cells always train (they carry E(V) and the Bain path).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
    from ase import Atoms

FIT_VERSION = 1  # bump when the training recipe changes: old fit folders are not reused
# the functional of the base model's training data (CHGNet: MPtrj, PBE; PBE+U only for oxides and fluorides of a
# few transition metals): labels of another functional are refused unless asked for (engines.label_sources)
BASE_FUNCTIONAL = "PBE"


@dataclass(frozen=True)
class Label:
    """One DFT single point used as a training or test label.

    ``functional`` is what the source says (``unknown`` when it does not); ``source`` the file or job folder read,
    ``fmt`` its format and ``frame`` the frame (ionic step) in it; ``trajectory`` names the time series the frame
    is a step of (None: an independent configuration), ``corr_steps`` the frames over which that series' forces
    stay correlated (:mod:`cellsim.engines.label_sources`).
    """

    name: str
    job: str
    atoms: Atoms
    energy_eV: float
    forces: np.ndarray
    code: str
    functional: str = BASE_FUNCTIONAL
    source: str = ""
    fmt: str = ""
    frame: int | None = None
    trajectory: str | None = None
    corr_steps: int = 1


@dataclass(frozen=True)
class FitSettings:
    """How the fine-tune runs (every field goes into the fit's hash and card)."""

    base: str = "0.3.0"
    epochs: int = 300
    learning_rate: float = 1e-3
    energy_weight: float = 100.0
    force_weight: float = 1.0
    batch_size: int = 8
    holdout_every: int = 5
    seed: int = 0
    split_seed: int = 0  # salts the held-out ranking: committee members differ in seed and split


def _settings_key(s: FitSettings) -> dict[str, Any]:
    """The settings as hashed: fields added later leave the key of a fit made before them unchanged at their default."""
    d = asdict(s)
    if d.get("split_seed") == 0:
        d.pop("split_seed")
    return d


@dataclass
class FitResult:
    """A finished fit: its folder, model file and card."""

    folder: Path
    model_path: Path
    card: dict[str, Any] = field(default_factory=dict)
    cached: bool = False


# stored label sets (CP2K or plane-wave) that never train a fit (data/pbe/<set>), and why
TEST_ONLY_SETS = {
    "li6ps5cl_in_parity": "the engine check's held-out interface parity snapshots (a base-CHGNet MD): the "
    "independent test of every fit's interface forces",
    "in_bain": "CP2K's Bain path, flat within 0.8 meV/atom where plane waves give In's tetragonal minimum "
    "(data/pbe/README.md); the plane-wave in_bain_pw trains instead",
    "li6ps5cl_in_fit_md": "snapshots of the shipped fit's own MD of the reduced interface at 300 and 450 K: the "
    "held-out test of a fitted model where it takes the system itself",
    "phases_pw": "the PBE phase diagram's crystals (GPAW): the engine check's formation and reaction energies "
    "are measured against them, which a fit trained on them would no longer test independently",
    "li6ps5cl_in_contacts": "rigid moves of an interfacial S, Cl or In atom (cellsim.engines.contacts): the engine "
    "check's interfacial energetics, engine against PBE",
}


def set_elements(jobs: Path, finished: bool = False) -> set[str] | None:
    """The elements of a stored label set, read from its first job (its first finished job when ``finished``: a
    set still being labelled may have none yet); None when it has no such job."""
    from ase.io import read

    first = next(iter(sorted(jobs.glob("*/result.json" if finished else "*/structure.json"))), None)
    if first is None:
        return None
    atoms = read(first.parent / "structure.json")
    assert not isinstance(atoms, list)
    return set(atoms.get_chemical_symbols())


def training_sets(elements: set[str] | None = None) -> list[Path]:
    """The stored label sets a fit trains on by default: every plane-wave and CP2K set not in
    :data:`TEST_ONLY_SETS`, whose structures use only ``elements`` (all, when None)."""
    from cellsim.engines.cp2k import stored_labels as cp2k_sets
    from cellsim.engines.planewave import stored_labels as pw_sets

    out = []
    for jobs in sorted({j for j in (*pw_sets(), *cp2k_sets()) if j.parent.name not in TEST_ONLY_SETS}):
        found = set_elements(jobs)
        if found is not None and (elements is None or found <= elements):
            out.append(jobs)
    return out


def load_labels(folders: Sequence[str | os.PathLike[str]]) -> list[Label]:
    """Every finished DFT job under ``folders`` (a job folder, a ``jobs`` folder or a label set above it).

    Raises
    ------
    CellsimError
        A folder does not exist or holds no finished job.
    """
    from ase.io import read

    out: list[Label] = []
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            raise CellsimError(f"--labels {root}: not a folder")
        found = sorted(root.rglob("result.json"))
        if not found:
            raise CellsimError(f"--labels {root}: no finished DFT job (no */result.json)")
        for res in found:
            try:
                data = json.loads(res.read_text())
                atoms = read(res.parent / "structure.json")
            except (OSError, ValueError, KeyError) as exc:
                raise CellsimError(f"{res}: unreadable label ({exc})") from None
            assert not isinstance(atoms, list)
            forces = np.asarray(data["forces_eV_A"], dtype=float)
            if forces.shape != (len(atoms), 3):
                raise CellsimError(f"{res}: forces_eV_A has shape {forces.shape}, expected ({len(atoms)}, 3)")
            code = str(data.get("code") or ("cp2k" if "cp2k_version" in data else "unknown"))
            settings = data.get("settings")
            xc = settings.get("xc") if isinstance(settings, dict) else None
            out.append(
                Label(
                    str(data.get("label") or res.parent.name),
                    res.parent.name,
                    atoms,
                    float(data["energy_eV"]),
                    forces,
                    code,
                    functional=str(xc) if isinstance(xc, str) and xc.strip() else "unknown",
                    source=str(res.parent),
                    fmt="jobs",
                )
            )
    return out


def labels_of_card(card_file: str | os.PathLike[str], labels: Sequence[Label]) -> tuple[list[Label], FitSettings]:
    """The labels a fit's card names (its training and held-out jobs) among ``labels``, one per job, and its settings.

    Raises
    ------
    CellsimError
        The card is unreadable, or a job it names is not among ``labels`` (the message names them).
    """
    try:
        card = json.loads(Path(card_file).read_text())
        jobs = set(card["labels"]["train"]) | set(card["labels"]["held_out"])
        settings = FitSettings(**card["settings"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CellsimError(f"--from-card {card_file}: not a fit card ({exc})") from None
    # one label per job: a job folder is named by the hash of its structure and settings, so the same name in two
    # label sets (data/pbe/phases_pw holds In's bct cell of in_bain_pw) is the same calculation, counted once
    by_job: dict[str, Label] = {}
    for lab in labels:
        if lab.job in jobs:
            by_job.setdefault(lab.job, lab)
    chosen = list(by_job.values())
    missing = sorted(jobs - {lab.job for lab in chosen})
    if missing:
        raise CellsimError(
            f"--from-card {card_file}: {len(missing)} labelled jobs not found in the label folders "
            f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}); give --labels"
        )
    return chosen, settings


def split(labels: Sequence[Label], every: int = 5, salt: int = 0) -> tuple[list[Label], list[Label]]:
    """(train, held out): of the multi-atom labels ranked by the hash of their job name, every ``every``-th.

    Ranking by hash makes the split independent of the folders' order and holds out exactly
    ``ceil(n / every)`` of ``n`` multi-atom labels; 1-atom cells always train (they carry E(V) and the Bain path).
    ``salt`` (a committee member's ``split_seed``) ranks by another hash: another held-out set of the same size.
    """

    def rank(lab: Label) -> str:
        return hashlib.sha256((f"{salt}:" if salt else "").encode() + lab.job.encode()).hexdigest()

    multi = sorted((lab for lab in labels if len(lab.atoms) > 1), key=rank)
    held_jobs = {lab.job for k, lab in enumerate(multi) if k % every == 0}
    train = [lab for lab in labels if lab.job not in held_jobs]
    held = [lab for lab in labels if lab.job in held_jobs]
    return train, held


def split_labels(labels: Sequence[Label], every: int = 5, salt: int = 0) -> tuple[list[Label], list[Label]]:
    """(train, held out): independent configurations as :func:`split`, each trajectory's frames by time blocks.

    The frames of one trajectory (labels sharing ``trajectory``, two or more multi-atom frames) are cut into
    ``every`` blocks of equal span in time (frame index); one block that holds frames, picked by a hash of the
    trajectory's name (and ``salt``), is held out whole. No held-out frame then sits between two training frames
    one step away: the held-out errors are not flattered by near-copies in training
    (:func:`cellsim.engines.label_sources.check_split` checks it). Without trajectories this is :func:`split`.
    """
    series: dict[str, list[Label]] = {}
    for lab in labels:
        if lab.trajectory is not None and lab.frame is not None and len(lab.atoms) > 1:
            series.setdefault(lab.trajectory, []).append(lab)
    series = {sid: labs for sid, labs in series.items() if len(labs) >= 2}
    rest = [lab for lab in labels if lab.trajectory not in series or len(lab.atoms) < 2]
    held_jobs = {lab.job for lab in split(rest, every, salt)[1]} if rest else set()
    for sid, labs in sorted(series.items()):
        frames = [int(lab.frame or 0) for lab in labs]
        lo, span = min(frames), max(frames) - min(frames) + 1
        block = [min(every - 1, (f - lo) * every // span) for f in frames]
        filled = sorted(set(block))
        pick = filled[int(hashlib.sha256(f"{salt}:{sid}".encode()).hexdigest(), 16) % len(filled)]
        held_jobs |= {lab.job for lab, b in zip(labs, block, strict=True) if b == pick}
    train = [lab for lab in labels if lab.job not in held_jobs]
    held = [lab for lab in labels if lab.job in held_jobs]
    return train, held


def shift_group(lab: Label) -> str:
    """The energy reference a label shares: its code, and its functional unless that is the base model's
    (``gpaw``, ``vasp``, ``vasp/RPBE+D3``); a label of unknown code is its own source's group (``unknown@FILE``),
    as nothing says two such files share an energy zero."""
    key = lab.code if lab.functional == BASE_FUNCTIONAL else f"{lab.code}/{lab.functional}"
    if lab.code == "unknown":
        key += f"@{Path(lab.source).name or lab.job}"
    return key


def _code_groups(labels: Sequence[Label]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(shift_group(lab), []).append(i)
    return groups


def energy_shifts(labels: Sequence[Label], base_e: np.ndarray) -> dict[str, dict[str, float]]:
    """Per energy reference (:func:`shift_group`: code and functional), per element: the least-squares constant
    mapping the base model's energies onto the labels'.

    ``base_e`` holds the base model's total energy of each label. E_DFT - E_base = sum_el n_el * mu_el.
    """
    shifts: dict[str, dict[str, float]] = {}
    for code, idx in _code_groups(labels).items():
        els = sorted({s for i in idx for s in labels[i].atoms.get_chemical_symbols()})
        a = np.array([[labels[i].atoms.get_chemical_symbols().count(e) for e in els] for i in idx], dtype=float)
        b = np.array([labels[i].energy_eV - base_e[i] for i in idx])
        mu = np.linalg.lstsq(a, b, rcond=None)[0]
        shifts[code] = {e: float(m) for e, m in zip(els, mu, strict=True)}
    return shifts


def shift_compositions(labels: Sequence[Label]) -> dict[str, int]:
    """Distinct compositions per code: with fewer than the code's elements, only the totals of those
    compositions fix its shifts, and the least-squares split between elements means nothing alone."""
    return {
        code: len({tuple(sorted(Counter(labels[i].atoms.get_chemical_symbols()).items())) for i in idx})
        for code, idx in _code_groups(labels).items()
    }


def _shift_of(lab: Label, shifts: dict[str, dict[str, float]]) -> float:
    table = shifts.get(shift_group(lab), {})
    return float(sum(table.get(s, 0.0) for s in lab.atoms.get_chemical_symbols()))


def fit_key(labels: Sequence[Label], settings: FitSettings) -> str:
    """A 16-hex hash of the labels (job names, energies) and the settings: the fit folder's name."""
    payload = {
        "version": FIT_VERSION,
        "settings": _settings_key(settings),
        "labels": sorted((lab.job, round(lab.energy_eV, 8)) for lab in labels),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _predict(model: Any, atoms_list: Sequence[Atoms]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Total energies and forces of each structure from a CHGNet model."""
    from pymatgen.io.ase import AseAtomsAdaptor

    if not atoms_list:
        return np.zeros(0), []
    preds = model.predict_structure([AseAtomsAdaptor.get_structure(a) for a in atoms_list], task="ef", batch_size=16)
    preds = preds if isinstance(preds, list) else [preds]
    e = np.array([float(p["e"]) * len(a) for p, a in zip(preds, atoms_list, strict=True)])
    return e, [np.asarray(p["f"], dtype=float) for p in preds]


def errors(model: Any, labels: Sequence[Label], shifts: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Energy MAE (meV/atom, after the shifts) and force MAE (eV/A, all and per element) on ``labels``."""
    if not labels:
        return {"n": 0}
    e, f = _predict(model, [lab.atoms for lab in labels])
    de = [(e[i] + _shift_of(lab, shifts) - lab.energy_eV) / len(lab.atoms) for i, lab in enumerate(labels)]
    out: dict[str, Any] = {"n": len(labels), "energy_mae_meV_atom": 1000 * float(np.mean(np.abs(de)))}
    multi = [i for i, lab in enumerate(labels) if len(lab.atoms) > 1]
    if multi:
        diff = np.concatenate([np.abs(f[i] - labels[i].forces).ravel() for i in multi])
        out["force_mae_eV_A"] = float(diff.mean())
        per: dict[str, list[float]] = {}
        for i in multi:
            for s, row in zip(labels[i].atoms.get_chemical_symbols(), np.abs(f[i] - labels[i].forces), strict=True):
                per.setdefault(s, []).extend(row.tolist())
        out["force_mae_by_element"] = {s: float(np.mean(v)) for s, v in sorted(per.items())}
    return out


def bain_c_a(model: Any, element: str, volume: float) -> dict[str, Any]:
    """E(c/a) - E(fcc) (meV/atom) of a model on the Bain path's cells, and its parabola minimum."""
    from cellsim.engines.cp2k import BAIN_CA, bain_cell, parabola_minimum

    cas = [*BAIN_CA, 1.56]
    cas.sort()
    e, _ = _predict(model, [bain_cell(element, ca, volume) for ca in cas])
    curve = (1000 * (e - e[0]) / 2).tolist()
    x, inside = parabola_minimum(cas, curve)
    return {"c_a": cas, "meV_atom": curve, "c_a_min": x if inside else None}


class _EpochLog(io.TextIOBase):
    """Keeps CHGNet's training printout (for train.log) and reports each finished epoch."""

    _EPOCH = re.compile(r"Epoch: \[(\d+)\]")

    def __init__(self, report: Callable[[int], None] | None) -> None:
        self.parts: list[str] = []
        self._report = report
        self._last = -1

    def write(self, s: str) -> int:
        self.parts.append(s)
        for m in self._EPOCH.finditer(s):
            k = int(m.group(1))
            if k != self._last and self._report is not None:
                self._report(k)
            self._last = k
        return len(s)


def _load_quietly(chgnet: Any, name: str) -> Any:
    """``CHGNet.load``, whose "CHGNet v0.3.0 initialized ..." line is printed whatever ``verbose`` says."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return chgnet.load(model_name=name, verbose=False)


def fit_chgnet(
    labels: Sequence[Label],
    out_root: str | os.PathLike[str],
    settings: FitSettings | None = None,
    *,
    element: str | None = None,
    volume: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> FitResult:
    """Fine-tune CHGNet ``settings.base`` on ``labels``; the fit goes to ``out_root/chgnet-<hash>/``.

    Parameters
    ----------
    labels
        From :func:`load_labels`; split by :func:`split`.
    out_root
        Folder of fits (one sub-folder per labels + settings hash; an existing finished one is reused).
    element, volume
        The metal and the volume per atom of its Bain path (for the card's c/a before and after).
    progress
        Called with a short line at each stage and every 25 epochs.

    Raises
    ------
    CellsimError
        No labels, or no held-out label (too few multi-atom configurations for ``holdout_every``).
    """
    from chgnet.model import CHGNet

    from cellsim.core.files import atomic_write_json, atomic_write_text

    s = settings or FitSettings()
    say = progress or (lambda _m: None)
    if not labels:
        raise CellsimError("engines fit: no labels")
    train, held = split_labels(labels, s.holdout_every, s.split_seed)
    if not held:
        raise CellsimError(
            f"engines fit: no held-out label among {len(labels)} (every {s.holdout_every}th multi-atom configuration "
            "is held out): label more configurations"
        )
    folder = Path(out_root) / f"chgnet-{fit_key(labels, s)}"
    model_file, card_file = folder / "model.pth.tar", folder / "card.json"
    if model_file.is_file() and card_file.is_file():
        say(f"reusing {folder} (same labels and settings)")
        return FitResult(folder, model_file, json.loads(card_file.read_text()), cached=True)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    base = _load_quietly(CHGNet, s.base)
    base_e, _ = _predict(base, [lab.atoms for lab in train])
    shifts = energy_shifts(train, base_e)  # from the training labels only: nothing of the held-out ones leaks
    say(f"{len(train)} training and {len(held)} held-out labels; energy shifts {shifts}")
    before = {"train": errors(base, train, shifts), "held_out": errors(base, held, shifts)}
    train_dl, held_dl = _loaders(train, held, shifts, s)
    trainer = _trainer(s)
    log = _EpochLog(lambda k: say(f"epoch {k + 1}/{s.epochs}") if (k + 1) % 25 == 0 else None)
    with contextlib.redirect_stdout(log):
        trainer.train(train_dl, held_dl, save_dir=str(folder / "checkpoints"), train_composition_model=False)
    fitted = trainer.model
    after = {"train": errors(fitted, train, shifts), "held_out": errors(fitted, held, shifts)}
    _save_model(trainer, folder, model_file)
    atomic_write_text(folder / "train.log", "".join(log.parts))
    card = _card(folder, s, labels, train, held, shifts, before, after)
    card["train_s"] = round(time.perf_counter() - t0, 1)
    card["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if element and volume:
        card["bain"] = {"base": bain_c_a(base, element, volume), "fit": bain_c_a(fitted, element, volume)}
    atomic_write_json(card_file, card)
    atomic_write_text(folder / "card.md", card_markdown(card))
    say(f"model written to {model_file}")
    return FitResult(folder, model_file, card, cached=False)


def _loaders(
    train: Sequence[Label], held: Sequence[Label], shifts: dict[str, dict[str, float]], s: FitSettings
) -> tuple[Any, Any]:
    """CHGNet's data loaders of the training labels (shuffled, seeded) and of the held-out ones, with the labels'
    energies per atom less their shifts."""
    import torch
    from chgnet.data.dataset import StructureData, collate_graphs
    from pymatgen.io.ase import AseAtomsAdaptor
    from torch.utils.data import DataLoader

    def dataset(items: Sequence[Label]) -> StructureData:
        return StructureData(
            [AseAtomsAdaptor.get_structure(lab.atoms) for lab in items],
            [(lab.energy_eV - _shift_of(lab, shifts)) / len(lab.atoms) for lab in items],
            [lab.forces.tolist() for lab in items],
            shuffle=False,
        )

    gen = torch.Generator().manual_seed(s.seed)
    train_dl = DataLoader(
        dataset(train), batch_size=s.batch_size, shuffle=True, collate_fn=collate_graphs, generator=gen
    )
    held_dl = DataLoader(dataset(held), batch_size=s.batch_size, collate_fn=collate_graphs)
    return train_dl, held_dl


def _trainer(s: FitSettings) -> Any:
    """CHGNet's trainer of a fresh copy of the base model, its embeddings and first convolutions frozen."""
    from chgnet.model import CHGNet
    from chgnet.trainer import Trainer

    model = _load_quietly(CHGNet, s.base)
    frozen = [
        model.atom_embedding,
        model.bond_embedding,
        model.angle_embedding,
        model.bond_basis_expansion,
        model.angle_basis_expansion,
        model.atom_conv_layers[:3],
        model.bond_conv_layers,
        model.angle_layers,
    ]
    for layer in frozen:
        for p in layer.parameters():
            p.requires_grad = False
    return Trainer(
        model=model,
        targets="ef",
        energy_loss_ratio=s.energy_weight,
        force_loss_ratio=s.force_weight,
        optimizer="Adam",
        scheduler="CosLR",
        criterion="MSE",
        epochs=s.epochs,
        learning_rate=s.learning_rate,
        use_device="cpu",
        print_freq=10**9,
        torch_seed=s.seed,
        data_seed=s.seed,
    )


def _save_model(trainer: Any, folder: Path, model_file: Path) -> None:
    """The trained model to ``model_file`` (atomically); the epoch checkpoints removed."""
    tmp = folder / "model.pth.tar.tmp"
    trainer.save(filename=str(tmp))
    os.replace(tmp, model_file)
    for ck in (folder / "checkpoints").glob("*.pth.tar"):
        ck.unlink()  # the final model is the fit; the epoch checkpoints would double the folder for nothing
    with contextlib.suppress(OSError):
        (folder / "checkpoints").rmdir()


def _card(
    folder: Path,
    s: FitSettings,
    labels: Sequence[Label],
    train: Sequence[Label],
    held: Sequence[Label],
    shifts: dict[str, dict[str, float]],
    before: dict[str, Any],
    after: dict[str, Any],
) -> dict[str, Any]:
    """A fit's card up to its errors (the caller adds the training time, the finish time and the Bain path)."""
    return {
        "fit_version": FIT_VERSION,
        "key": folder.name.split("-", 1)[1],
        "base_model": f"CHGNet {s.base} (bundled with chgnet; BSD-3-Clause licence, as the chgnet package)",
        "settings": asdict(s),
        "frozen": "atom/bond/angle embeddings and basis expansions, atom_conv_layers[:3], bond_conv_layers, "
        "angle_layers",
        "labels": {
            "n": len(labels),
            "train": sorted(lab.job for lab in train),
            "held_out": sorted(lab.job for lab in held),
            "codes": {c: len(i) for c, i in _code_groups(labels).items()},
        },
        "energy_shifts_eV_atom": shifts,
        "energy_shift_compositions": shift_compositions(train),
        "errors_before": before,
        "errors_after": after,
    }


def _shift_note(card: dict[str, Any]) -> str:
    comps = card.get("energy_shift_compositions", {})
    few = [
        f"{code} ({n} composition{'s' if n > 1 else ''} of {len(card['energy_shifts_eV_atom'][code])} elements)"
        for code, n in comps.items()
        if n < len(card["energy_shifts_eV_atom"].get(code, {}))
    ]
    if not few:
        return ""
    return (
        f" For {', '.join(few)} only the total shift of each composition is fixed; the split between elements is "
        "the least-norm one and means nothing alone."
    )


def held_out_verdict(card: dict[str, Any]) -> dict[str, Any]:
    """Whether the fit is worse than its base model on the held-out labels: ``{"worse": bool, "worse_on": [...]}``
    (force or energy MAE after above before; each entry says which, before -> after)."""
    b = card.get("errors_before", {}).get("held_out", {})
    a = card.get("errors_after", {}).get("held_out", {})
    worse = [
        f"{name} {b[k]:.3f} -> {a[k]:.3f} {unit}"
        for k, name, unit in (
            ("force_mae_eV_A", "force MAE", "eV/A"),
            ("energy_mae_meV_atom", "energy MAE", "meV/atom"),
        )
        if a.get(k) is not None and b.get(k) is not None and a[k] > b[k]
    ]
    return {"worse": bool(worse), "worse_on": worse}


def annotate_card(
    result: FitResult, sources: Sequence[dict[str, Any]] = (), label_warnings: Sequence[str] = ()
) -> dict[str, Any]:
    """Add the label sources (file, format, frames taken, code, functional), the label checks' warnings and the
    held-out verdict (:func:`held_out_verdict`) to a fit's card; ``card.json`` and ``card.md`` are rewritten.
    The same labels give the same fit, so a reused fit's card gets the same record again."""
    from cellsim.core.files import atomic_write_json, atomic_write_text

    card = dict(result.card)
    card["sources"] = [dict(x) for x in sources]
    card["label_warnings"] = list(label_warnings)
    card["held_out_verdict"] = held_out_verdict(card)
    atomic_write_json(result.folder / "card.json", card)
    atomic_write_text(result.folder / "card.md", card_markdown(card))
    result.card = card
    return card


def _card_sources(card: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    verdict = card.get("held_out_verdict") or {}
    if verdict.get("worse"):
        lines += [
            "",
            f"**Worse than the base model on the held-out labels** ({'; '.join(verdict['worse_on'])}): do not use "
            "this fit.",
        ]
    if card.get("sources"):
        lines += [
            "",
            "Label sources:",
            "",
            "| file | format | code | functional | frames read | taken | stride (decorrelation) |",
            "|---|---|---|---|---|---|---|",
        ]
        for src in card["sources"]:
            stride = "-" if src.get("stride") is None else f"{src['stride']} ({src.get('decorrelation_steps')})"
            lines.append(
                f"| {src['file']} | {src['format']} | {src['code']} | {src['functional']} | {src['frames_read']} | "
                f"{len(src.get('frames_taken', []))} | {stride} |"
            )
    if card.get("label_warnings"):
        lines += ["", "Label warnings:", ""] + [f"- {w}" for w in card["label_warnings"]]
    return lines


def card_markdown(card: dict[str, Any]) -> str:
    """The card as a short Markdown page (what was fitted on what, and how well)."""
    b, a = card["errors_before"], card["errors_after"]

    def row(name: str, part: str) -> str:
        def g(d: dict[str, Any], k: str) -> str:
            v = d[part].get(k)
            return "-" if v is None else f"{v:.3f}"

        return (
            f"| {name} | {b[part]['n']} | {g(b, 'energy_mae_meV_atom')} | {g(a, 'energy_mae_meV_atom')} | "
            f"{g(b, 'force_mae_eV_A')} | {g(a, 'force_mae_eV_A')} |"
        )

    lines = [
        f"# Fitted model {card['key']}",
        "",
        f"Base: {card['base_model']}. Frozen: {card['frozen']}.",
        f"Labels: {card['labels']['n']} ({', '.join(f'{k}: {v}' for k, v in card['labels']['codes'].items())}); "
        f"energy shifts (eV/atom) {card['energy_shifts_eV_atom']}.{_shift_note(card)}",
        f"Settings: {card['settings']}. Training took {card['train_s']} s.",
        "",
        "| set | labels | energy MAE before (meV/atom) | after | force MAE before (eV/A) | after |",
        "|---|---|---|---|---|---|",
        row("train", "train"),
        row("held out", "held_out"),
        *_card_sources(card),
    ]
    if "bain" in card:
        lines += ["", "Bain path, E - E(fcc) in meV/atom:", ""]
        cas = card["bain"]["base"]["c_a"]
        lines.append("| model | " + " | ".join(f"{x:g}" for x in cas) + " | c/a at minimum |")
        lines.append("|---" * (len(cas) + 2) + "|")
        for name in ("base", "fit"):
            d = card["bain"][name]
            m = "none in the scan" if d["c_a_min"] is None else f"{d['c_a_min']:.3f}"
            lines.append(f"| {name} | " + " | ".join(f"{v:+.2f}" for v in d["meV_atom"]) + f" | {m} |")
    return "\n".join(lines) + "\n"


def describe_model(model_path: str | os.PathLike[str] | None) -> str | None:
    """One sentence on a fitted model from the card beside its file, or ``None`` (no file, or no card)."""
    if not model_path:
        return None
    card_file = Path(model_path).expanduser().parent / "card.json"
    try:
        card = json.loads(card_file.read_text())
    except (OSError, ValueError):
        return None
    b, a = card.get("errors_before", {}).get("held_out", {}), card.get("errors_after", {}).get("held_out", {})
    text = f"fine-tuned from {card.get('base_model', '?')} on {card.get('labels', {}).get('n', '?')} PBE labels"
    if "force_mae_eV_A" in a and "force_mae_eV_A" in b:
        text += f"; held-out force MAE {b['force_mae_eV_A']:.3f} -> {a['force_mae_eV_A']:.3f} eV/A"
    if held_out_verdict(card)["worse"]:
        text += " (WORSE than the base model on held-out labels)"
    fit_min = card.get("bain", {}).get("fit", {}).get("c_a_min")
    if fit_min is not None:
        text += f"; Bain-path c/a {fit_min:.3f}"
    return text + f" (card: {card_file.with_suffix('.md')})"
