"""The build stage and `refs show` let no third-party warning through (issue 35: `make demo` prints none).

pymatgen's SlabGenerator and SpacegroupAnalyzer run spglib, whose symmetry search warns (DeprecationWarning)
about the error handling pymatgen switches on; the slab cut and `refs show` silence that one warning around the
call. Python hides DeprecationWarnings on the console by default, so both run here with every warning recorded.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from typer.testing import CliRunner

import cellsim
from cellsim.cli import app
from cellsim.stages import build

CELLSIM_DIR = str(Path(cellsim.__file__).resolve().parent)


def _third_party(caught: list[warnings.WarningMessage]) -> list[str]:
    """The warnings raised from outside cellsim (its own messages may stay), one line each."""
    return [
        f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
        for w in caught
        if not str(Path(w.filename).resolve()).startswith(CELLSIM_DIR)
    ]


def test_building_the_paper_interface_lets_no_third_party_warning_through(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = build("li6ps5cl_in", tmp_path / "run")
    assert not outcome.reused and outcome.report["n_atoms"] > 0
    assert _third_party(caught) == []


def test_refs_show_lets_no_third_party_warning_through() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = CliRunner().invoke(app, ["refs", "show", "In2S3"])
    assert r.exit_code == 0 and "I4_1/amd" in r.output, r.output
    assert _third_party(caught) == []
