"""The structure the features stand on (issue 10): public API, one run-directory owner, CLI quantities."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cellsim
from cellsim.testing import reaction_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MP_API_KEY", raising=False)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cellsim.cli", *args], capture_output=True, text=True, timeout=300)


def _examples() -> list[tuple[str, str]]:
    """(heading, code) of each ``## Example...`` section's Python block in docs/python.md."""
    text = (REPO / "docs" / "python.md").read_text()
    out = []
    for section in text.split("\n## ")[1:]:
        if section.startswith("Example"):
            out.append((section.splitlines()[0], section.split("```python", 1)[1].split("```", 1)[0]))
    return out


def test_docs_python_has_the_file_and_the_objects_examples() -> None:
    assert [h for h, _ in _examples()] == ["Example: a trajectory from elsewhere", "Example: ASE and pymatgen objects"]


@pytest.mark.parametrize("heading", [h for h, _ in _examples()])
def test_docs_python_example_runs(heading: str) -> None:
    block = dict(_examples())[heading]
    exec(compile(block, "docs/python.md", "exec"), {})  # the documented example, as written


def test_public_api_signatures() -> None:
    sig = inspect.signature(cellsim.analyze)
    params = sig.parameters
    assert next(iter(params)) == "trajectory_or_run_dir"
    for name in ("dt_fs", "pairs", "window_ps", "out"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY and params[name].default is None
    assert "match" in cellsim.__all__ and "analyze" in cellsim.__all__
    assert (Path(cellsim.__file__).parent / "py.typed").is_file()
    import cellsim.analysis.analyze as aa

    assert inspect.ismodule(aa)
    out = subprocess.run(
        [sys.executable, "-c", "import cellsim; help(cellsim.analyze)"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "analyze(trajectory_or_run_dir" in out and "dt_fs" in out and "Returns" in out


def test_api_accepts_str_paths_and_pair_strings(tmp_path: Path) -> None:
    import warnings

    run = reaction_run(tmp_path / "run", n_frames=200, react_at=100)
    xd = str(run / "md" / "seg-000" / "XDATCAR")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cellsim.analyze(xd, dt_fs=2, pairs="In-S, In-Cl", window_ps=0.05, out=str(tmp_path / "a"))
    assert res.settings.pairs == ["In-S", "In-Cl"]
    df = res.to_dataframe()
    assert list(df.columns) == ["pair", "window", "t_start_ps", "t_end_ps", "r", "g", "n_per_atom", "cn"]
    again = cellsim.analysis.AnalysisResult.load(tmp_path / "a")
    assert again.n_frames == 200 and again.settings == res.settings


def test_one_default_for_api_and_cli() -> None:
    from cellsim.analysis.analyze import AnalysisSettings, bond_cutoffs, default_cutoff
    from cellsim.config.study import AnalysisSpec

    # no study cutoffs: both take the covalent-radii rule (docs/analysis.md), never another study's table
    api = AnalysisSettings(dt_fs=2.0, pairs=["P-S", "In-S"])
    assert bond_cutoffs(api) == bond_cutoffs(AnalysisSpec(pairs=["P-S", "In-S"]))
    assert bond_cutoffs(api) == {"P-S": default_cutoff("P-S"), "In-S": default_cutoff("In-S")}


def test_only_rundir_spells_run_directory_paths() -> None:
    pattern = re.compile(r'"analysis"|"interface"|seg-|"study.yaml"')
    hits = []
    for path in sorted((REPO / "cellsim").rglob("*.py")):
        if path.name == "rundir.py":
            continue
        for k, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(REPO)}:{k}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_cli_does_not_import_circularly() -> None:
    for path in (REPO / "cellsim").rglob("*.py"):
        if "cli" in path.parts:
            continue
        text = path.read_text()
        assert "from cellsim.cli" not in text and "import cellsim.cli" not in text, path


def test_cli_quantities_with_units(tmp_path: Path) -> None:
    run = reaction_run(tmp_path / "run", n_frames=100, react_at=50)
    xd = str(run / "md" / "seg-000" / "XDATCAR")
    r = cli(
        "analyze",
        xd,
        "--dt",
        "2fs",
        "--window",
        "0.02ps",
        "--rmax",
        "6A",
        "--bin-width",
        "0.05A",
        "-o",
        str(tmp_path / "o"),
    )
    assert r.returncode == 0, r.stderr
    res = cellsim.analysis.AnalysisResult.load(tmp_path / "o")
    assert (res.settings.dt_fs, res.settings.window_ps, res.settings.rmax, res.settings.bin_width) == (2, 0.02, 6, 0.05)
    r = cli("analyze", xd, "--window", "20fs", "--dt", "0.002ps", "-o", str(tmp_path / "o2"))
    assert r.returncode == 0, r.stderr
    assert cellsim.analysis.AnalysisResult.load(tmp_path / "o2").settings.window_ps == pytest.approx(0.02)
    bad = {
        ("--dt", "-2"): "--dt",
        ("--dt", "nan"): "--dt",
        ("--dt", "2parsecs"): "unknown unit",
        ("--window", "0"): "--window",
        ("--bin-width", "0"): "--bin-width",
        ("--rmax", "inf"): "--rmax",
        ("--window", "5ps"): "longer than the trajectory",
        ("--pairs", "P-S-Li"): "--pairs",
        ("--pairs", "In-S,In-S"): "listed twice",
        ("--cutoff", "Q-S=3"): "--cutoff",
        ("--normalisation", "slab"): "--normalisation",
    }
    for (opt, val), expect in bad.items():
        r = (
            cli("analyze", xd, "--dt", "2", opt, val, "-o", str(tmp_path / "bad"))
            if opt != "--dt"
            else cli("analyze", xd, opt, val, "-o", str(tmp_path / "bad"))
        )
        assert r.returncode != 0, (opt, val, r.stdout)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and expect in lines[0], (opt, val, r.stderr)
    r = cli("analyze", xd, "--dt", "2", "--dt", "4", "-o", str(tmp_path / "rep"))
    assert r.returncode == 2 and "--dt given more than once" in r.stderr
    r = cli("analyze", xd, "--dt", "2", "--pairs", "In-S", "--pairs", "In-Cl", "-o", str(tmp_path / "two"))
    assert r.returncode == 0, r.stderr
    assert cellsim.analysis.AnalysisResult.load(tmp_path / "two").settings.pairs == ["In-S", "In-Cl"]


def test_unexpected_errors_are_one_line_with_a_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cellsim.cli import main

    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))

    def boom(*a: object, **k: object) -> None:
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(cellsim.stages, "report", boom)
    with pytest.raises(SystemExit, match=r"^1$") as exc:
        main(["report", str(tmp_path)])
    assert exc.value.code == 1
    logs = list((tmp_path / "cache" / "logs").glob("crash-*.log"))
    assert logs and "ZeroDivisionError: planted" in logs[0].read_text()


def test_launch_folders_stay_in_the_run_directory() -> None:
    assert not list(REPO.glob("launcher_*"))
    ignore = (REPO / ".gitignore").read_text()
    assert "launcher_" in ignore


def test_import_cellsim_binds_the_stages_module_and_loads_no_stage() -> None:
    """`cellsim.stages.build` works after a plain `import cellsim` (docs/python.md), and the stage modules load
    on first use only: a fresh interpreter that imports cellsim has none of them."""
    code = (
        "import sys, cellsim\n"
        "assert cellsim.stages.__name__ == 'cellsim.stages'\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('cellsim.stages.'))\n"
        "assert loaded == [], loaded\n"
        "assert callable(cellsim.stages.build) and 'cellsim.stages.building' in sys.modules\n"
        "assert cellsim.analyze is cellsim.stages.analyze\n"
        "assert 'match' in dir(cellsim.stages)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
