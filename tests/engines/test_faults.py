"""Faults lose nothing (issue 16): kill -9 at random moments of analyze, match and report leaves the previous
outputs intact or the new ones complete; two writers on one folder are refused, never interleaved."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cellsim.testing import reaction_run


def _start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cellsim.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _timed(*args: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = _start(*args, env=env)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    return time.perf_counter() - t0


def _analysis_consistent(folder: Path) -> str:
    """The analysis folder reads back whole; returns its id."""
    from cellsim.analysis.analyze import AnalysisResult

    res = AnalysisResult.load(folder)
    peaks = json.loads((folder / "peaks.json").read_text())
    assert set(peaks["pairs"]) == set(res.settings.pairs)
    rows = [r for r in (folder / "rdf.csv").read_text().splitlines() if not r.startswith("#")]
    assert len(rows) - 1 == len(res.settings.pairs) * len(res.window_frames) * len(res.r)
    return str(res.info["id"])


def _match_consistent(folder: Path) -> str | None:
    from cellsim.products.result import load_match

    if not (folder / "match.json").exists():
        return None
    m = load_match(folder)
    rows = list(csv.DictReader((folder / "products.csv").read_text().splitlines()))
    assert len([r for r in rows if r["pair"] != "overall"]) == len(m.rows)
    return m.analysis_id


@pytest.mark.slow
def test_kill_minus_9_at_random_moments(tmp_path: Path) -> None:
    env = {**os.environ, "CELLSIM_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    env.pop("MP_API_KEY", None)
    run = reaction_run(tmp_path / "run", n_frames=3000, react_at=1500)
    folder = run / "analysis"
    t_an = _timed("analyze", str(run), "--window", "0.5ps", env=env)
    old = _analysis_consistent(folder)
    t_ma = _timed("match", str(run), "--no-mp", env=env)
    assert _match_consistent(folder) == old
    t_re = _timed("report", str(run), env=env)
    html_old = (run / "report" / "report.html").read_bytes()
    rng = np.random.default_rng(7)
    seen_new = 0
    for cmd, t_full in (("analyze", t_an), ("match", t_ma), ("report", t_re)):
        for _ in range(4):
            extra = ["--window", "0.5ps"] if cmd == "analyze" else (["--no-mp"] if cmd == "match" else [])
            p = _start(cmd, str(run), *extra, env=env)
            time.sleep(float(rng.uniform(0.3, 1.0)) * t_full)
            p.send_signal(signal.SIGKILL)
            p.wait()
            now = _analysis_consistent(folder)
            seen_new += now != old
            mid = _match_consistent(folder)
            assert mid is None or isinstance(mid, str)
            if (run / "report" / "report.html").is_file():
                md = (run / "report" / "report.md").read_text()
                for name in [ln.split("](")[1].rstrip(")") for ln in md.splitlines() if ln.startswith("![")]:
                    assert (run / "report" / name).is_file(), name
            old = now
    # a complete run afterwards cleans up what the kills left
    _timed("analyze", str(run), "--window", "0.5ps", env=env)
    assert not list(run.glob(".analysis.partial-*")) and not list(run.glob(".analysis.old-*"))
    assert html_old  # the first report existed before the kills


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
