"""docs/performance.md quotes the bench run recorded in docs/records/bench_analysis.csv (bench/bench_analysis.py)."""

from __future__ import annotations

import csv
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_performance_doc_quotes_the_recorded_bench() -> None:
    text = (REPO / "docs" / "performance.md").read_text()
    rows = list(csv.DictReader((REPO / "docs" / "records" / "bench_analysis.csv").open()))
    assert {r["tool"] for r in rows} >= {"cellsim", "cellsim-rdf", "read", "numpy", "mdanalysis", "freud"}
    assert {r["frames"] for r in rows} == {"10000", "100000"}
    quoted = 0
    for r in rows:
        if not r["wall_s"]:
            continue
        cells = [
            r["label"],
            f"{int(r['frames']):,}",
            f"{float(r['wall_s']):.2f}",
            f"{float(r['analysis_s']):.2f}" if r["analysis_s"] else "-",
            f"{float(r['peak_mb']):.0f}",
            f"{float(r['vs_numpy']):.2f}",
        ]
        assert "| " + " | ".join(cells) + " |" in text, cells
        quoted += 1
    assert quoted >= 10
