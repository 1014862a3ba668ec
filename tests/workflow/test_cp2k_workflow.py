"""The CP2K segment chain through FireWorks and custodian: real CP2K (H2 in a box, seconds per segment).

Without SLURM: ``cellsim inputs --code cp2k`` then ``cellsim submit --engine cp2k`` runs every segment
Firework (custodian + cp2k.psmp) and the analysis. With the local SLURM cluster (root, scripts/slurm-local.sh,
as tests/workflow/test_slurm.py): the same chain as a batch job under ``--queue slurm``. Skips without CP2K.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("cp2k.psmp") is None, reason="cp2k.psmp not installed"),
]

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cp2k_helpers import h2_run as make_h2_run  # noqa: E402

STUDY = """
name: h2chain
md: {temperature: 300, timestep_fs: 0.5, segment_time_ps: 0.0015, total_time_ps: 0.003}
engine:
  name: cp2k
  seed: 4
  cp2k:
    basis_set: SZV-MOLOPT-SR-GTH
    cutoff: 120
    rel_cutoff: 30
    ngrids: 3
    eps_default: 1.0e-10
    scf: {eps_scf: 1.0e-6, max_scf: 40, smearing: null, added_mos: 0.0}
analysis: {pairs: [H-H], bond_cutoffs: {H-H: 1.0}, window_ps: 0.001}
"""


def h2_run(tmp_path: Path) -> Path:
    return make_h2_run(tmp_path / "run", STUDY)


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_VASP", "MONGOMOCK", "PMG_VASP", "CELLSIM"))}
    env.update(CELLSIM_CACHE=str(tmp_path / "cache"), CELLSIM_CONFIG=str(tmp_path / "none.yaml"), COLUMNS="150")
    return env


def check_chain(run: Path) -> None:
    for seg in ("seg-000", "seg-001"):
        rec = json.loads((run / "md" / seg / "segment.json").read_text())
        assert rec["engine"] == "cp2k" and rec["frames"] == 3 and rec["status"] == "complete"
        assert "PROGRAM ENDED AT" in (run / "md" / seg / "cp2k.out").read_text()
    # the second segment restarted from the first (EXT_RESTART) and custodian ran each once
    assert "EXT_RESTART" in (run / "md" / "seg-001" / "cp2k.inp").read_text()
    assert (run / "report" / "report.html").is_file()


def test_cp2k_chain_through_fireworks_and_custodian(tmp_path: Path) -> None:
    from workflow_helpers import cellsim, store_states

    run = h2_run(tmp_path)
    env = env_for(tmp_path)
    r = cellsim(["inputs", str(run), "--code", "cp2k"], env)
    assert r.returncode == 0 and "cp2k.inp in 2 segment(s)" in r.stdout, r.stdout + r.stderr
    r = cellsim(["submit", str(run), "--engine", "cp2k"], env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert store_states(run, env) == ["COMPLETED"] * 3  # two segment Fireworks + the analysis
    check_chain(run)


@pytest.fixture(scope="module")
def slurm() -> None:
    from workflow_helpers import start_local_slurm

    start_local_slurm()  # the same skip / fail rule as tests/workflow/test_slurm.py


def test_cp2k_chain_under_slurm(tmp_path: Path, slurm: None) -> None:
    from workflow_helpers import cellsim, wait_until

    run = h2_run(tmp_path)
    env = env_for(tmp_path)
    assert cellsim(["inputs", str(run), "--code", "cp2k"], env).returncode == 0
    r = cellsim(["submit", str(run), "--engine", "cp2k", "--queue", "slurm"], env)
    assert r.returncode == 0 and "submitted job" in r.stdout, r.stdout + r.stderr
    jobs = run / "workflow" / "jobs.json"
    wait_until(
        lambda: jobs.is_file() and all(j.get("ended") for j in json.loads(jobs.read_text())["jobs"]),
        "every job of the CP2K chain under SLURM ended",
        poll_s=1.0,
    )
    check_chain(run)
