"""The command line: build, refs, study-schema, demo, and error exits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cellsim.cli import app

runner = CliRunner()


def test_build_command(tmp_path: Path, repo: Path) -> None:
    out = tmp_path / "x"
    r = runner.invoke(app, ["build", str(repo / "workflows" / "li6ps5cl_in.yaml"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "PS4 units" in r.output and "16 of 16 P whole" in r.output
    report = json.loads((out / "interface" / "interface.json").read_text())
    assert 250 <= report["n_atoms"] <= 450
    # second run reuses the finished interface, --force rebuilds
    r = runner.invoke(app, ["build", "li6ps5cl_in", "-o", str(out)])
    assert r.exit_code == 0 and "already built" in r.output
    mtime = (out / "interface" / "POSCAR").stat().st_mtime_ns
    r = runner.invoke(app, ["build", "li6ps5cl_in", "-o", str(out), "--force"])
    assert r.exit_code == 0
    assert (out / "interface" / "POSCAR").stat().st_mtime_ns != mtime


def test_build_error_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninterface:\n  metal: {phase: Unobtainium}\n")
    r = runner.invoke(app, ["build", str(bad), "-o", str(tmp_path / "r")])
    assert r.exit_code == 2
    assert "unknown phase 'Unobtainium'" in r.output
    assert not (tmp_path / "r" / "interface").exists()


def test_refs_list_and_show() -> None:
    r = runner.invoke(app, ["refs", "list"])
    assert r.exit_code == 0
    for name in ("Li6PS5Cl", "In2S3", "InCl", "InCl3", "InS", "Li"):
        assert name in r.output
    r = runner.invoke(app, ["refs", "show", "In2S3"])
    assert r.exit_code == 0, r.output
    assert "I4_1/amd" in r.output and "7.5937" in r.output and "In-S" in r.output and "mp-22216" in r.output
    r = runner.invoke(app, ["refs", "show", "Nope"])
    assert r.exit_code == 2 and "unknown phase 'Nope'" in r.output


def test_study_schema() -> None:
    r = runner.invoke(app, ["study-schema"])
    assert r.exit_code == 0 and "max_strain: 0.03" in r.output


@pytest.mark.slow
def test_demo_resumes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = runner.invoke(app, ["demo", "-o", str(out), "--time", "6fs"])
    assert r.exit_code == 0, r.output
    assert (out / "interface" / "POSCAR").is_file() and (out / "study.yaml").is_file()
    assert (out / "md" / "seg-000" / "XDATCAR").is_file() and (out / "analysis" / "rdf.csv").is_file()
    r = runner.invoke(app, ["demo", "-o", str(out), "--time", "6fs"])
    assert r.exit_code == 0 and "already built" in r.output and "(0 run now" not in r.output
