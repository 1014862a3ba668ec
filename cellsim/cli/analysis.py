"""Commands of the analysis stages: analyze, match, report."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from cellsim import stages
from cellsim.cli._app import app, console, err_console, fail
from cellsim.core.errors import CellsimError


def _qty(text: str | None, kind: str, unit: str, option: str) -> float | None:
    from cellsim.core.units import parse_quantity

    return None if text is None else parse_quantity(text, kind, unit, option)


def _cutoffs(items: list[str] | None) -> dict[str, float]:
    from cellsim.config.study import _check_pair
    from cellsim.core.units import parse_quantity

    out: dict[str, float] = {}
    for item in items or []:
        pair, sep, val = item.partition("=")
        if not sep:
            raise CellsimError(f"--cutoff {item!r}: expected PAIR=ANGSTROM, e.g. In-S=3.0")
        try:
            pair = _check_pair(pair.strip())
        except ValueError as exc:
            raise CellsimError(f"--cutoff {item!r}: {exc}") from None
        out[pair] = parse_quantity(val, "length", "A", "--cutoff")
    return out


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    seen = set()
    for w in caught:
        msg = str(w.message)
        if msg not in seen and not issubclass(w.category, DeprecationWarning | FutureWarning | RuntimeWarning):
            seen.add(msg)
            err_console.print(f"warning: {msg}", highlight=False, markup=False, soft_wrap=True)


@app.command()
def analyze(
    targets: Annotated[
        list[Path],
        typer.Argument(help="run directory, or trajectory files in order: XDATCAR(s), vasprun.xml, extxyz/.traj (ASE)"),
    ],
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="output folder (default RUN_DIR/analysis or analysis/ beside)")
    ] = None,
    dt: Annotated[
        str | None, typer.Option(help="time between frames, e.g. 2fs (bare number: fs; default INCAR POTIM*NBLOCK)")
    ] = None,
    pairs: Annotated[
        list[str] | None, typer.Option(help="pairs, e.g. In-S,In-Cl,P-S (comma-separated or repeated)")
    ] = None,
    window: Annotated[str | None, typer.Option(help="RDF time window, e.g. 0.5ps or 500fs (bare number: ps)")] = None,
    rmax: Annotated[str | None, typer.Option(help="largest r, e.g. 8A (bare number: A)")] = None,
    bin_width: Annotated[str | None, typer.Option(help="r bin width, e.g. 0.02A (bare number: A)")] = None,
    normalisation: Annotated[str | None, typer.Option(help="cell | occupied")] = None,
    cutoff: Annotated[list[str] | None, typer.Option(help="bond cutoff PAIR=A, e.g. In-S=3.0 (repeatable)")] = None,
    species: Annotated[
        str | None, typer.Option(help="elements in POSCAR order for VASP 4 XDATCARs, e.g. Li,P,S,Cl,In")
    ] = None,
    temperature: Annotated[str | None, typer.Option(help="MD temperature, e.g. 300K (default INCAR TEBEG)")] = None,
    reactants: Annotated[
        str | None, typer.Option(help="reactant phases, e.g. Li6PS5Cl,In (default: study, or from the composition)")
    ] = None,
    replica: Annotated[int | None, typer.Option(help="analyse replica N of a run directory")] = None,
) -> None:
    """Partial RDFs per time window, bond counts, environments, diagnostics: rdf.csv, bonds.csv, peaks.json, ..."""
    t0 = time.perf_counter()
    try:
        if normalisation not in (None, "cell", "occupied"):
            raise CellsimError(f"--normalisation {normalisation!r}: expected 'cell' or 'occupied'")
        kw: dict[str, Any] = {
            "out": out,
            "dt_fs": _qty(dt, "time", "fs", "--dt"),
            "pairs": pairs,
            "window_ps": _qty(window, "time", "ps", "--window"),
            "rmax": _qty(rmax, "length", "A", "--rmax"),
            "bin_width": _qty(bin_width, "length", "A", "--bin-width"),
            "normalisation": normalisation,
            "cutoffs": _cutoffs(cutoff),
            "species": [s.strip() for s in species.split(",") if s.strip()] if species else None,
            "temperature_K": _qty(temperature, "temperature", "K", "--temperature"),
            "reactants": reactants,
            "replica": replica,
        }
        target: Any = targets[0] if len(targets) == 1 else targets
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if console.is_terminal:
                from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

                with Progress(
                    SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
                ) as bar:
                    task = bar.add_task("analysing: 0 frames", total=None)
                    result = stages.analyze(
                        target, **kw, progress=lambda n: bar.update(task, description=f"analysing: {n} frames")
                    )
            else:
                result = stages.analyze(target, **kw)
        _show_warnings(caught)
    except CellsimError as exc:
        fail(exc)
    print_analysis(result, time.perf_counter() - t0)


def print_analysis(result: Any, seconds: float) -> None:
    import json

    from rich.table import Table

    from cellsim.config.rundir import AnalysisFiles

    peaks = json.loads(AnalysisFiles(result.out_dir).peaks.read_text())
    s = result.settings
    info = result.meta
    console.print(
        f"{result.n_frames} frames, dt {s.dt_fs:g} fs ({info.dt_source}), T {result.temperature_K:g} K "
        f"({info.temperature_source}); reactants: "
        + (", ".join(f"{k} x{v:g}" for k, v in info.reactant_phases.items()) or "unknown"),
        highlight=False,
    )
    t = Table(
        title=f"{len(result.window_frames)} windows of {s.window_ps:g} ps, g(r) normalised by {s.normalisation} volume"
    )
    for col in (
        "pair",
        "bonds start -> end",
        "baseline -> late",
        "formed from (ps)",
        "broke from (ps)",
        "new peaks (A)",
    ):
        t.add_column(col)
    for p, d in peaks["pairs"].items():
        b = d["bonds"]

        def ps(x: float | None) -> str:
            return f"{x:.3f}" if x is not None else "-"

        new = ", ".join(f"{x['r']:.2f}" for x in d["new_peaks"]) or "-"
        t.add_row(
            p,
            f"{b['initial']} -> {b['final']} (< {d['bond_cutoff']} A)",
            f"{b['baseline_mean']:g} -> {b['late_mean']:g}",
            ps(b["formation_ps"]),
            ps(b["break_ps"]),
            new,
        )
    console.print(t)
    for note in info.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if result.diagnostics is not None:
        for line in result.diagnostics.summary_lines():
            style = "yellow" if line.startswith("[WARN]") else "dim"
            console.print(line, style=style, highlight=False, markup=False)
    console.print(
        f"wrote {result.out_dir}/ (rdf.csv, rdf.npz, bonds.csv, peaks.json, analysis.json) in {seconds:.2f} s"
    )


def print_match(result: Any, folder: Path) -> None:
    from rich.table import Table

    from cellsim.products.answer import Answer
    from cellsim.products.result import pair_records

    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    react = result.reactants or {}
    if react.get("phases"):
        console.print(f"reactants ({react.get('source')}): {', '.join(react['phases'])}", highlight=False)
    t = Table(title="pairs (bonds: mean of the first frames -> last third; change against its noise margin)")
    for col in ("pair", "kind", "bonds", "new neighbours", "new peak (A)", "support"):
        t.add_column(col)
    for pair, rec in pair_records(result.pairs).items():
        b = rec.bonds
        bonds = (
            f"{b.baseline_mean:.1f} -> {b.late_mean:.1f} ({b.change:+.1f}, margin {b.margin:.1f})"
            if b.baseline_mean is not None
            else "-"
        )
        per = rec.new_per_minority_atom
        new = f"{rec.new:.2f} / {pair.split('-')[0]}" + (
            f" = {per:.2f} / {rec.minority}" if per is not None and rec.minority != pair.split("-")[0] else ""
        )
        t.add_row(
            pair,
            str(rec.kind),
            bonds,
            new + (" (new bonds)" if rec.has_new else ""),
            f"{rec.md_peak_r:.2f}" if rec.md_peak_r is not None else "-",
            f"{100 * (rec.bootstrap_support or 0.0):.0f} %",
        )
    console.print(t)
    t = Table(title=f"candidate products (pair score 0-1, 90 % interval; match at >= {result.threshold})")
    for col in ("candidate", "verdict", "best pair", "score \\[interval]", "amount (atoms \\[interval])", "overall"):
        t.add_column(col)
    for v in result.candidates[:8]:
        style = {"formed": "bold green", "possible": "yellow"}.get(v.verdict, "dim")
        a = v.amount or {}
        amount = (
            f"{a['atoms']:g} {a['element']} [{a['atoms_lo']:g}-{a['atoms_hi']:g}]"
            + (f" (with {' / '.join(m for m in a['members'] if m != v.candidate)})" if len(a["members"]) > 1 else "")
            if a
            else "-"
        )
        t.add_row(
            f"{v.candidate} ({v.spacegroup})",
            f"[{style}]{v.verdict}[/]",
            v.best_pair or "-",
            f"{v.best_score:.2f} [{v.best_lo:.2f}-{v.best_hi:.2f}]",
            amount,
            f"{v.score:.2f}",
        )
    console.print(t)
    console.print(answer_line(result), highlight=False, markup=False)
    for line in Answer.coerce(result.answer).assumptions:
        console.print(f"[yellow]assumed:[/] {line}", highlight=False)
    console.print(f"wrote {folder}/{{products.csv, match.json, ref_rdf.npz}}")


def answer_line(result: Any) -> str:
    """The match's one answer (products.answer_of); older match files fall back to the verdicts alone."""
    from cellsim.products.answer import Answer

    answer = Answer.coerce(getattr(result, "answer", None))
    if answer:
        return "answer: " + str(answer.sentence)
    formed = [v.candidate for v in result.candidates if v.verdict == "formed"]
    possible = [v.candidate for v in result.candidates if v.verdict == "possible"]
    if formed:
        return "answer: formed " + ", ".join(formed) + (f"; possible {', '.join(possible)}" if possible else "")
    if possible:
        return "answer: no product certain; possible " + ", ".join(possible)
    return "answer: no product formed"


def _many(targets: list[Path]) -> list[Path]:
    """The targets, a study matrix or campaign file (or a matrix's output folder) given alone read as its runs."""
    from cellsim.config.matrix import load_run_set, run_set_path
    from cellsim.config.rundir import RunDir

    if len(targets) == 1 and not RunDir(targets[0]).is_run:
        found = run_set_path(targets[0])
        if found is not None:
            return load_run_set(found).run_dirs
    return targets


def _compare_hint(targets: list[Path], given: list[Path]) -> None:
    if len(targets) > 1:
        args = " ".join(str(t) for t in given)
        console.print(f"one ranked answer across these runs: cellsim compare {args}", highlight=False, soft_wrap=True)


@app.command()
def match(
    targets: Annotated[
        list[Path],
        typer.Argument(
            help="run directory or analysis folder (from `cellsim analyze`); several, or a matrix or campaign file: "
            "each in turn (`cellsim compare` sets their answers side by side)"
        ),
    ],
    candidate: Annotated[
        list[str] | None,
        typer.Option(help="candidate phase: library name or CIF path (repeatable); default: automatic"),
    ] = None,
    mp: Annotated[bool | None, typer.Option("--mp/--no-mp", help="use Materials Project (needs MP_API_KEY)")] = None,
    reactants: Annotated[str | None, typer.Option(help="reactant phases, e.g. Li6PS5Cl,In")] = None,
    thermo: Annotated[
        bool | None,
        typer.Option(
            "--thermo/--no-thermo",
            help="phase-diagram cross-check: the stored PBE energies (data/pbe) and, beside them, the engine's: "
            "--thermo relaxes the engine's missing phases (cached); default: cached energies only; --no-thermo: "
            "neither",
        ),
    ] = None,
    reactant_md: Annotated[
        bool | None,
        typer.Option(
            "--reactant-md/--no-reactant-md",
            help="baseline of the reactant pairs from a 0.2 ps NVT of each bulk reactant with the run's engine at "
            "its temperature (cached); default: cached runs only, else the crystals broadened to T",
        ),
    ] = None,
) -> None:
    """Name the reaction products: verdicts (formed / possible / not seen) with scores and intervals."""
    try:
        runs = _many(targets)
        for target in runs:
            if len(runs) > 1:
                console.print(f"[bold]{target}[/]", highlight=False)
            with console.status("matching candidate products"):
                result = stages.match(
                    target, candidates=candidate, use_mp=mp, reactants=reactants, thermo=thermo, reactant_md=reactant_md
                )
            folder = stages._analysis_folder(target)[0]
            print_match(result, folder)
    except CellsimError as exc:
        fail(exc)
    _compare_hint(runs, targets)


@app.command()
def report(
    targets: Annotated[
        list[Path],
        typer.Argument(
            help="run directory or analysis folder; several, or a matrix or campaign file: each its own report "
            "(`cellsim compare` makes one page across them)"
        ),
    ],
) -> None:
    """Figures and report.html (self-contained) + report.md: RUN_DIR/report or ANALYSIS/report."""
    try:
        runs = _many(targets)
        for target in runs:
            with console.status("drawing figures"):
                paths = stages.report(target)
            console.print(
                f"report: {paths['html']}  (also {paths['md'].name} and {len(paths) - 2} figures in "
                f"{paths['html'].parent})"
            )
    except CellsimError as exc:
        fail(exc)
    _compare_hint(runs, targets)
