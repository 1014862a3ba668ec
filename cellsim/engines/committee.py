"""A committee of fitted models and the force deviation it measures along every embedded run.

Why: a fitted potential is only as good as the labels near the structures MD takes it to. Where several fits of
the same labels (differing in training seed and held-out split) agree, the labels pinned the forces; where they
disagree, the model is extrapolating. DP-GEN's active learning uses the same measure with trust bounds of
0.05-0.15 eV/A (lower) to 0.15-0.35 eV/A (upper).

* **Members.** A committee lives beside a fitted model's file: ``committee.json`` in the fit's folder lists the
  member model files (``committee/chgnet-<hash>/``, each a fit of the same labels with ``seed = split_seed = k``).
  The driving model counts as a member. :func:`grow_committee` makes the members of an existing fit from its card.
* **Deviation.** On a frame, atom i's deviation is the RMS over members of ``|F_ik - <F_i>|`` (DP-GEN's
  ``max_devi_f`` per atom); a frame's value is its largest over atoms, and where that atom sits is kept (the
  interface, or the metal's interior, says where the labels are missing).
* **Teacher mode** (a distilled student): the same record with one reference model, ``|F_student,i - F_teacher,i|``.
* **Record.** Every ``engine.monitor_every`` MD steps one line of ``deviation.csv`` in the segment folder,
  truncated with the trajectory on resume (the checkpoint keeps its byte length). The analysis turns it into the
  diagnostic "engine deviation" (:mod:`cellsim.analysis.checks`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.core.errors import CellsimError
from cellsim.io.deviation import DEVIATION_FILE, DEVIATION_HEADER

__all__ = ["COMMITTEE_FILE", "DEVIATION_FILE", "DEVIATION_HEADER", "DeviationMonitor", "grow_committee", "members_of"]

if TYPE_CHECKING:
    from ase import Atoms
    from ase.calculators.calculator import Calculator

    from cellsim.engines.fit import FitResult, FitSettings, Label

COMMITTEE_FILE = "committee.json"


def members_of(model_path: str | os.PathLike[str] | None) -> list[Path]:
    """The committee's other members beside ``model_path`` (``committee.json`` in its folder), or [].

    Raises
    ------
    CellsimError
        ``committee.json`` is unreadable or names a model file that is missing.
    """
    if not model_path:
        return []
    folder = Path(model_path).expanduser().parent
    f = folder / COMMITTEE_FILE
    if not f.is_file():
        return []
    try:
        data = json.loads(f.read_text())
        paths = [folder / str(m["model"]) for m in data["members"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CellsimError(
            f"{f}: not a committee file ({exc}); expected {{'members': [{{'model': PATH}}, ...]}}"
        ) from None
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise CellsimError(f"{f}: member model file(s) missing: {', '.join(missing)}")
    return paths


def force_deviation(forces: Sequence[np.ndarray]) -> np.ndarray:
    """Per atom, the RMS over models of ``|F_k - <F>|`` (eV/A); two models give half their difference's norm."""
    f = np.stack([np.asarray(x, dtype=float) for x in forces])  # (models, atoms, 3)
    dev = f - f.mean(axis=0)
    return np.sqrt((dev**2).sum(axis=2).mean(axis=0))


@dataclass
class DeviationMonitor:
    """Forces of other models on the MD's frames every ``every`` steps, one ``deviation.csv`` line each.

    ``kind`` is ``committee`` (the driving model and ``calculators`` are the members) or ``teacher``
    (``calculators`` holds one reference; the value is ``|F - F_ref|`` per atom).
    """

    calculators: list[Calculator]
    every: int
    kind: str = "committee"
    labels: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "every_steps": self.every, "members": list(self.labels), "file": DEVIATION_FILE}

    def per_atom(self, atoms: Atoms) -> np.ndarray:
        """The per-atom deviation on ``atoms`` (whose calculator's forces are the driving model's)."""
        own = np.asarray(atoms.get_forces(), dtype=float)
        others = []
        for calc in self.calculators:
            work = atoms.copy()
            work.calc = calc
            others.append(np.asarray(work.get_forces(), dtype=float))
        if self.kind == "teacher":
            return np.linalg.norm(own - others[0], axis=1)
        return force_deviation([own, *others])

    def line(self, step: int, time_ps: float, atoms: Atoms) -> str:
        dev = self.per_atom(atoms)
        i = int(np.argmax(dev))
        z = float(atoms.get_positions()[i, 2])
        return (
            f"{step},{time_ps:.6g},{dev[i]:.5f},{float(dev.mean()):.5f},{i},{atoms.get_chemical_symbols()[i]},{z:.3f}\n"
        )


def monitor_for(
    engine: str,
    model_path: str | None,
    every: int,
    device: str = "cpu",
    committee: str = "auto",
    student: str | None = None,
    *,
    factory: Callable[[str, str | None, str], Calculator],
) -> DeviationMonitor | None:
    """The monitor of an embedded run: the committee beside the study's model file, when it has one.

    ``factory(engine, model_path, device)`` makes a model's calculator (the embedded engine's own loader: passed
    in, so this module never imports the engine that imports it).

    ``committee`` is ``auto`` (use it when present) or ``off``. When a ``student`` folder drives the MD, the
    monitor is its teacher (``engine`` with ``model_path``), kind ``teacher``, whatever ``committee`` says.
    """
    if every < 1:
        return None
    if student:
        teacher = factory(engine, model_path, device)
        return DeviationMonitor([teacher], every, "teacher", (str(model_path or engine),))
    if committee == "off":
        return None
    paths = members_of(model_path)
    if not paths:
        return None
    calcs = [factory(engine, str(p), device) for p in paths]
    return DeviationMonitor(calcs, every, "committee", (str(model_path), *map(str, paths)))


# --------------------------------------------------------------------------- making a committee


def grow_committee(
    model_path: str | os.PathLike[str],
    labels: Sequence[Label],
    n: int,
    *,
    settings: FitSettings | None = None,
    element: str | None = None,
    volume: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[FitResult]:
    """Fit ``n - 1`` more members of the labels ``model_path`` was fitted on (its card's settings, ``seed`` and
    ``split_seed`` = 1 .. n-1) into ``FOLDER/committee/``, and list them in ``FOLDER/committee.json``.

    Members already fitted are reused (a fit is cached by labels and settings).
    """
    from cellsim.core.files import atomic_write_json
    from cellsim.engines.fit import FitSettings, fit_chgnet

    if n < 2:
        raise CellsimError(f"--committee {n}: a committee needs 2 or more models")
    folder = Path(model_path).expanduser().parent
    base = settings or FitSettings(**json.loads((folder / "card.json").read_text())["settings"])
    say = progress or (lambda _m: None)
    out: list[FitResult] = []
    for k in range(1, n):
        say(f"committee member {k}/{n - 1} (seed {k}, split {k})")
        s = replace(base, seed=k, split_seed=k)
        out.append(fit_chgnet(labels, folder / "committee", s, element=element, volume=volume, progress=progress))
    members = []
    for res in out:
        held = res.card.get("errors_after", {}).get("held_out", {})
        members.append(
            {
                "model": str(res.model_path.relative_to(folder)),
                "seed": res.card["settings"]["seed"],
                "split_seed": res.card["settings"].get("split_seed", 0),
                "held_out_force_mae_eV_A": held.get("force_mae_eV_A"),
                "held_out_energy_mae_meV_atom": held.get("energy_mae_meV_atom"),
            }
        )
    atomic_write_json(
        folder / COMMITTEE_FILE,
        {"driving_model": Path(model_path).name, "members": members, "rule": "RMS over models of |F_k - <F>|"},
    )
    return out
