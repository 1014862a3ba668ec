"""The documentation that is generated stays current, and the README keeps its two commands first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_cli_reference_is_current(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "typer",
            "cellsim.cli",
            "utils",
            "docs",
            "--name",
            "cellsim",
            "--title",
            "cellsim command-line reference",
            "--output",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    assert out.read_text() == (repo / "docs" / "cli.md").read_text(), "run `make docs` and commit docs/cli.md"


def test_readme_opens_with_the_two_commands(repo: Path) -> None:
    text = (repo / "README.md").read_text()
    first_block = text.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block
    assert "make test" in (repo / ".ci" / "run").read_text()
