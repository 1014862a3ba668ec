"""Labels from anywhere (issue 38): vasprun.xml, OUTCAR, ML_AB, extxyz and ASE databases become labels; frames
chosen from trajectories; mismatched labels refused or warned by name; a real vasprun.xml becomes a fit."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from label_files import (
    emt_md,
    indium_frames,
    ml_ab_text,
    vasprun_text,
    write_db,
    write_extxyz,
    write_vasprun,
)

from cellsim.core.errors import CellsimError
from cellsim.engines import fit
from cellsim.engines import label_sources as ls

ASE_VASP = Path(__import__("ase").__path__[0]) / "test" / "testdata" / "vasp"


@pytest.fixture(scope="module")
def md() -> list:
    """120 steps (2 fs) of 8-atom fcc Cu at 900 K under EMT: one real trajectory with energies and forces."""
    return emt_md(120, repeat=(2, 1, 1))


@pytest.fixture
def cu_vasprun(tmp_path: Path, md: list) -> Path:
    return write_vasprun(tmp_path / "cu" / "vasprun.xml", md)


# --------------------------------------------------------------------------- readers


def test_every_ionic_step_of_a_vasprun_is_a_label(cu_vasprun: Path, md: list) -> None:
    labels = ls.read_label_source(cu_vasprun)
    assert [lab.frame for lab in labels] == list(range(120))
    assert max(abs(lab.energy_eV - fr.energy) for lab, fr in zip(labels, md, strict=True)) < 1e-6
    assert max(np.abs(lab.forces - fr.forces).max() for lab, fr in zip(labels, md, strict=True)) < 1e-6
    assert {(lab.code, lab.functional, lab.fmt, lab.source) for lab in labels} == {
        ("vasp", "PBE", "vasprun", str(cu_vasprun))
    }
    assert len({lab.job for lab in labels}) == 120
    assert len({lab.trajectory for lab in labels}) == 1


def test_real_vasp_files_from_ase_read_with_their_functional() -> None:
    """ASE's own VASP 6.3 vasprun (GGA "--" with the LDA POTCAR "PAW C", PSTRESS 1 kbar) and a VASP 5.3 OUTCAR."""
    (lda,) = ls.read_label_source(ASE_VASP / "vasprun_pstress.xml")
    assert lda.functional == "LDA"
    # e_fr_energy -20.23985977 eV includes PSTRESS * V (1 kbar * 11.3748 A^3 = 0.0071 eV): taken off
    assert lda.energy_eV == pytest.approx(-20.23985977 - 0.1 * 11.37482325 / 160.21766208, abs=1e-6)
    (ni,) = ls.read_label_source(ASE_VASP / "OUTCAR_example_1")
    assert (ni.atoms.get_chemical_formula(), ni.functional, ni.code) == ("Ni18", "PBE", "vasp")
    assert ni.energy_eV == pytest.approx(-68.22868532)
    assert ni.forces[0] == pytest.approx([0.030415, -0.114705, -0.460114])


@pytest.mark.parametrize(
    ("tags", "potcars", "expected"),
    [
        ({"GGA": "PE"}, [], "PBE"),
        ({"GGA": "--"}, ["PAW_PBE In_d 06Sep2000"], "PBE"),
        ({"GGA": "--"}, ["PAW C 22Mar2012"], "LDA"),
        ({"GGA": "RP", "IVDW": "11"}, [], "RPBE+D3"),
        ({"GGA": "PS"}, [], "PBEsol"),
        ({"GGA": "PE", "IVDW": "12"}, [], "PBE+D3(BJ)"),
        ({"GGA": "--", "METAGGA": "R2SCAN"}, ["PAW_PBE Li_sv 10Feb1998"], "r2SCAN"),
        ({"GGA": "PE", "LHFCALC": "T", "HFSCREEN": "0.2"}, [], "HSE06"),
        ({"GGA": "PE", "LDAU": ".TRUE."}, [], "PBE+U"),
        ({"GGA": "BO", "LUSE_VDW": "T"}, [], "optB88+vdW-DF"),
        ({}, [], "unknown"),
    ],
)
def test_vasp_functional_from_tags_and_potcars(tags: dict, potcars: list, expected: str) -> None:
    assert ls.vasp_functional(tags, potcars) == expected


def test_a_truncated_vasprun_is_read_to_its_last_whole_step(tmp_path: Path, md: list) -> None:
    text = vasprun_text(md[:6])
    cut = text.rfind("<calculation>") + 300  # inside the sixth step
    f = tmp_path / "vasprun.xml"
    f.write_text(text[:cut])
    with pytest.warns(ls.LabelWarning, match=r"vasprun.xml: truncated; read its 5 whole ionic steps"):
        labels = ls.read_label_source(f)
    assert [lab.frame for lab in labels] == [0, 1, 2, 3, 4]


def test_a_vasprun_damaged_before_its_end_is_refused(tmp_path: Path, md: list) -> None:
    """Damage in step 60 of 120: the parser stops there, but the file goes on; not a truncation, so refused."""
    text = vasprun_text(md)
    k = 0
    for _ in range(60):
        k = text.find("<calculation>", k + 1)
    f = tmp_path / "vasprun.xml"
    f.write_text(text[: k + 40] + "<<<" + text[k + 40 :])
    with pytest.raises(CellsimError, match=r"vasprun.xml: damaged XML after ionic step \d+ of 120 \(not a truncation"):
        ls.read_label_source(f)


def test_an_outcar_of_a_machine_learning_run_is_refused(tmp_path: Path) -> None:
    lines = (ASE_VASP / "OUTCAR_example_1").read_text().splitlines(keepends=True)
    f = tmp_path / "OUTCAR"
    f.write_text("".join([*lines[:240], "   ML_LMLFF =      T\n", *lines[240:]]))
    with pytest.raises(CellsimError, match=r"OUTCAR: an OUTCAR of a run with VASP's machine-learned force field"):
        ls.read_label_source(f)


def test_an_ml_ab_becomes_labels_with_the_functional_of_the_incar_beside_it(tmp_path: Path, md: list) -> None:
    f = tmp_path / "run" / "ML_AB"
    f.parent.mkdir()
    f.write_text(ml_ab_text(md[:10]))
    labels = ls.read_label_source(f)
    assert [lab.frame for lab in labels] == list(range(10))
    assert max(np.abs(lab.forces - fr.forces).max() for lab, fr in zip(labels, md[:10], strict=True)) < 1e-9
    assert labels[3].energy_eV == pytest.approx(md[3].energy, abs=1e-9)
    assert {lab.functional for lab in labels} == {"unknown"}
    (f.parent / "INCAR").write_text("GGA = RP\nIVDW = 11\n")
    assert {lab.functional for lab in ls.read_label_source(f)} == {"RPBE+D3"}


def test_an_ml_ab_cut_inside_its_last_configuration_is_read_to_the_one_before(tmp_path: Path, md: list) -> None:
    text = ml_ab_text(md[:4])
    f = tmp_path / "ML_AB"
    f.write_text(text[: text.rfind("Forces (eV ang.^-1)") + 200])
    with pytest.warns(ls.LabelWarning, match=r"ML_AB: truncated; read 3 whole configurations of the 4"):
        assert len(ls.read_label_source(f)) == 3


def test_an_ml_ab_with_a_damaged_configuration_is_refused(tmp_path: Path, md: list) -> None:
    text = ml_ab_text(md[:4])
    k = text.find("Total energy (eV)")
    f = tmp_path / "ML_AB"
    f.write_text(text[:k] + text[k:].replace(f"{md[0].energy:20.12f}", "   garbage", 1))
    with pytest.raises(CellsimError, match=r"ML_AB: configuration 1 \(line \d+\): total energy: expected numbers"):
        ls.read_label_source(f)


def test_extxyz_frames_carry_their_functional_and_code_keys(tmp_path: Path, md: list) -> None:
    f = write_extxyz(tmp_path / "data.extxyz", md[:5], functional="pbe", code="VASP")
    labels = ls.read_label_source(f)
    assert [(lab.code, lab.functional, lab.fmt) for lab in labels] == [("vasp", "PBE", "extxyz")] * 5
    assert labels[2].energy_eV == pytest.approx(md[2].energy)
    g = write_extxyz(tmp_path / "bare.extxyz", md[:5])
    assert {(lab.code, lab.functional) for lab in ls.read_label_source(g)} == {("unknown", "unknown")}


def test_an_extxyz_without_its_final_newline_loses_its_last_frame_with_a_warning(tmp_path: Path, md: list) -> None:
    f = write_extxyz(tmp_path / "data.extxyz", md[:5])
    f.write_bytes(f.read_bytes()[:-4])  # the last force cut short: still numbers
    with pytest.warns(ls.LabelWarning, match=r"data.extxyz: truncated \(no newline at its end\); read its 4 whole"):
        assert len(ls.read_label_source(f)) == 4


def test_an_ase_database_becomes_labels(tmp_path: Path, md: list) -> None:
    f = write_db(tmp_path / "set.db", md[:6], functional="PBE")
    labels = ls.read_label_source(f)
    assert [lab.frame for lab in labels] == list(range(6))
    assert {(lab.fmt, lab.functional) for lab in labels} == {("ase-db", "PBE")}
    assert labels[4].forces == pytest.approx(md[4].forces)


def test_an_sqlite_file_that_is_no_ase_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    import sqlite3

    f = tmp_path / "other.db"
    con = sqlite3.connect(f)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    before = f.read_bytes()
    with pytest.raises(CellsimError, match=r"other.db: an SQLite file, but not an ASE database"):
        ls.read_label_source(f)
    assert f.read_bytes() == before


def test_a_run_folder_without_job_folders_reads_its_vasprun(cu_vasprun: Path) -> None:
    assert ls.detect_label_format(cu_vasprun.parent) == (cu_vasprun, "vasprun")


def test_a_file_of_no_known_format_is_refused_by_name(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("hello\n")
    with pytest.raises(CellsimError, match=r"notes.txt: not a label file cellsim knows"):
        ls.read_label_source(f)


def test_job_folders_keep_their_functional_and_code(tmp_path: Path) -> None:
    from ase import Atoms
    from ase.io import write

    job = tmp_path / "set" / "jobs" / "In2-0001"
    job.mkdir(parents=True)
    write(job / "structure.json", Atoms("In2", positions=[[0, 0, 0], [1.6, 1.6, 1.6]], cell=[3.3] * 3, pbc=True))
    data = {"energy_eV": -5.0, "forces_eV_A": [[0, 0, 0], [0, 0, 0]], "code": "gpaw", "settings": {"xc": "PBE"}}
    (job / "result.json").write_text(json.dumps(data))
    labels, records = ls.load_sources([tmp_path / "set"])
    assert [(lab.job, lab.code, lab.functional, lab.fmt) for lab in labels] == [("In2-0001", "gpaw", "PBE", "jobs")]
    assert (records[0].format, records[0].frames_read) == ("jobs", 1)


# --------------------------------------------------------------------------- frames chosen


def test_the_force_autocorrelation_time_of_a_real_trajectory(md: list) -> None:
    """EMT Cu at 900 K, 2 fs steps: the force autocorrelation falls below 1/e after 16 steps (32 fs, about a
    fifth of a vibration); uncorrelated forces give 1."""
    assert ls.decorrelation_steps(np.array([fr.forces for fr in md])) == 16
    rng = np.random.default_rng(0)
    assert ls.decorrelation_steps(rng.normal(size=(200, 8, 3))) == 1


def test_frames_are_taken_one_decorrelation_time_apart(cu_vasprun: Path) -> None:
    taken, how = ls.choose_frames(ls.read_label_source(cu_vasprun), ls.Selection(max_frames=None))
    assert how == {"decorrelation_steps": 16, "stride": 16}
    assert [lab.frame for lab in taken] == list(range(0, 120, 16))
    assert {lab.corr_steps for lab in taken} == {16}


def test_a_minimum_gap_above_the_decorrelation_time_sets_the_stride(cu_vasprun: Path) -> None:
    taken, _ = ls.choose_frames(ls.read_label_source(cu_vasprun), ls.Selection(min_gap=40, max_frames=None))
    assert [lab.frame for lab in taken] == [0, 40, 80]


def test_farthest_point_sampling_spreads_the_frames_over_structures(tmp_path: Path) -> None:
    """Two trajectories in one file, a compressed and an expanded cell: two frames taken, one from each."""
    from label_files import Frame

    cold = emt_md(60, repeat=(2, 1, 1), temperature_K=100)
    frames = [*cold[:30], *(Frame(f.atoms.copy(), f.energy, f.forces) for f in cold[30:])]
    for f in frames[30:]:
        f.atoms.set_cell(f.atoms.cell * 1.06, scale_atoms=True)
    labels = ls.read_label_source(write_vasprun(tmp_path / "vasprun.xml", frames))
    taken, _ = ls.choose_frames(labels, ls.Selection(min_gap=5, max_frames=2))
    assert [lab.frame is not None and lab.frame >= 30 for lab in taken] == [False, True]


def test_a_frame_with_atoms_on_top_of_each_other_is_refused(tmp_path: Path, md: list) -> None:
    from label_files import Frame

    bad = md[5].atoms.copy()
    bad.positions[1] = bad.positions[0] + 0.1
    frames = [*md[:5], Frame(bad, md[5].energy, md[5].forces)]
    labels = ls.read_label_source(write_vasprun(tmp_path / "vasprun.xml", frames))
    with pytest.raises(CellsimError, match=r"vasprun.xml: frame 5: two atoms \(Cu-Cu\) closer than 0.5 A"):
        ls.choose_frames(labels, ls.Selection(max_frames=None))


# --------------------------------------------------------------------------- the split


def test_trajectory_frames_are_held_out_as_one_time_block(cu_vasprun: Path) -> None:
    taken, _ = ls.choose_frames(ls.read_label_source(cu_vasprun), ls.Selection(max_frames=None))
    train, held = fit.split_labels(taken, 4)
    held_frames = sorted(lab.frame for lab in held if lab.frame is not None)
    assert held_frames == [64, 80]  # frames 0, 16, ..., 112 in four time blocks: the third, whole
    ls.check_split(train, held)  # one stride apart at the block's edge: not adjacent


def test_held_out_frames_adjacent_in_time_to_training_frames_are_refused(cu_vasprun: Path) -> None:
    """Every step kept (no stride) and split frame by frame: held-out frames sit one step from training frames."""
    labels = [replace(lab, corr_steps=15) for lab in ls.read_label_source(cu_vasprun)]
    train, held = fit.split(labels, 5)
    with pytest.raises(CellsimError, match=r"vasprun.xml: held-out frames .* are adjacent in time to training ones"):
        ls.check_split(train, held)


def test_the_split_of_job_folders_is_unchanged() -> None:
    from ase import Atoms

    labs = [
        fit.Label(f"c{k}", f"job-{k}", Atoms("Li2", cell=[3, 3, 3], pbc=True), 0.0, np.zeros((2, 3)), "gpaw")
        for k in range(30)
    ]
    assert fit.split_labels(labs, 5, 3) == fit.split(labs, 5, 3)


# --------------------------------------------------------------------------- checks


STUDY = {"Li", "P", "S", "Cl", "In"}


def test_labels_holding_elements_the_study_lacks_are_refused(cu_vasprun: Path) -> None:
    labels = ls.read_label_source(cu_vasprun)
    with pytest.raises(CellsimError, match=r"vasprun.xml: holds Cu, which the study \(Cl, In, Li, P, S\) lacks"):
        ls.check_elements(labels, STUDY)


@pytest.mark.filterwarnings("ignore:the labels hold no")
def test_labels_holding_other_elements_are_taken_when_asked_with_a_warning(cu_vasprun: Path) -> None:
    labels = ls.read_label_source(cu_vasprun)
    with pytest.warns(ls.LabelWarning, match=r"vasprun.xml: holds Cu, .* trained on anyway"):
        ls.check_elements(labels, STUDY, allow_other=True)


def test_labels_missing_some_of_the_study_s_elements_are_warned_about(tmp_path: Path) -> None:
    labels = ls.read_label_source(write_vasprun(tmp_path / "vasprun.xml", indium_frames(3)))
    with pytest.warns(ls.LabelWarning, match=r"the labels hold no Cl, Li, P, S: the fit learns nothing of them"):
        ls.check_elements(labels, STUDY)


def test_labels_of_another_functional_are_refused(tmp_path: Path) -> None:
    f = write_vasprun(tmp_path / "rpbe" / "vasprun.xml", indium_frames(3), gga="RP", incar={"IVDW": "11"})
    with pytest.raises(CellsimError, match=r"rpbe/vasprun.xml: functional RPBE\+D3, not the base model's PBE"):
        ls.check_functional(ls.read_label_source(f))


def test_labels_of_another_functional_are_taken_when_asked_with_a_warning(tmp_path: Path) -> None:
    f = write_vasprun(tmp_path / "vasprun.xml", indium_frames(3), gga="PS")
    with pytest.warns(ls.LabelWarning, match=r"vasprun.xml: functional PBEsol, .* trained on anyway"):
        ls.check_functional(ls.read_label_source(f), allow_other=True)


def test_labels_of_an_unknown_functional_are_warned_about(tmp_path: Path) -> None:
    f = write_extxyz(tmp_path / "data.extxyz", indium_frames(3))
    with pytest.warns(ls.LabelWarning, match=r"data.extxyz: the functional is not stated"):
        ls.check_functional(ls.read_label_source(f))


# --------------------------------------------------------------------------- energy references


def test_each_code_and_functional_has_its_own_energy_reference() -> None:
    from ase import Atoms

    def lab(symbols: str, e: float, code: str, functional: str, source: str = "") -> fit.Label:
        n = len(Atoms(symbols))
        atoms = Atoms(symbols, positions=np.arange(3.0 * n).reshape(-1, 3), cell=[9] * 3, pbc=True)
        return fit.Label("x", "j", atoms, e, np.zeros((len(atoms), 3)), code, functional=functional, source=source)

    labels = [
        lab("In", -1.0, "vasp", "PBE"),
        lab("In2", -2.0, "vasp", "PBE"),
        lab("In", -3.5, "vasp", "RPBE"),
        lab("In2", -7.0, "vasp", "RPBE"),
        lab("In", -5.0, "unknown", "unknown", "a.extxyz"),
    ]
    assert [fit.shift_group(x) for x in labels] == [
        "vasp",
        "vasp",
        "vasp/RPBE",
        "vasp/RPBE",
        "unknown/unknown@a.extxyz",
    ]
    shifts = fit.energy_shifts(labels, np.zeros(5))
    assert (shifts["vasp"]["In"], shifts["vasp/RPBE"]["In"]) == pytest.approx((-1.0, -3.5))


# --------------------------------------------------------------------------- a fit from a real vasprun.xml


@pytest.mark.slow
def test_a_vasprun_becomes_a_fit_with_its_sources_and_held_out_errors_in_the_card(tmp_path: Path, md: list) -> None:
    """The EMT trajectory as a vasprun.xml -> chosen frames -> a 3-epoch CHGNet fine-tune: the card holds the
    source (file, format, frames taken, code, functional), the held-out block and the errors before and after.
    14-20 s here (8 s of it the fit), hence slow."""
    import torch

    f = write_vasprun(tmp_path / "cu" / "vasprun.xml", emt_md(200, repeat=(2, 1, 1)))
    labels, sources = ls.load_sources([f], ls.Selection(max_frames=None))  # every 16th step: 13 frames
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = fit.fit_chgnet(labels, tmp_path / "fits", fit.FitSettings(epochs=3))
    finally:
        torch.set_num_threads(threads)
    card = fit.annotate_card(res, [s.as_dict() for s in sources], [])
    stored = json.loads((res.folder / "card.json").read_text())
    assert stored["sources"][0]["file"] == str(f)
    assert (stored["sources"][0]["format"], stored["sources"][0]["code"], stored["sources"][0]["functional"]) == (
        "vasprun",
        "vasp",
        "PBE",
    )
    assert stored["sources"][0]["frames_taken"] == sorted(int(lab.frame or 0) for lab in labels)
    assert card["errors_before"]["held_out"]["n"] == card["errors_after"]["held_out"]["n"] >= 2
    assert card["errors_after"]["held_out"]["force_mae_eV_A"] > 0
    held = sorted(int(j.rsplit("-", 1)[1]) for j in card["labels"]["held_out"])
    taken = stored["sources"][0]["frames_taken"]
    assert held == taken[taken.index(held[0]) : taken.index(held[0]) + len(held)]  # one contiguous block
    assert "| vasprun |" in (res.folder / "card.md").read_text()
    assert stored["held_out_verdict"]["worse"] is (
        card["errors_after"]["held_out"]["force_mae_eV_A"] > card["errors_before"]["held_out"]["force_mae_eV_A"]
        or card["errors_after"]["held_out"]["energy_mae_meV_atom"]
        > card["errors_before"]["held_out"]["energy_mae_meV_atom"]
    )


# --------------------------------------------------------------------------- a fit that got worse


def _worse_card() -> dict:
    errors = {"n": 4, "energy_mae_meV_atom": 1.0, "force_mae_eV_A": 0.05}
    return {
        "key": "0000",
        "base_model": "CHGNet 0.3.0",
        "frozen": "-",
        "settings": {},
        "labels": {"n": 20, "codes": {"vasp": 20}, "train": [], "held_out": []},
        "energy_shifts_eV_atom": {},
        "train_s": 1.0,
        "errors_before": {"train": dict(errors), "held_out": dict(errors)},
        "errors_after": {"train": dict(errors), "held_out": {**errors, "force_mae_eV_A": 0.07}},
    }


def test_a_fit_worse_on_held_out_labels_is_said_in_its_card(tmp_path: Path) -> None:
    folder = tmp_path / "chgnet-0000"
    folder.mkdir()
    res = fit.FitResult(folder, folder / "model.pth.tar", _worse_card())
    card = fit.annotate_card(res, [], [])
    assert card["held_out_verdict"] == {"worse": True, "worse_on": ["force MAE 0.050 -> 0.070 eV/A"]}
    assert "**Worse than the base model on the held-out labels**" in (folder / "card.md").read_text()


def test_a_fit_worse_on_held_out_labels_is_warned_in_the_cli_and_not_offered(
    tmp_path: Path, engines_cli: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    def worse_fit(labels: list, out_root: Path, settings: object, **kw: object) -> fit.FitResult:
        folder = Path(out_root) / "chgnet-0000"
        folder.mkdir(parents=True)
        (folder / "model.pth.tar").write_bytes(b"x")
        return fit.FitResult(folder, folder / "model.pth.tar", _worse_card())

    monkeypatch.setattr(fit, "fit_chgnet", worse_fit)
    f = write_vasprun(tmp_path / "in" / "vasprun.xml", indium_frames(12))
    args = ["engines", "fit", "li6ps5cl_in", "--labels", str(f), "--out", str(tmp_path / "fits")]
    out = CliRunner().invoke(engines_cli, args, terminal_width=200)  # type: ignore[arg-type]
    assert out.exit_code == 0, out.output
    assert "WARNING: this fit is WORSE than the base model on the held-out labels" in out.output
    assert "use it:" not in out.output


# --------------------------------------------------------------------------- the command


def test_the_cli_refuses_labels_of_another_element_by_name(tmp_path: Path, engines_cli: object, md: list) -> None:
    from typer.testing import CliRunner

    f = write_vasprun(tmp_path / "cu" / "vasprun.xml", md)
    out = CliRunner().invoke(engines_cli, ["engines", "fit", "li6ps5cl_in", "--labels", str(f)])  # type: ignore[arg-type]
    assert out.exit_code == 2
    assert "holds Cu, which the study" in out.output


def test_the_cli_refuses_labels_of_another_functional_by_name(tmp_path: Path, engines_cli: object) -> None:
    from typer.testing import CliRunner

    f = write_vasprun(tmp_path / "rpbe" / "vasprun.xml", indium_frames(6), gga="RP", incar={"IVDW": "11"})
    out = CliRunner().invoke(engines_cli, ["engines", "fit", "li6ps5cl_in", "--labels", str(f)])  # type: ignore[arg-type]
    assert out.exit_code == 2
    assert "functional RPBE+D3, not the base model's PBE" in out.output


@pytest.mark.slow
def test_vasprun_outcar_and_extxyz_together_make_one_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], md: list
) -> None:
    """`cellsim engines fit STUDY --labels run/vasprun.xml --labels other/OUTCAR --labels data.extxyz` through the
    real entry point: every source read, recorded in the card, and a fit made (2 epochs)."""
    from cellsim.cli import main

    run = write_vasprun(tmp_path / "run" / "vasprun.xml", md)
    other = tmp_path / "other" / "OUTCAR"
    other.parent.mkdir()
    shutil.copy(ASE_VASP / "OUTCAR_example_1", other)
    data = write_extxyz(tmp_path / "data.extxyz", emt_md(60, repeat=(2, 1, 1), temperature_K=600), functional="PBE")
    args = ["engines", "fit", "li6ps5cl_in", "--labels", str(run), "--labels", str(other), "--labels", str(data)]
    args += ["--allow-other-elements", "--epochs", "2", "--max-frames", "6", "--out", str(tmp_path / "fits")]
    with pytest.raises(SystemExit, match=r"^0?$"):
        main(args)
    cap = capsys.readouterr()
    assert "vasprun.xml: 6 of 120 frames (vasprun, vasp, PBE" in cap.err
    assert "OUTCAR: 1 of 1 frames (outcar, vasp, PBE)" in cap.err
    assert "holds Cu, which the study" in cap.err and "holds Ni, which the study" in cap.err
    (card_file,) = (tmp_path / "fits").glob("chgnet-*/card.json")
    card = json.loads(card_file.read_text())
    assert [s["format"] for s in card["sources"]] == ["vasprun", "outcar", "extxyz"]
    assert card["labels"]["n"] == sum(len(s["frames_taken"]) for s in card["sources"]) >= 6 + 1 + 2
    assert {"vasp", "unknown@data.extxyz"} == set(card["energy_shifts_eV_atom"])
