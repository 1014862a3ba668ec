"""``cellsim engines committee``: the committee of a fitted model, whose disagreement every embedded run records.

Registered on the ``cellsim engines`` sub-app; torch and CHGNet are imported inside the command only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cellsim.cli._app import console, err_console, fail
from cellsim.cli.engines import engines_app, load_study_or_run, study_elements
from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
    from cellsim.config.study import Study
    from cellsim.engines.learn import LearnState


@engines_app.command("committee")
def engines_committee(
    study_or_run: Annotated[
        str, typer.Argument(help="study file, bundled study name, or run directory whose engine.model_path is a fit")
    ],
    size: Annotated[int, typer.Option(min=2, help="models in the committee, the fit itself included")] = 4,
    labels: Annotated[
        list[Path] | None,
        typer.Option(help="label folders holding the fit's labels (default: the stored label sets, data/pbe)"),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="torch threads")] = 1,
) -> None:
    """Fit the other members of a fitted model's committee (same labels and settings; seed and held-out split 1..N-1).

    The members go to FIT/committee/ and are listed in FIT/committee.json; from then on every embedded run of a
    study using that model writes the committee's force deviation beside its trajectory (deviation.csv in each
    segment folder) and the analysis judges it ("engine deviation"). Members already fitted are reused.
    """
    from cellsim.engines.committee import grow_committee
    from cellsim.engines.cp2k import BAIN_VOLUME
    from cellsim.engines.fit import labels_of_card, load_labels, training_sets
    from cellsim.engines.mlip import set_threads

    t0 = time.perf_counter()
    try:
        study, base_dir, run_dir = load_study_or_run(study_or_run)
        model_path = study.engine.model_path
        if not model_path:
            raise CellsimError(
                f"engines committee: {study_or_run} names no fitted model (engine.model_path); fit one with "
                "`cellsim engines fit` first"
            )
        model = Path(model_path).expanduser()
        if not model.is_absolute() and base_dir is not None:
            model = base_dir / model
        card = model.parent / "card.json"
        if not card.is_file():
            raise CellsimError(f"engines committee: {card} missing; the committee refits the labels a fit's card names")
        metal_els, elements = study_elements(study, base_dir, run_dir)
        folders = list(labels) if labels else training_sets(elements)
        data, settings = labels_of_card(card, load_labels(folders))
    except CellsimError as exc:
        fail(exc)
    set_threads(threads)
    el = metal_els[0] if len(metal_els) == 1 else None
    err_console.print(f"[bold]{study.name}[/]: committee of {size} for {model} ({len(data)} labels)")
    try:
        results = grow_committee(
            model,
            data,
            size,
            settings=settings,
            element=el,
            volume=BAIN_VOLUME.get(el or "", None),
            progress=lambda m: err_console.print(f"[dim]  {m}[/]", highlight=False),
        )
    except CellsimError as exc:
        fail(exc)
    t = Table(title=f"committee of {model.parent}", title_justify="left")
    for col in ("member", "seed/split", "held-out F MAE (eV/A)", "held-out E MAE (meV/atom)", "c/a"):
        t.add_column(col)
    for res in results:
        held = res.card["errors_after"]["held_out"]
        ca = res.card.get("bain", {}).get("fit", {}).get("c_a_min")
        t.add_row(
            str(res.folder.relative_to(model.parent)),
            f"{res.card['settings']['seed']}/{res.card['settings'].get('split_seed', 0)}",
            f"{held.get('force_mae_eV_A', float('nan')):.3f}",
            f"{held.get('energy_mae_meV_atom', float('nan')):.2f}",
            "-" if ca is None else f"{ca:.3f}",
        )
    console.print(t)
    console.print(f"[dim]committee: {model.parent / 'committee.json'}; total {time.perf_counter() - t0:.0f} s[/]")


@engines_app.command("learn")
def engines_learn(
    study_or_run: Annotated[
        str, typer.Argument(help="study file, bundled study name, or run directory whose engine.model_path is a fit")
    ],
    iterations: Annotated[int, typer.Option(min=1, help="explore -> label -> refit rounds")] = 1,
    frames: Annotated[int, typer.Option(min=1, help="frames labelled per round")] = 4,
    steps: Annotated[int, typer.Option(min=10, help="MD steps per temperature per round")] = 1000,
    labels_dir: Annotated[
        Path | None, typer.Option(help="where the new CP2K labels, fits and learn.json go (default: RUN/learn)")
    ] = None,
    explore_only: Annotated[
        bool, typer.Option(help="explore and select only: print what would be labelled (no CP2K, no fit)")
    ] = False,
    judge_only: Annotated[
        bool,
        typer.Option(help="judge every round's model again on the held-out sets as they stand now, redraw the curve"),
    ] = False,
    control: Annotated[
        list[Path] | None,
        typer.Option(
            help="with --judge-only: another fit's model file judged beside the rounds (e.g. the same training sets "
            "without the new labels), shown as a control on the curve"
        ),
    ] = None,
    committee: Annotated[
        int, typer.Option(min=1, help="models in each new fit's committee (1: none; grow it later with `committee`)")
    ] = 4,
    threads: Annotated[int, typer.Option(min=1, help="torch threads")] = 1,
) -> None:
    """Active learning: MD on the committee (study T and 1.5 T) on the reduced interface, CP2K labels of the frames
    it disputes most, a refit with its committee, and the held-out interface force errors after each round.

    One CP2K job at a time, each cached by structure and settings: a killed campaign resumes where it stopped.
    The learning curve is LABELS_DIR/learn.json and learn.png. Rules and bounds: docs/engines.md.
    """
    from cellsim.engines.cp2k import BAIN_VOLUME
    from cellsim.engines.learn import LearnSettings, learn
    from cellsim.engines.mlip import set_threads

    t0 = time.perf_counter()
    try:
        study, model, out, metal_els, training, tests = _learn_inputs(study_or_run, labels_dir, explore_only)
    except CellsimError as exc:
        fail(exc)
    set_threads(threads)
    el = metal_els[0] if len(metal_els) == 1 else None
    settings = LearnSettings(steps=steps, frames=frames, iterations=iterations, committee=committee)
    try:
        if judge_only:
            state = _rejudge(out, control, tests)
        else:
            state = learn(
                study,
                model,
                out,
                out / "fits",
                training,
                tests,
                settings,
                element=el,
                volume=BAIN_VOLUME.get(el or "", None),
                explore_only=explore_only,
                progress=lambda m: err_console.print(f"[dim]  {m}[/]", highlight=False),
            )
    except CellsimError as exc:
        fail(exc)
    _print_curve(study.name, state, el, out)
    console.print(f"[dim]curve: {out / 'learn.json'}, {out / 'learn.png'}; total {time.perf_counter() - t0:.0f} s[/]")


def _learn_inputs(
    study_or_run: str, labels_dir: Path | None, explore_only: bool
) -> tuple[Study, Path, Path, list[str], list[Path], list[Path]]:
    """``engines learn``'s study, fitted model, campaign folder, metal elements, training and held-out sets."""
    from cellsim.engines.fit import training_sets
    from cellsim.engines.learn import interface_test_sets

    study, base_dir, run_dir = load_study_or_run(study_or_run)
    if not study.engine.model_path:
        raise CellsimError(f"engines learn: {study_or_run} names no fitted model (engine.model_path)")
    model = Path(study.engine.model_path)
    out = labels_dir or ((run_dir / "learn") if run_dir else Path("cellsim-learn"))
    metal_els, elements = study_elements(study, base_dir, run_dir)
    training = [p for p in training_sets(elements) if p.resolve() != (out / "jobs").resolve()]
    tests = interface_test_sets(elements)
    if not tests and not explore_only:
        raise CellsimError(
            f"engines learn: no held-out interface labels of {sorted(elements)} are stored; the campaign needs "
            "them to know when to stop (label some with data/pbe/li6ps5cl_in_fit_md.py's recipe)"
        )
    return study, model, out, metal_els, training, tests


def _rejudge(out: Path, control: list[Path] | None, tests: list[Path]) -> LearnState:
    """``--judge-only``: every round's model (and each --control model) judged again on the held-out sets."""
    from cellsim.engines.learn import LearnState, rejudge

    f = out / "learn.json"
    if not f.is_file():
        raise CellsimError(f"--judge-only: {f} missing (no campaign in {out} yet)")
    old = json.loads(f.read_text())
    state = LearnState(old.get("settings", {}), list(old.get("iterations", [])), list(old.get("controls", [])))
    for c in control or []:
        if not c.is_file():
            raise CellsimError(f"--control {c}: no such model file")
        state.controls = [x for x in state.controls if x.get("model") != str(c)]
        state.controls.append({"label": c.parent.name, "model": str(c)})
    rejudge(state, tests)
    state.save(f)
    return state


def _print_curve(name: str, state: LearnState, el: str | None, out: Path) -> None:
    """The rounds as a table, and the learning curve drawn to OUT/learn.png."""
    from cellsim.core.files import atomic_write_bytes
    from cellsim.engines.learn import curve_plot
    from cellsim.reporting.figures import to_png

    t = Table(title=f"active learning, {name}", title_justify="left")
    for col in ("round", "labels", "held-out F MAE (eV/A)", "metal", "deviation p95 (eV/A)", "selected"):
        t.add_column(col)
    for r in state.iterations:
        held = r.get("held_out", {})
        dev = r.get("deviation_p50_p95_max")
        t.add_row(
            str(r["iteration"]),
            str(r.get("labels_total", "-")),
            f"{held['force_mae_eV_A']:.3f}" if "force_mae_eV_A" in held else "-",
            f"{held.get('force_mae_by_element', {}).get(el or '', float('nan')):.3f}" if held else "-",
            f"{dev[1]:.3f}" if dev else "-",
            str(len(r.get("selected", []))) if "selected" in r else "-",
        )
    console.print(t)
    atomic_write_bytes(
        out / "learn.png",
        to_png(curve_plot({"settings": state.settings, "iterations": state.iterations, "controls": state.controls})),
    )


@engines_app.command("distill")
def engines_distill(
    run_dir: Annotated[
        Path, typer.Argument(help="a built run directory whose study's engine.model_path is the teacher")
    ],
    out: Annotated[Path, typer.Option(help="folder of students (one sub-folder per teacher + data + settings)")] = Path(
        "cellsim-students"
    ),
    from_run: Annotated[
        Path | None,
        typer.Option(
            help="a run the student drove: its frames are labelled by the teacher and trained on too (one round of "
            "learning where the teacher disagreed)"
        ),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="torch threads")] = 1,
    lattice: Annotated[
        bool,
        typer.Option(help="relax In and Li6PS5Cl with student and teacher and record c/a and a in the card"),
    ] = True,
) -> None:
    """Distil a fast student (a small MACE) from the study's fitted model, its teacher (docs/student.md).

    Teacher-labelled frames of the run's interface and the reduced interface (300/450/600 K MD, rattled and strained
    cells) and of the stored DFT sets' structures; held out by trajectory; a card with the teacher's sha256, the
    errors and the speed. Cached: the same call reuses the folder. Use it with
    ``engine: {name: chgnet, model_path: TEACHER, student: FOLDER}``; the teacher then checks its forces in every run.
    """
    from cellsim.engines.distill import distill, student_run_frames
    from cellsim.engines.mlip import set_threads

    t0 = time.perf_counter()
    set_threads(threads)
    try:
        extra = student_run_frames(from_run) if from_run is not None else []
        res = distill(
            run_dir,
            out,
            extra_atoms=extra,
            extra_source=f"frames of the student's run {from_run}" if from_run is not None else "",
            progress=lambda m: err_console.print(f"[dim]  {m}[/]", highlight=False),
        )
        if lattice:
            _record_lattice(run_dir, res.folder)
    except CellsimError as exc:
        fail(exc)
    console.print(f"student: {res.folder} ({'reused' if res.cached else 'new'})\ncard:    {res.folder / 'card.md'}")
    console.print(
        f"[dim]use it: engine: {{name: chgnet, model_path: TEACHER, student: {res.folder}}}; total "
        f"{time.perf_counter() - t0:.0f} s[/]"
    )


def _record_lattice(run_dir: Path, folder: Path) -> None:
    """The student's relaxed lattices against its teacher's, into the card (skipped for a study of other elements)."""
    from cellsim.config.engines import mlip_for
    from cellsim.config.rundir import RunDir
    from cellsim.engines.distill import lattice_against_teacher
    from cellsim.engines.mlip import make_calculator
    from cellsim.engines.student import record_card, student_calculator

    study = RunDir(run_dir).load_study()
    phases = [p for p in (study.interface.metal.phase, study.interface.electrolyte.phase) if p]
    teacher, _ = make_calculator(mlip_for(study.engine.name), study.engine.model_path, "cpu", forces_only=False)
    student, _ = student_calculator(folder)
    rows = lattice_against_teacher(student, teacher, phases)
    record_card(folder, "lattice", rows)
    for r in rows:
        err_console.print(
            f"[dim]  {r['phase']} {r['quantity']}: student {r['student']:.4f}, teacher {r['teacher']:.4f}"
            f" ({'ok' if r['ok'] else 'beyond 0.01'})[/]",
            highlight=False,
        )
