"""Commands across runs: ``compare`` (one ranked answer over several runs or a study matrix) and ``screen`` (a
study matrix built, run here, analysed, matched, reported and compared)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cellsim import stages
from cellsim.cli._app import app, console, err_console, fail
from cellsim.core.errors import CellsimError


def print_comparison(result: Any) -> None:
    """The ranking as a table, then each run's own answer line."""
    from rich.table import Table

    unit = next((r.unit for r in result.rows if r.unit), None) or "units"
    t = Table(title=f"{result.title}: {len(result.rows)} runs, ranked (most reactive first)")
    for col in ("rank", "levels", "seeds", "answers", "onset", f"{unit} lost /nm2/ps", "new bonds /nm2", "products"):
        t.add_column(col)
    for g in result.groups:
        t.add_row(
            str(g.rank),
            g.label,
            str(len(g.rows)),
            g.kinds_text(),
            g.stat("onset_ps").text(".3g", "ps"),
            g.stat("units_lost_per_nm2_ps").text(".3g"),
            g.stat("new_bonds_per_nm2").text(".3g"),
            g.products_text(),
        )
    console.print(t)
    for g in result.groups:
        for r in g.rows:
            console.print(f"{r.name}: {r.kind}: {r.sentence}", highlight=False, markup=False, soft_wrap=True)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


@app.command()
def compare(
    targets: Annotated[
        list[Path],
        typer.Argument(
            help="run directories or analysis folders, or one matrix or campaign file (what `submit` takes), or a "
            "matrix's output folder"
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="output folder (default: MATRIX_OUT/compare, else compare/ beside the runs)"),
    ] = None,
    title: Annotated[str | None, typer.Option(help="the page's title (default: the matrix's name)")] = None,
) -> None:
    """One comparative answer across runs: each run's own answer, onset, electrolyte units lost and new bonds per
    area, products with amounts, the engine's trust and the PBE reaction energy; seeds grouped (mean +/- sd) and
    ranked by reactivity. Writes compare.html, compare.md, compare.csv, compare.json and figures."""
    try:
        with console.status("reading the runs"):
            result = stages.compare(targets, out, title)
    except CellsimError as exc:
        fail(exc)
    print_comparison(result)
    where = result.out_dir or Path(".")
    console.print(f"comparison: {where / 'compare.html'}  (also compare.md, compare.csv, compare.json)")


@app.command()
def screen(
    matrix: Annotated[
        str, typer.Argument(help="study matrix file (docs/screening.md), its output folder, or a bundled matrix's name")
    ],
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="folder of the run directories (default: the file's out:, else runs/NAME)"),
    ] = None,
    time_: Annotated[
        str | None,
        typer.Option("--time", help="MD time per run instead of the matrix's md.total_time_ps, e.g. 0.2ps"),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="torch threads (default 1)")] = None,
    relax_steps: Annotated[int | None, typer.Option(help="pre-relaxation steps (default: the studies')")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda (default: the studies')")] = None,
    reports: Annotated[bool, typer.Option("--reports/--no-reports", help="also write each run's own report")] = True,
) -> None:
    """Screen interfaces: build every run of a study matrix, run its MD here on the embedded engine, analyse, match,
    report, then compare them (MATRIX_OUT/compare/compare.html). Running it again continues where it stopped."""
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    t0 = time.perf_counter()
    kw: dict[str, Any] = {"out": out, "time": time_, "threads": threads, "relax_steps": relax_steps}
    kw.update(device=device, reports=reports)
    try:
        if console.is_terminal:
            bar = Progress(
                TextColumn("[bold]{task.description}[/]"),
                BarColumn(),
                TextColumn("{task.completed} / {task.total} steps"),
                TimeRemainingColumn(),
                console=console,
            )

            def progress(name: str) -> Any:
                task = bar.add_task(name, total=None)

                def update(done: int, want: int, sec: float) -> None:
                    bar.update(task, completed=done, total=want)

                return update

            with bar:
                outcome = stages.screen(
                    matrix,
                    **kw,
                    say=lambda line: bar.console.print(line, highlight=False, markup=False, soft_wrap=True),
                    progress=progress,
                )
        else:
            outcome = stages.screen(
                matrix, **kw, say=lambda line: console.print(line, highlight=False, markup=False, soft_wrap=True)
            )
    except CellsimError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted: run `cellsim screen {matrix}` again to continue[/]")
        raise typer.Exit(code=130) from None
    print_comparison(outcome.comparison)
    console.print(
        f"screen of {len(outcome.runs)} runs in {time.perf_counter() - t0:.0f} s; comparison: {outcome.paths['html']}",
        highlight=False,
    )
    if outcome.failed:
        fail(CellsimError(f"{len(outcome.failed)} run(s) failed: " + "; ".join(r.name for r in outcome.failed)))
