"""``cellsim engines fit``: fine-tune the study's offline potential on stored PBE labels.

Registered on the ``cellsim engines`` sub-app; torch, CHGNet and ASE are imported inside the command only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cellsim.cli._app import console, err_console, fail
from cellsim.cli.engines import engines_app, load_study_or_run
from cellsim.core.errors import CellsimError


@engines_app.command("fit")
def engines_fit(
    study_or_run: Annotated[str, typer.Argument(help="study file, bundled study name, or run directory")],
    labels: Annotated[
        list[Path] | None,
        typer.Option(
            help="DFT label folders (job folders with result.json); default: the stored label sets of the "
            "study's elements (data/pbe: every plane-wave set and the CP2K interface labels; not the parity "
            "test snapshots)"
        ),
    ] = None,
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

    The fit is named by a hash of the labels and settings and reused when both are unchanged. Load it in a
    study with ``engine: {name: chgnet, model_path: FIT/model.pth.tar}``; ``cellsim engines check`` then
    checks it like any other model.
    """
    from cellsim.engines.cp2k import BAIN_VOLUME
    from cellsim.engines.fit import FitSettings, fit_chgnet, labels_of_card, load_labels, training_sets
    from cellsim.engines.mlip import set_threads

    t0 = time.perf_counter()
    try:
        study, base_dir, run_dir = load_study_or_run(study_or_run)
        if study.engine.name not in ("chgnet", "chgnet-0.3.0"):
            raise CellsimError(
                f"engines fit: engine.name is '{study.engine.name}'; only CHGNet (chgnet) is fine-tuned for now"
            )
        from cellsim.engines.check import prepare

        inp = prepare(study, base_dir, run_dir)
        metal_els = sorted({str(x.specie) for x in inp.metal.structure})
        elements = set(metal_els) | {str(x.specie) for x in inp.electrolyte.structure}
        folders = list(labels) if labels else training_sets(elements)
        if not folders:
            raise CellsimError(
                f"engines fit: no stored label sets for {sorted(elements)}; give --labels (DFT job folders)"
            )
        data = load_labels(folders)
        card_settings = None
        if from_card is not None:
            data, card_settings = labels_of_card(from_card, data)
    except CellsimError as exc:
        fail(exc)
    set_threads(threads)
    root = out or ((run_dir / "fits") if run_dir else Path("cellsim-fits"))
    err_console.print(f"[bold]{study.name}[/]: {len(data)} labels from {', '.join(str(f) for f in folders)}")
    settings = card_settings or FitSettings(epochs=epochs, learning_rate=learning_rate, energy_weight=energy_weight)
    el = metal_els[0] if len(metal_els) == 1 else None
    try:
        res = fit_chgnet(
            data,
            root,
            settings,
            element=el,
            volume=BAIN_VOLUME.get(el or "", None),
            progress=lambda m: err_console.print(f"[dim]  {m}[/]", highlight=False),
        )
    except CellsimError as exc:
        fail(exc)
    card = res.card
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
    console.print(
        f"[dim]use it: engine: {{name: chgnet, model_path: {res.model_path}}}; total "
        f"{time.perf_counter() - t0:.0f} s[/]"
    )
