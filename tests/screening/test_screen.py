"""`cellsim screen`: a study matrix built, run on the embedded engine, analysed, matched and compared with one
command (the smallest interface the builder makes, a few MD steps), and resumed without redoing anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cellsim.cli import app
from cellsim.config.rundir import RunDir
from cellsim.products.result import MatchResult

runner = CliRunner()
SMALL = """name: tiny
study: li6ps5cl_li
set:
  interface.min_atoms: 40
  interface.max_atoms: 120
  interface.min_lateral: 7.0
  interface.electrolyte.min_thickness: 5.0
  interface.metal.min_thickness: 4.0
  md.total_time_ps: 0.05
  md.relax_steps: 5
  analysis.window_ps: 0.01
matrix:
  termination: [1]
  seed: 1
"""


@pytest.fixture(scope="module")
def screened(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("tiny")
    (root / "m.yaml").write_text(SMALL)
    r = runner.invoke(app, ["screen", str(root / "m.yaml"), "-o", str(root / "out"), "--no-reports"])
    return root, r.output if r.exit_code == 0 else f"exit {r.exit_code}: {r.output}"


@pytest.mark.slow
def test_screen_writes_the_comparison(screened: tuple[Path, str]) -> None:
    root, output = screened
    assert (root / "out" / "compare" / "compare.html").is_file(), output


@pytest.mark.slow
def test_screen_row_answer_is_the_runs_own(screened: tuple[Path, str]) -> None:
    root, output = screened
    doc = json.loads((root / "out" / "compare" / "compare.json").read_text())
    own = MatchResult.load(RunDir(root / "out" / "t1-s0").analysis_dir).answer["sentence"]
    assert doc["runs"][0]["sentence"] == own, output


@pytest.mark.slow
def test_screen_again_only_redraws_the_comparison(screened: tuple[Path, str]) -> None:
    root, _ = screened
    r = runner.invoke(app, ["screen", str(root / "m.yaml"), "-o", str(root / "out"), "--no-reports"])
    assert (r.exit_code, "(0 steps run now)" in r.output) == (0, True), r.output


@pytest.mark.slow
def test_status_takes_the_matrix_output_folder(screened: tuple[Path, str]) -> None:
    root, _ = screened
    r = runner.invoke(app, ["status", str(root / "out")], env={"COLUMNS": "400"})
    assert (r.exit_code, "25 / 25" in r.output) == (0, True), r.output


@pytest.mark.slow
def test_run_takes_the_matrix_output_folder(screened: tuple[Path, str]) -> None:
    root, _ = screened
    r = runner.invoke(app, ["run", str(root / "out")])
    assert (r.exit_code, "(0 run now)" in r.output) == (0, True), r.output
