"""Active learning: MD on the committee, label where it disagrees, refit, repeat until the interface passes parity.

`cellsim engines learn` runs one or more iterations of:

1. **Explore.** Langevin NVT of the study's fitted model on the reduced interface (the study's builder at the
   largest size whose CP2K label is estimated within ``label_budget_min`` here: the 46-atom cell of the stored
   interface labels for Li6PS5Cl/In), at the study's
   temperature and hotter (``temperatures``, default T and 1.5 T), one seed per iteration and temperature. Every
   ``every`` steps the committee's per-atom force deviation (:mod:`cellsim.engines.committee`) is recorded.
2. **Select.** Frames whose largest atom deviation lies between ``lo`` and ``hi`` (DP-GEN's trust bounds: below
   ``lo`` the committee agrees and a label teaches little; above ``hi`` the frame is unphysical, usually a crash
   the labels should not chase), the most disputed first, at least ``min_gap`` steps apart (decorrelated), at
   most ``frames`` per iteration. No frame above ``lo`` means the committee agrees wherever the MD went:
   converged for this exploration.
3. **Label.** CP2K PBE single points at the parity settings (those of the stored interface labels, so one energy
   reference), one job at a time, cached by structure and settings in ``labels_dir`` (resumable after any kill).
4. **Refit and judge.** A new fit on the stored label sets plus every label made so far (``cellsim engines fit``'s
   recipe: frozen embeddings and first convolutions keep the chemistry the labels do not cover), its committee,
   and its force errors on the held-out interface sets (never trained on: ``TEST_ONLY_SETS``); one row of the
   learning curve (``learn.json``, ``learn.png``). Stop when the held-out force MAE passes (``<= target``
   overall and ``<= target_in`` on the metal) or after ``iterations``.

Exploration cost here: ~0.05 s per step of the 46-atom cell with four models every fifth step; a label ~5-15 min
on one core; a refit of four models ~10-15 min.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
    from ase import Atoms

    from cellsim.config.study import Study
    from cellsim.engines.fit import Label


@dataclass(frozen=True)
class LearnSettings:
    """One active-learning campaign (every field is written into ``learn.json``)."""

    temperatures: tuple[float, ...] = ()  # empty: the study's T and 1.5 T
    steps: int = 1000
    every: int = 5
    lo: float = 0.05
    hi: float = 0.5
    frames: int = 4
    min_gap: int = 50
    iterations: int = 1
    committee: int = 4
    target: float = 0.10
    target_in: float = 0.12
    label_budget_min: float = 12.0


@dataclass
class Candidate:
    """A frame of the exploration with its committee deviation."""

    atoms: Atoms
    temperature: float
    seed: int
    step: int
    max_dev: float
    element: str
    z_A: float


@dataclass
class LearnState:
    """The learning curve so far (``learn.json``)."""

    settings: dict[str, Any]
    iterations: list[dict[str, Any]] = field(default_factory=list)
    # other fits judged on the same held-out sets (e.g. the same training sets without the new labels): what the
    # curve's gain owes to the active-learning labels and what to labels that were there anyway
    controls: list[dict[str, Any]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        from cellsim.core.files import atomic_write_json

        atomic_write_json(path, {"settings": self.settings, "iterations": self.iterations, "controls": self.controls})


def resume_state(state_file: Path, settings: dict[str, Any]) -> LearnState:
    """The curve so far from ``state_file`` (its rounds and its controls) under this call's ``settings``; a new one
    when there is none. The controls were once dropped here, losing their judged fits from the curve."""
    state = LearnState(settings)
    if state_file.is_file():
        old = json.loads(state_file.read_text())
        state.iterations = list(old.get("iterations", []))
        state.controls = list(old.get("controls", []))
    return state


# --------------------------------------------------------------------------- explore and select


def explore(
    atoms: Atoms,
    calc: Any,
    monitor: Any,
    temperature: float,
    steps: int,
    every: int,
    seed: int,
    dt_fs: float = 2.0,
    progress: Callable[[str], None] | None = None,
) -> list[Candidate]:
    """Langevin NVT of ``atoms`` on ``calc``; every ``every`` steps a :class:`Candidate` with the committee's
    deviation."""
    import warnings

    from cellsim.engines.snapshots import langevin

    # CHGNet's calculator converts to pymatgen, which drops FixCom with a warning per call: the centre of mass is
    # held by the integrator's constraint, not by the forces
    warnings.filterwarnings("ignore", message="Only FixAtoms and FixCartesian", category=UserWarning)
    work, dyn = langevin(atoms, calc, temperature, dt_fs, seed)
    out: list[Candidate] = []
    symbols = work.get_chemical_symbols()
    for step in range(every, steps + 1, every):
        dyn.run(every)
        dev = monitor.per_atom(work)
        i = int(np.argmax(dev))
        snap = work.copy()
        snap.calc = None
        snap.set_constraint()
        out.append(Candidate(snap, temperature, seed, step, float(dev[i]), symbols[i], float(work.positions[i, 2])))
        if progress is not None and step % (20 * every) == 0:
            progress(f"{temperature:g} K step {step}/{steps}: deviation {dev[i]:.3f} eV/A on {symbols[i]}")
    return out


def select(cands: Sequence[Candidate], n: int, lo: float, hi: float, min_gap: int) -> list[Candidate]:
    """The most disputed frames with ``lo < deviation <= hi``, at least ``min_gap`` steps apart within a run."""
    pool = sorted((c for c in cands if lo < c.max_dev <= hi), key=lambda c: -c.max_dev)
    chosen: list[Candidate] = []
    for c in pool:
        if len(chosen) >= n:
            break
        if all(abs(c.step - o.step) >= min_gap for o in chosen if (o.temperature, o.seed) == (c.temperature, c.seed)):
            chosen.append(c)
    return chosen


# --------------------------------------------------------------------------- the campaign


def labelable_interface(study: Study, settings: Any, budget_s: float) -> Atoms:
    """The largest reduced interface whose CP2K label fits ``budget_s`` here (the smallest if none does)."""
    from pymatgen.io.ase import AseAtomsAdaptor

    from cellsim.engines.snapshots import estimate_seconds, reduced_interfaces

    cands = reduced_interfaces(study)
    if not cands:
        raise CellsimError("engines learn: the builder made no reduced interface of this study")
    for _, s in cands:
        atoms = AseAtomsAdaptor.get_atoms(s)
        if estimate_seconds(atoms, settings) <= budget_s:
            return atoms
    return AseAtomsAdaptor.get_atoms(cands[-1][1])


def held_out_errors(model_path: Path, labels: Sequence[Label]) -> dict[str, Any]:
    """Force errors (eV/A, all atoms and per element) of a model file on held-out labels (loaded once by the caller
    for every model it judges), and the energy error with the energy shifts of the model's card (without a card the
    energies are on another zero: dropped)."""
    import contextlib
    import io
    import warnings

    from chgnet.model import CHGNet

    from cellsim.engines.fit import errors

    # CHGNet 0.3 converts a grad-tracking tensor once per call: harmless, and not cellsim's message to print
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad", category=UserWarning)
    with contextlib.redirect_stdout(io.StringIO()):
        model = CHGNet.from_file(str(model_path), verbose=False)
    try:
        shifts = json.loads((Path(model_path).parent / "card.json").read_text())["energy_shifts_eV_atom"]
    except (OSError, ValueError, KeyError):
        shifts = None
    out = errors(model, labels, shifts or {})
    if shifts is None:
        out.pop("energy_mae_meV_atom", None)
    return out


def _labels_of(model_path: Path) -> int | None:
    """The number of labels a model was fitted on (its card), or None without a readable card."""
    try:
        return int(json.loads((Path(model_path).parent / "card.json").read_text())["labels"]["n"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def learn(
    study: Study,
    model_path: Path,
    labels_dir: Path,
    fits_dir: Path,
    training: Sequence[Path],
    test_sets: Sequence[Path],
    s: LearnSettings,
    *,
    element: str | None = None,
    volume: float | None = None,
    explore_only: bool = False,
    progress: Callable[[str], None] | None = None,
) -> LearnState:
    """Run ``s.iterations`` of explore -> select -> label -> refit -> judge; the curve goes to
    ``labels_dir/learn.json``.

    ``training`` are the label folders the fits train on besides the new labels; ``test_sets`` the held-out ones.
    ``explore_only`` stops after the first selection (no CP2K, no fit): what would be labelled, and the deviations.
    """
    from cellsim.engines.cp2k import resolve_settings
    from cellsim.engines.fit import load_labels
    from cellsim.engines.parity import PARITY_SETTINGS

    say = progress or (lambda _m: None)
    cp2k = resolve_settings(PARITY_SETTINGS)
    temps = s.temperatures or (study.md.temperature, 1.5 * study.md.temperature)
    labels_dir.mkdir(parents=True, exist_ok=True)
    state_file = labels_dir / "learn.json"
    state = resume_state(state_file, {**asdict(s), "temperatures": list(temps), "study": study.name})
    atoms = labelable_interface(study, cp2k, 60 * s.label_budget_min)
    held_labels = [] if explore_only else load_labels([str(p) for p in test_sets])
    current = Path(model_path)
    if not state.iterations and not explore_only:
        state.iterations.append(_first_row(current, training, held_labels))
        state.save(state_file)
    elif state.iterations:
        current = Path(next(r["model"] for r in reversed(state.iterations) if "model" in r))
    for it in range(len(state.iterations), len(state.iterations) + s.iterations):
        calc, monitor = _committee_of(current, s.every)
        round_file = labels_dir / f"round-{it}.json"
        if round_file.is_file() and not explore_only:  # a killed campaign: the same frames, not a new exploration
            record, chosen = _load_round(round_file)
            say(f"iteration {it}: {len(chosen)} frames chosen before ({round_file})")
        else:
            record, chosen = _explore_round(it, current, atoms, temps, s, study.md.timestep_fs, calc, monitor, say)
            if not explore_only:
                _save_round(round_file, record, chosen)
        if explore_only:
            state.iterations.append({**record, "explore_only": True})
            state.save(state_file)
            return state
        if not chosen:
            record["converged"] = f"no explored frame above lo = {s.lo} eV/A: the committee agrees along the MD"
            state.iterations.append(record)
            state.save(state_file)
            return state
        _label_frames(it, chosen, labels_dir / "jobs", cp2k, say)
        current, refit = _refit(current, labels_dir / "jobs", training, fits_dir, s, element, volume, held_labels, say)
        record.update(refit)
        state.iterations.append(record)
        state.save(state_file)
        held = refit["held_out"]
        f_all = held.get("force_mae_eV_A", 1e9)
        f_in = held.get("force_mae_by_element", {}).get(element or "", 0.0)
        if f_all <= s.target and f_in <= s.target_in:
            say(f"iteration {it}: held-out force MAE {f_all:.3f} eV/A (metal {f_in:.3f}): passes")
            break
    rejudge(state, test_sets)
    state.save(state_file)
    return state


def _first_row(model_path: Path, training: Sequence[Path], held_labels: Sequence[Label]) -> dict[str, Any]:
    """Row 0 of the learning curve: the starting model, its label count and its held-out errors."""
    from cellsim.engines.fit import load_labels

    n_fit = _labels_of(model_path)
    return {
        "iteration": 0,
        "model": str(model_path),
        "new_labels": 0,
        "labels_total": n_fit if n_fit is not None else len(load_labels([str(p) for p in training])),
        "held_out": held_out_errors(model_path, held_labels),
    }


def _committee_of(model_path: Path, every: int) -> tuple[Any, Any]:
    """The model's calculator and a monitor of its committee's deviation every ``every`` steps.

    Raises
    ------
    CellsimError
        The model has no committee.
    """
    from cellsim.engines.committee import DeviationMonitor, members_of
    from cellsim.engines.mlip import make_calculator

    members = members_of(model_path)
    if not members:
        raise CellsimError(f"engines learn: {model_path} has no committee; run `cellsim engines committee` first")
    calc = make_calculator("chgnet", str(model_path), forces_only=True)[0]
    others = [make_calculator("chgnet", str(p), forces_only=True)[0] for p in members]
    return calc, DeviationMonitor(others, every)


def _explore_round(
    it: int,
    model_path: Path,
    atoms: Atoms,
    temps: Sequence[float],
    s: LearnSettings,
    dt_fs: float,
    calc: Any,
    monitor: Any,
    say: Callable[[str], None],
) -> tuple[dict[str, Any], list[Candidate]]:
    """One round's exploration at every temperature, the frames it selects, and the round's record."""
    cands: list[Candidate] = []
    t0 = time.perf_counter()
    for k, temp in enumerate(temps):
        seed = 100 * it + k
        say(f"iteration {it}: exploring {len(atoms)} atoms at {temp:g} K (seed {seed}, {s.steps} steps)")
        cands += explore(atoms, calc, monitor, temp, s.steps, s.every, seed, dt_fs, say)
    chosen = select(cands, s.frames, s.lo, s.hi, s.min_gap)
    devs = np.array([c.max_dev for c in cands])
    record = {
        "iteration": it,
        "model_explored": str(model_path),
        "explored_frames": len(cands),
        "explore_s": round(time.perf_counter() - t0, 1),
        "deviation_p50_p95_max": [
            float(np.percentile(devs, 50)),
            float(np.percentile(devs, 95)),
            float(devs.max()),
        ],
        "fraction_above_lo": float((devs > s.lo).mean()),
        "fraction_above_hi": float((devs > s.hi).mean()),
        "selected": [
            {
                "T": c.temperature,
                "seed": c.seed,
                "step": c.step,
                "max_dev": c.max_dev,
                "element": c.element,
                "z_A": c.z_A,
            }
            for c in chosen
        ],
    }
    return record, chosen


def _label_frames(it: int, chosen: Sequence[Candidate], jobs: Path, cp2k: Any, say: Callable[[str], None]) -> None:
    """CP2K single points of the chosen frames into ``jobs`` (each cached: a resumed round redoes none)."""
    from cellsim.engines.cp2k import single_point

    for j, c in enumerate(chosen):
        say(
            f"iteration {it}: CP2K label {j + 1}/{len(chosen)} ({c.temperature:g} K step {c.step}, "
            f"{c.max_dev:.3f} eV/A)"
        )
        single_point(
            c.atoms,
            jobs,
            cp2k,
            label=f"learn {it} {c.temperature:g}K seed {c.seed} step {c.step}",
            meta={"source": f"active learning iteration {it}", "committee_max_dev_eV_A": c.max_dev},
        )


def _refit(
    model_path: Path,
    jobs: Path,
    training: Sequence[Path],
    fits_dir: Path,
    s: LearnSettings,
    element: str | None,
    volume: float | None,
    held_labels: Sequence[Label],
    say: Callable[[str], None],
) -> tuple[Path, dict[str, Any]]:
    """A new fit (with the settings of ``model_path``'s card) on the training sets plus every label in ``jobs``,
    its committee, and its held-out errors: the new model and what the round's record gains."""
    from cellsim.engines.committee import grow_committee
    from cellsim.engines.fit import FitSettings, fit_chgnet, load_labels

    new = load_labels([str(jobs)])
    seen = {lab.job for lab in new}
    data = [lab for lab in load_labels([str(p) for p in training]) if lab.job not in seen] + new
    base = FitSettings(**json.loads((model_path.parent / "card.json").read_text())["settings"])
    fit = fit_chgnet(data, fits_dir, base, element=element, volume=volume, progress=say)
    if s.committee > 1:
        grow_committee(fit.model_path, data, s.committee, settings=base, element=element, volume=volume, progress=say)
    held = held_out_errors(fit.model_path, held_labels)
    return fit.model_path, {
        "model": str(fit.model_path),
        "new_labels": len(new),
        "labels_total": len(data),
        "held_out": held,
        "c_a": fit.card.get("bain", {}).get("fit", {}).get("c_a_min"),
    }


def rejudge(state: LearnState, test_sets: Sequence[Path]) -> None:
    """Every round's model judged again on the held-out sets as they stand now (sets still being labelled grow
    between rounds; one curve must compare the models on the same labels)."""
    from cellsim.engines.fit import load_labels

    labels = load_labels([str(p) for p in test_sets])
    for r in [*state.iterations, *state.controls]:
        if "model" in r and Path(r["model"]).is_file():
            n_fit = _labels_of(Path(r["model"]))
            if n_fit is not None:
                r["labels_total"] = n_fit
            r["held_out"] = held_out_errors(Path(r["model"]), labels)
            r["held_out_sets"] = {"sets": [str(p) for p in test_sets], "labels": len(labels)}


def _save_round(path: Path, record: dict[str, Any], chosen: Sequence[Candidate]) -> None:
    """The round's record and its chosen frames (extxyz beside it): what a resumed campaign labels."""
    from ase.io import write

    from cellsim.core.files import atomic_write_json

    frames = path.with_suffix(".extxyz")
    tmp = frames.with_name(frames.name + ".tmp")
    write(tmp, [c.atoms for c in chosen], format="extxyz")
    tmp.replace(frames)
    atomic_write_json(path, record)


def _load_round(path: Path) -> tuple[dict[str, Any], list[Candidate]]:
    from ase.io import read

    record = json.loads(path.read_text())
    sel = record.get("selected", [])
    frames = read(path.with_suffix(".extxyz"), index=":") if sel else []
    frames = frames if isinstance(frames, list) else [frames]
    chosen = [
        Candidate(
            a, float(r["T"]), int(r["seed"]), int(r["step"]), float(r["max_dev"]), str(r["element"]), float(r["z_A"])
        )
        for a, r in zip(frames, sel, strict=True)
    ]
    return record, chosen


def curve_plot(state: dict[str, Any]) -> Any:
    """The learning curve: held-out force MAE (all atoms and per element) against the number of labels."""
    from matplotlib.figure import Figure

    rows = [r for r in state.get("iterations", []) if "held_out" in r]
    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    n = [r["labels_total"] for r in rows]
    ax.plot(n, [r["held_out"].get("force_mae_eV_A") for r in rows], "o-", color="k", label="all atoms")
    els = sorted({e for r in rows for e in r["held_out"].get("force_mae_by_element", {})})
    for e in els:
        ax.plot(n, [r["held_out"]["force_mae_by_element"].get(e) for r in rows], ".--", lw=1, label=e)
    for c in state.get("controls", []):
        if "held_out" in c:
            ax.plot(
                [c["labels_total"]],
                [c["held_out"].get("force_mae_eV_A")],
                "s",
                mfc="none",
                color="grey",
                ms=8,
                label=f"control: {c.get('label', 'fit')}",
            )
    target = state.get("settings", {}).get("target")
    if target:
        ax.axhline(target, color="firebrick", ls=":", lw=1, label=f"target {target:g}")
    ax.set_xlabel("training labels")
    ax.set_ylabel("held-out force MAE vs PBE (eV/A)")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("active learning: held-out interface labels", fontsize=10)
    return fig


def interface_test_sets(elements: set[str]) -> list[Path]:
    """The stored held-out label sets of interfaces with exactly ``elements`` (``TEST_ONLY_SETS`` with the study's
    metal and electrolyte in one cell): where a fit's interface forces are judged."""
    from cellsim.engines.cp2k import stored_labels
    from cellsim.engines.fit import TEST_ONLY_SETS, set_elements

    return [
        jobs
        for jobs in stored_labels()
        if jobs.parent.name in TEST_ONLY_SETS and set_elements(jobs, finished=True) == elements
    ]
