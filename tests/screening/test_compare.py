"""`cellsim compare` and its Python API over small synthetic runs with stored analysis and match results (no MD):
each row's answer is the run's own, seeds grouped with their spread, groups ranked, the page written, and
`status`, `compare` and `submit` take the same campaign or matrix file."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import warnings
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cellsim.cli import app
from cellsim.config.rundir import RunDir
from cellsim.products.result import MatchResult
from cellsim.reporting.compare import Comparison, RunRow, compare_runs, read_row
from cellsim.stages import analyze, compare, match, report
from cellsim.testing import reaction_run, replica_run

runner = CliRunner()
# run name -> (frame the bonds form at, None: never; noise seed); A reacts in both seeds, B never
RUNS = {"A-s0": (60, 0), "A-s1": (90, 1), "B-s0": (None, 2)}
LABELS = {"A-s0": ("A", "s0"), "A-s1": ("A", "s1"), "B-s0": ("B", "s0")}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MP_API_KEY", raising=False)


def _analysed(run: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analyze(run, window_ps=0.05)
        match(run, use_mp=False, thermo=False, reactant_md=False)
    return run


@pytest.fixture(scope="module")
def screen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three analysed, matched and reported runs and a campaign file listing them with their levels."""
    root = tmp_path_factory.mktemp("screen")
    for name, (at, seed) in RUNS.items():
        run = _analysed(reaction_run(root / name, n_frames=200, react_at=at, seed=seed))
        report(run)
    campaign = {
        "name": "synthetic",
        "runs": list(RUNS),
        "labels": {n: {"metal": m, "seed": s} for n, (m, s) in LABELS.items()},
    }
    (root / "campaign.yaml").write_text(yaml.safe_dump(campaign, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def compared(screen_dir: Path) -> Comparison:
    return compare(screen_dir / "campaign.yaml")


def _row(c: Comparison, name: str) -> RunRow:
    return next(r for r in c.rows if r.name == name)


@pytest.mark.parametrize("name", list(RUNS))
def test_each_rows_answer_is_the_runs_match_answer(compared: Comparison, screen_dir: Path, name: str) -> None:
    ans = MatchResult.load(RunDir(screen_dir / name).analysis_dir).answer
    row = _row(compared, name)
    assert (row.kind, row.sentence) == (ans["kind"], ans["sentence"])


@pytest.mark.parametrize("name", list(RUNS))
def test_each_rows_answer_is_the_one_its_own_report_shows(compared: Comparison, screen_dir: Path, name: str) -> None:
    md = (RunDir(screen_dir / name).report_dir / "report.md").read_text()
    assert f"| answer | {_row(compared, name).sentence.replace('|', '/')} |" in md


def test_reacting_runs_say_products(compared: Comparison) -> None:
    assert [r.kind for r in compared.rows] == ["products", "products", "none"]


def test_groups_ranked_most_reactive_first(compared: Comparison) -> None:
    assert [(g.rank, g.label) for g in compared.groups] == [(1, "A"), (2, "B")]


def test_seeds_of_one_interface_form_one_group(compared: Comparison) -> None:
    assert [r.name for r in compared.groups[0].rows] == ["A-s0", "A-s1"]


def test_group_counts_each_answer(compared: Comparison) -> None:
    assert compared.groups[0].kinds_text() == "products 2/2"


def test_spread_is_the_sd_over_seeds(compared: Comparison) -> None:
    onsets = [r.onset_ps for r in compared.groups[0].rows if r.onset_ps is not None]
    assert compared.groups[0].stat("onset_ps").sd == pytest.approx(statistics.stdev(onsets))


def test_onset_is_the_time_the_answer_states(compared: Comparison) -> None:
    row = _row(compared, "A-s0")
    assert f"from {row.onset_ps:.3g} ps" in row.sentence


def test_no_onset_where_nothing_reacted(compared: Comparison) -> None:
    assert _row(compared, "B-s0").onset_ps is None


def test_new_bonds_per_area_use_the_cell_without_an_interface(compared: Comparison) -> None:
    row = _row(compared, "A-s0")
    assert (row.area_nm2, row.area_source) == (pytest.approx(5.76), "cell a x b (one interface assumed)")


def test_products_carry_their_amounts(compared: Comparison) -> None:
    amounts = [p.atoms for p in _row(compared, "A-s0").products if p.verdict == "formed"]
    assert amounts and all(a is not None and a > 0 for a in amounts)


def test_comparison_files_written(compared: Comparison, screen_dir: Path) -> None:
    names = sorted(p.name for p in (screen_dir / "compare").iterdir())
    assert names == [
        "compare.csv",
        "compare.html",
        "compare.json",
        "compare.md",
        "compare_products.png",
        "compare_ranking.png",
    ]


def test_html_is_self_contained(compared: Comparison, screen_dir: Path) -> None:
    html = (screen_dir / "compare" / "compare.html").read_text()
    srcs = re.findall(r"""src=['"]([^'"]+)['"]""", html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)


def test_html_opens_with_the_ranking(compared: Comparison, screen_dir: Path) -> None:
    html = (screen_dir / "compare" / "compare.html").read_text()
    assert html.index("<h2>Ranking (most reactive first)</h2>") < html.index("<h2>Runs (each answer")


def test_markdown_shows_the_figures(compared: Comparison, screen_dir: Path) -> None:
    md = (screen_dir / "compare" / "compare.md").read_text()
    assert "](compare_ranking.png)" in md


def test_csv_has_one_row_per_run_in_rank_order(compared: Comparison, screen_dir: Path) -> None:
    lines = (screen_dir / "compare" / "compare.csv").read_text().splitlines()
    assert [ln.split(",")[2] for ln in lines[1:]] == ["A-s0", "A-s1", "B-s0"]


def test_json_holds_the_groups(compared: Comparison, screen_dir: Path) -> None:
    doc = json.loads((screen_dir / "compare" / "compare.json").read_text())
    assert [g["label"] for g in doc["groups"]] == ["A", "B"]


def test_repr_is_short(compared: Comparison) -> None:
    assert len(repr(compared)) < 300


def test_runs_without_labels_group_by_study(screen_dir: Path, tmp_path: Path) -> None:
    """Given as run directories, runs whose studies differ only in the seed share a group."""
    b = tmp_path / "B-s0"
    shutil.copytree(screen_dir / "B-s0", b)
    study = yaml.safe_load((b / "study.yaml").read_text())
    study["md"]["temperature"] = 310.0
    (b / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    c = compare_runs([screen_dir / "A-s0", screen_dir / "A-s1", b])
    assert [[r.name for r in g.rows] for g in c.groups] == [["A-s0", "A-s1"], ["B-s0"]]


def test_units_lost_read_from_the_diagnostics(screen_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(screen_dir / "A-s0", run)
    diag = RunDir(run).analysis_dir / "diagnostics.json"
    doc = json.loads(diag.read_text())
    doc["summary"].update(PS4_intact_start=1.0, PS4_intact_end=0.75, PS4_units=16)
    diag.write_text(json.dumps(doc))
    row = read_row(RunDir(run).analysis_dir, RunDir(run), "run")
    assert (row.unit, row.units_lost, row.units_lost_per_nm2) == ("PS4", 4.0, pytest.approx(4.0 / 5.76))


def test_any_deviation_check_is_read_by_name(screen_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(screen_dir / "A-s0", run)
    diag = RunDir(run).analysis_dir / "diagnostics.json"
    doc = json.loads(diag.read_text())
    check = {"name": "engine deviation", "status": "warn", "value": 0.31, "unit": "eV/A", "message": "disputed"}
    doc["checks"].append(check)
    diag.write_text(json.dumps(doc))
    row = read_row(RunDir(run).analysis_dir, RunDir(run), "run")
    assert row.deviation == "engine deviation: warn 0.31 eV/A"
    # the diagnostic's own value is the share of checked frames beyond the limit: said as such, not "1 fraction"
    check.update(value=0.917, unit="fraction")
    doc["checks"][-1] = check
    diag.write_text(json.dumps(doc))
    row = read_row(RunDir(run).analysis_dir, RunDir(run), "run")
    assert row.deviation == "engine deviation: warn, 92 % of checked frames beyond the limit"


def test_replicas_are_rows_with_their_own_answers(tmp_path: Path) -> None:
    run = _analysed(replica_run(tmp_path / "rep", [60, None], n_frames=200))
    c = compare_runs([run])
    got = [(r.name, r.kind) for r in c.rows]
    own = [
        (f"rep/{p.name}", MatchResult.load(p).answer["kind"])
        for p in sorted(RunDir(run).analysis_dir.glob("replica-*"))
    ]
    assert got == own


def test_a_missing_run_is_a_row_that_says_so(screen_dir: Path, tmp_path: Path) -> None:
    c = compare_runs([screen_dir / "A-s0", tmp_path / "never"])
    assert _row(c, "never").kind == "not built"


# --------------------------------------------------------------------------- the same file for every command


def test_compare_reads_the_runs_submit_reads(compared: Comparison, screen_dir: Path) -> None:
    from cellsim.workflow.campaign import load_campaign_yaml

    runs, _ = load_campaign_yaml(screen_dir / "campaign.yaml")
    assert [Path(r.run_dir or "") for r in compared.rows] == runs


def test_cli_status_takes_the_campaign_file(screen_dir: Path) -> None:
    r = runner.invoke(app, ["status", str(screen_dir / "campaign.yaml")])
    assert r.exit_code == 0, r.output


def test_cli_status_shows_each_runs_answer(screen_dir: Path) -> None:
    r = runner.invoke(app, ["status", str(screen_dir / "campaign.yaml")], env={"COLUMNS": "400"})
    rows = [ln for ln in r.output.splitlines() if "-s0" in ln or "-s1" in ln]
    assert [("products" in ln, "none" in ln) for ln in rows] == [(True, False), (True, False), (False, True)]


def test_cli_status_lists_a_matrixs_unbuilt_runs(tmp_path: Path) -> None:
    m = tmp_path / "m.yaml"
    m.write_text("name: m\nstudy: li6ps5cl_li\nout: runs\nmatrix: {seed: 2}\n")
    r = runner.invoke(app, ["status", str(m)], env={"COLUMNS": "400"})
    assert (r.exit_code, r.output.count("not built")) == (0, 2), r.output


def test_cli_compare_takes_the_campaign_file(screen_dir: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["compare", str(screen_dir / "campaign.yaml"), "-o", str(tmp_path / "c")])
    assert (r.exit_code, (tmp_path / "c" / "compare.html").is_file()) == (0, True), r.output


def test_cli_compare_prints_the_ranking(screen_dir: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["compare", str(screen_dir / "campaign.yaml"), "-o", str(tmp_path / "c")])
    assert "A-s0: products: " in r.output


def test_cli_compare_refuses_a_file_among_runs(screen_dir: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["compare", str(screen_dir / "A-s0"), str(screen_dir / "campaign.yaml")])
    assert (r.exit_code, "give one matrix or campaign file" in r.output) == (2, True), r.output


def test_cli_report_of_several_runs_points_to_compare(screen_dir: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(screen_dir / "A-s0", a)
    shutil.copytree(screen_dir / "B-s0", b)
    r = runner.invoke(app, ["report", str(a), str(b)], env={"COLUMNS": "400"})
    assert (r.exit_code, f"cellsim compare {a} {b}" in r.output) == (0, True), r.output


def test_cli_match_of_several_runs_matches_each(screen_dir: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(screen_dir / "A-s0", a)
    shutil.copytree(screen_dir / "B-s0", b)
    r = runner.invoke(app, ["match", str(a), str(b), "--no-mp", "--no-thermo", "--no-reactant-md"])
    assert (r.exit_code, r.output.count("answer: ")) == (0, 2), r.output


@pytest.mark.slow
def test_comparison_in_headless_chromium(compared: Comparison, screen_dir: Path, tmp_path: Path) -> None:
    from conftest import open_in_chromium

    title, images, problems, text = open_in_chromium(screen_dir / "compare" / "compare.html", tmp_path / "c.png")
    broken = [alt for alt, complete, width in images if not complete or width == 0]
    shown = (title, len(images), broken, problems, "Ranking (most reactive first)" in text)
    assert shown == ("cellsim compare: synthetic", 2, [], [], True)


TINY = """name: tiny
study: li6ps5cl_li
set:
  interface.min_atoms: 40
  interface.max_atoms: 120
  interface.min_lateral: 7.0
  interface.electrolyte.min_thickness: 5.0
  interface.metal.min_thickness: 4.0
out: tinyruns
matrix:
  termination: [0, 1]
"""


@pytest.fixture(scope="module")
def submitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    """`cellsim submit MATRIX` with a queue it refuses: the matrix's runs are built first, then the refusal."""
    root = tmp_path_factory.mktemp("submit")
    (root / "tiny.yaml").write_text(TINY)
    r = runner.invoke(app, ["submit", str(root / "tiny.yaml"), "--queue", "nonsense"])
    return root, r.exit_code, r.output


def test_cli_submit_builds_the_matrixs_runs(submitted: tuple[Path, int, str]) -> None:
    root, code, output = submitted
    built = [RunDir(root / "tinyruns" / n).is_run for n in ("t0", "t1")]
    assert (code, built) == (2, [True, True]), output


def test_cli_status_reads_the_matrix_submit_built(submitted: tuple[Path, int, str]) -> None:
    root, _, _ = submitted
    r = runner.invoke(app, ["status", str(root / "tiny.yaml")], env={"COLUMNS": "400"})
    assert (r.exit_code, r.output.count("0 of 0 complete")) == (0, 2), r.output


def test_the_onset_panel_does_not_say_nothing_changed_beside_a_reacting_seed(
    compared: Comparison, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy

    import cellsim.reporting.compare_figures as cf
    from cellsim.reporting.compare import comparison_figures

    seen: dict[str, list] = {}
    original = cf.ranking_plot

    def capture(panels, title):
        seen.update({name: pts for name, pts in panels})
        return original(panels, title)

    monkeypatch.setattr(cf, "ranking_plot", capture)
    c = copy.deepcopy(compared)
    for g in c.groups:
        for r in g.rows:
            r.onset_ps = None
    c.groups[0].rows[0].kind = "reaction"  # a reaction seen only late: no onset dated
    for r in c.groups[1].rows:
        r.kind = "none"
    comparison_figures(c)
    onset = seen["onset (ps): bonds leave the first frames' noise"]
    assert onset[0].missing == "no onset dated: the change was seen late only"
    assert onset[1].missing == "no onset: nothing left its noise"


def test_a_possible_product_with_no_atom_in_its_environments_has_no_amount_of_zero() -> None:
    from cellsim.reporting.compare import ProductRow, RunGroup

    empty = ProductRow("In2S3", "possible", 0.0, 0.0, 0.0, "S")
    assert empty.text() == "In2S3 (possible, distances only: no S atom in its environments)"
    assert ProductRow("InS", "possible", 1.0, 0.0, 2.0, "S").text() == "InS (possible, ~1 S [0-2])"
    rows = [RunRow(name=f"s{k}", folder=f"s{k}", run_dir=None, kind="reaction") for k in range(3)]
    rows[0].products = [empty]
    group = RunGroup("t1", rows)
    assert group.products_text() == "In2S3 (possible 1/3, distances only: no S atom in its environments)"


def test_a_student_run_names_its_student_not_its_teacher() -> None:
    from types import SimpleNamespace

    from cellsim.reporting.compare import _engine_text

    d = SimpleNamespace(engine=[])
    teacher = {"name": "chgnet", "model_path": "/x/fits/chgnet-in-pbe/model.pth.tar"}
    assert _engine_text({"engine": teacher}, d) == "chgnet (chgnet-in-pbe)"  # type: ignore[arg-type]
    student = {**teacher, "student": "/x/fits/student-in-pbe"}
    got = _engine_text({"engine": student}, d)  # type: ignore[arg-type]
    assert got == "student student-in-pbe of chgnet (chgnet-in-pbe)"
