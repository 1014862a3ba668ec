"""``cellsim engines fit``: fine-tune the study's offline potential on stored PBE labels.

Registered on the ``cellsim engines`` sub-app; torch, CHGNet and ASE are imported inside the command only.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cellsim.cli._app import console, err_console, fail
from cellsim.cli.engines import engines_app, load_study_or_run, study_elements
from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
    from cellsim.config.study import Study
    from cellsim.engines.fit import FitResult, FitSettings
    from cellsim.engines.label_sources import Label, SourceRecord


@engines_app.command("fit")
def engines_fit(
    study_or_run: Annotated[str, typer.Argument(help="study file, bundled study name, or run directory")],
    labels: Annotated[
        list[Path] | None,
        typer.Option(
            help="DFT labels, repeat for several: vasprun.xml, OUTCAR, ML_AB, extxyz, an ASE .db, a run folder "
            "holding one of them, or folders of DFT job folders (result.json); default: the stored label sets of "
            "the study's elements (data/pbe: every plane-wave set and the CP2K interface labels; not the parity "
            "test snapshots). Formats, frame choice and checks: docs/labels.md"
        ),
    ] = None,
    max_frames: Annotated[
        int,
        typer.Option(min=1, help="at most this many frames per label file (farthest-point sampling on structure)"),
    ] = 200,
    min_gap: Annotated[
        int,
        typer.Option(
            min=1,
            help="smallest gap in steps between two frames of one trajectory (the stride is the larger of this and "
            "the force autocorrelation time)",
        ),
    ] = 1,
    allow_other_elements: Annotated[
        bool,
        typer.Option(
            "--allow-other-elements", help="train on labels holding elements the study lacks (refused otherwise)"
        ),
    ] = False,
    allow_other_functional: Annotated[
        bool,
        typer.Option(
            "--allow-other-functional",
            help="train on labels of a functional other than PBE, the base model's (refused otherwise)",
        ),
    ] = False,
    out: Annotated[Path | None, typer.Option(help="folder of fits (default: RUN/fits, or ./cellsim-fits)")] = None,
    epochs: Annotated[int, typer.Option(min=1, help="training epochs")] = 300,
    learning_rate: Annotated[float, typer.Option(min=1e-7, help="Adam learning rate")] = 1e-3,
    energy_weight: Annotated[float, typer.Option(min=0.0, help="energy loss weight (forces: 1)")] = 100.0,
    threads: Annotated[int, typer.Option(min=1, help="torch threads")] = 1,
    from_card: Annotated[
        Path | None,
        typer.Option(
            help="redo the fit a card describes: its labels (found in --labels or the stored sets) and settings"
        ),
    ] = None,
) -> None:
    """Fine-tune CHGNet on PBE labels and write a model file with its card (errors before/after, Bain c/a).

    Labels come from vasprun.xml, OUTCAR, ML_AB, extxyz, ASE databases or DFT job folders; frames of a
    trajectory are taken one force-autocorrelation time apart and spread in structure, and held out as whole
    time blocks. Labels with elements the study lacks, or of a functional other than PBE, are refused unless
    allowed; a fit worse than the base model on its held-out labels is said so, not offered (docs/labels.md).

    The fit is named by a hash of the labels and settings and reused when both are unchanged. Load it in a
    study with ``engine: {name: chgnet, model_path: FIT/model.pth.tar}``; ``cellsim engines check`` then
    checks it like any other model.
    """
    from cellsim.engines.mlip import set_threads

    t0 = time.perf_counter()
    try:
        got = _load_labels(
            study_or_run,
            labels,
            max_frames,
            min_gap,
            from_card,
            (epochs, learning_rate, energy_weight),
            allow_other_elements,
            allow_other_functional,
        )
    except CellsimError as exc:
        fail(exc)
    set_threads(threads)
    _print_labels(got)
    res, card = _fit(got, out or ((got.run_dir / "fits") if got.run_dir else Path("cellsim-fits")))
    _print_fit(res, card, t0)


@dataclass
class _Labels:
    """What ``engines fit`` trains on: the labels, where they came from, the settings and what loading warned."""

    study: Study
    run_dir: Path | None
    metal_els: list[str]
    folders: list[Path]
    data: list[Label]
    sources: list[SourceRecord]
    settings: FitSettings
    said: list[str]  # the label warnings, each once


def _load_labels(
    study_or_run: str,
    labels: list[Path] | None,
    max_frames: int,
    min_gap: int,
    from_card: Path | None,
    training: tuple[int, float, float],
    allow_other_elements: bool,
    allow_other_functional: bool,
) -> _Labels:
    """The study, its labels (given, the card's or the stored sets) and their checks; ``training`` is (epochs,
    learning rate, energy weight) where no card gives the settings."""
    from cellsim.engines.fit import BASE_FUNCTIONAL, FitSettings, labels_of_card, split_labels, training_sets
    from cellsim.engines.label_sources import (
        LabelWarning,
        Selection,
        check_elements,
        check_functional,
        check_split,
        load_sources,
    )

    study, base_dir, run_dir = load_study_or_run(study_or_run)
    if study.engine.name not in ("chgnet", "chgnet-0.3.0"):
        raise CellsimError(
            f"engines fit: engine.name is '{study.engine.name}'; only CHGNet (chgnet) is fine-tuned for now"
        )
    metal_els, elements = study_elements(study, base_dir, run_dir)
    folders = list(labels) if labels else training_sets(elements)
    if not folders:
        raise CellsimError(
            f"engines fit: no stored label sets for {sorted(elements)}; give --labels (vasprun.xml, OUTCAR, "
            "ML_AB, extxyz, an ASE .db or DFT job folders)"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LabelWarning)
        data, sources = load_sources(folders, Selection(min_gap=min_gap, max_frames=max_frames))
        card_settings = None
        if from_card is not None:
            data, card_settings = labels_of_card(from_card, data)
        epochs, learning_rate, energy_weight = training
        settings = card_settings or FitSettings(epochs=epochs, learning_rate=learning_rate, energy_weight=energy_weight)
        check_elements(data, elements, allow_other_elements)
        check_functional(data, BASE_FUNCTIONAL, allow_other_functional)
        check_split(*split_labels(data, settings.holdout_every, settings.split_seed))
    said = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, LabelWarning)))
    return _Labels(study, run_dir, metal_els, folders, data, sources, settings, said)


def _print_labels(got: _Labels) -> None:
    """Where the labels came from, file by file (frames taken of those read, stride), and what loading warned."""
    err_console.print(
        f"[bold]{got.study.name}[/]: {len(got.data)} labels from {', '.join(str(f) for f in got.folders)}"
    )
    for src in got.sources:
        if src.format != "jobs":
            stride = f", stride {src.stride} steps (autocorrelation {src.decorrelation_steps})" if src.stride else ""
            err_console.print(
                f"  {src.file}: {len(src.frames_taken)} of {src.frames_read} frames ({src.format}, {src.code}, "
                f"{src.functional}{stride})",
                highlight=False,
                markup=False,
            )
    for msg in got.said:
        err_console.print(f"warning: {msg}", style="yellow", highlight=False, markup=False, soft_wrap=True)


def _fit(got: _Labels, root: Path) -> tuple[FitResult, dict[str, Any]]:
    """The fit (reused when its labels and settings are unchanged) and its card with the held-out verdict."""
    from cellsim.engines.cp2k import BAIN_VOLUME
    from cellsim.engines.fit import annotate_card, fit_chgnet

    el = got.metal_els[0] if len(got.metal_els) == 1 else None
    try:
        res = fit_chgnet(
            got.data,
            root,
            got.settings,
            element=el,
            volume=BAIN_VOLUME.get(el or "", None),
            progress=lambda m: err_console.print(f"[dim]  {m}[/]", highlight=False),
        )
    except CellsimError as exc:
        fail(exc)
    return res, annotate_card(res, [src.as_dict() for src in got.sources], got.said)


def _print_fit(res: FitResult, card: dict[str, Any], t0: float) -> None:
    """The errors before and after, the Bain c/a, where the model is, and whether to use it."""
    t = Table(title=f"fit {card['key']} ({'reused' if res.cached else 'new'})", title_justify="left")
    for col in ("set", "labels", "E MAE before", "after (meV/atom)", "F MAE before", "after (eV/A)"):
        t.add_column(col)
    for part, name in (("train", "train"), ("held_out", "held out")):
        b, a = card["errors_before"][part], card["errors_after"][part]

        def g(d: dict, k: str) -> str:
            return "-" if d.get(k) is None else f"{d[k]:.3f}"

        t.add_row(
            name,
            str(b["n"]),
            g(b, "energy_mae_meV_atom"),
            g(a, "energy_mae_meV_atom"),
            g(b, "force_mae_eV_A"),
            g(a, "force_mae_eV_A"),
        )
    console.print(t)
    if "bain" in card:
        for name in ("base", "fit"):
            d = card["bain"][name]
            m = "no minimum in the scan" if d["c_a_min"] is None else f"{d['c_a_min']:.3f}"
            console.print(f"  Bain path c/a at minimum, {name}: {m}")
    console.print(f"model: {res.model_path}\ncard:  {res.folder / 'card.md'}")
    verdict = card["held_out_verdict"]
    if verdict["worse"]:
        err_console.print(
            f"WARNING: this fit is WORSE than the base model on the held-out labels ({'; '.join(verdict['worse_on'])})"
            ": do not use this model (label other frames, fit fewer epochs, or check the labels); its card says so",
            style="bold red",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        console.print(f"[dim]total {time.perf_counter() - t0:.0f} s[/]")
        return
    console.print(
        f"[dim]use it: engine: {{name: chgnet, model_path: {res.model_path}}}; total "
        f"{time.perf_counter() - t0:.0f} s[/]"
    )
