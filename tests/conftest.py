from __future__ import annotations

import os
from pathlib import Path

import pytest

# keep torch (later stages) from spinning on a shared 2-core machine
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The paper's interface, built once for the whole session through the CLI's build function."""
    from cellsim.cli import run_build

    run_dir = tmp_path_factory.mktemp("paper") / "run"
    run_build(str(REPO / "workflows" / "li6ps5cl_in.yaml"), run_dir)
    return run_dir
