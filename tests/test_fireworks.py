"""The FireWorks workflow on the embedded store, with the fake VASP under custodian.

Each test drives `cellsim` in a subprocess: FireWorks chooses its database client at import time, and the
embedded (mongomock) store is per process by design.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cellsim.study import load_study

FAKE = Path(__file__).parent / "fake_vasp"


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
        CELLSIM_FW_STORE=str(tmp_path / "store" / "launchpad.json"),
        CELLSIM_CUSTODIAN_POLLING_S="0.1",
        CELLSIM_CACHE=str(tmp_path / "cache"),
        COLUMNS="150",
    )
    return run, env


def cellsim(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cellsim.cli", *args], env=env, capture_output=True, text=True)


def frames(run: Path, env: dict[str, str]) -> int:
    r = cellsim(["stitch", str(run), "-o", str(run / "all.xdatcar")], env)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split(":")[-1].split()[0])


def test_workflow_runs_segments_corrects_errors_and_analyses(fw_env: tuple[Path, dict[str, str]]) -> None:
    run, env = fw_env
    r = cellsim(["submit", str(run)], {**env, "FAKE_VASP_PLANT": "real_optlay,edddav"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("COMPLETED") == 4  # 3 MD segments + analysis
    assert (run / "report" / "report.html").is_file() and (run / "analysis" / "rdf.csv").is_file()
    assert frames(run, env) == 25
    assert '"real_optlay"' in (run / "md" / "seg-000" / "custodian.json").read_text()
    # the store was written at exit and reads back in another process
    check = (
        "from cellsim.fw_launchpad import open_launchpad; lp = open_launchpad(); "
        "print(sorted(fw['state'] for fw in lp.fireworks.find()))"
    )
    out = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED']", out.stderr


def test_killed_segment_is_rerun_and_continues(fw_env: tuple[Path, dict[str, str]]) -> None:
    run, env = fw_env
    r = cellsim(["submit", str(run)], {**env, "FAKE_VASP_DIE_AFTER": "4"})  # VASP killed after 4 steps
    assert "FIZZLED" in r.stdout, r.stdout + r.stderr
    r = cellsim(["submit", str(run)], env)  # same command again: the dead segment is rerun
    assert r.returncode == 0 and r.stdout.count("COMPLETED") >= 4, r.stdout + r.stderr
    assert frames(run, env) == 25
    st = cellsim(["status", str(run)], env)
    assert "25 of 25 planned MD steps" in st.stdout


def test_embedded_store_refuses_a_second_process(fw_env: tuple[Path, dict[str, str]]) -> None:
    run, env = fw_env
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from cellsim.fw_launchpad import open_launchpad; import time; open_launchpad(); "
            "print('ready', flush=True); time.sleep(60)",
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
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_embedded_engine_through_fireworks(tmp_path: Path) -> None:
    """The same workflow with one word changed: --engine chgnet runs the MD on the embedded engine."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_engine import tiny_run

    run = tiny_run(tmp_path)
    (run / "study.yaml").write_text(
        (run / "study.yaml").read_text() + "analysis: {pairs: [In-S], bond_cutoffs: {In-S: 3.0}, window_ps: 0.01}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_VASP", "MONGOMOCK"))}
    env.update(CELLSIM_FW_STORE=str(tmp_path / "store.json"), CELLSIM_CACHE=str(tmp_path / "cache"), COLUMNS="150")
    r = cellsim(["submit", str(run), "--engine", "chgnet"], env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("COMPLETED") == 2  # MD (embedded) + analysis
    assert (run / "md" / "seg-000" / "engine.json").is_file() and (run / "report" / "report.html").is_file()
