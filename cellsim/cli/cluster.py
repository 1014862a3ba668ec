"""Commands of the cluster path: submit (FireWorks), fw-launch (what a queue job runs), status, stitch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cellsim.cli._app import app, console, fail
from cellsim.errors import CellsimError


@app.command()
def status(run_dir: Annotated[Path, typer.Argument(help="run directory")]) -> None:
    """State of the MD segments: NSW, whole frames, custodian corrections, and the planned total."""
    from cellsim.md.engines.vasp import status as md_status
    from cellsim.rundir import RunDir

    try:
        rd = RunDir(run_dir)
        st = md_status(rd.root, rd.load_study())
    except CellsimError as exc:
        fail(exc)
    t = Table(title=f"{run_dir}: {st['frames']} of {st['planned_steps']} planned MD steps stored")
    for col in ("segment", "NSW", "frames", "state", "custodian corrections"):
        t.add_column(col)
    for r in st["segments"]:
        t.add_row(r["segment"], str(r["nsw"] or "-"), str(r["frames"]), r["state"], str(r["corrections"]))
    console.print(t)


@app.command()
def stitch(
    run_dir: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Path | None, typer.Option("-o", "--out", help="output XDATCAR (default RUN_DIR/md/XDATCAR)")] = None,
) -> None:
    """Join every segment's XDATCAR into one trajectory, each MD step exactly once."""
    from cellsim.md.engines.vasp import stitch as md_stitch
    from cellsim.rundir import RunDir

    target = out or RunDir(run_dir).stitched_xdatcar
    try:
        n = md_stitch(run_dir, target)
    except CellsimError as exc:
        fail(exc)
    console.print(f"wrote {target}: {n} frames")


@app.command()
def submit(
    run_dir: Annotated[Path, typer.Argument(help="run directory made by `cellsim build`")],
    engine: Annotated[str, typer.Option(help="vasp (custodian) or an embedded engine (chgnet, sevennet)")] = "vasp",
    launchpad: Annotated[Path | None, typer.Option(help="my_launchpad.yaml (MongoDB); default: embedded store")] = None,
    queue: Annotated[str, typer.Option(help="local (run here), slurm or pbs (through qlaunch)")] = "local",
    qadapter: Annotated[Path | None, typer.Option(help="queue adapter YAML (default: templates/)")] = None,
) -> None:
    """Run the study's MD and analysis as a FireWorks workflow: segments continue across walltime limits."""
    from cellsim.fw_submit import submit_run

    try:
        states = submit_run(run_dir, engine, launchpad, queue, qadapter)
    except CellsimError as exc:
        fail(exc)
    t = Table(title=f"workflow of {run_dir} ({engine}, queue: {queue})")
    t.add_column("firework")
    t.add_column("state")
    for name, state in states.items():
        t.add_row(name, state)
    console.print(t)


@app.command("fw-launch")
def fw_launch(
    launchpad: Annotated[Path | None, typer.Option(help="my_launchpad.yaml; default: embedded store")] = None,
    launch_dir: Annotated[Path | None, typer.Option(help="folder for the launch folders (the run's workflow/)")] = None,
) -> None:
    """Launch ready Fireworks (what a queue job runs; opens the embedded store under its lock)."""
    from cellsim.fw_submit import launch_ready

    try:
        launch_ready(launchpad, launch_dir)
    except CellsimError as exc:
        fail(exc)
