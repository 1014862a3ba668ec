"""The paper-claims rows on a stored run of the paper's interface: the bundled demo (fitted CHGNet, 328 atoms, 1 ps;
every 5th frame kept in tests/data/li6ps5cl_in_fitted_demo). The rows must give the counts the paper compared (its
Fig. 5a: the interface model before AIMD against after), say that In-S contacts formed against the as-built model and
did not grow, that P-S was kept, and never call a claim reproduced beside an answer that says no reaction."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "data" / "li6ps5cl_in_fitted_demo"


@pytest.fixture(scope="module")
def demo_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, dict[str, str]]:
    from cellsim.config.rundir import RunDir
    from cellsim.reporting.data import load_report_data
    from cellsim.reporting.summary import claims_sections
    from cellsim.stages import analysis, products

    run = tmp_path_factory.mktemp("stored") / "demo"
    shutil.copytree(DEMO, run)
    analysis.analyze(run)
    m = products.match(run, thermo=False, reactant_md=False)
    rd = RunDir(run)
    d = load_report_data(rd.analysis_dir, rd)
    sections = claims_sections(d)
    assert len(sections) == 1, "one paper (Luo et al. 2021) speaks about Li-P-S-Cl-In"
    title, header, rows, _ = sections[0]
    assert title.startswith("Paper claims (Luo et al.")
    assert header == ["claim", "this run"]
    return m.answer.kind, m.answer.sentence, {r[0]: r[1] for r in rows}


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
