"""Any trajectory in, a verdict out (issue 12): analyze -> match -> report on files cellsim did not make."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cellsim.testing import reaction_run, write_vasprun, write_xdatcar


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MP_API_KEY", raising=False)


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command (entry point main(): one-line errors, exit codes)."""
    return subprocess.run(
        [sys.executable, "-m", "cellsim.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.fixture(scope="module")
def reacting(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[int], np.ndarray, np.ndarray]:
    """Frames of a reacting In/S/Cl trajectory (In-S at 2.58 A and In-Cl at 2.92/3.17 A form at frame 300)."""
    from cellsim.io.xdatcar import read_trajectory

    run = reaction_run(tmp_path_factory.mktemp("src") / "run", n_frames=600, react_at=300)
    hdr, frac, cells = read_trajectory(run / "md" / "seg-000" / "XDATCAR")
    return hdr.symbols, hdr.counts, cells[0], frac


def _check_verdict(out: Path, formed: set[str]) -> None:
    import csv

    rows = list(csv.DictReader((out / "products.csv").read_text().splitlines()))
    got = {r["candidate"] for r in rows if r["pair"] == "overall" and r["verdict"] == "formed"}
    assert formed <= got, got
    assert (out / "report" / "report.html").is_file()
    html = (out / "report" / "report.html").read_text()
    assert "Answer" in html and "Interface model" not in html and "Trajectory" in html


def _full(tmp_path: Path, inputs: list[Path], *extra: str) -> Path:
    out = tmp_path / "out"
    r = cli("analyze", *map(str, inputs), "-o", str(out), *extra)
    assert r.returncode == 0, r.stderr + r.stdout
    r = cli("match", str(out))
    assert r.returncode == 0, r.stderr + r.stdout
    assert "answer:" in r.stdout
    r = cli("report", str(out))
    assert r.returncode == 0, r.stderr + r.stdout
    return out


def test_bare_vasp5_xdatcar(tmp_path: Path, reacting: tuple) -> None:
    sym, counts, cell, frac = reacting
    xd = write_xdatcar(tmp_path / "XDATCAR", sym, counts, cell, frac)
    (tmp_path / "INCAR").write_text("POTIM = 2\nTEBEG = 300\n")
    out = _full(tmp_path, [xd])
    info = json.loads((out / "analysis.json").read_text())
    assert info["dt_fs"] == 2.0 and "INCAR" in info["dt_source"] and info["temperature_K"] == 300.0
    assert info["segments"][0]["sha256"] and info["segments"][0]["size"] == xd.stat().st_size
    assert info["element_counts"] == {"In": 8, "S": 16, "Cl": 16} and info["cell_first"]
    assert (out / "first_frame.vasp").is_file() and (out / "last_frame.vasp").is_file()
    _check_verdict(out, {"InCl"})


def test_vasp4_needs_species(tmp_path: Path, reacting: tuple) -> None:
    sym, counts, cell, frac = reacting
    xd = write_xdatcar(tmp_path / "XDATCAR", sym, counts, cell, frac, title="no elements here", vasp4=True)
    r = cli("analyze", str(xd), "--dt", "2fs", "-o", str(tmp_path / "o0"))
    assert r.returncode == 2 and "--species" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    out = _full(tmp_path, [xd], "--dt", "2fs", "--species", ",".join(sym))
    _check_verdict(out, {"InCl"})


def test_two_segments_given_together(tmp_path: Path, reacting: tuple) -> None:
    sym, counts, cell, frac = reacting
    a = (
        write_xdatcar(tmp_path / "run1" / "XDATCAR", sym, counts, cell, frac[:250])
        if (tmp_path / "run1").mkdir() is None
        else None
    )
    b = (
        write_xdatcar(tmp_path / "run2" / "XDATCAR", sym, counts, cell, frac[249:])
        if (tmp_path / "run2").mkdir() is None
        else None
    )
    assert a is not None and b is not None
    out = _full(tmp_path, [a, b], "--dt", "2")
    info = json.loads((out / "analysis.json").read_text())
    assert info["frames"] == 600  # the repeated frame 250 is dropped once
    assert info["segments"][1]["dropped_first"] is True
    _check_verdict(out, {"InCl"})


def test_vasprun_xml(tmp_path: Path, reacting: tuple) -> None:
    sym, counts, cell, frac = reacting
    vr = write_vasprun(tmp_path / "vasprun.xml", sym, counts, cell, frac, potim=2.0, tebeg=300.0)
    out = _full(tmp_path, [vr])
    info = json.loads((out / "analysis.json").read_text())
    assert info["frames"] == 600 and "vasprun" in info["dt_source"] and info["segments"][0]["fmt"] == "vasprun"
    _check_verdict(out, {"InCl"})


def test_truncated_vasprun_reads_whole_steps(tmp_path: Path, reacting: tuple) -> None:
    import warnings

    from cellsim.io.sources import iter_trajectory

    sym, counts, cell, frac = reacting
    vr = write_vasprun(tmp_path / "vasprun.xml", sym, counts, cell, frac[:20], truncate=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n = sum(len(b) for _, b in iter_trajectory([vr]))
    assert n == 19 and any("whole ionic steps" in str(w.message) for w in caught)


def test_extxyz(tmp_path: Path, reacting: tuple) -> None:
    from ase import Atoms
    from ase.io import write

    sym, counts, cell, frac = reacting
    species = [s for s, c in zip(sym, counts, strict=True) for _ in range(c)]
    traj = [Atoms(species, scaled_positions=f, cell=cell, pbc=True) for f in frac]
    path = tmp_path / "md.extxyz"
    write(path, traj, format="extxyz")
    out = _full(tmp_path, [path], "--dt", "2fs", "--temperature", "300K")
    info = json.loads((out / "analysis.json").read_text())
    assert info["dt_source"] == "option" and info["temperature_source"] == "option"
    _check_verdict(out, {"InCl"})


def test_no_dt_is_a_stated_default(tmp_path: Path, reacting: tuple) -> None:
    sym, counts, cell, frac = reacting
    xd = write_xdatcar(tmp_path / "XDATCAR", sym, counts, cell, frac[:100])
    r = cli("analyze", str(xd), "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert "assumed 2.0 fs" in r.stderr
    assert json.loads((tmp_path / "o" / "analysis.json").read_text())["dt_source"] == "default"


def test_mismatches_are_refused_in_one_line(tmp_path: Path, paper_run: Path, reacting: tuple) -> None:
    import shutil

    sym, counts, cell, frac = reacting
    xd = write_xdatcar(tmp_path / "XDATCAR", sym, counts, cell, frac[:50])
    # a trajectory whose atoms differ from the run's interface
    run = tmp_path / "run"
    shutil.copytree(paper_run, run)
    seg = run / "md" / "seg-000"
    seg.mkdir(parents=True, exist_ok=True)
    shutil.copy(xd, seg / "XDATCAR")
    r = cli("analyze", str(run), "--dt", "2")
    assert r.returncode == 2 and "differ from the run's interface" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # analysing into a run's analysis folder is refused
    r = cli("analyze", str(xd), "--dt", "2", "-o", str(run / "analysis"))
    assert r.returncode == 2 and "analysis folder of run directory" in r.stderr
    # a pair whose element is absent
    r = cli("analyze", str(xd), "--dt", "2", "--pairs", "Li-S", "-o", str(tmp_path / "o1"))
    assert r.returncode == 2 and "no Li atoms" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # species that do not fit the file
    r = cli("analyze", str(xd), "--dt", "2", "--species", "Li,P", "-o", str(tmp_path / "o2"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    # reactants the trajectory cannot hold
    r = cli("analyze", str(xd), "--dt", "2", "--reactants", "Li6PS5Cl", "-o", str(tmp_path / "o3"))
    assert r.returncode == 2 and "no Li, P atoms" in r.stderr
    # match/report of a folder with no analysis
    (tmp_path / "empty").mkdir()
    for cmd in ("match", "report"):
        r = cli(cmd, str(tmp_path / "empty"))
        assert r.returncode == 2 and "no analysis here" in r.stderr, r.stderr


def test_reactants_inferred_and_given(tmp_path: Path, reacting: tuple) -> None:
    import warnings

    import cellsim

    sym, counts, cell, frac = reacting
    xd = write_xdatcar(tmp_path / "XDATCAR", sym, counts, cell, frac[:100])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cellsim.analyze(xd, dt_fs=2, out=tmp_path / "a")
        assert res.info["reactants"]["source"] == "unknown"  # In8S16Cl16 is no reactant combination
        res = cellsim.analyze(xd, dt_fs=2, out=tmp_path / "b", reactants="In")
    assert res.info["reactants"]["source"] == "given"


@pytest.mark.slow
def test_report_of_a_bare_trajectory_in_chromium(tmp_path: Path, reacting: tuple) -> None:
    """A trajectory from elsewhere: the report opens with the answer, names its source, has no interface."""
    from conftest import open_in_chromium

    sym, counts, cell, frac = reacting
    xd = write_xdatcar(tmp_path / "XDATCAR", sym, counts, cell, frac)
    out = _full(tmp_path, [xd], "--dt", "2fs")
    title, images, problems, text = open_in_chromium(out / "report" / "report.html", tmp_path / "shot.png")
    assert title.startswith("cellsim report: XDATCAR")
    assert len(images) >= 5 and all(complete and width > 0 for _, complete, width in images)
    assert not problems, problems
    assert text.index("Answer") < text.index("Trajectory") and "Interface model" not in text
    assert "products formed" in text and "InCl" in text and str(xd.name) in text
