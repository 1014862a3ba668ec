from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# keep torch (later stages) from spinning on a shared 2-core machine
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The paper's interface, built once for the whole session through the CLI's build function."""
    from cellsim.stages import build as run_build

    run_dir = tmp_path_factory.mktemp("paper") / "run"
    run_build(str(REPO / "workflows" / "li6ps5cl_in.yaml"), run_dir)
    return run_dir


def fake_vasp_frames(poscar: Path, n: int) -> np.ndarray:
    """The fake VASP's deterministic trajectory (tests/fake_vasp/fake_vasp.py) from a starting POSCAR."""
    from pymatgen.io.vasp import Poscar

    x = Poscar.from_file(poscar).structure.frac_coords.copy()
    out = []
    for k in range(n):
        x = (x + (0.0005 * np.sin(0.1 * k + np.arange(len(x))))[:, None]) % 1.0
        out.append(x.copy())
    return np.array(out)


@pytest.fixture(scope="session")
def expected_frames() -> Callable[[Path, int], np.ndarray]:
    return fake_vasp_frames


def _git_status() -> str | None:
    import subprocess

    try:
        r = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout if r.returncode == 0 else None


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STATUS] = _git_status()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite must leave the working tree as it found it (no launcher_* folders, no outputs)."""
    before = session.config.stash.get(_STATUS, None)
    after = _git_status()
    if before is None or after is None or before == after:
        return
    new = sorted(set(after.splitlines()) - set(before.splitlines()))
    if new:
        print("\nthe test suite changed the working tree:\n  " + "\n  ".join(new[:20]))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_STATUS = pytest.StashKey[str | None]()


def open_in_chromium(html: Path, screenshot: Path) -> tuple[str, list[list[object]], list[str], str]:
    """Load a report in headless Chromium: (title, [alt, complete, width] per image, problems, body text).

    Skips the calling test when Chromium is not installed (`make test` installs it when run as root).
    """
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (make test installs it with apt-get when run as root)")
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url[:80]}"))
        page.goto(html.as_uri(), wait_until="load")
        images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        title = page.title()
        text = page.inner_text("body")
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return title, images, problems, text


@pytest.fixture
def engines_cli() -> Any:
    """A typer app with `engines` as a sub-command, as on the main CLI (a second command keeps it one)."""
    import typer

    from cellsim.cli.engines import engines_app

    app = typer.Typer()
    app.add_typer(engines_app, name="engines")

    @app.command()
    def other() -> None:
        pass

    return app
