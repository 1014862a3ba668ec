"""The distilled student (cellsim.engines.student): card, cache key, training, and MD checked by its teacher."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("mace", reason="the student needs mace-torch (installed by `make install`)")
# one tiny teacher-labelled data set and training (~20 s with the imports) shared by every test here
pytestmark = pytest.mark.slow

from test_engine import STUDY, tiny_run  # noqa: E402

from cellsim.config.study import parse_study  # noqa: E402
from cellsim.engines.student import (  # noqa: E402
    DataSettings,
    StudentError,
    StudentSettings,
    data_key,
    load_student,
    make_frames,
    student_calculator,
    student_key,
    teacher_sha256,
    train_student,
)

TEACHER = Path(__file__).resolve().parents[2] / "workflows" / "fits" / "chgnet-in-pbe" / "model.pth.tar"
# a few frames of the 16-atom In/S cell: two short teacher trajectories (train, held out), one rattled copy
TINY_DATA = DataSettings(
    temperatures=(300.0,),
    reduced_extra_temperatures=(),
    full_steps=8,
    full_every=2,
    skip_steps=0,
    rattles=(0.05,),
    strains=(0.01,),
    dft_sets=False,
)
TINY = StudentSettings(channels=8, radial_mlp=(16,), epochs=12, learning_rate=1e-2, batch_size=2, seed=3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from ase.io import read

    tmp = tmp_path_factory.mktemp("student")
    run = tiny_run(tmp)
    atoms = read(run / "interface" / "POSCAR", format="vasp")
    from cellsim.engines.mlip import make_calculator

    teacher, _ = make_calculator("chgnet", str(TEACHER), forces_only=True)
    frames, key = make_frames(TEACHER, teacher, atoms, None, TINY_DATA, tmp / "root")
    result = train_student(TEACHER, frames, key, TINY, tmp / "root", data=TINY_DATA)
    return {"tmp": tmp, "atoms": atoms, "frames": frames, "key": key, "result": result}


def test_frames_split_by_trajectory(trained: dict[str, Any]) -> None:
    frames = trained["frames"]
    held = [a for a in frames if a.info["split"] == "heldout"]
    train = [a for a in frames if a.info["split"] == "train"]
    assert held and train
    # held-out frames are a trajectory of their own seed, never frames of a training trajectory
    assert {a.info["seed"] for a in held} == set(TINY_DATA.heldout_seeds)
    assert all(a.info.get("seed") in (None, *TINY_DATA.train_seeds) for a in train)
    assert all(a.arrays["teacher_forces"].shape == (16, 3) for a in frames)


def test_card_round_trip_and_cache(trained: dict[str, Any]) -> None:
    res = trained["result"]
    card = json.loads((res.folder / "card.json").read_text())
    assert card == res.card
    assert card["teacher"]["sha256"] == teacher_sha256(TEACHER)
    assert card["data"]["key"] == trained["key"]
    assert res.folder.name == f"student-{card['key']}"
    assert (res.folder / "card.md").read_text().startswith(f"# Student {card['key']}")
    # the card rebuilds the network: the same forces as the trained one
    _, loaded = load_student(res.folder)
    assert loaded == card
    calc, info = student_calculator(res.folder, teacher=TEACHER)
    a = trained["atoms"].copy()
    a.calc = calc
    f1 = a.get_forces()
    calc2, _ = student_calculator(res.folder)
    b = trained["atoms"].copy()
    b.calc = calc2
    np.testing.assert_allclose(f1, b.get_forces(), atol=1e-6)
    assert info["student_key"] == card["key"]
    # a second call with the same teacher, data and settings reuses the folder
    again = train_student(TEACHER, trained["frames"], trained["key"], TINY, trained["tmp"] / "root", data=TINY_DATA)
    assert again.cached and again.folder == res.folder


def test_key_follows_teacher_data_and_settings(trained: dict[str, Any], tmp_path: Path) -> None:
    sha = teacher_sha256(TEACHER)
    other = tmp_path / "teacher.pth.tar"
    shutil.copy(TEACHER, other)
    with open(other, "ab") as fh:  # a new fit of the teacher: another file
        fh.write(b"\0")
    sha2 = teacher_sha256(other)
    assert sha2 != sha
    assert student_key(sha2, trained["key"], TINY) != student_key(sha, trained["key"], TINY)
    assert student_key(sha, "otherdata", TINY) != student_key(sha, trained["key"], TINY)
    assert student_key(sha, trained["key"], StudentSettings()) != student_key(sha, trained["key"], TINY)
    starts = [trained["atoms"]]
    assert data_key(sha2, starts, TINY_DATA) != data_key(sha, starts, TINY_DATA)
    # a run whose teacher is another file refuses the student
    with pytest.raises(StudentError, match="distilled from a teacher"):
        student_calculator(trained["result"].folder, teacher=other)


def test_training_lowers_the_error(trained: dict[str, Any]) -> None:
    card = trained["result"].card
    before, after = card["errors_before"]["train"], card["errors_after"]["train"]
    assert after["force_mae_eV_A"] < before["force_mae_eV_A"]
    assert card["training"]["loss_last"] < card["training"]["loss_first"]
    assert "heldout" in card["errors_after"]


@pytest.mark.slow
def test_student_runs_md_checked_by_its_teacher(trained: dict[str, Any], tmp_path: Path) -> None:
    from cellsim.engines.mlip import run_mlip

    run = tiny_run(tmp_path)
    folder = trained["result"].folder
    text = STUDY.replace(
        "engine: {name: chgnet, checkpoint_every: 2, seed: 7}",
        f"engine: {{name: chgnet, checkpoint_every: 2, seed: 7, model_path: {TEACHER}, student: {folder}, "
        "monitor_every: 2}",
    )
    study = parse_study(text)
    summary = run_mlip(run, study, total_steps=4)
    assert summary.engine == "chgnet+student"
    seg = run / "md" / "seg-000"
    info = json.loads((seg / "engine.json").read_text())
    assert info["engine"] == "chgnet+student" and info["student_key"] == trained["result"].card["key"]
    assert info["deviation"]["kind"] == "teacher"
    assert info["deviation"]["members"] == [str(TEACHER)]
    lines = (seg / "deviation.csv").read_text().splitlines()
    assert lines[0].startswith("step,") and len(lines) == 3  # steps 2 and 4
    assert all(float(x.split(",")[2]) >= 0 for x in lines[1:])
    # the run's own structures, for the teacher to label in the next round (cellsim.engines.distill)
    from cellsim.engines.distill import student_run_frames

    got = student_run_frames(run, 2)
    assert len(got) == 3 and all(a.info["group"] == "student-run" and len(a) == 16 for a in got)


def test_a_groups_energy_term_is_weighted_by_its_factor(trained: dict[str, Any]) -> None:
    """group_energy_weights reaches MACE's per-graph weight, which the energy term of the loss multiplies."""
    from cellsim.engines.student import _graphs

    frames = trained["frames"][:3]
    frames[0].info["group"] = "bulk-metal"
    species = sorted({int(z) for a in frames for z in a.numbers})
    graphs = _graphs(frames, species, 5.0, {"bulk-metal": 25.0})
    assert [float(g.weight) for g in graphs] == [25.0, 1.0, 1.0]
    assert [float(g.weight) for g in _graphs(frames, species, 5.0)] == [1.0, 1.0, 1.0]
    assert StudentSettings().group_energy_weights == ()
