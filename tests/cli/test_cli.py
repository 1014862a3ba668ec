"""The command line: build, refs, study-schema, demo, and error exits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cellsim.cli import app

runner = CliRunner()


def test_build_command(tmp_path: Path, repo: Path) -> None:
    out = tmp_path / "x"
    r = runner.invoke(app, ["build", str(repo / "workflows" / "li6ps5cl_in.yaml"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "PS4 units" in r.output and "16 of 16 P whole" in r.output
    report = json.loads((out / "interface" / "interface.json").read_text())
    assert 250 <= report["n_atoms"] <= 450
    # second run reuses the finished interface, --force rebuilds
    r = runner.invoke(app, ["build", "li6ps5cl_in", "-o", str(out)])
    assert r.exit_code == 0 and "already built" in r.output
    mtime = (out / "interface" / "POSCAR").stat().st_mtime_ns
    r = runner.invoke(app, ["build", "li6ps5cl_in", "-o", str(out), "--force"])
    assert r.exit_code == 0
    assert (out / "interface" / "POSCAR").stat().st_mtime_ns != mtime


def test_build_error_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninterface:\n  metal: {phase: Unobtainium}\n")
    r = runner.invoke(app, ["build", str(bad), "-o", str(tmp_path / "r")])
    assert r.exit_code == 2
    assert "unknown phase 'Unobtainium'" in r.output
    assert not (tmp_path / "r" / "interface").exists()


def test_refs_list_and_show() -> None:
    r = runner.invoke(app, ["refs", "list"])
    assert r.exit_code == 0
    for name in ("Li6PS5Cl", "In2S3", "InCl", "InCl3", "InS", "Li"):
        assert name in r.output
    r = runner.invoke(app, ["refs", "show", "In2S3"])
    assert r.exit_code == 0, r.output
    assert "I4_1/amd" in r.output and "7.5937" in r.output and "In-S" in r.output and "mp-22216" in r.output
    r = runner.invoke(app, ["refs", "show", "Nope"])
    assert r.exit_code == 2 and "unknown phase 'Nope'" in r.output


def test_study_schema() -> None:
    r = runner.invoke(app, ["study-schema"])
    assert r.exit_code == 0 and "max_strain: 0.03" in r.output


@pytest.mark.slow
def test_demo_resumes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = runner.invoke(app, ["demo", "-o", str(out), "--time", "6fs"])
    assert r.exit_code == 0, r.output
    assert (out / "interface" / "POSCAR").is_file() and (out / "study.yaml").is_file()
    assert (out / "md" / "seg-000" / "XDATCAR").is_file() and (out / "analysis" / "rdf.csv").is_file()
    r = runner.invoke(app, ["demo", "-o", str(out), "--time", "6fs"])
    assert r.exit_code == 0 and "already built" in r.output and "(0 run now" not in r.output


# --------------------------------------------------------------------------- conventions (issue 20)


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the real entry point (cellsim.cli.main, as the `cellsim` command does) and capture its output."""
    from cellsim.cli import main

    # an exit status, never a message (sys.exit("text") is an error path that skipped the CLI's handling)
    with pytest.raises(SystemExit, match=r"^\d*$") as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["analyze", "--windw", "1", "x"], "cellsim analyze: no such option --windw; did you mean --window?"),
        (["analyse"], "cellsim: no such command 'analyse'; did you mean 'analyze'?"),
        (["analyze"], "cellsim analyze: missing argument 'targets'"),
        (["analyze", "x", "--dt"], "cellsim analyze: option '--dt' requires an argument"),
        (["--versoin"], "cellsim: no such option --versoin; did you mean --version?"),
        (["refs", "shw", "In"], "cellsim refs: no such command 'shw'; did you mean 'show'?"),
        (["run", "x", "--seeds", "two"], "cellsim run: invalid value for '--seeds'"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str
) -> None:
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path))
    code, out, err = _main(capsys, *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + expected), err
    assert "unexpected" not in err and "please report" not in err
    assert not (tmp_path / "logs").exists()  # no crash log for a typo


def _names() -> list[str]:
    import typer.main

    from cellsim.cli import app

    cmds = [c.name or typer.main.get_command_name(c.callback.__name__) for c in app.registered_commands]  # type: ignore[union-attr]
    return [*cmds, *(str(g.name) for g in app.registered_groups)]


@pytest.mark.parametrize("extra", [["--help"], ["--no-such-option"]], ids=["help", "usage error"])
def test_one_command_app_parses_as_the_whole_app(capsys: pytest.CaptureFixture[str], extra: list[str]) -> None:
    """main builds only the named command (or group) under the root: its help and its usage errors are the
    whole app's, for every command and group; a name that is none of them goes to the whole app."""
    import typer.main

    from cellsim.cli import _app_for, app

    names = _names()
    assert len(names) >= 15 and "analyze" in names and "engines" in names
    for name in names:
        one = _app_for([name, *extra])
        assert one is not app and len(typer.main.get_command(one).commands) == 1  # type: ignore[attr-defined]
        outs = []
        for a in (one, app):
            try:
                a(args=[name, *extra], prog_name="cellsim", standalone_mode=False)
                raised = ""
            except Exception as exc:  # a usage error: the same class and message from both
                raised = f"{type(exc).__name__}: {exc}"
            outs.append((raised, capsys.readouterr()))
        assert outs[0] == outs[1], name
        assert (outs[0][0] != "") == (extra != ["--help"]) and (extra != ["--help"] or "Usage:" in outs[0][1].out)
    assert _app_for(["analyse"]) is app and _app_for(["--version"]) is app and _app_for([]) is app


def test_usage_errors_caught_from_the_click_typer_parses_with() -> None:
    """typer may carry its own click (typer._click): its exception classes are the ones caught."""
    import importlib

    import typer.main

    from cellsim.cli import _click_modules

    theirs = getattr(typer.main, "_click", None) or typer.main.click  # type: ignore[attr-defined]
    assert importlib.import_module(theirs.__name__ + ".exceptions") in _click_modules()


def test_version_and_completion(capsys: pytest.CaptureFixture[str]) -> None:
    import cellsim

    code, out, _ = _main(capsys, "--version")
    assert code == 0 and out.strip() == f"cellsim {cellsim.__version__}"
    code, out, _ = _main(capsys, "--help")
    assert code == 0 and "--install-completion" in out and "--show-completion" in out


def test_shell_completion_completes_commands(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "_CELLSIM_COMPLETE": "complete_bash", "COMP_WORDS": "cellsim anal", "COMP_CWORD": "1"}
    r = subprocess.run(
        [sys.executable, "-c", "from cellsim.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.stdout.split() == ["analyze"], (r.stdout, r.stderr)


@pytest.mark.parametrize("entry", ["console_main()", "main(['--version'])"])
def test_the_console_entry_freezes_what_is_left_at_exit(tmp_path: Path, entry: str) -> None:
    """The console script freezes the objects left at exit (the shutdown collections then skip them); a program
    calling main() itself is left as it was. A callback registered before runs after the freeze (atexit runs
    last-in first-out) and counts the frozen objects; the command's output and exit code are the same."""
    import subprocess
    import sys

    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: sys.stderr.write(f'frozen {gc.get_freeze_count()}\\n'))\n"
        "from cellsim.cli import console_main, main\n"
        f"{entry}\n"
    )
    argv = ["--version"] if entry.startswith("console") else []
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("cellsim "), (r.stdout, r.stderr)
    frozen = int(r.stderr.split("frozen ")[-1].split()[0])
    assert (frozen > 1000) if entry.startswith("console") else (frozen == 0), r.stderr


def test_piped_tables_are_not_wrapped(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    code, out, _ = _main(capsys, "refs", "show", "In2S3")
    assert code == 0
    row = next(line for line in out.splitlines() if "│ source" in line)
    # the long source cell stays on its row: at a terminal's 80 columns it wrapped over five lines
    assert "beta-In2S3" in row and "Numbers from the AFLOW prototype library." in row
    assert "7.5937 b=7.5937 c=32.3520 A" in out


def test_console_width_follows_the_terminal_or_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from cellsim.cli._app import PIPE_WIDTH, _Console

    monkeypatch.delenv("COLUMNS", raising=False)
    assert _Console(file=io.StringIO()).width == PIPE_WIDTH
    assert _Console(file=io.StringIO(), force_terminal=True).width < PIPE_WIDTH
    monkeypatch.setenv("COLUMNS", "100")
    assert _Console(file=io.StringIO()).width == 100


def test_demo_refuses_an_unknown_study_naming_the_closest(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _main(capsys, "demo", "--study", "li6ps5cl-li", "-o", str(tmp_path / "d"))
    assert code == 2
    assert err.strip().splitlines() == [
        "error: --study 'li6ps5cl-li': not a bundled study or a study file; did you mean li6ps5cl_li? "
        "(bundled: li3ps4_in, li6ps5cl_in, li6ps5cl_in_fitted, li6ps5cl_in_student, li6ps5cl_li, li6ps5cl_liin)"
    ]
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_demo_runs_another_bundled_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["demo", "--study", "li6ps5cl_li", "--time", "4fs"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "runs" / "demo-li6ps5cl_li"  # its own default folder, beside the paper's runs/demo
    assert "cellsim demo: li6ps5cl_li: Li6PS5Cl / Li" in r.output and "CHGNet fit for Li and Li6PS5Cl" in r.output
    assert "name: li6ps5cl_li" in (out / "study.yaml").read_text()
    assert (out / "analysis" / "rdf.csv").is_file() and (out / "report" / "report.html").is_file()
