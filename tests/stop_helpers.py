"""Kill a cellsim process at a named moment, not after a guessed delay.

The child is cellsim's CLI with ``os.replace`` wrapped: it stops itself (SIGSTOP) just before or just after the
``nth`` rename whose target's file name matches a glob. cellsim's atomic writes and folder swaps all commit
through ``os.replace`` (:mod:`cellsim.core.files`), so every commit point can be named this way. The test then
looks at the files as the kill will find them and sends SIGKILL: each kill is known to land where it is meant
to, on any machine and under any load.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

_CHILD = """
import fnmatch, os, runpy, signal, sys
when, pattern = os.environ["CELLSIM_TEST_STOP"].split(":", 1)
nth = int(os.environ.get("CELLSIM_TEST_STOP_NTH", "1"))
seen = 0
real = os.replace
def replace(src, dst, *args, **kwargs):
    global seen
    hit = fnmatch.fnmatch(os.path.basename(os.fspath(dst)), pattern)
    seen += hit
    if hit and seen == nth and when == "before":
        os.kill(os.getpid(), signal.SIGSTOP)
    out = real(src, dst, *args, **kwargs)
    if hit and seen == nth and when == "after":
        os.kill(os.getpid(), signal.SIGSTOP)
    return out
os.replace = replace
sys.argv = ["cellsim", *sys.argv[1:]]
runpy.run_module("cellsim.cli", run_name="__main__")
"""

HANG_S = 600  # a guard against a child that never gets there (a hang), not a timing check


def stopped_at(stop: str, *args: str, env: Mapping[str, str], log: Path, nth: int = 1) -> subprocess.Popen[bytes]:
    """Start ``cellsim ARGS`` and return once it has stopped itself at ``stop`` ("before:GLOB" or "after:GLOB",
    the ``nth`` matching rename); fails the test if it ended without getting there."""
    with log.open("wb") as err:
        p = subprocess.Popen(
            [sys.executable, "-c", _CHILD, *args],
            env={**env, "CELLSIM_TEST_STOP": stop, "CELLSIM_TEST_STOP_NTH": str(nth)},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + HANG_S
    while True:  # until the child stops (or ends)
        pid, status = os.waitpid(p.pid, os.WUNTRACED | os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
            p.wait()
            pytest.fail(f"cellsim {' '.join(args)} hung before {stop}")
        time.sleep(0.05)
    if not os.WIFSTOPPED(status):
        p.returncode = os.waitstatus_to_exitcode(status)
        what = f"cellsim {' '.join(args)} ended (status {p.returncode})"
        pytest.fail(f"{what} without reaching {stop}: {log.read_text()}")
    return p


def kill(p: subprocess.Popen[bytes]) -> None:
    """SIGKILL a stopped child (it ends a stopped process too) and reap it."""
    p.send_signal(signal.SIGKILL)
    assert p.wait(timeout=HANG_S) == -signal.SIGKILL
