"""The analysis folder as a store: save -> load gives back what was saved; other formats are refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cellsim.analysis.analyze import FORMAT_VERSION, AnalysisError, AnalysisResult, AnalysisSettings, analyze
from cellsim.analysis.diagnostics import Check, Diagnostics
from cellsim.testing import write_xdatcar


def _result(tmp_path: Path) -> AnalysisResult:
    rng = np.random.default_rng(3)
    frac = (0.5 + rng.normal(0.0, 0.05, (1, 8, 3)) + rng.normal(0.0, 0.003, (20, 8, 3))) % 1.0
    xd = write_xdatcar(tmp_path / "XDATCAR", ["In", "S"], [4, 4], np.diag([8.0, 8.0, 8.0]), frac)
    res = analyze([xd], AnalysisSettings(pairs=["In-S"], dt_fs=2.0, window_ps=0.01, rmax=4.0))
    res.baseline_bonds = {"In-S": 3}
    res.diagnostics = Diagnostics(
        checks=[Check("temperature", "warn", 412.5, "K", "mean temperature 412.5 K, 112.5 K above the target")],
        summary={"equilibration_ps": 0.012, "mean_temperature_K": 412.5, "drift": float("nan")},
        energy_times_ps=np.array([0.002, 0.004]),
        temperature_K=np.array([400.0, 425.0]),
        potential_eV=np.array([-10.0, np.nan]),
        unit_fractions={"PS4": np.array([1.0, 0.75])},
    )
    return res


def test_save_then_load_round_trips_baseline_bonds_and_diagnostics(tmp_path: Path) -> None:
    res = _result(tmp_path)
    res.save(tmp_path / "out")
    again = AnalysisResult.load(tmp_path / "out")
    assert again.baseline_bonds == {"In-S": 3}
    assert isinstance(again.diagnostics, Diagnostics)
    assert json.dumps(again.diagnostics.to_dict()) == json.dumps(res.diagnostics.to_dict())
    assert again.diagnostics.warnings[0].message.startswith("mean temperature 412.5 K")
    np.testing.assert_array_equal(again.diagnostics.potential_eV, [-10.0, np.nan])
    assert again.n_frames == res.n_frames and again.settings == res.settings
    # a result without diagnostics loads without them
    res.diagnostics, res.baseline_bonds = None, {}
    res.save(tmp_path / "bare")
    bare = AnalysisResult.load(tmp_path / "bare")
    assert bare.diagnostics is None and bare.baseline_bonds == {}


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, "2b", None])
def test_load_refuses_an_unknown_format_version(tmp_path: Path, version: object) -> None:
    _result(tmp_path).save(tmp_path / "out")
    man = tmp_path / "out" / "analysis.json"
    info = json.loads(man.read_text())
    info["cellsim_version"] = "9.1.0"
    if version is None:
        del info["version"]
    else:
        info["version"] = version
    man.write_text(json.dumps(info))
    with pytest.raises(
        AnalysisError, match=r"written by cellsim 9\.1\.0 in analysis format .*re-run `cellsim analyze`"
    ):
        AnalysisResult.load(tmp_path / "out")
