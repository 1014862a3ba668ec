"""Declared dependencies are what the code imports, with ranges the installed (tested) versions satisfy."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions, version
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
# installed before cellsim from the CPU wheel index (Makefile): declaring it would let pip pull the CUDA build
NOT_DECLARED = {"torch"}
# installed by `make install` after the others, without its pins (mace-torch pins e3nn==0.4.4, sevenn needs >= 0.5,
# so no resolver installs both): the student's network (cellsim.engines.student, docs/student.md), imported only
# where a student is trained or loaded; its own requirements are the `student` extra
INSTALLED_APART = {"mace"}


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(d) for d in project["dependencies"]]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_dependency_has_a_tested_range() -> None:
    for req in _requirements():
        spec = {s.operator for s in req.specifier}
        assert ">=" in spec and "<" in spec, f"{req}: give a lower and an upper bound"
        got = version(req.name)
        assert req.specifier.contains(got, prereleases=True), f"{req}: installed {req.name} {got} is outside it"


def test_every_imported_package_is_declared() -> None:
    declared = {_norm(r.name) for r in _requirements()}
    owners = packages_distributions()
    missing: dict[str, set[str]] = {}
    for path in (REPO / "cellsim").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                skip = NOT_DECLARED | INSTALLED_APART
                if top in sys.stdlib_module_names or top in ("cellsim", "__future__") or top in skip:
                    continue
                dists = {_norm(d) for d in owners.get(top, [top])}
                if not dists & declared:
                    missing.setdefault(top, set()).add(str(path.relative_to(REPO)))
    assert not missing, f"imported but not in [project] dependencies: {missing}"
