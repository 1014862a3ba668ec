from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
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


def fake_vasp_frames(poscar: Path, n: int) -> np.ndarray:
    """The fake VASP's deterministic trajectory (tests/fake_vasp/fake_vasp.py) from a starting POSCAR."""
    from pymatgen.io.vasp import Poscar

    x = Poscar.from_file(poscar).structure.frac_coords.copy()
    out = []
    for k in range(n):
        x = (x + (0.0005 * np.sin(0.1 * k + np.arange(len(x))))[:, None]) % 1.0
        out.append(x.copy())
    return np.array(out)


@pytest.fixture(scope="session")
def expected_frames() -> Callable[[Path, int], np.ndarray]:
    return fake_vasp_frames
