"""``cellsim engines``: the offline machine-learned potentials, and whether each is fit for a study.

A typer sub-app, registered on the main CLI as ``cellsim engines``:

* ``cellsim engines [--study STUDY] [--no-load]``: the models, whether each loads here, cached speed;
* ``cellsim engines check STUDY_OR_RUN [--engine NAME ...] [--json FILE] [--quick]``: lattices, bulk metal
  and electrolyte at the study temperature, reaction energies and speed, with verdicts and a recommendation.

Torch, pymatgen and ASE are imported inside the commands only.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cellsim.cli._app import app, console, err_console, fail
from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
    from cellsim.config.study import Study
    from cellsim.engines.check import BainReference, CheckInput, CheckSettings, EngineReport, Progress
    from cellsim.engines.registry import ModelInfo

engines_app = typer.Typer(
    help="Machine-learned potentials available offline, and checks of their fitness for a study.",
    invoke_without_command=True,
    pretty_exceptions_enable=False,
)
app.add_typer(engines_app, name="engines")

_VERDICT_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "n/a": "dim"}


def load_study_or_run(ref: str) -> tuple[Study, Path | None, Path | None]:
    """A study file, a bundled study name or a run directory -> (study, base folder for CIFs, run dir)."""
    from cellsim.config.rundir import RunDir
    from cellsim.config.study import load_study

    p = Path(ref)
    if p.is_dir():
        return RunDir(p).load_study(), p.resolve(), p
    study = load_study(ref)
    return study, (p.parent.resolve() if p.is_file() else None), None


def study_elements(study: Study, base_dir: Path | None, run_dir: Path | None) -> tuple[list[str], set[str]]:
    """The study's metal elements (sorted) and every element of its metal and electrolyte: what its labels must hold."""
    from cellsim.engines.check import prepare

    inp = prepare(study, base_dir, run_dir)
    metal_els = sorted({str(x.specie) for x in inp.metal.structure})
    return metal_els, set(metal_els) | {str(x.specie) for x in inp.electrolyte.structure}


@engines_app.callback()
def engines_list(
    ctx: typer.Context,
    study: Annotated[
        str | None, typer.Option(help="study file or bundled name: adds its engine.model_path, if any")
    ] = None,
    load: Annotated[bool, typer.Option(help="try loading each model (a few seconds each)")] = True,
) -> None:
    """List the machine-learned potentials whose weights are installed (no download ever)."""
    if ctx.invoked_subcommand is not None:
        return
    from cellsim.engines.check import cached_speeds
    from cellsim.engines.registry import models, probe

    try:
        the_study = load_study_or_run(study)[0] if study else None
        pool = models(the_study)
    except CellsimError as exc:
        fail(exc)
    speeds = cached_speeds()
    t = Table(title="machine-learned potentials (offline)")
    t.add_column("name", no_wrap=True)
    for col in ("model", "trained on", "loads offline", "s/step (cached)", "in default check"):
        t.add_column(col)
    with err_console.status("loading models") if load else contextlib.nullcontext():
        for m in pool:
            if m.weights_file() is None:
                loads = "[red]no[/] (weights missing)"
            elif load:
                ok, why = probe(m)
                loads = "[green]yes[/]" if ok else f"[red]no[/] ({why[:60]})"
            else:
                loads = "weights present"
            sp = speeds.get(m.key)
            t.add_row(
                m.key,
                f"{m.family} {m.version}",
                m.trained_on,
                loads,
                f"{sp[0]:.3g} ({sp[1]} at.)" if sp else "-",
                "yes" if m.default else "no",
            )
    console.print(t)
    console.print(
        "[dim]MACE, MatterSim, ORB, MatGL and PET-MAD download their weights at run time and are not offered. "
        "`cellsim engines check STUDY` compares the models on a study's own phases.[/]"
    )


def _fmt(x: float | str | None) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def _print_report(rep: EngineReport) -> None:
    t = Table(title=f"{rep.engine}: {rep.model} ({rep.seconds:.0f} s)", title_justify="left")
    for col in ("phase", "quantity", "value", "reference", "verdict"):
        t.add_column(col, overflow="fold")
    for r in rep.rows:
        style = _VERDICT_STYLE.get(r.verdict, "")
        unit = f" {r.unit}" if r.unit and r.value is not None else ""
        t.add_row(r.phase, r.quantity, _fmt(r.value) + unit, _fmt(r.reference), f"[{style}]{r.verdict}[/]")
    console.print(t)
    # notes of the rows that need attention (all notes are in the JSON)
    for r in rep.rows:
        if r.verdict in ("warn", "fail") and r.note:
            console.print(
                f"  [{_VERDICT_STYLE[r.verdict]}]{r.verdict}[/] {r.phase} {r.quantity}: {r.note}", soft_wrap=True
            )


def _print_summary(reports: list[EngineReport]) -> None:
    t = Table(title="summary")
    for col in ("engine", "fail", "warn", "ok", "s/step (interface)", "ps/day", "check time"):
        t.add_column(col)
    for rep in reports:
        t.add_row(
            rep.engine,
            str(rep.count("fail")),
            str(rep.count("warn")),
            str(rep.count("ok")),
            _fmt(rep.s_per_step),
            _fmt(rep.ps_per_day),
            f"{rep.seconds:.0f} s",
        )
    console.print(t)


BAIN_FLAT_MEV = 1.0  # meV/atom: a Bain curve spanning less than this is flat within its labels' convergence


def _bain(metal: Any, chosen: Any, progress: Any, plot: Path | None) -> Any:
    """Print PBE's and each engine's E(c/a) on the metal's Bain path, with fitted minima, and plot them."""
    from cellsim.engines.check import PW_LABEL, bain_reference, plot_bain

    try:
        ref = bain_reference(metal, chosen, progress=progress)
    except CellsimError as exc:
        fail(exc)
    t = Table(title=f"{ref.element} Bain path, E - E(fcc) in meV/atom at {ref.volume:g} A^3/atom", title_justify="left")
    t.add_column("c/a")
    for name in ref.curves:
        t.add_column(name)
    for i, ca in enumerate(ref.c_a):
        t.add_row(f"{ca:g}", *(f"{ys[i]:+.2f}" for ys in ref.curves.values()))
    fits = []
    flat = []
    for name in ref.curves:
        x, inside = ref.minima[name]
        ys = ref.curves[name]
        low = ref.c_a[ys.index(min(ys))]
        # a curve that stays within the labels' own convergence (CP2K's In path moves by ~0.5 meV/atom
        # between 16^3 and 24^3 k-meshes, data/pbe/README.md) has no c/a to read off
        if max(ys) - min(ys) < BAIN_FLAT_MEV:
            fits.append(f"flat (span {max(ys) - min(ys):.2f} meV)")
            flat.append(name)
        # a minimum the scan does not bracket is only a bound (the lowest scanned point)
        elif inside and x is not None:
            fits.append(f"{x:.3f}")
        else:
            fits.append(f"{'<=' if low == ref.c_a[0] else '>='} {low:g} (edge)")
    t.add_row("[bold]c/a at minimum[/]", *fits)
    console.print(t)
    for label, (n, wall) in ref.codes.items():
        console.print(f"[dim]{label}: {n} jobs, wall {wall:.0f} s[/]", soft_wrap=True)
    console.print(
        "[dim]minimum from a parabola through the lowest point and its neighbours ('edge': not bracketed by "
        "the scan)[/]",
        soft_wrap=True,
    )
    if flat:
        console.print(
            f"[yellow]{', '.join(flat)}: E(c/a) stays within {BAIN_FLAT_MEV:g} meV/atom of fcc along the whole path, "
            "inside the labels' convergence: no c/a minimum can be read from it[/]",
            soft_wrap=True,
        )
    lattice = ref.lattice_reference
    if lattice is not None and lattice not in flat:
        x, inside = ref.minima[lattice]
        where = f"c/a {x:.3f}" if inside and x is not None else "not bracketed by the scan"
        why = (
            "plane waves converge with one cutoff; CP2K's Gaussian basis gives In's Bain path flat, data/pbe/README.md"
            if lattice == PW_LABEL
            else "no plane-wave curve: see below"
        )
        console.print(f"[bold]PBE c/a of {ref.element}:[/] {where} from {lattice} ({why})", soft_wrap=True)
    for key, why in ref.errors.items():
        console.print(f"  [red]{key}[/]: no curve ({why})", soft_wrap=True)
    if plot is not None:
        console.print(f"[dim]figure written to {plot_bain(ref, plot)}[/]")
    else:
        console.print("[dim]no figure: give --plot PATH (or a run directory, --json FILE) to draw E(c/a)[/]")
    return ref


def parse_budget_s(text: str) -> float:
    """'40min', '2h', '90s', '1.5 h', a bare number = minutes -> seconds."""
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|sec|min|m|h)?\s*", text)
    if m is None or float(m.group(1)) <= 0:
        raise CellsimError(f"--budget {text!r}: expected a time such as 40min, 2h or 600s")
    return float(m.group(1)) * {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, None: 60}[m.group(2)]


def _parity(
    study: Study, chosen: Any, k: int, budget: str, reduced: bool | None, run_dir: Path | None, base_dir: Path | None
) -> Any:
    """Force and energy parity of each engine against CP2K PBE on K interface snapshots (printed, and saved
    as RUN/engine-parity.json for the report when a run directory is checked)."""
    from cellsim.config.engines import mlip_for
    from cellsim.engines.cp2k import cache_dir, resolve_settings, stored_labels
    from cellsim.engines.parity import PARITY_FILE, PARITY_SETTINGS, parity, table_rows, thresholds, trust_lines
    from cellsim.engines.registry import select
    from cellsim.engines.snapshots import plan_snapshots

    try:
        settings = resolve_settings(PARITY_SETTINGS, study.engine.cp2k or None)
        # the snapshots' MD runs on the study's engine (its stand-in model for a DFT engine)
        driver = select([mlip_for(study.engine.name)], study)[0]
        plan = plan_snapshots(study, driver, settings, k, parse_budget_s(budget), run_dir, base_dir, reduced=reduced)
    except CellsimError as exc:
        fail(exc)
    err_console.print(
        f"[bold]parity[/]: {len(plan.frames)} snapshots of the {plan.source}; CP2K estimate "
        f"~{plan.estimate_s / 60:.0f} min (one job each, kept: Ctrl-C and rerun continues)",
        soft_wrap=True,
    )
    for note in plan.notes:
        err_console.print(f"  [yellow]note[/] {note}", soft_wrap=True)

    def progress(what: str, i: int, n: int, info: Any) -> None:
        if what == "cp2k-start":
            err_console.print(f"[dim]  CP2K snapshot {i + 1}/{n} (estimate {float(info) / 60:.1f} min)[/]")
        elif what == "cp2k-done":
            how = "cached" if info.cached else f"{info.data.get('wall_s', 0):.0f} s"
            err_console.print(f"[dim]  CP2K snapshot {i + 1}/{n}: {how}[/]")

    try:
        res = parity(plan, chosen, settings, cache_dir(), labels=stored_labels(), progress=progress)
    except CellsimError as exc:
        fail(exc)
    t = Table(
        title=f"forces vs {res.reference} on {len(res.snapshots)} snapshots ({res.natoms} atoms)", title_justify="left"
    )
    for col in ("engine", "element", "MAE eV/A", "RMSE eV/A", "cosine", "dE meV/atom", "verdict"):
        t.add_column(col)
    for row in table_rows(res):
        style = _VERDICT_STYLE.get(row["verdict"], "")
        t.add_row(
            row["engine"],
            row["element"],
            _fmt(row["mae_eV_A"]),
            _fmt(row["rmse_eV_A"]),
            _fmt(row["cosine"]),
            _fmt(row["energy_diff_meV_atom"]),
            f"[{style}]{row['verdict']}[/]",
        )
    console.print(t)
    th = thresholds()
    console.print(
        f"[dim]verdicts: force MAE ok <= {th['force_mae_eV_A'][0]}, warn <= {th['force_mae_eV_A'][1]} eV/A; cosine ok "
        f">= {th['cosine'][0]}, warn >= {th['cosine'][1]} (atoms with PBE |F| > {th['cosine_min_force_eV_A']} eV/A); "
        f"snapshot energy differences ok <= {th['energy_diff_meV_atom'][0]}, warn <= {th['energy_diff_meV_atom'][1]} "
        f"meV/atom; CP2K wall {res.cp2k_wall_s:.0f} s[/]",
        soft_wrap=True,
    )
    for line in trust_lines(res):
        console.print(line, soft_wrap=True)
    if run_dir is not None:
        console.print(f"[dim]written to {res.save(Path(run_dir) / PARITY_FILE)}[/]")
    return res


@engines_app.command("check")
def engines_check(
    study_or_run: Annotated[str, typer.Argument(help="study file, bundled study name, or run directory")],
    engine: Annotated[
        list[str] | None,
        typer.Option(
            "--engine", "-e", help="model to check (repeatable; 'all' = every model; default: the default set)"
        ),
    ] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="write every row as JSON here")] = None,
    quick: Annotated[bool, typer.Option(help="smoke-test sizes: a few dozen MD steps, two reactions")] = False,
    cache: Annotated[bool, typer.Option(help="reuse cached results (~/.cache/cellsim/engine-check)")] = True,
    threads: Annotated[int, typer.Option(help="torch threads")] = 1,
    reference: Annotated[
        str | None,
        typer.Option(
            help="DFT reference: 'cp2k' = PBE E(c/a) of the metal's Bain path from CP2K and plane-wave GPAW "
            "(stored labels, else the codes run), and PBE force parity (CP2K) on interface snapshots"
        ),
    ] = None,
    reference_only: Annotated[bool, typer.Option(help="with --reference: skip the engines' own checks")] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="with --reference: E(c/a) figure (default: RUN/engines-bain.png, or beside --json; else none)"
        ),
    ] = None,
    parity: Annotated[
        int,
        typer.Option(
            help="with --reference: PBE force/energy parity on K interface snapshots (one CP2K job each; 0 = off)"
        ),
    ] = 3,
    budget: Annotated[
        str,
        typer.Option(
            help="with --parity: CP2K time allowed (e.g. 40min, 2h); a run too big for it is replaced by a "
            "reduced interface of the same builder"
        ),
    ] = "40min",
    reduced: Annotated[
        bool | None,
        typer.Option(help="with --parity: always (--reduced) or never (--no-reduced) label a reduced interface"),
    ] = None,
) -> None:
    """Is each machine-learned potential fit for this study's interface? Checks on its own reactants.

    Relaxed lattices of the metal and the electrolyte (c/a for tetragonal cells), the bulk metal's RMS
    displacement at the study temperature vs the Debye model, anion units (PS4) kept whole, reaction energies
    among library phases, and speed. Verdicts ok/warn/fail; results are cached, so a second run is instant.
    With ``--reference cp2k``: PBE's E(c/a) along the metal's Bain path (CP2K, and plane-wave GPAW, whose
    minimum is the metal's PBE c/a) beside each engine's, on the same crystals,
    and force/energy parity against PBE on ``--parity K`` snapshots of the run (or of a reduced interface
    when the run's would not fit ``--budget``); each snapshot is one cached CP2K job, so Ctrl-C and rerun
    continues.
    """
    from cellsim.engines.check import CheckSettings
    from cellsim.engines.mlip import set_threads

    t0 = time.perf_counter()
    try:
        study, base_dir, run_dir, chosen, inp = _check_target(study_or_run, engine, reference)
    except CellsimError as exc:
        fail(exc)
    set_threads(threads)
    settings = CheckSettings.quick() if quick else CheckSettings()
    err_console.print(
        f"[bold]{study.name}[/]: metal {inp.metal.label}, electrolyte {inp.electrolyte.label}, "
        f"{inp.temperature:g} K; engines: {', '.join(m.key for m in chosen)}"
    )
    progress, parity_result = _task_progress(), None
    if reference is not None:
        bain = _bain(inp.metal, chosen, progress, plot or _bain_plot(run_dir, json_file))
        if parity > 0:
            parity_result = _parity(study, chosen, parity, budget, reduced, run_dir, base_dir)
        if reference_only:
            _write_bain_json(json_file, bain)
            console.print(f"[dim]total {time.perf_counter() - t0:.0f} s[/]")
            return
    _check_and_recommend(inp, chosen, settings, cache, progress, parity_result, json_file)
    console.print(f"[dim]total {time.perf_counter() - t0:.0f} s[/]")


def _check_target(
    study_or_run: str, engine: list[str] | None, reference: str | None
) -> tuple[Study, Path | None, Path | None, list[ModelInfo], CheckInput]:
    """``engines check``'s study, base folder, run directory, chosen models and prepared reactants."""
    from cellsim.engines.check import prepare
    from cellsim.engines.registry import select

    if reference not in (None, "cp2k"):
        raise CellsimError(f"--reference: expected 'cp2k', got {reference!r}")
    study, base_dir, run_dir = load_study_or_run(study_or_run)
    chosen = select(engine, study)
    inp = prepare(study, base_dir, run_dir)
    return study, base_dir, run_dir, chosen, inp


def _task_progress() -> Progress:
    """A progress line per (engine, task), each said once: reactions reuse relaxations."""
    seen: set[tuple[str, str]] = set()

    def progress(eng: str, task: str, seconds: float, cached: bool) -> None:
        if (eng, task) in seen:  # reactions reuse relaxations: say it once
            return
        seen.add((eng, task))
        how = "cached" if cached else f"{seconds:.1f} s"
        err_console.print(f"[dim]  {eng:22s} {task:34s} {how}[/]", highlight=False)

    return progress


def _bain_plot(run_dir: Path | None, json_file: Path | None) -> Path | None:
    """The default E(c/a) figure: beside the run or the --json file, never silently into the current directory."""
    where = run_dir if run_dir is not None else json_file.parent if json_file is not None else None
    return where / "engines-bain.png" if where is not None else None


def _write_bain_json(json_file: Path | None, bain: BainReference) -> None:
    """``--reference-only --json FILE``: the Bain-path rows the table printed, as data (nothing without --json)."""
    from cellsim.core.files import atomic_write_json

    if json_file is None:
        return
    atomic_write_json(
        json_file,
        {
            "bain": {
                "element": bain.element,
                "volume_A3_per_atom": bain.volume,
                "c_a": list(bain.c_a),
                "curves_meV_per_atom": {k: list(v) for k, v in bain.curves.items()},
                "minima": {k: {"c_a": x, "bracketed": inside} for k, (x, inside) in bain.minima.items()},
                "lattice_reference": bain.lattice_reference,
                "errors": dict(bain.errors),
            }
        },
    )
    console.print(f"[dim]rows written to {json_file}[/]")


def _check_and_recommend(
    inp: CheckInput,
    chosen: list[ModelInfo],
    settings: CheckSettings,
    cache: bool,
    progress: Progress,
    parity_result: Any,
    json_file: Path | None,
) -> None:
    """The engines' own checks (a table each, then the summary), the recommendation, and the --json rows."""
    from cellsim.engines.check import check_engines, recommend, write_json

    reports = check_engines(inp, chosen, settings, use_cache=cache, progress=progress)
    for rep in reports:
        _print_report(rep)
    _print_summary(reports)
    best, why = recommend(reports, parity=parity_result)
    if best is not None:
        console.print(f"[bold]recommendation:[/] {best}  ({why})", soft_wrap=True)
    else:
        console.print(f"[bold red]no recommendation:[/] {why}")
    if json_file is not None:
        write_json(json_file, reports)
        console.print(f"[dim]rows written to {json_file}[/]")
