"""Papers' claims live in cellsim.references.papers; the report checks them by kind, never by name."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bond_helpers import bond_record as _bonds

from cellsim.references.papers import LUO_2021, PAPERS, Claim, Paper, papers_for
from cellsim.reporting.summary import claims_section, claims_sections

TOY = Paper(
    key="toy",
    citation="Toy et al. 2030",
    elements=frozenset({"A", "B"}),
    claims=(Claim("bonds form", "A-B"), Claim("bonds break", "B-C", "B-C bonds break early"), Claim("product", "AB")),
    setting="toy setting.",
)


def _data(elements: set[str], has_new: bool, broke: bool | None, verdict: str | None) -> Any:
    candidates = [SimpleNamespace(candidate="AB", verdict=verdict)] if verdict else []
    pairs = {"A-B": {"has_new": has_new, "kind": "interfacial pair", "bonds": _bonds(3.0, 7.4 if has_new else 3.5)}}
    if broke is not None:
        pairs["B-C"] = {"has_new": False, "kind": "reactant pair", "bonds": _bonds(64.0, 50.0 if broke else 64.0)}
    return SimpleNamespace(
        analysis=SimpleNamespace(element_counts={e: 4 for e in elements}, cutoffs={"A-B": 3.0, "B-C": 2.3}),
        match=SimpleNamespace(pairs=pairs, candidates=candidates),
        peaks=None,
    )


def test_claims_are_checked_by_kind_with_the_answer_s_rule() -> None:
    got = claims_section(_data({"A", "B"}, True, True, "formed"), TOY)
    assert got is not None
    title, header, rows, note = got
    assert title == "Paper claims (Toy et al. 2030)"
    assert header == ["claim", "this run"]
    assert note.startswith("toy setting. Bonds are judged by the answer's rule")
    assert note.endswith("no as-built model (no run directory): counts from the trajectory only.")
    assert rows == [
        [
            "A-B bonds form",
            "reproduced: A-B 3.0 in the first frames -> 7.4 in the last third (noise margin 2.0), "
            "grew beyond the noise",
        ],
        [
            "B-C bonds break early",
            "reproduced: B-C 64.0 in the first frames -> 50.0 in the last third "
            "(noise margin 2.0), fell beyond the noise",
        ],
        ["product AB", "reproduced"],
    ]
    got = claims_section(_data({"A", "B", "C"}, False, False, "possible"), TOY)
    assert got is not None
    assert [r[1].split(":")[0] for r in got[2]] == ["not reproduced", "not reproduced, B-C bonds kept", "possible"]
    got = claims_section(_data({"A", "B"}, False, None, None), TOY)
    assert got is not None
    assert got[2][1] == ["B-C bonds break early", "not analysed"]
    assert got[2][2] == ["product AB", "not a candidate"]


def test_a_rise_inside_the_noise_is_not_reproduced_even_when_peaks_dated_it() -> None:
    """The demo's case: In-S 3.0 -> 7.4 against a noise margin of 5.2 is no formation, whatever else dated it."""
    d = _data({"A", "B"}, False, None, None)
    d.match.pairs["A-B"] = {
        "has_new": False,
        "kind": "interfacial pair",
        "bonds": {**_bonds(3.0, 7.4, 5.2), "formation_ps": 0.758},
    }
    got = claims_section(d, TOY)
    assert got is not None
    assert got[2][0][1] == "not reproduced: A-B 3.0 in the first frames -> 7.4 in the last third (noise margin 5.2)"


def _na_cl_claims(first: float, late: float, margin: float = 2.0) -> Any:
    """The claims table of a toy paper ("Na-Cl bonds form") on a run with no Na-Cl bond as built, ``first`` in the
    first frames and ``late`` in the last third."""
    paper = Paper("toy2", "Toy 2031", frozenset({"Na", "Cl"}), (Claim("bonds form", "Na-Cl"),), "toy.")
    bonds = _bonds(first, late, margin)
    d = SimpleNamespace(
        analysis=SimpleNamespace(element_counts={"Na": 1, "Cl": 1}, cutoffs={"Na-Cl": 3.0}),
        match=SimpleNamespace(
            pairs={"Na-Cl": {"has_new": False, "kind": "interfacial pair", "bonds": bonds}}, candidates=[]
        ),
        peaks={"pairs": {"Na-Cl": {"bonds": {**bonds, "as_built": 0}}}},
    )
    return claims_section(d, paper)  # type: ignore[arg-type]


def test_contacts_against_the_as_built_model_are_named() -> None:
    """As built (the paper's 0 ps model, counted by the analysis into peaks.json) no Na-Cl contact; the run starts
    with 6 and keeps them: contacts formed, not grown."""
    got = _na_cl_claims(6.0, 6.2)
    assert got is not None
    assert got[2] == [
        [
            "Na-Cl bonds form",
            "contacts formed against the as-built model but did not grow: Na-Cl 0 as built -> 6.0 "
            "in the first frames -> 6.2 in the last third (noise margin 2.0)",
        ]
    ]
    assert "'as built' is the run's interface/POSCAR" in got[3]


def test_contacts_that_are_lost_again_are_said_to_be_lost() -> None:
    """The student's 10 ps run: In-S 0 as built -> 6.1 in the first frames -> 0.3 in the last third (margin 2.4):
    contacts formed and then fell away beyond the noise, which "did not grow" would understate."""
    got = _na_cl_claims(6.1, 0.3, 2.4)
    assert got is not None
    assert got[2][0][1] == (
        "contacts formed against the as-built model, then were lost beyond the noise: Na-Cl 0 as built -> 6.1 "
        "in the first frames -> 0.3 in the last third (noise margin 2.4)"
    )


def test_claims_need_the_papers_elements() -> None:
    assert claims_section(_data({"A"}, True, True, "formed"), TOY) is None
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
