"""Commands of the embedded MD: run (and the engine checks, `cellsim engines`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cellsim import stages
from cellsim.cli._app import app, console, fail
from cellsim.core.errors import CellsimError


def progress_bar(dt_fs: float, label: str = "MD") -> Any:
    """A rich progress bar for MD steps and the callback that advances it."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        TextColumn("{task.fields[ps]:.3f} / {task.fields[total_ps]:.3f} ps"),
        TextColumn("{task.fields[rate]:.2f} steps/s"),
        TimeRemainingColumn(),
        console=console,
    )
    task = bar.add_task("md", total=None, ps=0.0, total_ps=0.0, rate=0.0)
    dt_ps = dt_fs / 1000.0

    def update(done: int, want: int, sec: float) -> None:
        bar.update(task, completed=done, total=want, ps=done * dt_ps, total_ps=want * dt_ps, rate=1 / max(sec, 1e-9))

    return bar, update


def run_md(run_dir: Path, replica: int | None = None, **kw: Any) -> Any:
    """stages.run with a progress bar on a terminal."""
    from cellsim.config.rundir import RunDir

    if not console.is_terminal:
        return stages.run(run_dir, replica=replica, **kw)
    study = RunDir(run_dir).load_study()
    bar, update = progress_bar(study.md.timestep_fs, "MD" if replica is None else f"MD replica {replica}")
    with bar:
        return stages.run(run_dir, progress=update, replica=replica, **kw)


@app.command()
def run(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="run directory made by `cellsim build`, or a study matrix or campaign file (each run in turn; a "
            "matrix's runs are built first)"
        ),
    ],
    engine: Annotated[
        str | None,
        typer.Option(help="embedded engine: an offline model (`cellsim engines`) or cp2k (default: the study's)"),
    ] = None,
    time_: Annotated[
        str | None, typer.Option("--time", help="total MD time, e.g. 2ps or 500fs (bare number: ps)")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="total MD steps (instead of --time)")] = None,
    threads: Annotated[int | None, typer.Option(help="torch threads (default 1)")] = None,
    relax_steps: Annotated[int | None, typer.Option(help="pre-relaxation steps (default: the study's)")] = None,
    seeds: Annotated[
        int | None, typer.Option(help="run N replicas (md/replica-NN, velocity seeds engine.seed + k)")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda (default: the study's, auto)")] = None,
) -> None:
    """NVT MD on the embedded machine-learned potential: md/relax, then segment folders with XDATCAR, OSZICAR, CONTCAR.

    Running it again continues from the last checkpoint; a longer --time extends the run. Given a study matrix
    (docs/screening.md), each of its runs in turn; `cellsim screen` also analyses and compares them.
    """
    from cellsim.config.matrix import run_set_path
    from cellsim.config.rundir import RunDir

    if seeds is not None and seeds < 1:
        fail(CellsimError(f"--seeds {seeds}: expected a positive number of replicas"))
    targets = [run_dir]
    found = run_set_path(run_dir) if not RunDir(run_dir).is_run else None
    if found is not None:
        try:
            targets = stages.build_runs(found).run_dirs
        except CellsimError as exc:
            fail(exc)
    replicas: list[int | None] = list(range(seeds)) if seeds else [None]
    for target in targets:
        for rep in replicas:
            try:
                summary = run_md(
                    target,
                    rep,
                    engine=engine,
                    time=time_,
                    steps=steps,
                    threads=threads,
                    relax_steps=relax_steps,
                    device=device,
                )
            except CellsimError as exc:
                fail(exc)
            rate = f", {summary.seconds_per_step:.3f} s/step" if summary.steps_run else ""
            who = (f"{target.name}: " if len(targets) > 1 else "") + ("" if rep is None else f"replica {rep}: ")
            console.print(
                f"{who}{summary.engine}: {summary.steps_total} steps = {summary.time_ps:.3f} ps in "
                f"{', '.join(summary.segments)} ({summary.steps_run} run now{rate})"
            )
