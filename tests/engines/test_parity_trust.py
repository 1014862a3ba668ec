"""The report's 'forces vs PBE' row: with no parity check of the run's interface, a fitted model's own held-out
PBE errors (its card) are said, not "no DFT check" alone."""

from __future__ import annotations

from pathlib import Path

from cellsim.config.study import load_study
from cellsim.core.resources import bundled_workflows
from cellsim.engines.check.run import parity_trust


def _run_dir(tmp_path: Path, study_name: str) -> Path:
    study = load_study(bundled_workflows()[study_name])  # model_path resolved to the bundled fit's file
    run = tmp_path / study_name
    run.mkdir()
    (run / "study.yaml").write_text(study.to_yaml())
    return run


def test_a_fitted_model_s_card_is_said_when_the_run_has_no_parity_check(tmp_path: Path) -> None:
    lines = parity_trust(_run_dir(tmp_path, "li6ps5cl_in_fitted"))
    assert lines[0].startswith("No DFT check of the forces on this interface: run `cellsim engines check")
    assert lines[1].startswith("The model's own check (held-out PBE labels, not this interface): fine-tuned from ")
    assert "held-out force MAE 0.260 -> 0.140 eV/A" in lines[1]


def test_the_bundled_weights_have_no_card_to_quote(tmp_path: Path) -> None:
    lines = parity_trust(_run_dir(tmp_path, "li6ps5cl_in"))
    assert len(lines) == 1
    assert lines[0].startswith("No DFT check of the forces on this interface")
