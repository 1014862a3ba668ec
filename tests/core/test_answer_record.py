"""The answer as a typed record (issue 35): :class:`cellsim.products.answer.Answer` round-trips match.json's
``answer`` exactly (keys, order, values; an empty one stays empty), refuses values of the wrong kind as a damaged
match.json, keeps a short repr, and is read by attribute, never by string key, outside cellsim/products/; the
match result's tables carry what ``cellsim match`` prints."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from cellsim.products.answer import ANSWER_KEYS, Answer
from cellsim.products.result import MatchError, MatchResult
from cellsim.products.scores import PairMatch
from cellsim.products.verdicts import CandidateVerdict

ROOT = Path(__file__).resolve().parents[2] / "cellsim"
_MAPPING_READS = ("get", "setdefault", "pop", "items", "keys", "values")

FULL = {
    "kind": "products",
    "sentence": "Reaction from 0.3 ps: InCl (~4 In atoms [3-5]) formed",
    "evidence": ["In-Cl 0.0 -> 15.9 bonds (+15.9, noise margin 2.0)"],
    "assumptions": [],
    "run_ps": 0.6,
    "formed": ["InCl"],
    "possible": ["InS"],
}


def _is_answer(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "answer"


def _answer_reads(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """String-key reads of an answer: ``x.answer["k"]``, ``x.answer.get(...)`` (and the other mapping reads),
    ``x.answer or {}`` (the dict it was), and the same reads of a name bound to ``x.answer``."""
    aliases = {
        t.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and (_is_answer(node.value) or (isinstance(node.value, ast.BoolOp) and any(map(_is_answer, node.value.values))))
        for t in node.targets
        if isinstance(t, ast.Name)
    }

    def answer_like(node: ast.AST) -> bool:
        return _is_answer(node) or (isinstance(node, ast.Name) and node.id in aliases)

    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Subscript)
            and answer_like(node.value)
            and not isinstance(node.ctx, ast.Store | ast.Del)
        ):
            yield node.lineno, ast.unparse(node)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _MAPPING_READS
            and answer_like(node.func.value)
        ):
            yield node.lineno, ast.unparse(node)
        elif (
            isinstance(node, ast.BoolOp)
            and any(map(_is_answer, node.values))
            and any(isinstance(v, ast.Dict) for v in node.values)
        ):
            yield node.lineno, ast.unparse(node)
        elif isinstance(node, ast.Compare) and any(answer_like(c) for c in node.comparators):
            if any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
                yield node.lineno, ast.unparse(node)


def test_no_string_key_reads_of_the_answer_outside_products() -> None:
    files = [p for p in ROOT.rglob("*.py") if "products" not in p.relative_to(ROOT).parts]
    assert len(files) > 50
    found = [
        f"{p.relative_to(ROOT.parent)}:{line}: {text}"
        for p in files
        for line, text in _answer_reads(ast.parse(p.read_text(), str(p)))
    ]
    assert not found, "read the answer through its attributes (products.answer.Answer):\n" + "\n".join(found)


def test_the_answer_scan_sees_each_kind_of_read() -> None:
    src = (
        "a = m.answer['kind']\n"  # 1
        "b = m.answer.get('sentence')\n"  # 2
        "ans = m.answer or {}\n"  # 3: the dict fallback
        "c = ans.get('formed')\n"  # 4: an alias read by key
        "d = ans['run_ps']\n"  # 5
        "e = 'onset_ps' in ans\n"  # 6
        "f = m.answer.kind\n"
        "g = ans.sentence\n"
        "h = Answer.coerce(m.answer).evidence\n"
        "for k, v in m.answer.items():\n"  # 10
        "    pass\n"
    )
    assert sorted({line for line, _ in _answer_reads(ast.parse(src))}) == [1, 2, 3, 4, 5, 6, 10]


def test_answer_round_trips_exactly() -> None:
    a = Answer.from_dict(FULL)
    assert a.kind == "products" and a.formed == ("InCl",) and a.run_ps == 0.6 and a.assumptions == ()
    assert a.to_dict() == FULL and list(a.to_dict()) == list(FULL) == list(ANSWER_KEYS)
    assert json.dumps(Answer.from_dict(json.loads(json.dumps(FULL))).to_dict()) == json.dumps(FULL)
    # made here: every key, in match.json's order
    made = Answer(kind="none", sentence="No reaction seen", run_ps=1.0)
    assert list(made.to_dict()) == list(ANSWER_KEYS) and made.to_dict()["evidence"] == []
    # what another writer added is kept, in its place; a partial record gives back only its keys
    other = {"sentence": "s", "onset_ps": 0.2, "kind": "reaction"}
    assert list(Answer.from_dict(other).to_dict().items()) == list(other.items())
    assert Answer.from_dict(other).extra == {"onset_ps": 0.2}
    # the dict it was: equal to it, read by key, falsy when empty
    assert a == FULL and a == Answer.from_dict(dict(FULL)) and a["formed"] == ["InCl"] and a
    with pytest.raises(KeyError, match="sentence"):
        Answer.from_dict({"kind": "none"})["sentence"]
    empty = Answer.from_dict({})
    assert not empty and empty == {} and empty.to_dict() == {} and empty == Answer.absent()
    assert empty.kind is None and empty.sentence is None and empty.evidence == ()
    assert Answer.coerce(None) == {} and Answer.coerce(a) is a and Answer.coerce(FULL) == a


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"kind": 3}, "answer kind: 3 is not text"),
        ({"evidence": "one line"}, "answer evidence: 'one line' is not a list"),
        ({"formed": {"InCl": 1}}, "answer formed: .* is not a list"),
        ({"run_ps": "long"}, "answer run_ps: 'long' is not a number"),
        (["kind"], "is not a mapping"),
    ],
)
def test_answer_of_the_wrong_kind_is_refused(bad: object, says: str) -> None:
    with pytest.raises(TypeError, match=says):
        Answer.from_dict(bad)  # type: ignore[arg-type]


def _result(answer: object) -> MatchResult:
    row = PairMatch("In-Cl", "InCl", "InCl", "Cmcm", "library", 2.97, 2.93, 0.04, 0.9, 0.76, 0.7, 0.8, 1)
    amount = {"atoms": 4.0, "atoms_lo": 3.0, "atoms_hi": 5.0, "element": "In", "members": ["InCl", "InCl3"]}
    cands = [
        CandidateVerdict(
            "InCl", "InCl", "Cmcm", "library", 0.76, "In-Cl", 0.76, 0.7, 0.8, 1.0, "formed", amount=amount
        ),
        CandidateVerdict("InS", "InS", "Pnnm", "library", 0.0, None, 0.0, 0.0, 0.0, None, "not seen"),
    ]
    pairs = {
        "In-Cl": {
            "kind": "interfacial pair",
            "new": 2.0,
            "new_per_minority_atom": 2.0,
            "minority": "In",
            "has_new": True,
            "md_peak_r": 2.97,
            "bootstrap_support": 1.0,
            "bonds": {"baseline_mean": 0.0, "late_mean": 15.9, "change": 15.9, "margin": 2.0},
        }
    }
    return MatchResult(pairs, [row], cands, {}, [], 0.5, answer=answer)  # type: ignore[arg-type]


def test_match_json_keeps_the_answer_as_written(tmp_path: Path) -> None:
    m = _result(FULL)
    assert isinstance(m.answer, Answer) and m.answer.sentence == FULL["sentence"]
    m.save(tmp_path)
    doc = json.loads((tmp_path / "match.json").read_text())
    assert doc["answer"] == FULL and list(doc["answer"]) == list(FULL)
    again = MatchResult.load(tmp_path)
    assert again.answer == m.answer and isinstance(again.answer, Answer)
    again.save(tmp_path / "again")
    assert (tmp_path / "again" / "match.json").read_text().split('"rules"')[0] == (
        (tmp_path / "match.json").read_text().split('"rules"')[0]
    )
    # no answer (a format-1 file): saved empty, as read
    _result({}).save(tmp_path / "none")
    assert json.loads((tmp_path / "none" / "match.json").read_text())["answer"] == {}
    assert not MatchResult.load(tmp_path / "none").answer


def test_an_answer_of_the_wrong_kind_is_a_damaged_match_json(tmp_path: Path) -> None:
    _result(FULL).save(tmp_path)
    p = tmp_path / "match.json"
    doc = json.loads(p.read_text())
    doc["answer"]["evidence"] = "one line, not a list"
    p.write_text(json.dumps(doc))
    with pytest.raises(MatchError, match=r"match\.json: damaged .*evidence"):
        MatchResult.load(tmp_path)


def test_reprs_are_short() -> None:
    long = {**FULL, "sentence": "x" * 5000, "evidence": ["e" * 500] * 50}
    for obj in (Answer.from_dict(long), _result(long), Answer.absent()):
        text = repr(obj)
        assert len(text) < 1000 and text.startswith(type(obj).__name__ + "("), text
    assert "5 evidence" not in repr(Answer.from_dict(FULL)) and "1 evidence" in repr(Answer.from_dict(FULL))


def test_dataframes_carry_what_cellsim_match_prints() -> None:
    m = _result(FULL)
    df = m.to_dataframe()
    overall = df[df["pair"] == "overall"].set_index("candidate")
    assert overall.loc["InCl", "best_pair"] == "In-Cl" and overall.loc["InCl", "best_score"] == 0.76
    assert (overall.loc["InCl", "atoms"], overall.loc["InCl", "atoms_lo"], overall.loc["InCl", "atoms_hi"]) == (4, 3, 5)
    assert overall.loc["InCl", "element"] == "In" and overall.loc["InCl", "alike"] == "InCl3"
    assert pd.isna(overall.loc["InS", "atoms"]) and pd.isna(overall.loc["InS", "alike"])
    pair_rows = df[df["pair"] != "overall"]
    assert len(pair_rows) == 1 and pair_rows["best_pair"].isna().all()
    # the columns products.csv has come first, unchanged
    assert list(df.columns[:13]) == [
        "pair",
        "candidate",
        "formula",
        "space_group",
        "source",
        "md_peak_r",
        "ref_shell_r",
        "delta_r",
        "score",
        "score_lo",
        "score_hi",
        "verdict",
        "rank",
    ]
    pairs = m.pairs_dataframe().set_index("pair")
    row = pairs.loc["In-Cl"]
    assert (row["bonds_baseline"], row["bonds_late"], row["bonds_change"], row["noise_margin"]) == (0, 15.9, 15.9, 2)
    assert row["new_bonds"] and row["md_peak_r"] == 2.97 and row["support"] == 1.0 and row["kind"] == "interfacial pair"


def test_pair_records_are_the_pairs_table_typed() -> None:
    from bond_helpers import bond_record

    from cellsim.products.answer import bond_event
    from cellsim.products.result import BondChange, PairRecord, pair_records

    m = _result(FULL)
    rec = m.pair_records["In-Cl"]
    assert rec.event == "formed" and rec.has_new and rec.md_peak_r == 2.97 and rec.minority == "In"
    assert rec.bonds.late_mean == 15.9 and rec.bonds.formation_ps is None and rec.no_candidates is None
    pairs = {
        "P-S": {"kind": "reactant pair", "has_new": False, "bonds": bond_record(64.0, 50.0, 6.4, brk=0.9)},
        "Li-S": {"kind": "reactant pair", "has_new": False, "bonds": bond_record(65.9, 62.8, 6.6, brk=6.38)},
        "In-S": {"kind": "interfacial pair", "has_new": False, "bonds": bond_record(3.0, 7.4, 5.2, formation=0.7)},
    }
    recs = pair_records(pairs)
    assert list(recs) == list(pairs)
    # the answer's rule, once, on the record: a framework break, Li hopping and a rise inside the noise are not events
    assert {p: r.event for p, r in recs.items()} == {p: bond_event(p, d) for p, d in pairs.items()}
    assert recs["P-S"].event == "broken" and recs["P-S"].bonds.break_ps == 0.9 and recs["Li-S"].event is None
    # a pair without counts (an empty trajectory): no change, no event
    bare = PairRecord.from_dict(
        "In-In", {"kind": "reactant pair", "bonds": {"rose": False, "fell": False, "change": 0.0}}
    )
    assert bare.bonds == BondChange() and bare.event is None and bare.md_peak_r is None
    assert len(repr(recs["P-S"])) < 1000
