"""The paper-claims rows on a stored run of the paper's interface: the bundled demo (fitted CHGNet, 328 atoms, 1 ps;
every 5th frame kept in tests/data/li6ps5cl_in_fitted_demo). The rows must give the counts the paper compared (its
Fig. 5a: the interface model before AIMD against after), say that In-S contacts formed against the as-built model and
did not grow, that P-S was kept, and never call a claim reproduced beside an answer that says no reaction."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
DEMO = DATA / "li6ps5cl_in_fitted_demo"
# the paper's 10 ps on the distilled student (workflows/screens/li6ps5cl_in_10ps.yaml, t0-s0): every 50th frame,
# the teacher's checks and the energies of all 10 segments (compressed)
TEN_PS = DATA / "li6ps5cl_in_student_10ps"


def _rows(tmp: Path, stored: Path) -> tuple[str, str, dict[str, str], list[str]]:
    from cellsim.config.rundir import RunDir
    from cellsim.reporting.data import load_report_data
    from cellsim.reporting.summary import claims_sections
    from cellsim.stages import analysis, products

    run = tmp / stored.name
    shutil.copytree(stored, run)
    analysis.analyze(run)
    m = products.match(run, thermo=False, reactant_md=False)
    rd = RunDir(run)
    d = load_report_data(rd.analysis_dir, rd)
    sections = claims_sections(d)
    assert len(sections) == 1, "one paper (Luo et al. 2021) speaks about Li-P-S-Cl-In"
    title, header, rows, _ = sections[0]
    assert title.startswith("Paper claims (Luo et al.")
    assert header == ["claim", "this run"]
    checks = [c.message for c in d.diagnostics.checks] if d.diagnostics is not None else []
    return m.answer.kind, m.answer.sentence, {r[0]: r[1] for r in rows}, checks


@pytest.fixture(scope="module")
def demo_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, dict[str, str]]:
    return _rows(tmp_path_factory.mktemp("stored"), DEMO)[:3]


@pytest.fixture(scope="module")
def ten_ps(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, dict[str, str], list[str]]:
    return _rows(tmp_path_factory.mktemp("stored"), TEN_PS)


def _counts(text: str, pair: str) -> tuple[int, float, float]:
    got = re.search(rf"{pair} (\d+) as built -> ([\d.]+) in the first frames -> ([\d.]+) in the last third", text)
    assert got is not None, text
    return int(got.group(1)), float(got.group(2)), float(got.group(3))


def test_the_answer_of_the_stored_demo_is_no_reaction(demo_rows: tuple[str, str, dict[str, str]]) -> None:
    kind, sentence, _ = demo_rows
    assert sentence.startswith("No reaction seen"), sentence
    assert kind == "none"


def test_in_s_contacts_formed_against_the_as_built_model_and_did_not_grow(
    demo_rows: tuple[str, str, dict[str, str]],
) -> None:
    _, _, rows = demo_rows
    row = rows["In-S bonds form and grow from ~1 ps"]
    assert row.startswith("contacts formed against the as-built model but did not grow: "), row
    built, first, late = _counts(row, "In-S")
    assert built == 0  # the as-built model has no In-S bond
    assert first >= 1.0  # relaxation and the first frames made contacts
    assert late - first < 5.2  # inside the noise margin the row prints


def test_p_s_kept_with_its_counts(demo_rows: tuple[str, str, dict[str, str]]) -> None:
    _, _, rows = demo_rows
    row = rows["P-S bonds break"]
    assert row.startswith("not reproduced, P-S bonds kept: "), row
    assert _counts(row, "P-S") == (64, 64.0, 64.0)  # 16 PS4 units x 4, whole throughout


def test_no_claim_is_reproduced_beside_no_reaction(demo_rows: tuple[str, str, dict[str, str]]) -> None:
    _, _, rows = demo_rows
    assert rows["In-Cl bonds form"].startswith("not reproduced: In-Cl 0 as built"), rows["In-Cl bonds form"]
    assert not [k for k, v in rows.items() if v.startswith("reproduced")], rows


def test_ten_ps_contacts_formed_then_were_lost_and_p_s_was_kept(
    ten_ps: tuple[str, str, dict[str, str], list[str]],
) -> None:
    kind, sentence, rows, _ = ten_ps
    # the student failed at 6.6 ps: the answer leads with it, then gives the verdict as read
    assert kind == "none" and sentence.startswith("Engine failed: its engine failed outright from 6."), sentence
    assert "As read: No reaction seen" in sentence
    row = rows["In-S bonds form and grow from ~1 ps"]
    assert row.startswith("contacts formed against the as-built model, then were lost beyond the noise: "), row
    built, first, late = _counts(row, "In-S")
    assert built == 0 and first >= 1.0 and late < first
    assert _counts(rows["P-S bonds break"], "P-S")[0] == 64
    assert rows["P-S bonds break"].startswith("not reproduced, P-S bonds kept")
    assert not [k for k, v in rows.items() if v.startswith("reproduced")], rows


def test_ten_ps_says_where_its_engine_failed(ten_ps: tuple[str, str, dict[str, str], list[str]]) -> None:
    """The student's forces stay within 0.4-2.1 eV/A of its teacher's for 6.5 ps, then are off by tens of eV/A: the
    diagnostics date it, so nobody reads the last 3.5 ps as physics."""
    (dev,) = [m for m in ten_ps[3] if m.startswith("engine deviation:")]
    assert "the teacher disputes forces" in dev
    got = re.search(r"from ([\d.]+) ps the engine fails outright", dev)
    assert got is not None and 6.0 < float(got.group(1)) < 7.0, dev
