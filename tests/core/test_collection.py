"""Every folder and module of tests/ that holds tests is collected by a plain `pytest` run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"


def test_every_test_folder_and_module_is_collected() -> None:
    # a subprocess with the project's own configuration (testpaths, norecursedirs), as `make test` runs it:
    # pytest's default norecursedirs once hid tests/build without any skip or warning
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    collected = {line.split("::", 1)[0] for line in r.stdout.splitlines() if "::" in line}
    modules = {p.relative_to(REPO).as_posix() for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts}
    assert "tests/build/test_build.py" in modules  # the folder the default configuration skipped
    folders = {m.rsplit("/", 1)[0] for m in modules}
    missing_folders = sorted(folders - {c.rsplit("/", 1)[0] for c in collected})
    assert not missing_folders, f"test folders never collected: {missing_folders}"
    missing = sorted(modules - collected)
    assert not missing, f"test modules that collect nothing: {missing}"


def test_every_pytest_raises_names_its_message() -> None:
    """A bare ``pytest.raises(SomeError)`` passes on any error of that type, the wrong one included: each names
    its message with ``match=`` (or reads ``err.value`` right after, in the lines that follow)."""
    import re

    tests = Path(__file__).resolve().parents[1]
    bare = []
    for path in sorted(tests.rglob("test_*.py")):
        lines = path.read_text().splitlines()
        for k, line in enumerate(lines):
            if "pytest.raises(" not in line or "match=" in line:
                continue
            block = "\n".join(lines[k : k + 6])
            if "match=" in block or re.search(r"as \w+:", block):
                continue
            bare.append(f"{path.relative_to(tests)}:{k + 1}: {line.strip()}")
    assert not bare, "\n".join(bare)
