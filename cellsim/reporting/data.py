"""What a report shows, read from disk: an analysis folder, its match (when it belongs to that analysis), its
diagnostics, and the run directory's study, interface, engine records and engine check when there is one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.config.rundir import AnalysisFiles
from cellsim.core.errors import RunDirError

if TYPE_CHECKING:
    from cellsim.analysis.analyze import AnalysisResult
    from cellsim.analysis.checks import Diagnostics
    from cellsim.config.rundir import RunDir
    from cellsim.products.result import MatchResult


@dataclass
class ReportData:
    """Everything the report shows: an analysis folder, its match, and the run directory when there is one."""

    folder: Path
    analysis: AnalysisResult
    run: RunDir | None
    study: dict[str, Any] = field(default_factory=dict)
    interface: dict[str, Any] | None = None
    peaks: dict[str, Any] | None = None
    match: MatchResult | None = None
    engine: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: Diagnostics | None = None
    notes: list[str] = field(default_factory=list)
    engine_check: list[dict[str, Any]] = field(default_factory=list)
    parity: list[str] = field(default_factory=list)  # the engines' forces on the interface vs PBE, or why none

    @property
    def name(self) -> str:
        if self.study.get("name"):
            return str(self.study["name"])
        srcs = self.analysis.meta.source_names
        return ", ".join(srcs) or self.folder.name


def load_report_data(folder: Path, run: RunDir | None = None) -> ReportData:
    """Read the analysis folder (and the run directory's study, interface and engine records, if any)."""
    import yaml

    from cellsim.analysis.analyze import AnalysisResult
    from cellsim.products.result import MatchError, load_match

    res = AnalysisResult.load(folder)
    d = ReportData(folder=folder, analysis=res, run=run, peaks=_json(AnalysisFiles(folder).peaks))
    if run is not None and res.meta.run_dir:
        d.study = yaml.safe_load(run.study_file.read_text()) or {}
        d.interface = _json(run.interface_json)
        if run.engine_check_file.is_file():
            try:
                d.engine_check = list(json.loads(run.engine_check_file.read_text()))
            except ValueError:
                d.notes.append(f"{run.engine_check_file}: damaged; run `cellsim engines check {run.root}` again")
        from cellsim.engines.check import parity_trust

        d.parity = parity_trust(run.root, str(run.root))
        replica = res.meta.replica
        for seg in run.segments(replica):
            info = _json(seg / "engine.json")
            if info:
                d.engine.append(info)
    if AnalysisFiles(folder).match.is_file():
        try:
            m = load_match(folder)
        except MatchError as exc:
            d.notes.append(str(exc))
        else:
            if m.analysis_id == res.meta.id:
                d.match = m
            else:
                d.notes.append("the match results belong to an earlier analysis: run `cellsim match` again")
    else:
        d.notes.append(f"no product matching yet: run `cellsim match {run.root if run else folder}`")
    if AnalysisFiles(folder).diagnostics.is_file():
        try:
            from cellsim.analysis.diagnostics import Diagnostics

            d.diagnostics = Diagnostics.from_json(AnalysisFiles(folder).diagnostics)
        except Exception as exc:  # a damaged or older diagnostics file must not stop the report
            d.notes.append(f"diagnostics.json not read ({type(exc).__name__}: {exc})")
    return d


def _json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise RunDirError(f"{path}: damaged JSON ({exc}); run the stage that writes it again") from None
    return data


# a table of the report: (title, header, rows, note), shared by the HTML and the Markdown document
Section = tuple[str, list[str], list[list[str]], str]


def ps_text(x: float | None) -> str:
    """A time in ps for a table cell ('-' when there is none)."""
    return f"{x:.3f} ps" if x is not None else "-"
