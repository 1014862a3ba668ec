"""Study matrices: expansion into runs (counts, names, levels, studies), the campaign form they share with
`cellsim submit`, and errors that name the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellsim.config.matrix import MATRIX_FILE, MatrixError, RunSet, load_run_set
from cellsim.core.errors import StudyError

BASE = """name: {name}
study: {study}
"""


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def bundled(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunSet:
    monkeypatch.chdir(tmp_path)
    return load_run_set(repo / "workflows" / "screens" / "li6ps5cl.yaml")


def test_bundled_screen_has_18_runs(bundled: RunSet) -> None:
    assert len(bundled.runs) == 18


def test_bundled_screen_axes_in_file_order(bundled: RunSet) -> None:
    assert bundled.axes == ["metal", "termination", "seed"]


def test_bundled_screen_run_names_first_axis_slowest(bundled: RunSet) -> None:
    names = [r.name for r in bundled.runs]
    assert names[:4] == ["In-t0-s0", "In-t0-s1", "In-t0-s2", "In-t1-s0"]
    assert names[-1] == "Li-t1-s2"


def test_bundled_screen_runs_go_under_runs_name_in_the_current_folder(bundled: RunSet, tmp_path: Path) -> None:
    assert bundled.runs[0].run_dir == tmp_path / "runs" / "screen_li6ps5cl" / "In-t0-s0"


def test_levels_reach_the_study(bundled: RunSet) -> None:
    run = next(r for r in bundled.runs if r.name == "Li-t1-s2")
    assert run.study is not None
    got = (
        run.study.interface.metal.phase,
        run.study.interface.electrolyte.termination,
        run.study.engine.seed,
        run.study.analysis.pairs,
        run.study.md.total_time_ps,
    )
    assert got == ("Li", 1, 2, ["Li-S", "Li-Cl", "Li-P", "P-S"], 0.5)


def test_base_study_paths_resolved_from_the_base_file(bundled: RunSet, repo: Path) -> None:
    study = bundled.runs[0].study
    assert study is not None and study.engine.model_path is not None
    assert Path(study.engine.model_path) == (repo / "workflows" / "fits" / "chgnet-in-pbe" / "model.pth.tar").resolve()


def test_labels_without_the_seed_group_the_replicas(bundled: RunSet) -> None:
    assert bundled.runs[0].group_labels == {"metal": "In", "termination": "t0"}


def test_seed_count_starts_at_the_runs_seed(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.format(name="s", study="li6ps5cl_li") + "set: {engine.seed: 5}\nmatrix: {seed: 3}\n")
    assert [r.study.engine.seed for r in load_run_set(path).runs if r.study] == [5, 6, 7]


def test_temperature_and_engine_axes_label_the_runs(tmp_path: Path) -> None:
    text = BASE.format(name="t", study="li6ps5cl_li") + (
        "matrix:\n  temperature: [300, 450.0]\n  engine: {plain: {engine.name: chgnet, engine.model_path: null}}\n"
    )
    assert [r.name for r in load_run_set(write(tmp_path, text)).runs] == ["300K-plain", "450K-plain"]


def test_out_in_the_file_is_relative_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.format(name="o", study="li6ps5cl_li") + "out: here\nmatrix: {seed: 1}\n")
    assert load_run_set(path).runs[0].run_dir == tmp_path / "here" / "s0"


def test_out_given_wins_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.format(name="o", study="li6ps5cl_li") + "out: here\nmatrix: {seed: 1}\n")
    assert load_run_set(path, out=tmp_path / "there").runs[0].run_dir == tmp_path / "there" / "s0"


def test_manifest_is_a_campaign_with_the_same_runs_and_levels(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.format(name="m", study="li6ps5cl_li") + "out: o\nmatrix: {termination: [0, 1]}\n")
    rs = load_run_set(path)
    rs.write_manifest()
    again = load_run_set(tmp_path / "o")
    assert (again.kind, again.run_dirs, [r.labels for r in again.runs]) == (
        "campaign",
        rs.run_dirs,
        [r.labels for r in rs.runs],
    )


def test_manifest_file_sits_in_the_output_folder(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.format(name="m", study="li6ps5cl_li") + "out: o\nmatrix: {seed: 1}\n")
    assert load_run_set(path).write_manifest() == tmp_path / "o" / MATRIX_FILE


def test_submit_reads_the_matrix_as_its_runs(tmp_path: Path) -> None:
    from cellsim.workflow.campaign import load_campaign_yaml

    path = write(tmp_path, BASE.format(name="m", study="li6ps5cl_li") + "max_jobs: 2\nmatrix: {seed: 2}\n")
    assert load_campaign_yaml(path) == (load_run_set(path).run_dirs, 2)


def test_old_campaign_list_still_reads(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")
    assert load_run_set(path).run_dirs == [tmp_path / "a", tmp_path / "b"]


# --------------------------------------------------------------------------- errors


M = "name: x\nstudy: li6ps5cl_li\nmatrix:\n"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("name: x\nstudy: li6ps5cl_li\nmatrix: {seed: 1}\naxes: 3\n", r"m\.yaml:4: axes: unknown field"),
        (
            "name: x\nstudy: li6ps5cl_li\nmatrix:\n  colour: [red]\n",
            r"m\.yaml:4: matrix\.colour: 'colour' is not a known",
        ),
        (M + "  seed: 0\n", r"m\.yaml:4: matrix\.seed: a number of seeds must be"),
        (
            "name: x\nstudy: li6ps5cl_li\nmatrix:\n  metal: [Li, Li]\n",
            r"matrix\.metal: two levels share the label 'Li'",
        ),
        (
            "name: x\nstudy: li6ps5cl_li\nmatrix:\n  metal: {a-b: Li}\n",
            r"m\.yaml:4: matrix\.metal\.a-b: a level's label",
        ),
        ("name: x\nstudy: nowhere.yaml\nmatrix: {seed: 1}\n", r"m\.yaml:2: study: .*nowhere\.yaml: no such study"),
        ("name: bad name\nstudy: li6ps5cl_li\nmatrix: {seed: 1}\n", r"m\.yaml:1: name: expected a name"),
        ("name: x\nstudy: li6ps5cl_li\nmax_jobs: 0\nmatrix: {seed: 1}\n", r"m\.yaml:3: max_jobs: expected a positive"),
        ("name: x\nstudy: li6ps5cl_li\nruns: [a]\nmatrix: {seed: 1}\n", r"m\.yaml:3: runs: a file is a campaign"),
        ("name: x\nstudy: li6ps5cl_li\n", r"m\.yaml: expected `runs:` .* or `study:` and `matrix:`"),
        ("runs: [a]\nmax_jobs: 1\nqueue: slurm\n", r"m\.yaml:3: queue: unknown field \(a campaign takes"),
    ],
)
def test_file_errors_name_the_line_and_field(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(MatrixError, match=pattern):
        load_run_set(write(tmp_path, text))


def test_a_wrong_study_value_names_the_level_that_set_it(tmp_path: Path) -> None:
    text = "name: x\nstudy: li6ps5cl_li\nmatrix:\n  temperature:\n    hot: -5\n"
    with pytest.raises(MatrixError, match=r"m\.yaml:5: matrix\.temperature\.hot: md\.temperature: .*greater than 0"):
        load_run_set(write(tmp_path, text))


def test_a_misspelt_study_field_names_the_set_entry(tmp_path: Path) -> None:
    text = "name: x\nstudy: li6ps5cl_li\nset:\n  md.temprature: 400\nmatrix: {seed: 1}\n"
    with pytest.raises(MatrixError, match=r"m\.yaml:4: set\.md\.temprature: md\.temprature: unknown study field"):
        load_run_set(write(tmp_path, text))


def test_two_axes_setting_one_field_are_refused(tmp_path: Path) -> None:
    text = "name: x\nstudy: li6ps5cl_li\nmatrix:\n  seed: 1\n  again: {one: {engine.seed: 4}}\n"
    with pytest.raises(MatrixError, match=r"matrix\.again\.one: engine\.seed is also set by matrix\.seed"):
        load_run_set(write(tmp_path, text))


def test_base_pairs_on_another_metal_are_refused_by_name(tmp_path: Path) -> None:
    text = "name: x\nstudy: li6ps5cl_in\nmatrix:\n  metal: [Li]\n"
    with pytest.raises(MatrixError, match=r"study li6ps5cl_in: analysis\.pairs: In-S names In, which run Li"):
        load_run_set(write(tmp_path, text))


def test_matrix_error_is_a_study_error(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="matrix"):
        load_run_set(write(tmp_path, "name: x\nstudy: li6ps5cl_li\nmatrix: 3\n"))


def test_missing_file_names_the_bundled_matrices(tmp_path: Path) -> None:
    with pytest.raises(MatrixError, match=r"no such matrix or campaign file \(bundled matrices: .*li6ps5cl"):
        load_run_set(tmp_path / "absent.yaml")


def test_the_papers_10ps_protocol_is_six_student_runs_of_10_ps(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rs = load_run_set(repo / "workflows" / "screens" / "li6ps5cl_in_10ps.yaml")
    assert [r.name for r in rs.runs] == ["t0-s0", "t0-s1", "t0-s2", "t1-s0", "t1-s1", "t1-s2"]
    for r in rs.runs:
        assert r.study is not None
        assert r.study.md.total_time_ps == 10.0 and r.study.md.temperature == 300
        assert r.study.engine.student and str(r.study.engine.student).endswith("student-in-pbe")
        assert r.study.engine.monitor_every == 20  # the teacher checks the student in every run
