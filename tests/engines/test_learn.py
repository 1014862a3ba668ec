"""Active learning's selection rule at its edges, and its exploration on real models."""

from __future__ import annotations

from pathlib import Path

import pytest
from ase import Atoms

from cellsim.engines.learn import Candidate, curve_plot, select


def _c(step: int, dev: float, temperature: float = 300.0, seed: int = 0) -> Candidate:
    return Candidate(Atoms("H"), temperature, seed, step, dev, "S", 0.0)


def test_frames_at_or_below_lo_are_not_chosen() -> None:
    assert select([_c(10, 0.05), _c(100, 0.04)], 4, lo=0.05, hi=0.5, min_gap=50) == []


def test_a_frame_just_above_lo_is_chosen() -> None:
    assert [c.step for c in select([_c(10, 0.0501)], 4, lo=0.05, hi=0.5, min_gap=50)] == [10]


def test_a_frame_above_hi_is_not_chosen() -> None:
    assert select([_c(10, 0.5001)], 4, lo=0.05, hi=0.5, min_gap=50) == []


def test_a_frame_at_hi_is_chosen() -> None:
    assert [c.step for c in select([_c(10, 0.5)], 4, lo=0.05, hi=0.5, min_gap=50)] == [10]


def test_most_disputed_first() -> None:
    got = select([_c(100, 0.1), _c(200, 0.3), _c(300, 0.2)], 2, lo=0.05, hi=0.5, min_gap=50)
    assert [c.step for c in got] == [200, 300]


def test_frames_closer_than_the_gap_in_one_run_are_not_both_chosen() -> None:
    got = select([_c(100, 0.3), _c(149, 0.29), _c(150, 0.28)], 4, lo=0.05, hi=0.5, min_gap=50)
    assert [c.step for c in got] == [100, 150]


def test_the_gap_holds_within_a_run_only() -> None:
    got = select([_c(100, 0.3), _c(100, 0.29, temperature=450.0)], 4, lo=0.05, hi=0.5, min_gap=50)
    assert len(got) == 2


def test_at_most_n_frames() -> None:
    got = select([_c(100 * k, 0.1 + 0.01 * k) for k in range(10)], 3, lo=0.05, hi=0.5, min_gap=50)
    assert len(got) == 3


def test_curve_plot_draws_every_round(tmp_path: Path) -> None:
    state = {
        "settings": {"target": 0.1},
        "iterations": [
            {"labels_total": 36, "held_out": {"force_mae_eV_A": 0.17, "force_mae_by_element": {"In": 0.21}}},
            {"labels_total": 40, "held_out": {"force_mae_eV_A": 0.14, "force_mae_by_element": {"In": 0.18}}},
        ],
    }
    fig = curve_plot(state)
    line = fig.axes[0].lines[0]
    assert list(line.get_xdata()) == [36, 40]


@pytest.mark.slow
def test_exploration_records_the_committee_on_real_models(tmp_path: Path) -> None:
    from test_committee import _two_model_committee
    from test_engine import tiny_run

    from cellsim.engines.committee import DeviationMonitor, members_of
    from cellsim.engines.learn import explore
    from cellsim.engines.mlip import make_calculator

    model = _two_model_committee(tmp_path)
    calc = make_calculator("chgnet", str(model), forces_only=True)[0]
    others = [make_calculator("chgnet", str(p), forces_only=True)[0] for p in members_of(model)]
    from ase.io import read

    atoms = read(tiny_run(tmp_path) / "interface" / "POSCAR", format="vasp")
    cands = explore(atoms, calc, DeviationMonitor(others, 5), 300.0, 20, 5, seed=0)
    assert [c.step for c in cands] == [5, 10, 15, 20]
    assert min(c.max_dev for c in cands) > 0.0


def test_distill_without_a_teacher_is_refused_naming_the_field(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cellsim.cli import app

    run = tmp_path / "run"
    run.mkdir()
    (run / "study.yaml").write_text("name: t\n")
    r = CliRunner().invoke(app, ["engines", "distill", str(run)])
    assert r.exit_code != 0
    assert "engine.model_path names no teacher model file" in r.output


def test_a_new_round_keeps_the_rounds_and_controls_judged_before(tmp_path: Path) -> None:
    from cellsim.engines.learn import LearnState, resume_state

    f = tmp_path / "learn.json"
    control = {"label": "without-al-labels", "model": "c/model.pth.tar", "held_out": {"force_mae_eV_A": 0.138}}
    LearnState({"frames": 4}, [{"iteration": 0}, {"iteration": 1}], [control]).save(f)
    state = resume_state(f, {"frames": 8})
    assert (state.settings, state.iterations, state.controls) == (
        {"frames": 8},
        [{"iteration": 0}, {"iteration": 1}],
        [control],
    )
