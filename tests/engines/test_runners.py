"""The engine runners and their one registry (cellsim.engines.runners): no model is loaded, no DFT code runs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from cellsim.config.engines import ENGINE_NAMES, MODELS, STAND_IN
from cellsim.config.study import parse_study
from cellsim.core.errors import RunDirError
from cellsim.engines.mlip import ENGINES, EngineError
from cellsim.engines.runners import EngineRunner, ModelRunner, md_runner, runner_for, runners

STUDY = """
name: tiny
md: {temperature: 300, timestep_fs: 2.0, segment_time_ps: 0.012, total_time_ps: 0.02, relax_steps: 3}
engine: {name: ENGINE}
"""


def study(engine: str = "chgnet"):
    return parse_study(STUDY.replace("ENGINE", engine))


def test_every_engine_name_the_study_accepts_has_one_runner():
    table = runners()
    assert tuple(table) == ENGINE_NAMES
    for name in ENGINE_NAMES:
        runner = runner_for(name)
        assert isinstance(runner, EngineRunner) and runner.name == name and table[name] is runner
        ok, why = runner.available()
        assert isinstance(ok, bool) and (why == "") == ok, (name, why)
    # the embedded ones are exactly the engines `cellsim run` takes
    assert tuple(n for n, r in table.items() if r.embedded) == ENGINES
    with pytest.raises(EngineError, match=r"engine 'nope' is not an engine \(choose one of: chgnet, .*vasp, cp2k\)"):
        runner_for("nope")


def test_cellsim_run_gets_the_studys_embedded_runner():
    assert md_runner(study("chgnet")).name == "chgnet"
    assert md_runner(study("vasp")).name == STAND_IN  # VASP's stand-in model runs here
    assert md_runner(study("cp2k")).name == "cp2k"
    assert md_runner(study("chgnet"), "sevennet").name == "sevennet"
    for name in ("vasp", "nope"):
        with pytest.raises(EngineError, match=rf"engine '{name}' is not an embedded engine \(choose one of: "):
            md_runner(study(), name)
    with pytest.raises(EngineError, match=r"engine 'vasp' is not an embedded engine"):
        runner_for("vasp").run(Path("."), study("vasp"))


def test_an_unavailable_engine_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no cp2k.psmp, no vasp, no MPI launcher
    monkeypatch.setenv("CELLSIM_CONFIG", str(tmp_path / "config.yaml"))
    ok, why = runner_for("cp2k").available()
    assert not ok and "CP2K executable 'cp2k.psmp' not found on PATH" in why
    ok, why = runner_for("vasp").available()
    assert not ok and "VASP not found" in why
    missing = ModelRunner(replace(MODELS[0], package="cellsim_no_such_package"))
    assert missing.available() == (False, "chgnet: the Python package 'cellsim_no_such_package' is not installed")
    no_weights = ModelRunner(replace(MODELS[0], package="cellsim", weights="no/such/weights.pth"))
    ok, why = no_weights.available()
    assert not ok and "weights not found (cellsim/no/such/weights.pth); cellsim does not download models" in why


def test_prepare_refuses_before_anything_runs(tmp_path):
    with pytest.raises(RunDirError, match=r"no interface yet"):
        runner_for("chgnet").prepare(tmp_path, study())
    with pytest.raises(RunDirError, match=r"no VASP inputs; run `cellsim inputs"):
        runner_for("vasp").prepare(tmp_path, study("vasp"))
    with pytest.raises(EngineError, match=r"runs inside cellsim"):
        runner_for("chgnet").run_segment(tmp_path)
