"""The package's shape: layers that follow the data flow, no import circles, no import-time side effects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (
    "core",
    "config",
    "references",
    "io",
    "analysis",
    "build",
    "inputsets",
    "engines",
    "products",
    "reporting",
    "workflow",
    "cli",
)


def _graph() -> dict[str, set[str]]:
    grimp = pytest.importorskip("grimp")
    g = grimp.build_graph("cellsim", include_external_packages=False)
    return {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}


def _cycles(adj: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(adj):
        if root in index:
            continue
        work = [(root, iter(sorted(adj[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(adj.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_cycle() -> None:
    # the control: a circle through three modules and a self-contained one
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    """Every import counts, those inside functions too: a circle there is a circle in the design."""
    assert _cycles(_graph()) == []


def test_layers_contract_is_kept() -> None:
    """pyproject's import-linter contract (the data flow as layers) holds; `make lint` runs it too."""
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    proc = subprocess.run([str(exe)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_the_tree_names_the_data_flow() -> None:
    for name in PACKAGES:
        assert (REPO / "cellsim" / name / "__init__.py").is_file(), name


PROBE = r"""
import importlib, json, logging, os, pkgutil, sys, warnings
import cellsim

# a dependency's own import-time behaviour is not cellsim's (custodian sets KMP_DUPLICATE_LIB_OK and adds
# warning filters, for one): they are imported first, so what is left is what cellsim's modules do
for dep in DEPS:
    importlib.import_module(dep)

def state():
    s = {"filters": len(warnings.filters), "env": dict(os.environ), "cwd": sorted(os.listdir(".")),
         "levels": {n: logging.getLogger(n).level for n in ("", "fireworks", "launchpad", "custodian")},
         "foreign": sorted(m for m in sys.modules if m.startswith("cellsim") and importlib.util.find_spec(m) is None)}
    if "matplotlib" in sys.modules:
        import matplotlib
        s["backend"] = str(matplotlib.rcParams._get_backend_or_none())
    if "fireworks.core.rocket" in sys.modules:
        s["ping"] = sys.modules["fireworks.core.rocket"].ping_launch.__module__
    mask = os.umask(0o022); os.umask(mask); s["umask"] = mask
    return s

names = sorted(m.name for m in pkgutil.walk_packages(cellsim.__path__, "cellsim.") if m.name != "cellsim.cli.__main__")
bad = {}
for name in names:
    before = state()
    importlib.import_module(name)
    after = state()
    diff = {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
            if k != "backend" and before.get(k) != after.get(k)}
    if before.get("backend") not in (None, after.get("backend")) or (after.get("backend") not in (None, "None")):
        diff["backend"] = (before.get("backend"), after.get("backend"))
    if diff:
        bad[name] = {k: str(v)[:300] for k, v in diff.items()}
print(json.dumps({"modules": len(names), "bad": bad}))
"""


def test_every_module_imports_without_side_effects(tmp_path: Path) -> None:
    """Importing a module changes nothing: warning filters, logging, environment, files, umask, backends."""
    env = {k: v for k, v in __import__("os").environ.items() if k != "MPLBACKEND"}
    deps = [
        "numpy",
        "scipy",
        "yaml",
        "pydantic",
        "ase",
        "pymatgen.core",
        "custodian.vasp.jobs",
        "custodian.vasp.handlers",
        "fireworks",
        "typer",
        "rich",
    ]
    proc = subprocess.run(
        [sys.executable, "-c", f"DEPS = {deps!r}\n" + PROBE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["modules"] > 50
    assert out["bad"] == {}, json.dumps(out["bad"], indent=1)


def test_the_fireworks_tweaks_end_with_the_store(tmp_path: Path) -> None:
    """The store quiets FireWorks only while it is open; closing it puts every setting back."""
    code = r"""
import logging, sys, warnings
from pathlib import Path
from cellsim.config.rundir import RunDir
from cellsim.workflow.store import WorkflowStore
level = logging.getLogger("fireworks").level
with WorkflowStore(RunDir(Path(sys.argv[1]))) as s:
    import fireworks.core.rocket as rocket
    ours = [f for f in warnings.filters if "fireworks" in str(getattr(f[3], "pattern", f[3]))]
    inside = (rocket.ping_launch.__module__, logging.getLogger("fireworks").level, len(ours))
left = [f for f in warnings.filters if f in ours]
print(inside, (rocket.ping_launch.__module__, logging.getLogger("fireworks").level, len(left)), level)
"""
    (tmp_path / "run" / "workflow").mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "run")], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "'cellsim.workflow.store', 40, 2)" in proc.stdout  # quiet while open: our ping, ERROR, 2 filters
    assert "('fireworks.core.rocket', 0, 0) 0" in proc.stdout, proc.stdout  # all back once closed


def test_architecture_doc_names_every_package_and_module() -> None:
    """docs/architecture.md is drawn from the tree: every package, and every module by its file name."""
    doc = (REPO / "docs" / "architecture.md").read_text()
    missing = []
    for path in sorted((REPO / "cellsim").rglob("*.py")):
        rel = path.relative_to(REPO / "cellsim")
        if rel.name in ("__init__.py", "__main__.py") or rel.name.startswith("_"):
            continue
        if rel.parts[0] == "cli":  # one module per stage group, named by its verbs in docs/cli.md
            continue
        stem = rel.with_suffix("").as_posix()
        short = rel.stem
        if f"cellsim/{stem}" not in doc and f"`{short}.py`" not in doc and f"`{short}`" not in doc:
            missing.append(stem)
    for name in PACKAGES:
        if f"cellsim/{name}/" not in doc:
            missing.append(f"{name}/")
    assert not missing, missing
