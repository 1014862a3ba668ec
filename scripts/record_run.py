"""Record the numbers docs/reproducing.md quotes from a finished run directory (analysis + match).

    .venv/bin/python scripts/record_run.py runs/demo demo > docs/records/demo.json

tests/core/test_docs.py checks that every number of every record under docs/records appears in
docs/reproducing.md, so the page cannot drift from the runs it describes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def record(run: Path, label: str) -> dict:
    analysis = json.loads((run / "analysis" / "analysis.json").read_text())
    peaks = json.loads((run / "analysis" / "peaks.json").read_text())
    match = json.loads((run / "analysis" / "match.json").read_text())
    diag = json.loads((run / "analysis" / "diagnostics.json").read_text())
    bonds = {}
    for pair, d in peaks["pairs"].items():
        b = d["bonds"]
        bonds[pair] = f"{b['initial']} -> {b['final']}"
    checks = {c["name"]: c["message"] for c in diag.get("checks", [])}
    return {
        "label": label,
        "study": analysis.get("study"),
        "atoms": sum(analysis["element_counts"].values()),
        "frames": analysis["frames"],
        "bonds first -> last frame": bonds,
        "answer": match["answer"]["sentence"],
        "metal order": checks.get("metal order", ""),
        "PS4 integrity": checks.get("PS4 integrity", ""),
    }


if __name__ == "__main__":
    print(json.dumps(record(Path(sys.argv[1]), sys.argv[2]), indent=1))
