"""Screening: a study matrix's runs built, run here on the embedded engine, analysed, matched, reported and
compared, with one call (``cellsim screen MATRIX``); and the comparison alone (``cellsim compare``).

Each run is an ordinary run directory and each step is the ordinary stage (:func:`~cellsim.stages.build`,
:func:`~cellsim.stages.run`, :func:`~cellsim.stages.analyze`, :func:`~cellsim.stages.match`,
:func:`~cellsim.stages.report`); a step whose output is current is skipped, so an interrupted screen
continues where it stopped and a finished one only redraws the comparison.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.config.matrix import RunSet, load_run_set, run_set_path
from cellsim.config.rundir import RunDir, report_html
from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
    from cellsim.reporting.compare import Comparison
    from cellsim.stages.building import BuildOutcome

PathLike = str | Path
COMPARE_DIR = "compare"


def run_set(target: PathLike | RunSet, out: PathLike | None = None) -> RunSet:
    """The runs of a matrix or campaign file (or a matrix's output folder, or a bundled matrix's name)."""
    return target if isinstance(target, RunSet) else load_run_set(target, out)


def build_runs(
    target: PathLike | RunSet,
    out: PathLike | None = None,
    force: bool = False,
    on_run: Callable[[str, BuildOutcome], None] | None = None,
) -> RunSet:
    """Build every run directory of a matrix (a finished one is reused) and write ``OUT/matrix.yaml``.

    A campaign's runs must be built already (each was built from its own study): a missing one is an error
    naming it.

    Returns
    -------
    RunSet
        The runs, all built.
    """
    from cellsim.stages.building import build

    rs = run_set(target, out)
    if rs.kind != "matrix":
        for r in rs.runs:
            RunDir(r.run_dir).require()
        return rs
    for r in rs.runs:
        assert r.study is not None
        outcome = build(r.study, r.run_dir, force=force)
        if on_run is not None:
            on_run(r.name, outcome)
    rs.write_manifest()
    return rs


@dataclass
class ScreenRun:
    """What :func:`screen` did with one run: the stages it ran, its MD, its answer, or why it stopped."""

    name: str
    run_dir: Path
    stages: list[str] = field(default_factory=list)
    md_ps: float | None = None
    steps_run: int = 0
    seconds: float = 0.0
    answer: str | None = None
    kind: str | None = None
    error: str | None = None


@dataclass
class ScreenOutcome:
    """A screen: the run set, each run's record, the comparison and the paths of its files."""

    run_set: RunSet
    runs: list[ScreenRun]
    comparison: Comparison
    paths: dict[str, Path]
    seconds: float

    @property
    def failed(self) -> list[ScreenRun]:
        return [r for r in self.runs if r.error]


def _newest_mtime(paths: Sequence[Path]) -> float:
    return max((p.stat().st_mtime for p in paths if p.is_file()), default=0.0)


def _trajectories(rd: RunDir) -> list[Path]:
    reps = rd.replicas()
    files = [f for k in reps for f in rd.trajectory_files(k)] if reps else rd.trajectory_files()
    return files


def analysis_current(rd: RunDir) -> bool:
    """The run's analysis exists and is newer than every trajectory file of its MD."""
    from cellsim.analysis.store import ANALYSIS_FILE

    manifest = rd.analysis_dir / ANALYSIS_FILE
    return manifest.is_file() and manifest.stat().st_mtime >= _newest_mtime(_trajectories(rd))


def match_current(rd: RunDir) -> bool:
    """The run's match result belongs to its current analysis (``match.json: analysis_id``)."""
    from cellsim.analysis.store import read_info
    from cellsim.products.result import MATCH_FILE, read_match_doc

    try:
        info = read_info(rd.analysis_dir)
        doc = read_match_doc(rd.analysis_dir / MATCH_FILE)
    except CellsimError:
        return False
    return bool(doc["answer"]) and doc["analysis_id"] == info.id


def report_current(rd: RunDir) -> bool:
    """The run's report is newer than its match result."""
    page = report_html(rd.report_dir)
    return page.is_file() and page.stat().st_mtime >= _newest_mtime([rd.analysis_files.match])


def default_compare_dir(targets: Sequence[PathLike] | RunSet) -> Path:
    """Where a comparison goes by default: a matrix's output folder, a campaign file's folder, else the runs'
    common parent; ``compare/`` in it."""
    import os

    if isinstance(targets, RunSet):
        return (targets.out or targets.source.parent) / COMPARE_DIR
    items = [Path(t) for t in targets]
    if len(items) == 1 and not RunDir(items[0]).is_run:
        found = run_set_path(items[0])
        if found is not None:
            return default_compare_dir(load_run_set(found))
    roots = [str(p.resolve()) for p in items]
    common = Path(os.path.commonpath(roots)) if len(roots) > 1 else Path(roots[0]).parent
    return common / COMPARE_DIR


def compare(
    targets: Sequence[PathLike] | PathLike | RunSet, out: PathLike | None = None, title: str | None = None
) -> Comparison:
    """Compare runs and write the page, table and figures (``OUT/compare.html``, ``.md``, ``.csv``, ``.json``,
    PNGs).

    Parameters
    ----------
    targets
        Run directories and/or analysis folders, or one matrix or campaign file (or a matrix's output folder).
    out
        Output folder; default :func:`default_compare_dir`.
    title
        The page's title (default: the matrix's name).

    Returns
    -------
    Comparison
        Rows (one per run or replica) and groups ranked by reactivity; ``.out_dir`` is where it was written.
    """
    from cellsim.reporting.compare import compare_runs

    items: Sequence[PathLike] | RunSet = (
        targets if isinstance(targets, RunSet) else [targets] if isinstance(targets, str | Path) else list(targets)
    )
    result = compare_runs(items, title)
    result.write(Path(out) if out is not None else default_compare_dir(items))
    return result


def screen(
    target: PathLike | RunSet,
    *,
    out: PathLike | None = None,
    time: str | float | None = None,
    threads: int | None = None,
    relax_steps: int | None = None,
    device: str | None = None,
    reports: bool = True,
    compare_out: PathLike | None = None,
    say: Callable[[str], None] | None = None,
    progress: Callable[[str], Any] | None = None,
) -> ScreenOutcome:
    """Build, run (embedded engine), analyse, match and report every run of a matrix, then compare them.

    Parameters
    ----------
    target
        A matrix or campaign file, a matrix's output folder, or a bundled matrix's name.
    out
        Where the matrix's run directories go (default: the file's ``out:``, else ``runs/<name>``).
    time
        MD time per run instead of the studies' ``md.total_time_ps`` (``"0.5ps"``; a number is ps).
    threads, relax_steps, device
        As for :func:`cellsim.stages.run`.
    reports
        Write each run's own report (``RUN/report/``) too.
    compare_out
        Where the comparison goes (default ``OUT/compare``).
    say
        Called with one line per step (the CLI prints them).
    progress
        Called with a run's name; returns the MD progress callback for that run (or None).

    Returns
    -------
    ScreenOutcome
        Per run what was done (and any error: a failed run is recorded and the screen goes on), and the
        comparison.
    """
    t0 = _time.perf_counter()
    tell = say or (lambda _line: None)
    rs = build_runs(target, out, on_run=lambda name, o: tell(f"{name}: {'built' if not o.reused else 'built before'}"))
    records: list[ScreenRun] = []
    md = {"time": time, "threads": threads, "relax_steps": relax_steps, "device": device}
    for k, r in enumerate(rs.runs, 1):
        rec = ScreenRun(r.name, r.run_dir)
        records.append(rec)
        _screen_one(rec, f"[{k}/{len(rs.runs)}] {r.name}", tell, md, progress, reports)
    comparison = compare(rs, compare_out if compare_out is not None else None)
    paths = {"html": comparison.out_dir / "compare.html"} if comparison.out_dir else {}
    if comparison.out_dir is not None:
        paths.update(
            {p.name: p for p in sorted(comparison.out_dir.iterdir()) if p.suffix in (".md", ".csv", ".json", ".png")}
        )
    return ScreenOutcome(rs, records, comparison, paths, round(_time.perf_counter() - t0, 1))


def _screen_one(
    rec: ScreenRun,
    head: str,
    tell: Callable[[str], None],
    md: dict[str, Any],
    progress: Callable[[str], Any] | None,
    reports: bool,
) -> None:
    """One run of :func:`screen` into ``rec``: its MD (``md``: the options of :func:`cellsim.stages.run`), then
    the analysis, match and report where not current, and its answer; a failure is recorded, not raised."""
    from cellsim.products.result import load_match
    from cellsim.stages.analysis import analyze
    from cellsim.stages.md import run as run_md
    from cellsim.stages.products import match, report

    rd = RunDir(rec.run_dir)
    t1 = _time.perf_counter()
    try:
        cb = progress(rec.name) if progress is not None else None
        summary = run_md(rd.root, **md, progress=cb)
        rec.md_ps, rec.steps_run = summary.time_ps, summary.steps_run
        rec.stages.append("md")
        tell(f"{head}: MD {summary.time_ps:.3f} ps ({summary.steps_run} steps run now)")
        if not analysis_current(rd):
            analyze(rd.root)
            rec.stages.append("analyze")
        if not match_current(rd):
            match(rd.root)
            rec.stages.append("match")
        if reports and not report_current(rd):
            report(rd.root)
            rec.stages.append("report")
        ans = load_match(rd.analysis_dir).answer
        rec.kind, rec.answer = ans.kind, ans.sentence
        tell(f"{head}: {rec.kind}: {rec.answer}")
    except CellsimError as exc:
        rec.error = str(exc)
        tell(f"{head}: failed: {exc}")
    rec.seconds = round(_time.perf_counter() - t1, 1)
