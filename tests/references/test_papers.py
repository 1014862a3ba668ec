"""Papers' claims live in cellsim.references.papers; the report checks them by kind, never by name."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cellsim.references.papers import LUO_2021, PAPERS, Claim, Paper, papers_for
from cellsim.reporting.summary import claims_section, claims_sections

TOY = Paper(
    key="toy",
    citation="Toy et al. 2030",
    elements=frozenset({"A", "B"}),
    claims=(Claim("bonds form", "A-B"), Claim("bonds break", "B-B", "B-B bonds break early"), Claim("product", "AB")),
    setting="toy setting",
)


def _data(elements: set[str], has_new: bool, break_ps: float | None, verdict: str | None) -> Any:
    candidates = [SimpleNamespace(candidate="AB", verdict=verdict)] if verdict else []
    match = SimpleNamespace(pairs={"A-B": {"has_new": has_new}}, candidates=candidates)
    return SimpleNamespace(
        analysis=SimpleNamespace(element_counts={e: 4 for e in elements}),
        match=match,
        peaks={"pairs": {"B-B": {"bonds": {"break_ps": break_ps}}}},
    )


def test_claims_are_checked_by_kind() -> None:
    got = claims_section(_data({"A", "B"}, True, 0.5, "formed"), TOY)
    assert got is not None
    title, header, rows, note = got
    assert title == "Paper claims (Toy et al. 2030)" and header == ["claim", "this run"] and note == "toy setting"
    assert rows == [
        ["A-B bonds form", "reproduced"],
        ["B-B bonds break early", "reproduced"],
        ["product AB", "reproduced"],
    ]
    got = claims_section(_data({"A", "B", "C"}, False, None, "possible"), TOY)
    assert got is not None
    assert [r[1] for r in got[2]] == ["not reproduced", "not reproduced", "possible"]
    got = claims_section(_data({"A", "B"}, False, None, None), TOY)
    assert got is not None and got[2][2] == ["product AB", "not a candidate"]


def test_claims_need_the_papers_elements() -> None:
    assert claims_section(_data({"A"}, True, 0.5, "formed"), TOY) is None
    assert papers_for({"Li", "P", "S", "Cl"}) == []
    assert papers_for({"Li", "P", "S", "Cl", "In", "O"}) == [LUO_2021]
    # the bundled Li6PS5Cl/In study is checked against the paper it reproduces
    assert claims_sections(_data({"Li", "P", "S", "Cl", "In"}, True, None, "formed"))[0][0].endswith(
        f"({LUO_2021.citation})"
    )


def test_generic_code_names_no_paper_claim() -> None:
    """The report and the matching hold no paper's citation, claimed products or new bonds as strings (docstrings
    aside); a framework bond breaking (P-S of PS4) is the electrolyte's generic chemistry, not the paper's."""
    claimed = [c for p in PAPERS for c in p.claims if c.kind != "bonds break"]
    words = {w for c in claimed for w in (c.subject, c.text) if w} | {p.citation for p in PAPERS}
    pkg = Path(__file__).resolve().parents[2] / "cellsim"
    found = []
    for path in sorted([*(pkg / "reporting").glob("*.py"), *(pkg / "products").glob("*.py")]):
        tree = ast.parse(path.read_text())
        docs = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef) and n.body and isinstance(n.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                found += [
                    f"{path.name}:{node.lineno} {w}"
                    for w in words
                    if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", node.value)
                ]
    assert not found, found
