"""VASP inputs: every tag the paper's AIMD needs, read back by pymatgen; contradictory overrides refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pymatgen.io.vasp import Incar, Kpoints, Poscar

from cellsim.config.study import load_study, parse_study
from cellsim.inputsets.vasp import InputsError, incar_settings, plan_segments
from cellsim.stages import inputs as run_inputs


@pytest.fixture
def run(paper_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    target = tmp_path / "run"
    shutil.copytree(paper_run, target)
    return target


def test_paper_inputs_read_back(run: Path) -> None:
    rep = run_inputs(run)
    seg = run / "md" / "seg-000"
    incar = Incar.from_file(seg / "INCAR")
    expected = {
        "IBRION": 0,
        "MDALGO": 2,
        "SMASS": 0,
        "POTIM": 2.0,
        "TEBEG": 300,
        "TEEND": 300,
        "ISYM": 0,
        "ISIF": 2,
        "ENCUT": 500,
        "PREC": "Normal",
        "EDIFF": 1e-5,
        "NELMIN": 4,
        "ALGO": "Fast",
        "LREAL": "Auto",
        "ISMEAR": 0,
        "SIGMA": 0.05,
        "ISPIN": 1,
        "LWAVE": False,
        "LCHARG": False,
        "NBLOCK": 1,
        "KBLOCK": 100,
        "NSW": 500,
    }
    for tag, value in expected.items():
        assert incar[tag] == value, tag
    k = Kpoints.from_file(seg / "KPOINTS")
    assert k.style.name == "Gamma" and tuple(k.kpts[0]) == (1, 1, 1)
    assert (seg / "POTCAR.spec").read_text().split() == ["Li_sv", "P", "S", "Cl", "In_d"]
    assert not (seg / "POTCAR").exists() and rep.potcar_spec
    p = Poscar.from_file(seg / "POSCAR")
    assert len(p.structure) == len(Poscar.from_file(run / "interface" / "POSCAR").structure)
    assert rep.segments == [500] * 10


def test_overrides_and_contradictions() -> None:
    study = parse_study("name: x\nmd: {incar: {ENCUT: 600, ALGO: Normal}, total_time_ps: 2.5, segment_time_ps: 1}\n")
    incar = incar_settings(study)
    assert incar["ENCUT"] == 600 and incar["ALGO"] == "Normal"
    assert plan_segments(study) == [500, 500, 250]
    for tag, value, message in [
        ("IBRION", 2, "md.incar.IBRION = 2: molecular dynamics needs IBRION = 0"),
        ("ISIF", 3, "md.incar.ISIF = 3: ISIF >= 3 lets the cell change"),
        ("TEBEG", 500, "md.incar.TEBEG = 500: set the temperature with md.temperature"),
        ("TEEND", None, "md.incar.TEEND = None: set the temperature with md.temperature"),
        ("MDALGO", 3, "md.incar.MDALGO = 3: the study's thermostat is Nose-Hoover"),
        ("NSW", 100, "md.incar.NSW = 100: NSW follows md.total_time_ps"),
    ]:
        study = load_study("li6ps5cl_in")
        study.md.incar = {tag: value}
        with pytest.raises(InputsError, match=message.replace("(", r"\(").replace(")", r"\)")):
            incar_settings(study)


def test_nblock_other_than_one_is_refused_for_vasp() -> None:
    """A finished segment of NBLOCK = k holds NSW / k frames: counted as steps it would be continued to ~k x NSW."""
    study = load_study("li6ps5cl_in")
    study.md.nblock = 5
    with pytest.raises(InputsError, match=r"md.nblock = 5: VASP segments are continued and counted frame by frame"):
        incar_settings(study)
    study.md.nblock = 1
    assert incar_settings(study)["NBLOCK"] == 1


def test_missing_potcar_symbol_and_no_interface(run: Path, tmp_path: Path) -> None:
    from cellsim.core.errors import RunDirError

    study = load_study(run / "study.yaml")
    del study.md.potcar["In"]
    (run / "study.yaml").write_text(study.to_yaml())
    with pytest.raises(InputsError, match=r"md\.potcar: no POTCAR symbol for In"):
        run_inputs(run)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match=r"not a run directory"):
        run_inputs(tmp_path / "empty")
