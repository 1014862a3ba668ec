"""The analysis folder's and the report's file names are spelled in cellsim/config/rundir.py only (issue 35), as
the run directory's paths are (tests/core/test_api.py)."""

from __future__ import annotations

import re
from pathlib import Path

from cellsim.config.rundir import AnalysisFiles, RunDir, frame_file, replica_name, report_html, report_md

REPO = Path(__file__).resolve().parents[2]

NAMES = re.compile(
    r"[\"'](analysis\.json|rdf\.csv|rdf\.npz|bonds\.csv|peaks\.json|diagnostics\.json|match\.json|products\.csv"
    r"|ref_rdf\.npz|report\.html|report\.md)[\"']|_frame\.vasp|/ \"report\""
)
# modules that still spell the names, each owned by another change: the replacements are listed in issue 35's
# report; a module leaves this set when it uses cellsim.config.rundir's names
PENDING: set[str] = set()


def _hits() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / "cellsim").rglob("*.py")):
        if path.name == "rundir.py":
            continue
        rel = str(path.relative_to(REPO))
        for k, line in enumerate(path.read_text().splitlines(), 1):
            if NAMES.search(line):
                found.setdefault(rel, []).append(f"{rel}:{k}: {line.strip()}")
    return found


def test_only_rundir_spells_analysis_file_names() -> None:
    found = _hits()
    hits = [h for rel, lines in found.items() if rel not in PENDING for h in lines]
    assert not hits, "\n".join(hits)
    stale = sorted(PENDING - set(found))
    assert not stale, f"no longer spelling the names (remove from PENDING): {stale}"


def test_analysis_files_paths(tmp_path: Path) -> None:
    files = AnalysisFiles(tmp_path)
    got = [
        files.manifest,
        files.rdf_csv,
        files.rdf_npz,
        files.bonds_csv,
        files.peaks,
        files.diagnostics,
        files.match,
        files.products_csv,
        files.ref_rdf,
        files.frame("first"),
    ]
    assert [p.name for p in got] == [
        "analysis.json",
        "rdf.csv",
        "rdf.npz",
        "bonds.csv",
        "peaks.json",
        "diagnostics.json",
        "match.json",
        "products.csv",
        "ref_rdf.npz",
        "first_frame.vasp",
    ]
    assert all(p.parent == tmp_path for p in got)
    assert frame_file("last") == "last_frame.vasp" and replica_name(3) == "replica-03"
    rd = RunDir(tmp_path)
    assert rd.analysis_files == AnalysisFiles(rd.analysis_dir)
    assert report_html(rd.report_dir) == tmp_path / "report" / "report.html"
    assert report_md(files.report_dir) == tmp_path / "report" / "report.md"


def test_an_archived_segments_compressed_oszicar_is_its_energy_file(tmp_path: Path) -> None:
    """A segment kept compressed (XDATCAR.xz and OSZICAR.xz) still gives its energies and the deviation record
    beside them; a plain OSZICAR is preferred where both exist."""
    from cellsim.config.rundir import RunDir

    rd = RunDir(tmp_path)
    for k, names in enumerate(
        (["XDATCAR", "OSZICAR"], ["XDATCAR.xz", "OSZICAR.xz"], ["XDATCAR", "OSZICAR", "OSZICAR.gz"])
    ):
        seg = rd.segment_dir(k)
        seg.mkdir(parents=True)
        for n in names:
            (seg / n).write_text("")
    assert [(f.parent.name, f.name) for f in rd.energy_files()] == [
        ("seg-000", "OSZICAR"),
        ("seg-001", "OSZICAR.xz"),
        ("seg-002", "OSZICAR"),
    ]
