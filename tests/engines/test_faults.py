"""Faults lose nothing (issue 16): kill -9 at each commit point of analyze, match and report leaves the previous
outputs intact or the new ones complete; two writers on one folder are refused, never interleaved.

The kills land at named moments, not after a guessed delay (tests/stop_helpers.py): the child stops itself just
before or after the rename that is a stage's commit point, the test looks at the folder as the kill finds it
(staged files, journal, swapped-out folder), then kills it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from stop_helpers import HANG_S, kill, stopped_at

from cellsim.testing import reaction_run


def _run(*args: str, env: dict[str, str]) -> None:
    cmd = [sys.executable, "-m", "cellsim.cli", *args]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_S)
    assert p.returncode == 0, p.stderr


def _analysis_consistent(folder: Path) -> str:
    """The analysis folder reads back whole; returns its id."""
    from cellsim.analysis.analyze import AnalysisResult

    res = AnalysisResult.load(folder)
    peaks = json.loads((folder / "peaks.json").read_text())
    assert set(peaks["pairs"]) == set(res.settings.pairs)
    rows = [r for r in (folder / "rdf.csv").read_text().splitlines() if not r.startswith("#")]
    assert len(rows) - 1 == len(res.settings.pairs) * len(res.window_frames) * len(res.r)
    return str(res.info["id"])


def _match_consistent(folder: Path) -> list[str]:
    """The match set reads back whole (products.csv has match.json's rows); returns its candidates' names."""
    from cellsim.products.result import load_match

    m = load_match(folder)
    rows = list(csv.DictReader((folder / "products.csv").read_text().splitlines()))
    assert len([r for r in rows if r["pair"] != "overall"]) == len(m.rows)
    return sorted(c.candidate for c in m.candidates)


def _report_figures_present(report: Path) -> None:
    md = (report / "report.md").read_text()
    for name in [ln.split("](")[1].rstrip(")") for ln in md.splitlines() if ln.startswith("![")]:
        assert (report / name).is_file(), name


@pytest.mark.slow
def test_kill_minus_9_at_each_commit_point(tmp_path: Path) -> None:
    env = {**os.environ, "CELLSIM_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    env.pop("MP_API_KEY", None)
    run = reaction_run(tmp_path / "run", n_frames=1000, react_at=500)
    folder, report = run / "analysis", run / "report"
    analyze = ("analyze", str(run), "--window", "0.5ps")
    log = tmp_path / "child.log"
    _run(*analyze, env=env)
    old = _analysis_consistent(folder)
    _run("match", str(run), "--no-mp", env=env)
    old_match = (folder / "match.json").read_bytes()
    old_candidates = _match_consistent(folder)
    _run("report", str(run), env=env)
    html_old = (report / "report.html").read_bytes()

    # analyze, killed with its new set staged in full, before the swap: the old analysis (and its match) stay
    p = stopped_at("before:.analysis.old-*", *analyze, env=env, log=log)
    (staged,) = run.glob(".analysis.partial-*")
    assert json.loads((staged / "analysis.json").read_text())["id"] != old
    kill(p)
    assert _analysis_consistent(folder) == old and (folder / "match.json").read_bytes() == old_match

    # analyze, killed between the swap's two renames: no analysis folder, the old one set aside; a reader
    # puts it back
    p = stopped_at("after:.analysis.old-*", *analyze, env=env, log=log)
    assert not folder.exists() and len(list(run.glob(".analysis.old-*"))) == 1
    kill(p)
    assert _analysis_consistent(folder) == old and not list(run.glob(".analysis.old-*"))

    # match, killed with its files staged but before the journal (the commit point): the old set stays and the
    # next reader drops the staged files
    one = ("match", str(run), "--no-mp", "--candidate", "InS")
    p = stopped_at("before:.commit.json", *one, env=env, log=log)
    assert (folder / ".match.json.staged").is_file() and not (folder / ".commit.json").exists()
    kill(p)
    assert _match_consistent(folder) == old_candidates and (folder / "match.json").read_bytes() == old_match
    assert not list(folder.glob(".*.staged"))

    # match, killed just after the journal, before any file is renamed: the next reader completes the new set
    p = stopped_at("after:.commit.json", *one, env=env, log=log)
    assert (folder / "match.json").read_bytes() == old_match and (folder / ".match.json.staged").is_file()
    kill(p)
    assert _match_consistent(folder) == ["InS"]
    assert not (folder / ".commit.json").exists() and not list(folder.glob(".*.staged"))

    # report, killed with the new report staged, before the swap: the old report stays whole
    p = stopped_at("before:.report.old-*", "report", str(run), env=env, log=log)
    (staged,) = run.glob(".report.partial-*")
    assert (staged / "report.html").is_file()
    kill(p)
    assert (report / "report.html").read_bytes() == html_old
    _report_figures_present(report)

    # complete runs afterwards clean up what the kills left
    _run(*analyze, env=env)
    _run("report", str(run), env=env)
    assert _analysis_consistent(folder) != old
    assert not list(run.glob(".analysis.partial-*")) and not list(run.glob(".analysis.old-*"))
    assert not list(run.glob(".report.partial-*"))
    _report_figures_present(report)


def test_two_writers_on_one_folder_are_refused(tmp_path: Path) -> None:
    from cellsim.core.errors import CellsimError
    from cellsim.core.files import WriterLock

    run = reaction_run(tmp_path / "run", n_frames=100, react_at=50)
    import cellsim

    folder = run / "analysis"
    with WriterLock(folder.parent / f".{folder.name}.lock", str(folder)):
        with pytest.raises(CellsimError, match="another cellsim process"):
            cellsim.analyze(run)
    cellsim.analyze(run)  # free again


def test_damaged_analysis_files_are_one_line_errors(tmp_path: Path) -> None:
    import warnings

    import cellsim
    from cellsim.core.errors import CellsimError

    run = reaction_run(tmp_path / "run", n_frames=200, react_at=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cellsim.analyze(run)
    npz = run / "analysis" / "rdf.npz"
    npz.write_bytes(npz.read_bytes()[: len(npz.read_bytes()) // 2])
    with pytest.raises(CellsimError, match="damaged analysis files"):
        cellsim.match(run)
    npz.write_bytes(b"")
    with pytest.raises(CellsimError, match="damaged analysis files"):
        cellsim.report(run)
    (run / "analysis" / "analysis.json").write_text("{not json")
    with pytest.raises(CellsimError, match="damaged"):
        cellsim.match(run)
