"""Helpers of the workflow tests (FireWorks, the batch queue, SLURM): the CLI in a fresh process, a run's
Firework states read back from its store by another process, as a job or a user would see them, waits for a
state with a hang guard, and the local SLURM cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest


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


HANG_S = 600.0  # how long a wait for a state may last before the test calls it a hang (a guard, not a timing)


def wait_until(ready: Callable[[], bool], what: str, hang_s: float = HANG_S, poll_s: float = 0.2) -> None:
    """Poll ``ready()`` until it is true; fail the test naming ``what`` if it never is (a hang guard: the waits
    in these tests are for states, and ``hang_s`` only bounds a test that would otherwise never end)."""
    deadline = time.monotonic() + hang_s
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"hang: {what} not reached in {hang_s:.0f} s")
        time.sleep(poll_s)


def start_local_slurm() -> None:
    """The local single-node SLURM cluster (scripts/slurm-local.sh), started if needed.

    One rule for every SLURM test: without root the script cannot run, and the tests skip with that reason;
    as root (``make test``, CI) a start that fails is a broken test machine, and the test fails with the
    script's output rather than skipping (a skip would hide that the queue tests stopped running).
    """
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster (scripts/slurm-local.sh) needs root")
    script = Path(__file__).resolve().parents[1] / "scripts" / "slurm-local.sh"
    r = subprocess.run([str(script), "start"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"could not start the local SLURM cluster: {r.stdout[-1000:]}{r.stderr[-1000:]}")
