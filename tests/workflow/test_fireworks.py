"""The FireWorks workflow on each run's embedded store, with the fake VASP under custodian.

Each test drives `cellsim` in a subprocess: FireWorks chooses its database client at import time, and the
embedded (mongomock) store is locked per process by design.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_helpers import cellsim, store_states

from cellsim.config.study import load_study

FAKE = Path(__file__).resolve().parents[1] / "fake_vasp"


@pytest.fixture
def fw_env(paper_run: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    run = tmp_path / "run"
    shutil.copytree(paper_run, run)
    study = load_study(run / "study.yaml")
    study.md.total_time_ps, study.md.segment_time_ps = 0.05, 0.02  # 25 steps, 3 segments
    (run / "study.yaml").write_text(study.to_yaml())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_VASP", "MONGOMOCK", "PMG_VASP"))}
    env.update(
        PATH=f"{FAKE}{os.pathsep}{env['PATH']}",
        CELLSIM_CUSTODIAN_POLLING_S="0.1",
        CELLSIM_CACHE=str(tmp_path / "cache"),
        COLUMNS="150",
    )
    return run, env


def frames(run: Path, env: dict[str, str]) -> int:
    r = cellsim(["stitch", str(run), "-o", str(run / "all.xdatcar")], env)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split(":")[-1].split()[0])


def test_workflow_runs_segments_corrects_errors_and_analyses(fw_env: tuple[Path, dict[str, str]]) -> None:
    run, env = fw_env
    r = cellsim(["submit", str(run)], {**env, "FAKE_VASP_PLANT": "real_optlay,edddav"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 COMPLETED" in r.stdout  # 3 MD segments + analysis
    assert (run / "report" / "report.html").is_file() and (run / "analysis" / "rdf.csv").is_file()
    assert frames(run, env) == 25
    assert '"real_optlay"' in (run / "md" / "seg-000" / "custodian.json").read_text()
    assert (run / "workflow" / "fw_store.json").is_file() and not list(Path.cwd().glob("launcher_*"))
    assert store_states(run, env) == ["COMPLETED"] * 4
    assert "No Launch exists" not in r.stderr and "FutureWarning" not in r.stderr


def test_killed_segment_is_rerun_and_continues(fw_env: tuple[Path, dict[str, str]]) -> None:
    run, env = fw_env
    r = cellsim(["submit", str(run)], {**env, "FAKE_VASP_DIE_AFTER": "4"})  # VASP killed after 4 steps
    assert "FIZZLED" in r.stdout, r.stdout + r.stderr
    fw = cellsim(["fw", "list", str(run)], env)
    assert fw.returncode == 0 and "FIZZLED" in fw.stdout, fw.stdout + fw.stderr
    r = cellsim(["submit", str(run)], env)  # same command again: the dead segment is rerun
    assert r.returncode == 0 and "4 COMPLETED" in r.stdout, r.stdout + r.stderr
    assert frames(run, env) == 25
    st = cellsim(["status", str(run)], env)
    assert "25 of 25 planned MD steps" in st.stdout and "4 + 6" in st.stdout  # seg-000 continued in place


@pytest.mark.slow
def test_each_run_has_its_own_store_and_lock(fw_env: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """A process holding run A's store blocks only run A: run B runs to the end meanwhile.

    Checked by state, not by time: B's submit may wait only 1 s for a store lock, and A's holder is still
    alive (holding A's store) when B has finished."""
    run, env = fw_env
    other = tmp_path / "other"
    shutil.copytree(run, other)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from cellsim.workflow.store import WorkflowStore; "
            "from cellsim.config.rundir import RunDir; "
            "WorkflowStore(RunDir(sys.argv[1])); print('ready', flush=True); time.sleep(3600)",
            str(run),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        r = cellsim(["submit", str(run)], {**env, "CELLSIM_FW_LOCK_TIMEOUT_S": "1"})
        assert r.returncode == 2
        assert "another process is using cellsim's embedded FireWorks store" in r.stderr + r.stdout
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        r = cellsim(["submit", str(other)], {**env, "CELLSIM_FW_LOCK_TIMEOUT_S": "1"})
        assert r.returncode == 0 and "4 COMPLETED" in r.stdout, r.stdout + r.stderr
        assert holder.poll() is None, "A's holder ended early: B did not run while A's store was held"
    finally:
        holder.kill()
        holder.wait()
    assert frames(other, env) == 25


@pytest.mark.slow
def test_extend_a_finished_run(fw_env: tuple[Path, dict[str, str]]) -> None:
    """`submit RUN --time` after the workflow finished: the study grows, the missing segments are added."""
    import numpy as np
    from conftest import fake_vasp_frames

    from cellsim.io.xdatcar import read_trajectory

    run, env = fw_env
    assert cellsim(["submit", str(run)], env).returncode == 0
    r = cellsim(["submit", str(run), "--time", "70fs"], env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0.05 -> 0.07 ps" in r.stdout and "extended by 1 MD Firework" in r.stdout, r.stdout
    assert load_study(run / "study.yaml").md.total_time_ps == pytest.approx(0.07)
    assert store_states(run, env) == ["COMPLETED"] * 6
    assert sorted(p.name for p in (run / "md").glob("seg-*")) == ["seg-000", "seg-001", "seg-002", "seg-003"]
    assert frames(run, env) == 35
    _, frac, _ = read_trajectory(run / "all.xdatcar")
    np.testing.assert_allclose(frac, fake_vasp_frames(run / "md" / "seg-000" / "POSCAR", 35), atol=2e-7)
    r = cellsim(["submit", str(run)], env)  # nothing left
    assert r.returncode == 0 and "complete" in r.stdout
    r = cellsim(["submit", str(run), "--time", "20fs"], env)
    assert r.returncode == 2 and "already holds 0.07 ps" in r.stderr


@pytest.mark.slow
def test_embedded_engine_through_fireworks(tmp_path: Path) -> None:
    """The same workflow with one word changed: --engine chgnet runs the MD on the embedded engine."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engines"))  # tests/engines/test_engine.py
    from test_engine import tiny_run

    run = tiny_run(tmp_path)
    (run / "study.yaml").write_text(
        (run / "study.yaml").read_text() + "analysis: {pairs: [In-S], bond_cutoffs: {In-S: 3.0}, window_ps: 0.01}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_VASP", "MONGOMOCK"))}
    env.update(CELLSIM_CACHE=str(tmp_path / "cache"), COLUMNS="150")
    r = cellsim(["submit", str(run), "--engine", "chgnet"], env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 COMPLETED" in r.stdout  # MD (embedded) + analysis
    assert (run / "md" / "seg-000" / "engine.json").is_file() and (run / "report" / "report.html").is_file()
