"""The committee's force deviation: its formula, its record beside the trajectory, and the check that judges it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cellsim.analysis.checks import DEVIATION_FRACTION, DEVIATION_WARN, Diagnostics, deviation_check
from cellsim.core.errors import CellsimError
from cellsim.engines.committee import force_deviation, members_of
from cellsim.io.deviation import DEVIATION_HEADER, read_deviation


def test_two_models_deviate_by_half_their_difference() -> None:
    f = np.zeros((3, 3))
    g = f.copy()
    g[1] = [0.3, 0.4, 0.0]  # |difference| 0.5 on atom 1
    np.testing.assert_allclose(force_deviation([f, g]), [0.0, 0.25, 0.0])


def test_identical_models_do_not_deviate() -> None:
    f = np.random.default_rng(0).normal(size=(5, 3))
    assert float(force_deviation([f, f, f]).max()) < 1e-12


def test_deviation_is_the_rms_over_members() -> None:
    # three models: x-forces -1, 0, +1 on one atom -> RMS of the deviations from the mean 0 = sqrt(2/3)
    fs = [np.array([[x, 0.0, 0.0]]) for x in (-1.0, 0.0, 1.0)]
    assert force_deviation(fs)[0] == pytest.approx(np.sqrt(2 / 3))


def _frames(fraction_above: float, n: int = 100) -> tuple[np.ndarray, np.ndarray, list[str]]:
    k = round(fraction_above * n)
    dev = np.full(n, 0.5 * DEVIATION_WARN)
    dev[n - k :] = DEVIATION_WARN + 0.01
    return np.arange(n) * 0.04, dev, ["S"] * n


def test_check_stays_ok_at_the_fraction_limit() -> None:
    assert deviation_check(*_frames(DEVIATION_FRACTION)).status == "ok"


def test_check_fires_just_above_the_fraction_limit() -> None:
    assert deviation_check(*_frames(DEVIATION_FRACTION + 0.01)).status == "warn"


def test_a_frame_at_the_limit_is_not_above_it() -> None:
    t = np.arange(10) * 0.04
    assert deviation_check(t, np.full(10, DEVIATION_WARN), ["In"] * 10).value == 0.0


def test_fired_check_says_where_and_when() -> None:
    t, dev, _ = _frames(0.5)
    msg = deviation_check(t, dev, ["In"] * 50 + ["S"] * 50, members=4).message
    assert "first at 2 ps, mostly on S (50 of 50)" in msg
    assert "committee of 4 models" in msg
    assert "outside its data" in msg


def test_a_student_is_sent_back_to_its_teacher() -> None:
    t, dev, _ = _frames(0.5)
    msg = deviation_check(t, dev, ["S"] * 100, kind="teacher").message
    assert "the teacher disputes forces" in msg
    assert "distil the student again" in msg


def test_record_reads_to_the_last_whole_line(tmp_path: Path) -> None:
    a = tmp_path / "seg-000"
    b = tmp_path / "seg-001"
    a.mkdir()
    b.mkdir()
    (a / "deviation.csv").write_text(DEVIATION_HEADER + "20,0.04,0.1,0.02,3,In,5.0\n40,0.08,0.2,0.03,4,S,9.0\n")
    (b / "deviation.csv").write_text(DEVIATION_HEADER + "20,0.12,0.3,0.04,5,Cl,9.5\n40,0.1")  # killed mid-line
    s = read_deviation([a / "deviation.csv", b / "deviation.csv"])
    assert s is not None
    np.testing.assert_allclose(s.time_ps, [0.04, 0.08, 0.12])
    assert s.element == ["In", "S", "Cl"]


def test_no_record_is_none(tmp_path: Path) -> None:
    assert read_deviation([tmp_path / "seg-000" / "deviation.csv"]) is None


def test_series_round_trip_through_json(tmp_path: Path) -> None:
    d = Diagnostics(deviation_times_ps=np.array([0.04, 0.08]), deviation_max_eV_A=np.array([0.1, 0.2]))
    back = Diagnostics.from_json(d.to_json(tmp_path / "d.json"))
    np.testing.assert_allclose(back.deviation_max_eV_A, [0.1, 0.2])


def test_committee_file_naming_a_missing_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.pth.tar").write_bytes(b"x")
    (tmp_path / "committee.json").write_text(json.dumps({"members": [{"model": "committee/m1/model.pth.tar"}]}))
    with pytest.raises(CellsimError, match=r"member model file\(s\) missing: .*m1/model.pth.tar"):
        members_of(tmp_path / "model.pth.tar")


def test_damaged_committee_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "committee.json").write_text("{not json")
    with pytest.raises(CellsimError, match="not a committee file"):
        members_of(tmp_path / "model.pth.tar")


def test_a_model_without_committee_has_no_members(tmp_path: Path) -> None:
    assert members_of(tmp_path / "model.pth.tar") == []


# --------------------------------------------------------------------------- the record in real MD


def _two_model_committee(tmp_path: Path) -> Path:
    """A "fit" (CHGNet 0.3.0's weights) with one committee member (its r2SCAN transfer): two real models that differ."""
    import chgnet

    root = Path(chgnet.__file__).parent / "pretrained"
    fit = tmp_path / "fit"
    (fit / "committee" / "m1").mkdir(parents=True)
    shutil.copy(next((root / "0.3.0").glob("*.pth.tar")), fit / "model.pth.tar")
    shutil.copy(next((root / "r2scan").glob("*.pth.tar")), fit / "committee" / "m1" / "model.pth.tar")
    (fit / "committee.json").write_text(json.dumps({"members": [{"model": "committee/m1/model.pth.tar"}]}))
    return fit / "model.pth.tar"


@pytest.mark.slow
def test_md_writes_the_deviation_and_resumes_it_exactly(tmp_path: Path) -> None:
    from test_engine import STUDY, tiny_run

    from cellsim.config.study import parse_study
    from cellsim.engines.mlip import run_mlip

    model = _two_model_committee(tmp_path)
    text = STUDY.replace("seed: 7}", f"seed: 7, model_path: {model}, monitor_every: 2}}")
    study = parse_study(text)
    ref = tiny_run(tmp_path, "ref")
    run_mlip(ref, study, total_steps=10)  # segments of 6 + 4 steps
    killed = tiny_run(tmp_path, "killed")
    with pytest.raises(KeyboardInterrupt, match="stopped after 5 steps"):
        run_mlip(killed, study, total_steps=10, stop_after=5)  # killed after step 5, checkpoint at 4
    run_mlip(killed, study, total_steps=10)
    for seg in ("seg-000", "seg-001"):
        a = (ref / "md" / seg / "deviation.csv").read_text()
        b = (killed / "md" / seg / "deviation.csv").read_text()
        assert a == b
    s = read_deviation([ref / "md" / s / "deviation.csv" for s in ("seg-000", "seg-001")])
    assert s is not None
    np.testing.assert_allclose(s.time_ps, [0.004, 0.008, 0.012, 0.016, 0.02])
    assert float(s.max_eV_A.min()) > 0.0  # two different networks never agree to the last digit
    info = json.loads((ref / "md" / "seg-000" / "engine.json").read_text())
    assert info["deviation"]["kind"] == "committee"
    assert len(info["deviation"]["members"]) == 2


@pytest.mark.slow
def test_committee_off_writes_no_record(tmp_path: Path) -> None:
    from test_engine import STUDY, tiny_run

    from cellsim.config.study import parse_study
    from cellsim.engines.mlip import run_mlip

    model = _two_model_committee(tmp_path)
    study = parse_study(STUDY.replace("seed: 7}", f"seed: 7, model_path: {model}, committee: 'off'}}"))
    run = tiny_run(tmp_path)
    run_mlip(run, study, total_steps=2)
    assert not (run / "md" / "seg-000" / "deviation.csv").exists()


@pytest.mark.slow
def test_analysis_and_report_carry_the_deviation(tmp_path: Path) -> None:
    """The record becomes the "engine deviation" check, its series, and a row of the report's diagnostics."""
    from test_engine import STUDY, tiny_run

    from cellsim import stages
    from cellsim.config.study import parse_study
    from cellsim.engines.mlip import run_mlip

    model = _two_model_committee(tmp_path)
    text = STUDY.replace("seed: 7}", f"seed: 7, model_path: {model}, monitor_every: 1}}")
    run = tiny_run(tmp_path)
    (run / "study.yaml").write_text(text)
    run_mlip(run, parse_study(text), total_steps=8)
    res = stages.analyze(run)
    assert res.diagnostics is not None
    check = res.diagnostics.check("engine deviation")
    assert check is not None
    assert "committee of 2 models" in check.message
    assert len(res.diagnostics.deviation_max_eV_A) == 8
    stages.match(run)
    stages.report(run)
    assert "engine deviation: the committee of 2 models" in (run / "report" / "report.md").read_text()


def _bundled_fit() -> Path:
    from cellsim.core.resources import shipped_dir

    return shipped_dir("workflows") / "fits" / "chgnet-in-pbe" / "model.pth.tar"


def _in_run(tmp_path: Path, name: str, scale: float) -> Path:
    """Bulk In (18 atoms, bct at the experimental lattice x ``scale``): the fit's own ground (30 In labels)."""
    from ase.build import bulk
    from ase.io import write

    atoms = bulk("In", "bct", a=3.25, c=4.95) * (3, 3, 2)
    atoms.set_cell(atoms.cell * scale, scale_atoms=True)
    run = tmp_path / name
    (run / "interface").mkdir(parents=True)
    write(run / "interface" / "POSCAR", atoms, format="vasp", direct=True)
    return run


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scale", "temperature", "steps", "fires"), [(1.0, 300, 40, False), (0.85, 300, 40, True), (1.0, 3000, 150, True)]
)
def test_the_bundled_committee_fires_off_its_data_and_not_on_it(
    tmp_path: Path, scale: float, temperature: int, steps: int, fires: bool
) -> None:
    """Bulk In at 300 K is what the fit learned (the committee agrees within ~0.03 eV/A); compressed by 15 % or at
    3000 K it is not (0.5 eV/A and more once the atoms have left their sites): the check must say so, and only
    there."""
    from cellsim.config.study import parse_study
    from cellsim.engines.mlip import run_mlip

    study = parse_study(
        f"""
name: in-bulk
md: {{temperature: {temperature}, timestep_fs: 2.0, segment_time_ps: 1.0, total_time_ps: 1.0, relax_steps: 0}}
engine: {{name: chgnet, seed: 3, model_path: {_bundled_fit()}, monitor_every: 4}}
"""
    )
    run = _in_run(tmp_path, "run", scale)
    run_mlip(run, study, total_steps=steps)
    s = read_deviation([run / "md" / "seg-000" / "deviation.csv"])
    assert s is not None
    check = deviation_check(s.time_ps, s.max_eV_A, s.element, "committee", 4)
    assert (check.status == "warn") is fires


def test_an_engine_that_fails_outright_is_dated() -> None:
    # 0.4-1.3 eV/A for most of the run, then a hole: forces off by tens of eV/A from 6.5 ps on
    t = np.arange(10) * 1.0 + 0.5
    dev = np.array([0.4, 0.7, 1.2, 0.9, 1.1, 1.3, 159.0, 118.0, 37.0, 77.0])
    msg = deviation_check(t, dev, ["S"] * 10, kind="teacher").message
    assert "from 6.5 ps the engine fails outright" in msg
    assert "40 % of checked frames, up to 1.3 eV/A before" in msg
    assert "the trajectory after 6.5 ps is not physical" in msg
    # at the bound itself it is not said
    calm = deviation_check(t, np.full(10, 5.0), ["S"] * 10, kind="teacher").message
    assert "fails outright" not in calm
