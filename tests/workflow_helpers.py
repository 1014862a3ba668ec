"""Helpers of the workflow tests (FireWorks, the batch queue, SLURM): the CLI in a fresh process and a run's
Firework states read back from its store by another process, as a job or a user would see them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def cellsim(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m cellsim.cli ARGS`` with ``env``, output captured."""
    return subprocess.run([sys.executable, "-m", "cellsim.cli", *args], env=env, capture_output=True, text=True)


def store_states(run: Path, env: dict[str, str]) -> list[str]:
    """The run's Firework states, sorted, read back from its store in another process."""
    check = (
        "import sys; from cellsim.workflow.store import WorkflowStore; from cellsim.config.rundir import RunDir; "
        "s = WorkflowStore(RunDir(sys.argv[1])); print(' '.join(sorted(fw['state'] for fw in s.fireworks())))"
    )
    out = subprocess.run([sys.executable, "-c", check, str(run)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()
