"""``cellsim demo``: the whole pipeline on a bundled study (default: Li6PS5Cl/In on the fitted CHGNet), offline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cellsim import stages
from cellsim.cli._app import app, console, err_console, fail
from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
    from cellsim.config.study import Study

# the paper's interface on CHGNet fine-tuned to PBE labels of In and of the interface (workflows/fits/chgnet-in-pbe):
# the bundled CHGNet 0.3.0 melts the In slab at 300 K, the fit keeps it solid, interfacial plane included, and its
# forces on the interface are closer to PBE (docs/engine.md); `--study li6ps5cl_in` runs the same on CHGNet 0.3.0
DEFAULT_STUDY = "li6ps5cl_in_fitted"
ENGINE = "chgnet"  # the family: a study's engine.model_path (the fit) replaces the bundled weights
# the paper's study keeps the title it always had; other studies show their own name and description
TITLES = {
    DEFAULT_STUDY: "Li6PS5Cl / In (Luo et al., Nat. Commun. 12, 6968, 2021), CHGNet fitted to PBE",
    "li6ps5cl_in": "Li6PS5Cl / In (Luo et al., Nat. Commun. 12, 6968, 2021)",
}


def _bundled_or_file(name: str) -> str:
    """``name`` when it is a bundled study or a study file, else a one-line refusal naming the closest study."""
    import difflib

    from cellsim.core.resources import bundled_workflows

    bundled = bundled_workflows()
    if name in bundled or Path(name).is_file():
        return name
    near = difflib.get_close_matches(name, list(bundled), n=1)
    raise CellsimError(
        f"--study {name!r}: not a bundled study or a study file"
        + (f"; did you mean {near[0]}?" if near else "")
        + f" (bundled: {', '.join(bundled)})"
    )


@app.command()
def demo(
    study: Annotated[
        str,
        typer.Option(help="bundled study (workflows/*.yaml, e.g. li6ps5cl_li: Li metal, the quick positive control)"),
    ] = DEFAULT_STUDY,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="run directory (default runs/demo; runs/demo-STUDY for others)")
    ] = None,
    time_: Annotated[str, typer.Option("--time", help="MD time on the embedded engine, e.g. 1ps")] = "1ps",
    window: Annotated[
        str | None, typer.Option(help="RDF window, e.g. 0.1ps (bare number: ps; default: a tenth of a short run)")
    ] = None,
    force: Annotated[bool, typer.Option(help="start again from scratch")] = False,
) -> None:
    """Run the whole pipeline on a bundled study (default: the paper's Li6PS5Cl/In), offline, on the embedded engine.

    The default study runs on CHGNet fine-tuned to PBE labels of In and of the interface (li6ps5cl_in_fitted;
    `--study li6ps5cl_in` for the bundled CHGNet 0.3.0 weights).
    Stages: build -> VASP inputs (POTCAR.spec) -> engine check -> relax + NVT (CHGNet) -> analyze -> match -> report.
    Each finished stage is kept, so running demo again resumes, and a longer --time extends the MD.
    Prints the report's path at the end.
    """
    from cellsim.cli.analysis import print_analysis, print_match
    from cellsim.cli.build import _print_build, print_inputs
    from cellsim.cli.md import run_md
    from cellsim.config.rundir import RunDir
    from cellsim.config.study import load_study
    from cellsim.core.units import parse_quantity

    t0 = time.perf_counter()
    try:
        study = _bundled_or_file(study)
        spec = load_study(study)
    except CellsimError as exc:
        fail(exc)
    if out is None:
        out = Path("runs/demo") if study == DEFAULT_STUDY else Path(f"runs/demo-{spec.name}")
    rd = RunDir(out)
    _print_title(study, spec)
    try:
        window_ps = parse_quantity(window, "time", "ps", "--window") if window else None
        if force and out.exists():
            import shutil

            shutil.rmtree(out)
        console.print("[bold]1/7 build[/]")
        outcome = stages.build(study, out)
        if outcome.reused:
            console.print(f"[dim]interface already built: {rd.interface_json}[/]")
        _print_build(outcome.report, out, time.perf_counter() - t0)
        console.print("[bold]2/7 VASP inputs (for a cluster run of the same MD)[/]")
        if not (rd.segment_dir(0) / "INCAR").is_file():
            print_inputs(stages.inputs(out))
        _engine_check(out, spec, time_)
        console.print(f"[bold]4/7 relax + NVT MD on CHGNet ({time_})[/]")
        summary = run_md(out, engine=ENGINE, time=time_)
        console.print(f"{summary.steps_total} steps = {summary.time_ps:.3f} ps in {rd.md_dir}")
        console.print("[bold]5/7 analyze[/]")
        t1 = time.perf_counter()
        result = stages.analyze(out, window_ps=window_ps)
        print_analysis(result, time.perf_counter() - t1)
        console.print("[bold]6/7 match[/]")
        print_match(stages.match(out, thermo=True), rd.analysis_dir)
        console.print("[bold]7/7 report[/]")
        with console.status("drawing figures"):
            rep = stages.report(out)
    except CellsimError as exc:
        fail(exc)
    except KeyboardInterrupt:
        again = "cellsim demo" + ("" if study == DEFAULT_STUDY else f" --study {study}")
        err_console.print(f"[yellow]interrupted: run `{again}` again to continue[/]")
        raise typer.Exit(code=130) from None
    console.print(f"[green]demo finished in {time.perf_counter() - t0:.1f} s; run directory: {out}[/]")
    console.print(f"[bold green]report: {rep['html'].resolve()}[/]")


def _print_title(study: str, spec: Study) -> None:
    """The demo's title: the paper's for its studies, else the study's name and its two phases."""
    electrolyte, metal = spec.interface.electrolyte.phase, spec.interface.metal.phase
    title = TITLES.get(study) or f"{spec.name}: {Path(electrolyte).stem} / {Path(metal).stem}"
    if console.is_terminal:
        console.rule(f"[bold]cellsim demo: {title}")
    else:  # a rule spans the console's width, which is unbounded when piped
        console.print(f"[bold]cellsim demo: {title}[/]")


def _engine_check(out: Path, spec: Study, time_: str) -> None:
    """Stage 3/7: is the engine fit for the study's metal and electrolyte (its verdicts counted, the bad named)."""
    from cellsim.core.units import parse_quantity

    electrolyte, metal = spec.interface.electrolyte.phase, spec.interface.metal.phase
    pair = f"{Path(metal).stem} and {Path(electrolyte).stem}"
    console.print(f"[bold]3/7 is CHGNet fit for {pair}? (engine check, cached after the first run)[/]")
    # a smoke-test demo (under 0.5 ps of MD) gets the check's smoke-test sizes too
    quick = parse_quantity(time_, "time", "ps", "--time") < 0.5
    with console.status(f"checking CHGNet on {pair}"):
        # a study with its own model file (engine.model_path, e.g. from `cellsim engines fit`) runs and is
        # checked on that file
        reports = stages.engine_check(out, None if spec.engine.model_path else [ENGINE], quick=quick)
    for rep in reports:
        bad = [f"{r.phase} {r.quantity} {r.verdict}" for r in rep.rows if r.verdict in ("warn", "fail")]
        console.print(
            f"{rep.engine}: {rep.count('fail')} fail, {rep.count('warn')} warn, {rep.count('ok')} ok"
            + (f" ({'; '.join(bad)})" if bad else ""),
            highlight=False,
        )
