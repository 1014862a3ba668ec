"""A non-editable install carries everything needed at run time (study files, templates, references)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest


@pytest.mark.slow
def test_wheel_contents_and_run_from_wheel(repo: Path, tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
            str(repo),
        ],
        check=True,
    )
    (wheel,) = wheel_dir.glob("cellsim-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "cellsim/_shipped/workflows/li6ps5cl_in.yaml",
        "cellsim/_shipped/templates/vasp_md_incar.yaml",
        "cellsim/references/data/SOURCES.md",
        "cellsim/references/data/library.json",
        "cellsim/references/data/Li6PS5Cl_F-43m.cif",
        "cellsim/references/data/In2S3_I41amd.cif",
    ):
        assert required in names, required
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)], check=True
    )
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import cellsim, sys; assert cellsim.__file__.startswith(sys.argv[1]), cellsim.__file__;"
        "from cellsim.cli import app; app(['build', 'li6ps5cl_in', '-o', 'run'])"
    )
    subprocess.run([sys.executable, "-c", code, str(target)], check=True, cwd=workdir, env=env)
    assert (workdir / "run" / "interface" / "POSCAR").is_file()


def test_tool_settings_sit_under_their_tool(repo: Path) -> None:
    """The mypy plugin is mypy's setting; hatch's wheel target takes no `plugins` key."""
    import tomllib

    conf = tomllib.loads((repo / "pyproject.toml").read_text())
    assert "plugins" not in conf["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert conf["tool"]["mypy"]["plugins"] == ["pydantic.mypy"]
