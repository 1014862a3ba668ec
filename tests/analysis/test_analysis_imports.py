"""`cellsim analyze` imports only what it needs: no pandas, matplotlib or scipy, and no pymatgen or ASE for an
XDATCAR (the elements come from cellsim.core.elements). Each of them costs the analysis ~0.5-1 s of start-up;
PyYAML, 15-20 ms, is not needed either for a bare XDATCAR (the reference library's facts are JSON)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pandas", "matplotlib", "scipy", "pymatgen", "ase", "torch", "yaml")

# the CLI as a user runs it, then the heavy top-level modules it left in sys.modules
WRAPPER = """
import json, sys
from cellsim.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    if exc.code:
        raise
print("IMPORTED", json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))))
"""


@pytest.fixture(scope="module")
def small_xdatcar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cellsim.testing import jitter_frames, slab_model, xdatcar_text

    sy, co, lat, base = slab_model()
    path = tmp_path_factory.mktemp("imports") / "XDATCAR"
    path.write_text(xdatcar_text(sy, co, lat, jitter_frames(base, lat, 40, seed=1)))
    return path


def _imported(args: list[str], cwd: Path) -> list[str]:
    code = f"HEAVY = {HEAVY!r}\n" + WRAPPER
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=300)
    assert r.returncode == 0, r.stderr + r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("IMPORTED "))
    return list(json.loads(line.split(" ", 1)[1]))


@pytest.mark.parametrize(
    "options",
    [["--pairs", "In-S,In-Cl,P-S"], [], ["--window", "20fs"]],
    ids=["given pairs", "pairs from the system", "given window"],
)
def test_analyze_imports_no_heavy_module(small_xdatcar: Path, tmp_path: Path, options: list[str]) -> None:
    args = ["analyze", str(small_xdatcar), "--dt", "2", "-o", str(tmp_path / "out"), *options]
    assert _imported(args, tmp_path) == []
    assert (tmp_path / "out" / "rdf.csv").is_file()


def test_the_probe_sees_an_import(small_xdatcar: Path, tmp_path: Path) -> None:
    """The control: the same probe reports a heavy module that the command does import (the report draws with
    matplotlib)."""
    _imported(["analyze", str(small_xdatcar), "--dt", "2", "-o", str(tmp_path / "out")], tmp_path)
    assert "matplotlib" in _imported(["report", str(tmp_path / "out")], tmp_path)
