"""Controls of product identification (issue 11): what must be found, and what must never be claimed.

Every trajectory here is made by the test, so the right answer is known.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import cellsim
from cellsim.testing import reaction_run, write_xdatcar


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MP_API_KEY", raising=False)


def _verdicts(run: Path) -> dict[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cellsim.analyze(run)
        result = cellsim.match(run)
    return {c.candidate: c.verdict for c in result.candidates}


def bulk_lpscl(path: Path, n_frames: int = 300, noise: float = 0.12, li_jump_at: int | None = None) -> Path:
    """A thermal trajectory of bulk Li6PS5Cl (library cell) where nothing reacts.

    Li sits displaced from the library's 24g site toward Cl (as in real AIMD, Li-Cl ~2.5 A), from the first
    frame, or from frame ``li_jump_at`` (a relaxation early in the run).
    """
    from cellsim.references.library import get_phase

    phase = get_phase("Li6PS5Cl")
    assert phase is not None
    s = phase.structure()
    cell = s.lattice.matrix
    sym = np.array([x.specie.symbol for x in s])
    order = np.argsort([["Li", "P", "S", "Cl"].index(x) for x in sym], kind="stable")
    frac0 = s.frac_coords[order]
    sym = sym[order]
    cl = frac0[sym == "Cl"]
    moved = frac0.copy()
    for i in np.flatnonzero(sym == "Li"):
        d = cl - frac0[i]
        d -= np.round(d)
        near = d[np.argmin(np.linalg.norm(d @ cell, axis=1))]
        dist = float(np.linalg.norm(near @ cell))
        moved[i] = frac0[i] + near * (1.0 - 2.5 / dist)  # Li-Cl 2.5 A
    rng = np.random.default_rng(1)
    frames = []
    for f in range(n_frames):
        base = moved if (li_jump_at is None or f >= li_jump_at) else frac0
        frames.append((base + rng.normal(0, noise, base.shape) @ np.linalg.inv(cell)) % 1.0)
    counts = [int((sym == e).sum()) for e in ("Li", "P", "S", "Cl")]
    path.mkdir(parents=True, exist_ok=True)
    write_xdatcar(path / "XDATCAR", ["Li", "P", "S", "Cl"], counts, cell, np.array(frames))
    (path / "INCAR").write_text("POTIM = 2\nNBLOCK = 1\nTEBEG = 300\n")
    return path / "XDATCAR"


def test_non_reacting_electrolyte_yields_nothing(tmp_path: Path) -> None:
    xd = bulk_lpscl(tmp_path / "bulk")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cellsim.analyze(xd, out=tmp_path / "out")
        result = cellsim.match(tmp_path / "out")
    assert res.info["reactants"]["phases"] == {"Li6PS5Cl": 4.0}
    # the system's own pairs (docs/analysis.md): framework P-S, alkali-anion Li-S and Li-Cl
    assert {"Li-S", "Li-Cl", "P-S"} <= set(res.settings.pairs)
    for pair in res.settings.pairs:
        assert not result.pairs[pair]["has_new"], (pair, result.pairs[pair])
        # one reactant, no interface: a pair it does not bond is never called "interfacial"
        assert result.pairs[pair]["kind"] in ("reactant pair", "not bonded in the reactants")
    assert result.answer["kind"] == "none", result.answer
    assert all(c.verdict == "not seen" for c in result.candidates), [
        (c.candidate, c.verdict) for c in result.candidates
    ]
    assert any("nothing reacted" in n for n in result.notes)


def test_li_relaxing_toward_cl_early_is_not_licl(tmp_path: Path) -> None:
    """Li leaving the ordered 24g site for Li-Cl 2.5 A in the first frames: equilibration, not LiCl."""
    xd = bulk_lpscl(tmp_path / "bulk", li_jump_at=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cellsim.analyze(xd, out=tmp_path / "out")
        result = cellsim.match(tmp_path / "out")
    # LiCl is among the automatic candidates (Li and Cl in the cell) and is not seen
    assert [c.verdict for c in result.candidates if c.candidate == "LiCl"] == ["not seen"]
    assert not result.pairs["Li-Cl"]["has_new"]


def test_relaxation_contacts_without_change_are_no_product(tmp_path: Path) -> None:
    run = reaction_run(tmp_path / "r", n_frames=600, react_at=0)  # bonds there from the first frame on
    assert set(_verdicts(run).values()) == {"not seen"}


def test_incl_two_shells_is_matched(tmp_path: Path) -> None:
    run = reaction_run(tmp_path / "r", n_frames=600, react_at=300, in_s=(), in_cl=(2.92, 3.17))
    v = _verdicts(run)
    assert v["InCl"] == "formed" and v.get("InCl3", "not seen") != "formed"


def test_short_incl_bond_ranks_incl_first(tmp_path: Path) -> None:
    """One Cl at 2.92 A (InCl's short bond): InCl, not InCl3 (2.54 A) and never a merged-peak miss."""
    run = reaction_run(tmp_path / "r", n_frames=600, react_at=300, in_s=(), in_cl=(2.92,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cellsim.analyze(run)
        result = cellsim.match(run)
    top = next(m for m in result.rows if m.pair == "In-Cl")
    assert top.candidate == "InCl" and top.delta_r is not None and top.delta_r < 0.05
    assert {c.candidate: c.verdict for c in result.candidates}["InCl"] in ("formed", "possible")


def test_tetrahedral_in_s_prefers_an_in_s_phase(tmp_path: Path) -> None:
    run = reaction_run(tmp_path / "r", n_frames=600, react_at=300, in_s=(2.45, 2.45, 2.45, 2.45), in_cl=())
    v = _verdicts(run)
    formed = [c for c, x in v.items() if x == "formed"]
    assert formed and all("S" in c and "Cl" not in c for c in formed), v


def test_mixed_environment_names_both(tmp_path: Path) -> None:
    run = reaction_run(tmp_path / "r", n_frames=600, react_at=300, in_s=(2.58, 2.58), in_cl=(2.92, 3.17))
    v = _verdicts(run)
    assert v["InCl"] == "formed"
    assert v["In2S3"] == "formed" or v["InS"] == "formed"


def test_environments_and_motifs(tmp_path: Path) -> None:
    run = reaction_run(tmp_path / "r", n_frames=600, react_at=300, in_s=(2.58, 2.58), in_cl=(2.92, 3.17))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cellsim.analyze(run)
        result = cellsim.match(run)
    env = result.environments["In"]
    assert env["atoms"] == 8 and len(env["changed_atoms"]) == 8
    assert env["early_mean"]["S"] == 0 and env["late_mean"]["S"] == pytest.approx(2.0, abs=0.05)
    assert env["late_histogram"] == {"2 S, 2 Cl": 8}
    assert res.environments is not None and res.environments.counts.shape[1] == sum(res.element_counts.values())


def test_scores_are_rounded_once_and_agree_everywhere(tmp_path: Path) -> None:
    import csv
    import json

    run = reaction_run(tmp_path / "r", n_frames=600, react_at=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cellsim.analyze(run)
        result = cellsim.match(run)
    rows = list(csv.DictReader((run / "analysis" / "products.csv").read_text().splitlines()))
    saved = json.loads((run / "analysis" / "match.json").read_text())
    for c in result.candidates:
        assert c.best_score == round(c.best_score, 2)
        row = next(r for r in rows if r["pair"] == "overall" and r["candidate"] == c.candidate)
        assert row["verdict"] == c.verdict and float(row["score"]) == c.score
        js = next(x for x in saved["candidates"] if x["candidate"] == c.candidate)
        assert js["best_score"] == c.best_score and js["verdict"] == c.verdict
        assert c.best_lo <= c.best_score <= c.best_hi or c.best_score == 0


def test_formation_time_leaves_baseline_not_present_at_start(tmp_path: Path) -> None:
    import json

    run = reaction_run(tmp_path / "r", n_frames=600, react_at=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cellsim.analyze(run)
    b = json.loads((run / "analysis" / "peaks.json").read_text())["pairs"]["In-S"]["bonds"]
    assert b["formation_ps"] == pytest.approx(301 * 0.002, abs=0.004)
    run2 = reaction_run(tmp_path / "r2", n_frames=600, react_at=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cellsim.analyze(run2)
    b2 = json.loads((run2 / "analysis" / "peaks.json").read_text())["pairs"]["In-S"]["bonds"]
    assert b2["formation_ps"] is None and b2["present_at_start"]


def test_amounts_of_sulfide_and_chloride_in_when_atoms_split(tmp_path: Path) -> None:
    """Half the In bind S only, half Cl only: each product's amount is its own atoms, and InCl is formed
    (an environment averaged over all In would call it 0.33 S-like and miss it)."""
    run = reaction_run(
        tmp_path / "r", n_frames=600, react_at=300, in_s=(2.45,) * 4, in_cl=(2.92, 3.17, 3.17, 3.2), split_at=4
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cellsim.analyze(run)
        result = cellsim.match(run)
    by = {c.candidate: c for c in result.candidates}
    assert by["InCl"].verdict == "formed", [(c.candidate, c.verdict, c.best_score, c.amount) for c in result.candidates]
    assert by["InCl"].amount is not None and by["InCl"].amount["atoms"] == pytest.approx(4.0, rel=0.2)
    sulfides = [c for c in result.candidates if c.amount and c.amount["members"] and "S" in c.formula]
    assert sulfides and all(c.amount["atoms"] == pytest.approx(4.0, rel=0.2) for c in sulfides)
    assert any(c.verdict == "formed" for c in sulfides)
    assert result.answer["kind"] == "products" and "InCl" in result.answer["sentence"]
    # the chloride is not the sulfide: no In-S phase takes the Cl-bound atoms
    assert all("Cl" not in m for c in sulfides for m in c.amount["members"])


def test_answer_never_contradicts_the_bond_table(tmp_path: Path) -> None:
    """A framework bond breaking with nothing to match is a reaction in progress, never "no product formed"."""
    from cellsim.cli.analysis import answer_line

    xd = bulk_lpscl(tmp_path / "bulk", n_frames=300)
    # break half the P-S bonds from frame 150 on: move one S of every PS4 3 A further out
    from cellsim.io.xdatcar import read_trajectory

    hdr, frames, cells = read_trajectory(xd)
    cell = cells[0]
    sym = np.array(hdr.species)
    p_idx, s_idx = np.flatnonzero(sym == "P"), np.flatnonzero(sym == "S")
    inv = np.linalg.inv(cell)
    for ip in p_idx:
        d = frames[0, s_idx] - frames[0, ip]
        d -= np.round(d)
        js = s_idx[np.argsort(np.linalg.norm(d @ cell, axis=1))[:2]]
        for j in js:
            v = frames[0, j] - frames[0, ip]
            v -= np.round(v)
            u = (v @ cell) / np.linalg.norm(v @ cell)
            frames[150:, j] = (frames[150:, j] + (3.0 * u) @ inv) % 1.0
    counts = [int((sym == e).sum()) for e in ("Li", "P", "S", "Cl")]
    write_xdatcar(xd, ["Li", "P", "S", "Cl"], counts, cell, frames)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cellsim.analyze(xd, out=tmp_path / "out")
        result = cellsim.match(tmp_path / "out")
    assert result.pairs["P-S"]["bonds"]["fell"]
    assert result.answer["kind"] in ("reaction", "products"), result.answer
    assert "P-S breaking" in result.answer["sentence"]
    assert "no product formed" not in answer_line(result) and "nothing reacted" not in " ".join(result.notes)


LI_RUN = Path(__file__).resolve().parents[1] / "data" / "li6ps5cl_li_chgnet"


def test_li_metal_on_li6ps5cl_is_a_reaction(tmp_path: Path) -> None:
    """The stored CHGNet run of Li on Li6PS5Cl (P-S breaking, Li-S forming): a reaction, Li2S/Li3P named,
    and the answer agrees with the bond table printed beside it."""
    from cellsim.cli.analysis import answer_line

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cellsim.analyze(LI_RUN / "XDATCAR.xz", out=tmp_path / "out", pairs=["P-S", "Li-S", "Li-Cl", "Li-P"])
        result = cellsim.match(tmp_path / "out")
    # the energy falls ~30 eV/ps through the second half: never "settled", whatever the block means say
    eq = res.diagnostics.check("equilibration")
    assert eq is not None and eq.status == "warn" and "not equilibrated" in eq.message
    assert res.diagnostics.summary["equilibrated"] is False
    assert result.answer["kind"] in ("reaction", "products"), result.answer
    named = set(result.answer["formed"]) | set(result.answer["possible"])
    assert named & {"Li2S", "Li3P"}, result.answer
    assert result.pairs["P-S"]["bonds"]["fell"] and "P-S breaking" in result.answer["sentence"]
    # amounts: atoms, not scores; Li2S is counted on S (Li sits in both reactants)
    li2s = next(c for c in result.candidates if c.candidate == "Li2S")
    assert li2s.amount is not None and li2s.amount["element"] == "S" and li2s.amount["atoms"] >= 2
    line = answer_line(result)
    assert "no product formed" not in line and "No reaction" not in line


def test_pairs_without_candidates_are_said_not_seen(tmp_path: Path) -> None:
    """In-S forms but no candidate holds In-S: one note with the two ways out, and no In-S phase is
    listed as 'not seen' (it was never looked for)."""
    run = reaction_run(tmp_path / "r", n_frames=600, react_at=300, in_s=(2.45,) * 4, in_cl=())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cellsim.analyze(run)
        result = cellsim.match(run, candidates=["LiCl"])
    note = result.pairs["In-S"]["no_candidates"]
    assert "MP_API_KEY" in note and "--candidate" in note and note in result.notes
    assert result.answer["kind"] == "reaction" and "no candidate phase holds In-S" in result.answer["sentence"]
    assert not any("In" in c.formula for c in result.candidates)


def test_assumed_and_implausible_time_step_leads_the_answer(tmp_path: Path) -> None:
    """No --dt, no INCAR, frames far apart: the answer starts with the flag, never a bare verdict."""
    xd = bulk_lpscl(tmp_path / "bulk", n_frames=120, noise=0.3)
    (xd.parent / "INCAR").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cellsim.analyze(xd, out=tmp_path / "out")
        result = cellsim.match(tmp_path / "out")
    assert any("time step assumed 2 fs" in a for a in result.answer["assumptions"])
    assert result.answer["sentence"].startswith("Time step implausible"), result.answer


def test_six_frames_are_too_short_to_judge(tmp_path: Path) -> None:
    xd = bulk_lpscl(tmp_path / "bulk", n_frames=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cellsim.analyze(xd, out=tmp_path / "out", window_ps=0.002)
        result = cellsim.match(tmp_path / "out")
    assert result.answer["kind"] == "too short" and "Too short to judge" in result.answer["sentence"]
    assert result.answer["formed"] == []
