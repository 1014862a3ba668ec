"""Replica pooling over what all replicas have: common windows only, and diagnostics of every replica."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from cellsim.analysis.analyze import AnalysisResult, AnalysisSettings, analyze, pool_replicas
from cellsim.analysis.diagnostics import Check, Diagnostics
from cellsim.testing import write_xdatcar

CELL = np.diag([9.0, 9.0, 9.0])
SETTINGS = AnalysisSettings(pairs=["Li-S"], dt_fs=2.0, window_ps=0.04, rmax=4.0)  # 20 frames a window


def _replica(tmp_path: Path, n_frames: int, seed: int) -> AnalysisResult:
    rng = np.random.default_rng(seed)
    base = rng.random((1, 12, 3))
    frac = (base + rng.normal(0.0, 0.02, (n_frames, 12, 3))) % 1.0
    xd = write_xdatcar(tmp_path / f"XDATCAR-{seed}", ["Li", "S"], [6, 6], CELL, frac)
    return analyze([xd], SETTINGS)


def test_pooled_windows_are_those_every_replica_filled(tmp_path: Path) -> None:
    long, short = _replica(tmp_path, 100, 0), _replica(tmp_path, 70, 1)  # windows of 20: 5 full; 3 full + 10
    assert list(short.window_frames) == [20, 20, 20, 10]
    pooled = pool_replicas([long, short])
    assert list(pooled.window_frames) == [20, 20, 20] and pooled.n_frames == 70
    # each pooled window is the replica mean (the short one's 10-frame window would bias it low)
    for w in range(len(pooled.window_frames)):
        np.testing.assert_allclose(
            pooled.n_per_atom["Li-S"][w], (long.n_per_atom["Li-S"][w] + short.n_per_atom["Li-S"][w]) / 2, rtol=1e-12
        )
    note = " ".join(pooled.info["notes"])
    assert "shortest replica" in note and "70 frames" in note and "3 windows" in note


def test_pooled_diagnostics_take_every_replica(tmp_path: Path) -> None:
    a, b, c = (_replica(tmp_path, 60, s) for s in (0, 1, 2))
    a.diagnostics = Diagnostics(
        checks=[Check("temperature", "ok", 301.0, "K", "temperature 301 K")],
        summary={"equilibration_ps": 0.02, "equilibrated": True},
    )
    b.diagnostics = Diagnostics(
        checks=[Check("temperature", "warn", 390.0, "K", "temperature 390 K, 90 K above the target")],
        summary={"equilibration_ps": 0.08, "equilibrated": False},
    )
    c.diagnostics = Diagnostics(
        checks=[Check("temperature", "ok", 299.0, "K", "temperature 299 K")],
        summary={"equilibration_ps": 0.04, "equilibrated": True},
    )
    pooled = pool_replicas([a, b, c])
    d = pooled.diagnostics
    assert isinstance(d, Diagnostics)
    assert d.summary["equilibration_ps"] == 0.08 and d.summary["equilibrated"] is False  # the latest, replica 1
    check = d.check("temperature")
    assert check is not None and check.status == "warn" and check.message.startswith("replica 1: temperature 390 K")
    assert a.diagnostics.summary["equilibration_ps"] == 0.02  # the replica's own result is left as it was
    # no replica with diagnostics: none pooled
    for r in (a, b, c):
        r.diagnostics = None
    assert pool_replicas([a, b, c]).diagnostics is None


def _oszicar(path: Path, n: int, relax_steps: int) -> None:
    from cellsim.io.vaspfiles import oszicar_line

    rng = np.random.default_rng(n + relax_steps)
    lines = []
    for k in range(1, n + 1):
        e_pot = -100.0 + (2.0 * (1 - k / relax_steps) if k < relax_steps else 0.0) + rng.normal(0.0, 0.01)
        lines.append(oszicar_line(k, 300.0 + rng.normal(0.0, 5.0), e_pot + 1.0, e_pot, 1.0))
    path.write_text("".join(lines))


def test_stage_pools_equilibration_of_all_replicas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cellsim analyze` of a run with replicas: the pooled equilibration is the latest replica's, not replica 0's."""
    import cellsim
    from cellsim.config.rundir import RunDir
    from cellsim.testing import replica_run

    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    run = replica_run(tmp_path / "run", [None, None], n_frames=400)
    rd = RunDir(run)
    _oszicar(rd.segment_dir(0, replica=0) / "OSZICAR", 400, 1)  # settled from the start
    _oszicar(rd.segment_dir(0, replica=1) / "OSZICAR", 400, 160)  # relaxing over the first 40 %
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pooled = cellsim.analyze(run)
    own = [json.loads((run / "analysis" / f"replica-0{k}" / "analysis.json").read_text()) for k in (0, 1)]
    eq = [o["equilibration_ps"] for o in own]
    assert eq[1] > eq[0]
    assert pooled.info["equilibration_ps"] == pooled.diagnostics.summary["equilibration_ps"] == eq[1]
