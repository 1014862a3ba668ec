"""Commands of the cluster path: submit (FireWorks + queue), fw-launch (what a queue job runs), status,
stitch, and ``cellsim fw ...`` to inspect and repair a run's workflow state under cellsim's lock."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cellsim.cli._app import app, console, fail
from cellsim.core.errors import CellsimError

fw_app = typer.Typer(
    help="A run's FireWorks workflow: list, rerun, reset, detect lost runs (safely, under cellsim's lock).",
    no_args_is_help=True,
)
app.add_typer(fw_app, name="fw")

LaunchpadOpt = Annotated[
    Path | None,
    typer.Option(help="my_launchpad.yaml (MongoDB); default: the one the run was submitted with, else its own store"),
]


def _job_text(jobs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{str(j['tag']).split(':', 1)[1]}" for j in jobs) or "-"


def _fw_text(states: dict[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "-"


def _answer_kind(rd: Any) -> str:
    """The run's answer kind from its current match result ('-' before one)."""
    from cellsim.stages.screening import match_current

    if not match_current(rd):
        return "-"
    from cellsim.products.result import load_match

    try:
        return str(load_match(rd.analysis_dir).answer.kind or "-")
    except CellsimError:
        return "-"


@app.command()
def status(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="run directory (or several: one summary line each), or a matrix or campaign file (what `submit` "
            "takes) or a matrix's output folder"
        ),
    ],
) -> None:
    """State of the MD segments (NSW, frames, parts, custodian corrections, walltime stops), the workflow
    and the queue jobs; with several runs (or a matrix or campaign file), one line each with its answer."""
    targets, title, whole_set = _status_targets(list(run_dirs))
    rows = _status_rows(targets, whole_set)
    if len(rows) > 1 or whole_set:
        _print_overview(rows, title)
        if whole_set:
            console.print("the answers side by side: cellsim compare " + str(run_dirs[0]), highlight=False)
        return
    _print_run_status(*rows[0][:3])


_StatusRow = tuple[Path, Any, Any, str]  # run, its MD status, its workflow overview, its answer kind


def _status_targets(targets: list[Path]) -> tuple[list[Path], str | None, bool]:
    """The runs to show: one matrix or campaign file (or a matrix's output folder) given alone read as its
    runs, with its title, and whether it was."""
    from cellsim.config.matrix import load_run_set, run_set_path
    from cellsim.config.rundir import RunDir

    if len(targets) == 1 and not RunDir(targets[0]).is_run:
        try:
            found = run_set_path(targets[0])
            if found is not None:
                rs = load_run_set(found)
                return rs.run_dirs, f"{rs.name} ({rs.kind} {found}): {len(rs.run_dirs)} runs", True
        except CellsimError as exc:
            fail(exc)
    return targets, None, False


def _status_rows(targets: list[Path], whole_set: bool) -> list[_StatusRow]:
    """Each run's MD status, workflow overview and answer kind (a run of a set not built yet: none)."""
    from cellsim.config.rundir import RunDir
    from cellsim.engines.vasp import status as md_status
    from cellsim.workflow.repair import run_overview

    rows: list[_StatusRow] = []
    for run_dir in targets:
        rd = RunDir(run_dir)
        if whole_set and not rd.is_run:
            rows.append((run_dir, None, None, "not built"))
            continue
        try:
            rd.require()
            rows.append((run_dir, md_status(rd.root, rd.load_study()), run_overview(rd), _answer_kind(rd)))
        except CellsimError as exc:
            fail(exc)
    return rows


def _print_overview(rows: list[_StatusRow], title: str | None) -> None:
    """One line per run: MD steps, segments, corrections, Fireworks, live jobs and its answer."""
    t = Table(title=title or f"{len(rows)} runs")
    for col in ("run", "MD steps", "segments", "corrections", "Fireworks", "live jobs", "answer"):
        t.add_column(col)
    for run_dir, st, ov, kind in rows:
        if st is None:
            t.add_row(str(run_dir), "-", "not built", "-", "-", "-", "-")
            continue
        segs = st["segments"]
        done = sum(r["state"] == "complete" for r in segs)
        fixes = sum(r["corrections"] for r in segs)
        t.add_row(
            str(run_dir),
            f"{st['frames']} / {st['planned_steps']}",
            f"{done} of {len(segs)} complete",
            str(fixes),
            _fw_text(ov["fireworks"]),
            _job_text(ov["live"]),
            kind,
        )
    console.print(t)


def _print_run_status(run_dir: Path, st: Any, ov: Any) -> None:
    """One run: its segments in a table, then its Fireworks and jobs."""
    console.print(f"{run_dir}: {st['frames']} of {st['planned_steps']} planned MD steps stored", soft_wrap=True)
    t = Table()
    for col in ("segment", "NSW", "frames", "parts", "state", "custodian corrections", "walltime stops"):
        t.add_column(col)
    for r in st["segments"]:
        parts = " + ".join(str(p) for p in r["parts"]) if r["parts"] else "-"
        fixes = f"{r['corrections']} ({', '.join(r['errors'])})" if r["errors"] else str(r["corrections"])
        t.add_row(
            r["segment"], str(r["nsw"] or "-"), str(r["frames"]), parts, r["state"], fixes, str(r["walltime_stops"])
        )
    console.print(t)
    if ov["fireworks"] or ov["jobs"]:
        last = ov["jobs"][-1] if ov["jobs"] else None
        last_text = ""
        if last is not None:
            last_text = f"; last job {str(last['tag']).split(':', 1)[1]}: {last.get('outcome', 'not ended')}"
        jobs = f"jobs: {len(ov['jobs'])}, live: {_job_text(ov['live'])}{last_text}"
        console.print(f"Fireworks: {_fw_text(ov['fireworks'])}; {jobs}", highlight=False, soft_wrap=True)


@app.command()
def stitch(
    run_dir: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Path | None, typer.Option("-o", "--out", help="output XDATCAR (default RUN_DIR/md/XDATCAR)")] = None,
) -> None:
    """Join every segment's XDATCAR (and its parts) into one trajectory, each MD step exactly once."""
    from cellsim.config.rundir import RunDir
    from cellsim.engines.vasp import stitch as md_stitch

    target = out or RunDir(run_dir).stitched_xdatcar
    try:
        n = md_stitch(run_dir, target)
    except CellsimError as exc:
        fail(exc)
    console.print(f"wrote {target}: {n} frames")


@app.command()
def submit(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="run directories made by `cellsim build`, or one campaign YAML listing them, or a study matrix "
            "(its runs are built first)"
        ),
    ],
    engine: Annotated[str, typer.Option(help="vasp (custodian) or an embedded engine (chgnet, sevennet)")] = "vasp",
    launchpad: Annotated[
        Path | None, typer.Option(help="my_launchpad.yaml (MongoDB); default: each run's own embedded store")
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option(help="local (run here), slurm, pbs (PBS Pro), torque; default: the study's queue.scheduler"),
    ] = None,
    qadapter: Annotated[
        Path | None, typer.Option(help="a FireWorks queue adapter YAML instead of the study's queue:")
    ] = None,
    time_: Annotated[
        str | None, typer.Option("--time", help="new total MD time (e.g. 20ps): extends a run, finished or not")
    ] = None,
    max_jobs: Annotated[int | None, typer.Option(help="at most this many runs' jobs at once (several runs)")] = None,
) -> None:
    """Run the study's MD and analysis as a FireWorks workflow, here or through the batch queue.

    Queue jobs stop VASP cleanly before their time limit and queue the next job themselves until the plan
    is done. Submitting a run again reruns FIZZLED Fireworks; --time extends it.
    """
    from cellsim.config.matrix import run_set_path
    from cellsim.config.rundir import RunDir
    from cellsim.workflow.campaign import submit_many
    from cellsim.workflow.submit import SubmitOutcome, parse_time

    try:
        if max_jobs is not None and max_jobs < 1:
            raise CellsimError(f"--max-jobs {max_jobs}: expected a positive number")
        time_ps = parse_time(time_) if time_ is not None else None
        runs = list(run_dirs)
        found = run_set_path(runs[0]) if len(runs) == 1 and not RunDir(runs[0]).is_run else None
        if found is None and len(runs) == 1 and runs[0].is_file():
            found = runs[0]  # a campaign file by any name
        if found is not None:
            from cellsim.stages.screening import build_runs

            # a matrix's runs are built here first (a finished one is reused); a campaign's must exist
            rs = build_runs(found)
            runs, file_max = rs.run_dirs, rs.max_jobs
            max_jobs = max_jobs if max_jobs is not None else file_max
        t0 = time.monotonic()

        def line(o: SubmitOutcome) -> None:
            counts: dict[str, int] = {}
            for st in o.states.values():
                counts[st] = counts.get(st, 0) + 1
            job = f" job {o.job}" if o.job else ""
            fws = f"; Fireworks: {_fw_text(counts)}" if counts else ""
            console.print(f"{o.run}: {o.action}{job}{fws}", highlight=False, soft_wrap=True)
            for note in o.notes:
                console.print(f"  {note}", highlight=False, soft_wrap=True)

        submit_many(
            runs,
            max_jobs,
            on_outcome=line,
            engine=engine,
            launchpad=launchpad,
            queue=queue,
            qadapter=qadapter,
            time_ps=time_ps,
        )
    except CellsimError as exc:
        fail(exc)
    if len(runs) > 1:
        console.print(f"{len(runs)} runs in {time.monotonic() - t0:.1f} s", highlight=False)


@app.command("fw-launch")
def fw_launch(
    run_dir: Annotated[Path | None, typer.Argument(help="the run whose Fireworks to run (what its jobs call)")] = None,
    launchpad: Annotated[Path | None, typer.Option(help="my_launchpad.yaml; default: the run's store")] = None,
    launch_dir: Annotated[
        Path | None, typer.Option(help="launch folder (without a run: the shared store's Fireworks)")
    ] = None,
) -> None:
    """What a queue job runs: queue the next job, run the run's ready Fireworks until the time limit
    nears, cancel the next job when nothing is left."""
    from cellsim.workflow.chain import run_job
    from cellsim.workflow.jobs import launch_ready

    try:
        if run_dir is None:
            launch_ready(launchpad, launch_dir)
            return
        out = run_job(run_dir, launchpad)
    except CellsimError as exc:
        fail(exc)
    nxt = f"continues in job {out.successor.split(':', 1)[1]}" if out.successor else "nothing left to run"
    console.print(f"job {out.tag}: stopped ({out.reason}); {nxt}", highlight=False)
    for note in out.notes:
        console.print(f"  {note}", highlight=False)


# --------------------------------------------------------------------------- cellsim fw ...


@fw_app.command("list")
def fw_list(run_dir: Annotated[Path, typer.Argument(help="run directory")], launchpad: LaunchpadOpt = None) -> None:
    """The run's Fireworks: id, name, state, and the job of their last launch."""
    from cellsim.config.rundir import RunDir
    from cellsim.workflow.repair import fw_list as list_fws

    try:
        rows = list_fws(RunDir(run_dir), launchpad)
    except CellsimError as exc:
        fail(exc)
    t = Table(title=f"{run_dir}: {len(rows)} Fireworks")
    for col in ("id", "name", "state", "job"):
        t.add_column(col)
    for r in rows:
        t.add_row(str(r["fw_id"]), r["name"], r["state"], r["job"] or "-")
    console.print(t)


@fw_app.command("rerun")
def fw_rerun(
    run_dir: Annotated[Path, typer.Argument(help="run directory")],
    fw_id: Annotated[list[int] | None, typer.Option("--fw-id", help="Firework id (default: every FIZZLED one)")] = None,
    launchpad: LaunchpadOpt = None,
) -> None:
    """Make Fireworks of the run READY again (they continue where the MD stopped); then `cellsim submit`."""
    from cellsim.config.rundir import RunDir
    from cellsim.workflow.repair import fw_rerun as rerun

    try:
        ids = rerun(RunDir(run_dir), list(fw_id) if fw_id else None, launchpad)
    except CellsimError as exc:
        fail(exc)
    console.print(f"rerun: {ids or 'none (no FIZZLED Firework)'}", highlight=False)


@fw_app.command("reset")
def fw_reset(
    run_dir: Annotated[Path, typer.Argument(help="run directory")],
    yes: Annotated[bool, typer.Option("--yes", help="really remove the run's workflow from the store")] = False,
    launchpad: LaunchpadOpt = None,
) -> None:
    """Remove the run's workflow from the store (MD files stay); the next `cellsim submit` makes a new one."""
    from cellsim.config.rundir import RunDir
    from cellsim.workflow.repair import fw_reset as reset

    if not yes:
        fail(CellsimError("fw reset removes the run's workflow state: give --yes"))
    try:
        n = reset(RunDir(run_dir), launchpad)
    except CellsimError as exc:
        fail(exc)
    console.print(f"removed {n} Fireworks of {run_dir}", highlight=False)


@fw_app.command("detect-lost")
def fw_detect_lost(
    run_dir: Annotated[Path, typer.Argument(help="run directory")], launchpad: LaunchpadOpt = None
) -> None:
    """Rerun the run's Fireworks left RUNNING by a job that died (checked with the scheduler)."""
    from cellsim.config.rundir import RunDir
    from cellsim.workflow.repair import fw_detect_lost as detect

    try:
        ids = detect(RunDir(run_dir), launchpad)
    except CellsimError as exc:
        fail(exc)
    console.print(f"lost runs rerun: {ids or 'none'}", highlight=False)
