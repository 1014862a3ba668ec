"""Study files: defaults, round trip, and errors that name file, line, field and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellsim.config.rundir import save_resolved
from cellsim.config.study import Study, load_study, parse_study
from cellsim.core.errors import StudyError


def test_bundled_studies_load(repo: Path) -> None:
    for path in sorted((repo / "workflows").glob("*.yaml")):
        study = load_study(path)
        assert study.name == path.stem


def test_bundled_by_name() -> None:
    assert load_study("li6ps5cl_in").interface.electrolyte.phase == "Li6PS5Cl"


def test_paper_defaults() -> None:
    s = load_study("li6ps5cl_in")
    assert s.md.temperature == 300 and s.md.timestep_fs == 2.0
    assert s.md.potcar == {"Li": "Li_sv", "P": "P", "S": "S", "Cl": "Cl", "In": "In_d"}
    assert s.interface.min_atoms == 250 and s.interface.max_atoms == 450
    assert s.interface.max_strain == 0.03 and s.interface.gap == 2.5 and s.interface.vacuum == 15.0
    assert s.analysis.pairs == ["In-S", "In-Cl", "P-S"]


def test_resolved_round_trip(tmp_path: Path) -> None:
    s = parse_study("name: t\ninterface: {max_strain: 0.02}\n")
    path = save_resolved(s, tmp_path)
    again = load_study(path)
    assert again == s
    assert again.to_yaml() == path.read_text()
    # same study again: fine; a different one: refused
    save_resolved(s, tmp_path)
    with pytest.raises(StudyError, match="already holds a different study"):
        save_resolved(parse_study("name: other\n"), tmp_path)


def test_wrong_type_names_line_and_field(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("name: x\ninterface:\n  gap: 2.5\n  max_strain: lots\n")
    with pytest.raises(StudyError, match=r"interface\.max_strain") as e:
        load_study(f)
    msg = str(e.value)
    assert f"{f}:4: interface.max_strain:" in msg
    assert "valid number" in msg and "'lots'" in msg


def test_unknown_field(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("name: x\nmd:\n  temprature: 300\n")
    with pytest.raises(StudyError, match=r"s\.yaml:3: md\.temprature: unknown field"):
        load_study(f)


def test_out_of_range_and_bad_pair() -> None:
    with pytest.raises(StudyError, match=r"<study>:2: interface\.gap: Input should be greater than 0"):
        parse_study("name: x\ninterface: {gap: -1}\n")
    with pytest.raises(StudyError, match=r"<study>:3: analysis\.pairs: .*'In_S' is not a pair of element symbols"):
        parse_study("name: x\nanalysis:\n  pairs: [In-S, In_S]\n")
    with pytest.raises(StudyError, match=r"'Xx' in 'Xx-S' is not an element symbol"):
        parse_study("name: x\nanalysis:\n  pairs: [Xx-S]\n")
    with pytest.raises(StudyError, match=r"Miller index \(0, 0, 0\) is not a plane"):
        parse_study("name: x\ninterface:\n  metal: {phase: In, miller: [0, 0, 0]}\n")
    with pytest.raises(StudyError, match=r"min_atoms \(500\) is larger than max_atoms \(450\)"):
        parse_study("name: x\ninterface: {min_atoms: 500}\n")


def test_missing_name_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match=r"<study>:1: name: Field required"):
        parse_study("interface: {gap: 2}\n")
    f = tmp_path / "broken.yaml"
    f.write_text("name: x\ninterface: {gap: 2\nmd: {}\n")
    with pytest.raises(StudyError, match=rf"{f}:\d+: not valid YAML"):
        load_study(f)
    with pytest.raises(StudyError, match=r"expected a mapping"):
        parse_study("- a\n- b\n")
    with pytest.raises(StudyError, match=r"no such study file"):
        load_study(tmp_path / "missing.yaml")


def test_schema_has_every_section() -> None:
    text = Study(name="x").to_yaml()
    for section in ("interface:", "md:", "engine:", "analysis:"):
        assert section in text
