"""The ``cellsim`` command line. Thin: parse, call the stage's function, write files, print a summary.

Heavy modules (pymatgen, torch, matplotlib) are imported inside the command that needs them, so
``cellsim --help`` and light commands start fast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cellsim.errors import CellsimError

app = typer.Typer(
    name="cellsim",
    help="AIMD studies of reactions at solid-electrolyte/metal interfaces (build -> inputs -> run -> "
    "analyze -> match -> report).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
refs_app = typer.Typer(help="The offline reference library of crystal structures.", no_args_is_help=True)
app.add_typer(refs_app, name="refs")

console = Console()
err_console = Console(stderr=True)


def _fail(exc: CellsimError) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


# --------------------------------------------------------------------------- build


def run_build(study_ref: str, run_dir: Path, force: bool = False) -> dict[str, Any]:
    """Load a study, write ``run_dir/study.yaml`` and build ``run_dir/interface/`` (the build stage).

    A finished interface is kept: without ``force`` an existing ``interface.json`` of the same study is
    reused, and one of a different study is an error.
    """
    import json

    from cellsim.build import build_interface, write_interface
    from cellsim.errors import RunDirError
    from cellsim.references.library import get_phase
    from cellsim.study import load_study, save_resolved

    study = load_study(study_ref)
    src = Path(study_ref)
    base_dir = src.parent.resolve() if src.is_file() else None
    # record structure files by absolute path so the resolved study works from any folder
    for side in (study.interface.electrolyte, study.interface.metal):
        if get_phase(side.phase) is None and base_dir is not None:
            p = Path(side.phase).expanduser()
            p = p if p.is_absolute() else base_dir / p
            if p.is_file():
                side.phase = str(p.resolve())
    interface_json = run_dir / "interface" / "interface.json"
    if interface_json.exists() and not force:
        save_resolved(study, run_dir)  # raises if the run directory holds another study
        console.print(f"[dim]interface already built: {interface_json} (use --force to rebuild)[/]")
        report: dict[str, Any] = json.loads(interface_json.read_text())
        return report
    if (run_dir / "interface").exists() and not force and not interface_json.exists():
        raise RunDirError(f"{run_dir / 'interface'}: exists without interface.json; use --force to rebuild")
    save_resolved(study, run_dir, force=force)
    with console.status(f"building {study.name} interface"):
        model = build_interface(study.interface, base_dir)
    write_interface(model, run_dir, title=f"cellsim {study.name}")
    return model.report


def _print_build(report: dict[str, Any], run_dir: Path, seconds: float) -> None:
    e, m = report["electrolyte"], report["metal"]
    t = Table(title=f"interface: {report['formula']} ({report['n_atoms']} atoms)", show_header=False)
    t.add_row(
        "cell",
        f"{report['cell']['a']:.3f} x {report['cell']['b']:.3f} x {report['cell']['c']:.3f} A, "
        f"gamma {report['cell']['gamma_deg']:.2f} deg, area {report['area']:.1f} A^2",
    )
    for label, side in (("electrolyte", e), ("metal", m)):
        st = report["strain"][label]
        t.add_row(
            label,
            f"{side['phase']}{tuple(side['miller'])}: {side['layers']} layers, {side['atoms']} atoms, "
            f"{side['thickness']:.1f} A; faces interface with {side['termination']['facing_interface']}; "
            f"strain {100 * st['max_abs']:.2f} % (area {100 * st['area']:+.2f} %)",
        )
    t.add_row("gap / vacuum", f"{report['gap']} A / {report['vacuum']} A")
    cp = report["closest_pair"]
    t.add_row("closest pair", f"{cp['species'][0]}-{cp['species'][1]} {cp['distance']:.3f} A")
    ci = report.get("closest_interface_pair")
    if ci:
        t.add_row("closest across", f"{ci['species'][0]}-{ci['species'][1]} {ci['distance']:.3f} A")
    if report.get("ps4"):
        ps4 = report["ps4"]
        t.add_row(
            "PS4 units",
            f"{ps4['count']} of {ps4['p_atoms']} P whole" + ("" if ps4["intact"] else " (BROKEN)"),
        )
    st = report["electrolyte_stoichiometry"]
    t.add_row(
        "electrolyte",
        f"{st['formula']} = {st['formula_units']:g} x {st['bulk_formula']}"
        + ("" if st["stoichiometric"] else f", off by {st['deviation_atoms']}"),
    )
    console.print(t)
    console.print(f"wrote {run_dir / 'interface'}/{{POSCAR, interface.cif, interface.json}} in {seconds:.1f} s")


@app.command()
def build(
    study: Annotated[str, typer.Argument(help="study YAML file, or the name of a bundled study")],
    out: Annotated[Path, typer.Option("-o", "--out", help="run directory")] = Path("runs/study"),
    force: Annotated[bool, typer.Option(help="rebuild and replace an existing interface/study")] = False,
) -> None:
    """Build the slab interface: RUN_DIR/interface/{POSCAR, interface.cif, interface.json}."""
    t0 = time.perf_counter()
    try:
        report = run_build(study, out, force=force)
    except CellsimError as exc:
        _fail(exc)
    _print_build(report, out, time.perf_counter() - t0)


# --------------------------------------------------------------------------- inputs (VASP)


def _run_study(run_dir: Path) -> Any:
    """The resolved study of a run directory, or an error that says how to make one."""
    from cellsim.errors import RunDirError
    from cellsim.study import load_study

    if not (run_dir / "study.yaml").is_file():
        raise RunDirError(f"{run_dir}/study.yaml: not a run directory; run `cellsim build STUDY -o {run_dir}` first")
    return load_study(run_dir / "study.yaml")


def run_inputs(run_dir: Path, force: bool = False) -> Any:
    """VASP NVT inputs for the first segment: RUN_DIR/md/seg-000/{INCAR, KPOINTS, POSCAR, POTCAR|POTCAR.spec}."""
    from cellsim.md.inputs import write_inputs

    return write_inputs(run_dir, _run_study(run_dir), force=force)


@app.command()
def inputs(
    run_dir: Annotated[Path, typer.Argument(help="run directory made by `cellsim build`")],
    force: Annotated[bool, typer.Option(help="rewrite inputs of a segment that already has output")] = False,
) -> None:
    """VASP AIMD inputs (PBE-PAW, NVT Nose, 500 eV, 2 fs, Gamma point, 300 K by default) in md/seg-000."""
    try:
        rep = run_inputs(run_dir, force)
    except CellsimError as exc:
        _fail(exc)
    tags = ", ".join(f"{k}={rep.incar[k]}" for k in ("IBRION", "MDALGO", "SMASS", "POTIM", "TEBEG", "NSW", "ENCUT"))
    console.print(
        f"wrote {rep.segment_dir}/{{INCAR, KPOINTS, POSCAR, {'POTCAR.spec' if rep.potcar_spec else 'POTCAR'}}}"
    )
    console.print(f"INCAR: {tags}; {len(rep.segments)} segment(s) of NSW {rep.segments[0]} planned (md/plan.json)")
    if rep.potcar_spec:
        console.print(
            "[yellow]notice:[/] PMG_VASP_PSP_DIR is not set, so POTCAR.spec lists the PBE symbols "
            f"({' '.join(rep.potcar_symbols)}); set it to write the licensed POTCAR itself."
        )


@app.command()
def status(run_dir: Annotated[Path, typer.Argument(help="run directory")]) -> None:
    """State of the MD segments: NSW, whole frames, custodian corrections, and the planned total."""
    from cellsim.md.engines.vasp import status as md_status

    try:
        st = md_status(run_dir, _run_study(run_dir))
    except CellsimError as exc:
        _fail(exc)
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

    target = out or run_dir / "md" / "XDATCAR"
    try:
        n = md_stitch(run_dir, target)
    except CellsimError as exc:
        _fail(exc)
    console.print(f"wrote {target}: {n} frames")


# --------------------------------------------------------------------------- FireWorks


def run_submit(
    run_dir: Path,
    engine: str = "vasp",
    launchpad: Path | None = None,
    queue: str = "local",
    qadapter: Path | None = None,
) -> dict[str, Any]:
    """Add the run's workflow to the LaunchPad (once) and launch it here or through a queue."""
    from cellsim.fw_launchpad import open_launchpad

    _run_study(run_dir)
    if engine == "vasp" and not (run_dir / "md" / "seg-000" / "INCAR").is_file():
        run_inputs(run_dir)
    lpad = open_launchpad(launchpad)
    import logging

    from fireworks import FWorker
    from fireworks.core.rocket_launcher import rapidfire

    from cellsim.fw import md_workflow

    for name in ("launchpad", "rocket.launcher", "custodian", "custodian.custodian"):
        logging.getLogger(name).setLevel(logging.WARNING)
    rd = str(run_dir.resolve())
    existing = lpad.workflows.find_one({"metadata.run_dir": rd, "metadata.engine": engine})
    if existing is None:
        lpad.add_wf(md_workflow(run_dir, engine))
    else:
        # a segment that died (walltime, node failure, VASP error custodian could not fix) is rerun: its task
        # continues from the last whole frame
        for fw_id in existing["nodes"]:
            if lpad.get_fw_dict_by_id(fw_id)["state"] in ("FIZZLED", "DEFUSED"):
                lpad.rerun_fw(fw_id)
    if queue == "local":
        rapidfire(lpad, FWorker(name="cellsim-local"), nlaunches=0, sleep_time=0, strm_lvl="ERROR")
    elif queue in ("slurm", "pbs"):
        from fireworks.queue.queue_launcher import launch_rocket_to_queue

        from cellsim.resources import shipped_dir

        qfile = qadapter or shipped_dir("templates") / f"my_qadapter_{queue}.yaml"
        from fireworks.utilities.fw_serializers import load_object_from_file

        qa = load_object_from_file(str(qfile))
        if str(qa.get("rocket_launch", "")).strip() == "cellsim fw-launch":
            # batch scripts start login shells that reset PATH: call this very Python
            import shlex
            import sys

            lp_opt = f" --launchpad {shlex.quote(str(launchpad.resolve()))}" if launchpad else ""
            qa["rocket_launch"] = f"{shlex.quote(sys.executable)} -m cellsim.cli fw-launch{lp_opt}"
        qdir = run_dir.resolve() / "queue"
        qdir.mkdir(exist_ok=True)
        launch_rocket_to_queue(
            lpad, FWorker(name=f"cellsim-{queue}"), qa, launcher_dir=str(qdir), create_launcher_dir=True
        )
    else:
        raise CellsimError(f"--queue {queue!r}: expected local, slurm or pbs")
    states = {
        fw["name"]: fw["state"] for fw in lpad.fireworks.find({"spec._tasks.run_dir": rd}, {"name": 1, "state": 1})
    }
    return states


@app.command()
def submit(
    run_dir: Annotated[Path, typer.Argument(help="run directory made by `cellsim build`")],
    engine: Annotated[str, typer.Option(help="vasp (custodian) or chgnet/sevennet (embedded)")] = "vasp",
    launchpad: Annotated[Path | None, typer.Option(help="my_launchpad.yaml (MongoDB); default: embedded store")] = None,
    queue: Annotated[str, typer.Option(help="local (run here), slurm or pbs (through qlaunch)")] = "local",
    qadapter: Annotated[Path | None, typer.Option(help="queue adapter YAML (default: templates/)")] = None,
) -> None:
    """Run the study's MD and analysis as a FireWorks workflow: segments continue across walltime limits."""
    try:
        states = run_submit(run_dir, engine, launchpad, queue, qadapter)
    except CellsimError as exc:
        _fail(exc)
    t = Table(title=f"workflow of {run_dir} ({engine}, queue: {queue})")
    t.add_column("firework")
    t.add_column("state")
    for name, state in states.items():
        t.add_row(name, state)
    console.print(t)


@app.command("fw-launch")
def fw_launch(
    launchpad: Annotated[Path | None, typer.Option(help="my_launchpad.yaml; default: embedded store")] = None,
) -> None:
    """Launch ready Fireworks (what a queue job runs; opens the embedded store under its lock)."""
    from cellsim.fw_launchpad import open_launchpad

    try:
        lpad = open_launchpad(launchpad)
    except CellsimError as exc:
        _fail(exc)
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import rapidfire

    import cellsim.fw  # noqa: F401  (registers the FireTasks)

    rapidfire(lpad, FWorker(name="cellsim-queue"), nlaunches=0, sleep_time=0, strm_lvl="ERROR")


# --------------------------------------------------------------------------- run (embedded engine)


def run_engine(
    run_dir: Path,
    engine: str | None = None,
    time_text: str | None = None,
    steps: int | None = None,
    threads: int | None = None,
    relax_steps: int | None = None,
    show_progress: bool = False,
) -> Any:
    """The embedded-engine MD stage on a built run directory (resumes where it stopped)."""
    from cellsim.md.engines.mlip import EngineError, parse_time_ps, run_mlip

    study = _run_study(run_dir)
    if relax_steps is not None:
        study.md.relax_steps = relax_steps
    if steps is not None and time_text is not None:
        raise EngineError("give --time or --steps, not both")
    total = steps
    if time_text is not None:
        total = round(parse_time_ps(time_text) * 1000.0 / study.md.timestep_fs)
    if not show_progress:
        return run_mlip(run_dir, study, engine, total, threads)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    dt_ps = study.md.timestep_fs / 1000.0
    with Progress(
        TextColumn("[bold]MD[/]"),
        BarColumn(),
        TextColumn("{task.fields[ps]:.3f} / {task.fields[total_ps]:.3f} ps"),
        TextColumn("{task.fields[rate]:.2f} steps/s"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("md", total=None, ps=0.0, total_ps=0.0, rate=0.0)

        def update(done: int, want: int, sec: float) -> None:
            bar.update(
                task, completed=done, total=want, ps=done * dt_ps, total_ps=want * dt_ps, rate=1 / max(sec, 1e-9)
            )

        return run_mlip(run_dir, study, engine, total, threads, progress=update)


@app.command()
def run(
    run_dir: Annotated[Path, typer.Argument(help="run directory made by `cellsim build`")],
    engine: Annotated[str | None, typer.Option(help="chgnet | sevennet (default: the study's engine)")] = None,
    time_: Annotated[str | None, typer.Option("--time", help="total MD time, e.g. 2ps or 500fs")] = None,
    steps: Annotated[int | None, typer.Option(help="total MD steps (instead of --time)")] = None,
    threads: Annotated[int | None, typer.Option(help="torch threads (default 1)")] = None,
    relax_steps: Annotated[int | None, typer.Option(help="pre-relaxation steps (default: the study's)")] = None,
) -> None:
    """NVT MD on the embedded machine-learned potential: md/relax, md/seg-NNN/{XDATCAR, OSZICAR, CONTCAR}.

    Running it again continues from the last checkpoint; a longer --time extends the run.
    """
    try:
        summary = run_engine(run_dir, engine, time_, steps, threads, relax_steps, show_progress=console.is_terminal)
    except CellsimError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted: run the same command again to continue from the last checkpoint[/]")
        raise typer.Exit(code=130) from None
    rate = f", {summary.seconds_per_step:.3f} s/step" if summary.steps_run else ""
    console.print(
        f"{summary.engine}: {summary.steps_total} steps = {summary.time_ps:.3f} ps in {', '.join(summary.segments)} "
        f"({summary.steps_run} run now{rate})"
    )


# --------------------------------------------------------------------------- analyze


def _segment_files(run_dir: Path) -> list[Path]:
    from cellsim.md.engines.vasp import segments

    files = []
    for seg in segments(run_dir):
        cands = [seg / n for n in ("XDATCAR", "XDATCAR.gz", "XDATCAR.bz2", "XDATCAR.xz")]
        found = [c for c in cands if c.is_file()]
        if found:
            files.append(found[0])
    return files


def run_analyze(
    target: Path,
    out: Path | None = None,
    dt: float | None = None,
    pairs: list[str] | None = None,
    window_ps: float | None = None,
    rmax: float | None = None,
    bin_width: float | None = None,
    normalisation: str | None = None,
    cutoffs: dict[str, float] | None = None,
    show_progress: bool = False,
) -> tuple[Any, dict[str, Path]]:
    """The analysis stage on a run directory (all segments, stitched) or on one XDATCAR file."""
    from cellsim.analysis.analyze import (
        AnalysisError,
        AnalysisSettings,
        analyze,
        frame_interval,
        write_outputs,
    )
    from cellsim.errors import RunDirError
    from cellsim.study import AnalysisSpec, load_study

    study = None
    if target.is_dir():
        files = _segment_files(target)
        if not files:
            raise RunDirError(
                f"{target}/md/seg-*/XDATCAR: no trajectory found; run `cellsim run {target}` (embedded engine) "
                "or the VASP segments first"
            )
        if (target / "study.yaml").is_file():
            study = load_study(target / "study.yaml")
        out_dir = out or target / "analysis"
        incar_dir = files[0].parent
        species_src = [files[0].parent / "POSCAR", target / "interface" / "POSCAR"]
    elif target.is_file():
        files = [target]
        out_dir = out or target.parent / "analysis"
        incar_dir = target.parent
        species_src = [target.parent / "POSCAR"]
    else:
        raise RunDirError(f"{target}: neither a run directory nor an XDATCAR file")
    spec = study.analysis if study is not None else AnalysisSpec()
    frame_dt = dt or frame_interval(incar_dir)
    if frame_dt is None and study is not None:
        frame_dt = study.md.timestep_fs * study.md.nblock
    if frame_dt is None:
        raise AnalysisError(f"{incar_dir}: no INCAR with POTIM and no study: give the time between frames with --dt FS")
    settings = AnalysisSettings(
        pairs=pairs or spec.pairs,
        dt_fs=frame_dt,
        window_ps=window_ps or spec.window_ps,
        rmax=rmax or spec.rmax,
        bin_width=bin_width or spec.bin_width,
        bond_cutoffs={**spec.bond_cutoffs, **(cutoffs or {})},
        normalisation=normalisation or spec.normalisation,
    )
    species = None
    for src in species_src:
        if src.is_file():
            first = src.read_text(errors="replace").splitlines()[5:6]
            if first and first[0].split() and first[0].split()[0].isalpha():
                species = first[0].split()
                break
    if show_progress:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("analysing: 0 frames", total=None)
            result = analyze(files, settings, species, lambda n: bar.update(task, description=f"analysing: {n} frames"))
    else:
        result = analyze(files, settings, species)
    if target.is_dir() and (target / "interface" / "POSCAR").is_file():
        from cellsim.analysis.analyze import add_baseline

        add_baseline(result, target / "interface" / "POSCAR")
    return result, write_outputs(result, out_dir)


def _parse_pairs(text: str | None) -> list[str] | None:
    if not text:
        return None
    from cellsim.study import _check_pair

    try:
        return [_check_pair(p.strip()) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--pairs") from None


def _parse_cutoffs(items: list[str] | None) -> dict[str, float]:
    out = {}
    for item in items or []:
        try:
            pair, val = item.split("=")
            out[pair.strip()] = float(val)
        except ValueError:
            raise typer.BadParameter(
                f"{item!r}: expected PAIR=ANGSTROM, e.g. In-S=3.0", param_hint="--cutoff"
            ) from None
    return out


@app.command()
def analyze(
    target: Annotated[Path, typer.Argument(help="run directory (all md/seg-*/XDATCAR, stitched) or one XDATCAR")],
    out: Annotated[Path | None, typer.Option("-o", "--out", help="output folder (default RUN_DIR/analysis)")] = None,
    dt: Annotated[
        float | None, typer.Option(help="fs between frames (default: INCAR POTIM*NBLOCK, else study)")
    ] = None,
    pairs: Annotated[str | None, typer.Option(help="comma-separated pairs, e.g. In-S,In-Cl,P-S")] = None,
    window: Annotated[float | None, typer.Option(help="window length, ps")] = None,
    rmax: Annotated[float | None, typer.Option(help="largest r, A")] = None,
    bin_width: Annotated[float | None, typer.Option(help="bin width, A")] = None,
    normalisation: Annotated[str | None, typer.Option(help="cell | occupied")] = None,
    cutoff: Annotated[list[str] | None, typer.Option(help="bond cutoff PAIR=A (repeatable)")] = None,
) -> None:
    """Partial RDFs per time window, bond counts per frame, new peaks: rdf.csv, rdf.npz, bonds.csv, peaks.json."""
    if normalisation not in (None, "cell", "occupied"):
        raise typer.BadParameter("expected 'cell' or 'occupied'", param_hint="--normalisation")
    t0 = time.perf_counter()
    try:
        result, paths = run_analyze(
            target,
            out,
            dt,
            _parse_pairs(pairs),
            window,
            rmax,
            bin_width,
            normalisation,
            _parse_cutoffs(cutoff),
            show_progress=console.is_terminal,
        )
    except CellsimError as exc:
        _fail(exc)
    _print_analysis(result, paths, time.perf_counter() - t0)


def _print_analysis(result: Any, paths: dict[str, Path], seconds: float) -> None:
    import json

    peaks = json.loads(paths["peaks_json"].read_text())
    s = result.settings
    t = Table(
        title=f"{result.n_frames} frames, {len(result.window_frames)} windows of {s.window_ps} ps "
        f"(dt {s.dt_fs} fs/frame), g(r) normalised by {s.normalisation} volume"
    )
    for col in ("pair", "bonds start -> end", "first bond (ps)", "new peaks (A)"):
        t.add_column(col)
    for p, info in peaks["pairs"].items():
        b = info["bonds"]
        first = b["first_formation_ps"]
        first_s = f"{first:.3f}" if first is not None else ("present at start" if b["present_at_start"] else "none")
        new = ", ".join(f"{x['r']:.2f}" for x in info["new_peaks"]) or "-"
        t.add_row(p, f"{b['initial']} -> {b['final']} (< {info['bond_cutoff']} A)", first_s, new)
    console.print(t)
    out_dir = paths["rdf_csv"].parent
    console.print(f"wrote {out_dir}/{{rdf.csv, rdf.npz, bonds.csv, peaks.json}} in {seconds:.2f} s")


# --------------------------------------------------------------------------- match


def run_match(run_dir: Path, candidates: list[str] | None = None, use_mp: bool | None = None) -> Any:
    """The matching stage: analysis/products.csv, match.json, ref_rdf.npz."""
    from cellsim.match import match_run, write_products

    study = _run_study(run_dir)
    if candidates:
        study.match.candidates = candidates
    if use_mp is not None:
        study.match.use_mp = use_mp
    result = match_run(run_dir, study)
    write_products(result, run_dir)
    return result


def _print_match(result: Any, run_dir: Path) -> None:
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    t = Table(title=f"candidate products (score 0-1 per pair; match at >= {result.threshold})")
    for col in ("pair", "new peak (A)", "1st", "2nd", "3rd"):
        t.add_column(col)
    for pair, info in result.pairs.items():
        ranked = [m for m in result.rows if m.pair == pair][:3]
        cells = [
            f"{m.candidate} {m.score:.2f}"
            + (f" (ref {m.ref_peak_r:.2f})" if m.ref_peak_r is not None else "")
            + (" *" if m.score >= result.threshold else "")
            for m in ranked
        ]
        peak = f"{info['md_peak_r']:.2f}" if info["md_peak_r"] is not None else "none"
        t.add_row(pair, peak, *[*cells, "", "", ""][:3])
    console.print(t)
    top = [o for o in result.overall if o["score"] >= result.threshold][:3]
    if top:
        console.print(
            "overall: "
            + ", ".join(f"{o['candidate']} ({o['score']:.2f}; {'/'.join(o['pairs_matched']) or '-'})" for o in top)
        )
    else:
        console.print("overall: no candidate above the threshold")
    console.print(f"wrote {run_dir / 'analysis'}/{{products.csv, match.json, ref_rdf.npz}}")


@app.command()
def match(
    run_dir: Annotated[Path, typer.Argument(help="run directory with analysis/rdf.npz")],
    candidate: Annotated[
        list[str] | None, typer.Option(help="candidate phase (repeatable); default: automatic")
    ] = None,
    mp: Annotated[bool | None, typer.Option("--mp/--no-mp", help="use Materials Project (needs MP_API_KEY)")] = None,
) -> None:
    """Rank candidate reaction products for the new RDF peaks: analysis/products.csv."""
    try:
        result = run_match(run_dir, candidate, mp)
    except CellsimError as exc:
        _fail(exc)
    _print_match(result, run_dir)


# --------------------------------------------------------------------------- report


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="run directory with analysis/")]) -> None:
    """Figures and report/report.html (self-contained) + report/report.md from a run directory."""
    from cellsim.report import make_report

    try:
        with console.status("drawing figures"):
            paths = make_report(run_dir)
    except CellsimError as exc:
        _fail(exc)
    console.print(
        f"report: {paths['html']}  (also {paths['md'].name} and {len(paths) - 2} figures in {paths['html'].parent})"
    )


# --------------------------------------------------------------------------- refs


@refs_app.command("list")
def refs_list() -> None:
    """List the phases of the offline reference library."""
    from cellsim.references.library import library

    t = Table(title="cellsim reference library (offline)")
    for col in ("name", "space group", "origin", "MP id", "file"):
        t.add_column(col)
    for p in library().values():
        t.add_row(p.name, f"{p.spacegroup} ({p.spacegroup_number})", p.origin, p.mp_id or "-", p.file)
    console.print(t)
    from cellsim.references import mp

    cached = mp.cached()
    if cached:
        _print_mp_table(f"Materials Project cache ({mp.cache_dir()})", cached)


def _print_mp_table(title: str, phases: list[Any]) -> None:
    t = Table(title=title)
    for col in ("MP id", "formula", "space group", "E_hull (eV/atom)"):
        t.add_column(col)
    for p in phases:
        t.add_row(p.material_id, p.formula, p.spacegroup, f"{p.energy_above_hull:.3f}")
    console.print(t)


@refs_app.command("fetch")
def refs_fetch(
    query: Annotated[str, typer.Argument(help="formula (In2S3) or chemical system (In-S-Cl)")],
    e_hull: Annotated[float, typer.Option(help="max energy above hull, eV/atom")] = 0.05,
) -> None:
    """Fetch phases from the Materials Project (needs MP_API_KEY and network) into the local cache."""
    from cellsim.references import mp

    try:
        phases = mp.fetch(query, e_hull)
    except mp.MPUnavailable as exc:
        _fail(CellsimError(f"Materials Project not reachable: {exc}; the bundled library stays available offline"))
        return
    except CellsimError as exc:
        _fail(exc)
        return
    _print_mp_table(f"Materials Project: {query} (E_hull <= {e_hull} eV/atom), cached in {mp.cache_dir()}", phases)


@refs_app.command("show")
def refs_show(name: Annotated[str, typer.Argument(help="library name, e.g. In2S3")]) -> None:
    """Formula, space group, lattice, source and first-shell distances of one library phase."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from cellsim.errors import PhaseNotFoundError
    from cellsim.references.library import get_phase, library

    phase = get_phase(name)
    if phase is None:
        _fail(PhaseNotFoundError(f"unknown phase '{name}'; known: {', '.join(library())}"))
        return
    s = phase.structure()
    sga = SpacegroupAnalyzer(s, symprec=0.1)
    lat = s.lattice
    t = Table(title=f"{phase.name} ({phase.file})", show_header=False)
    t.add_row("formula", f"{s.composition.reduced_formula} (cell: {s.composition.formula}, {len(s)} atoms)")
    t.add_row(
        "space group",
        f"{sga.get_space_group_symbol()} ({sga.get_space_group_number()}), checked from the CIF",
    )
    t.add_row(
        "lattice",
        f"a={lat.a:.4f} b={lat.b:.4f} c={lat.c:.4f} A; "
        f"alpha={lat.alpha:.2f} beta={lat.beta:.2f} gamma={lat.gamma:.2f} deg",
    )
    t.add_row("density", f"{s.density:.3f} g/cm3")
    t.add_row("first shell", "; ".join(f"{k} {v} A" for k, v in phase.first_shell.items()))
    t.add_row("origin", phase.origin)
    t.add_row("source", phase.source)
    t.add_row("MP id", phase.mp_id_note)
    console.print(t)


# --------------------------------------------------------------------------- study schema


@app.command("study-schema")
def study_schema() -> None:
    """Print every study field with its default (a complete study file to start from)."""
    from cellsim.study import Study

    console.print(Study(name="my_study").to_yaml(), highlight=False, markup=False)


# --------------------------------------------------------------------------- demo


@app.command()
def demo(
    out: Annotated[Path, typer.Option("-o", "--out", help="run directory")] = Path("runs/demo"),
    time_: Annotated[str, typer.Option("--time", help="MD time on the embedded engine")] = "1ps",
    window: Annotated[float, typer.Option(help="RDF window, ps")] = 0.1,
    force: Annotated[bool, typer.Option(help="start again from scratch")] = False,
) -> None:
    """Run the whole pipeline on the bundled Li6PS5Cl/In study, offline, on the embedded engine.

    Stages: build -> VASP inputs (POTCAR.spec) -> relax + NVT (CHGNet) -> analyze -> match -> report.
    Each finished stage is kept, so running demo again resumes, and a longer --time extends the MD.
    Prints the report's path at the end.
    """
    t0 = time.perf_counter()
    console.rule("[bold]cellsim demo: Li6PS5Cl / In (Luo et al., Nat. Commun. 12, 6968, 2021)")
    try:
        if force and out.exists():
            import shutil

            shutil.rmtree(out)
        console.print("[bold]1/6 build[/]")
        report = run_build("li6ps5cl_in", out)
        _print_build(report, out, time.perf_counter() - t0)
        console.print("[bold]2/6 VASP inputs (for a cluster run of the same MD)[/]")
        if not (out / "md" / "seg-000" / "INCAR").is_file():
            rep_in = run_inputs(out)
            console.print(f"wrote {rep_in.segment_dir}/{{INCAR, KPOINTS, POSCAR, POTCAR.spec}}")
        console.print(f"[bold]3/6 relax + NVT MD on CHGNet ({time_})[/]")
        summary = run_engine(out, "chgnet", time_, show_progress=console.is_terminal)
        console.print(f"{summary.steps_total} steps = {summary.time_ps:.3f} ps in {out / 'md'}")
        console.print("[bold]4/6 analyze[/]")
        t1 = time.perf_counter()
        result, paths = run_analyze(out, window_ps=window)
        _print_analysis(result, paths, time.perf_counter() - t1)
        console.print("[bold]5/6 match[/]")
        _print_match(run_match(out), out)
        console.print("[bold]6/6 report[/]")
        from cellsim.report import make_report

        with console.status("drawing figures"):
            rep = make_report(out)
    except CellsimError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted: run `cellsim demo` again to continue[/]")
        raise typer.Exit(code=130) from None
    console.print(f"[green]demo finished in {time.perf_counter() - t0:.1f} s; run directory: {out}[/]")
    console.print(f"[bold green]report: {rep['html'].resolve()}[/]")


if __name__ == "__main__":  # pragma: no cover
    app()
