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


def test_matching_doc_numbers_are_the_code_defaults(repo: Path) -> None:
    from cellsim.analysis import environments
    from cellsim.config.study import MatchSpec
    from cellsim.products import answer, baseline, verdicts

    text = (repo / "docs" / "matching.md").read_text()
    spec = MatchSpec()
    for name in (
        "late_fraction",
        "min_new",
        "min_new_fraction",
        "position_tolerance",
        "threshold",
        "energy_above_hull",
    ):
        assert f"`match.{name}` ({getattr(spec, name):g}" in text, name
    assert f"{baseline.BOOTSTRAP} bootstrap" in text
    assert f"low end >= {verdicts.FORMED_LOWER:g} x threshold" in text
    assert f"score >= {verdicts.POSSIBLE_FRACTION:g} x threshold" in text
    assert f"first {round(100 * baseline.EARLY_FRACTION)} %" in text
    assert f"within {baseline.EARLY_MAX_PS:g} ps" in text
    assert f"up to {environments.MAX_SAMPLES} evenly" in text
    assert f"within {verdicts.GROUP_SCORE_GAP:g} of its" in text
    assert f"fewer than {answer.JUDGE_MIN_FRAMES} frames or {answer.JUDGE_MIN_WINDOWS} windows" in text
    assert f"more than {round(100 * answer.MOTIF_LOSS)} % of the PS4" in text
    from cellsim.products import amounts

    assert f"less than {amounts.MIN_DISTINCT:g} neighbours" in text
    assert f"cosine >= {amounts.GROUP_COSINE:g}" in text
    assert f"weights reach {amounts.REACTED_WEIGHT:g}" in text
    assert f"gained at least {amounts.MIN_GAIN:g} partners" in text
    assert f"{amounts.BOOTSTRAP} bootstrap resamples of the early and late samples" in text
    assert f"holds at least {amounts.MIN_ATOMS:g} atoms" in text
    assert "differ by at least one neighbour" in text and amounts.MIN_CHANGE == 1.0


def test_study_doc_lists_every_section(repo: Path) -> None:
    from cellsim.config.study import Study

    text = (repo / "docs" / "study.md").read_text()
    for section in Study.model_fields:
        if section not in ("name", "description"):
            assert f"| `{section}` |" in text, section


# pairs a recorded run has that docs/reproducing.md does not quote: Li on Li6PS5Cl's Li-Cl count (64 -> 69) is
# not part of its answer (the Li-S, Li-P and P-S changes are)
_PAIRS_NOT_QUOTED = {"li6ps5cl_li.json": {"Li-Cl"}}


def test_reproducing_quotes_its_recorded_runs(repo: Path) -> None:
    """docs/reproducing.md's numbers are those of the runs recorded in docs/records (scripts/record_run.py)."""
    import json

    text = " ".join((repo / "docs" / "reproducing.md").read_text().split())
    records = sorted((repo / "docs" / "records").glob("*.json"))
    assert records
    for path in records:
        rec = json.loads(path.read_text())
        assert rec["answer"] in text, (path.name, rec["answer"])
        bonds = rec["bonds first -> last frame"]
        quoted = {pair for pair, counts in bonds.items() if f"{pair} {counts}" in text}
        # every pair of a record is quoted with its counts, but the ones its paragraph leaves out on purpose
        assert quoted == set(bonds) - _PAIRS_NOT_QUOTED.get(path.name, set()), (path.name, bonds)
