"""Product matching on trajectories with known bonds, offline and through the MP API test double."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from cellsim.stages import analyze as run_analyze
from cellsim.stages import match as run_match
from cellsim.testing import reaction_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mp_double import MPDouble

FAKE_KEY = "t3stK3yNotReal0123456789abcdefAB"  # 32 characters, as the client requires


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MP_API_KEY", raising=False)
    monkeypatch.delenv("MP_API_ENDPOINT", raising=False)


def _prepared(tmp_path: Path, name: str, **kw: object) -> Path:
    run = reaction_run(tmp_path / name, n_frames=600, react_at=None if kw.pop("inert", False) else 300, **kw)  # type: ignore[arg-type]
    run_analyze(run)
    return run


def _rows(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "analysis" / "products.csv").read_text().splitlines()))


def test_in_s_and_in_cl_products(tmp_path: Path) -> None:
    run = _prepared(tmp_path, "react")  # In-S at 2.58 A (InS / In2S3), In-Cl at 2.92 and 3.17 A (InCl)
    result = run_match(run)
    ins = [m for m in result.rows if m.pair == "In-S"]
    incl = [m for m in result.rows if m.pair == "In-Cl"]
    assert ins[0].candidate in {"InS", "In2S3"} and ins[0].score >= result.threshold
    assert incl[0].candidate in {"InCl", "InCl3"} and incl[0].candidate == "InCl"
    assert incl[0].delta_r is not None and incl[0].delta_r < 0.1
    rows = _rows(run)
    assert set(rows[0]) == {
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
    }
    top_ins = next(r for r in rows if r["pair"] == "In-S" and r["rank"] == "1")
    assert top_ins["source"].startswith("library:") and "mp-" in top_ins["source"]
    overall = [r for r in rows if r["pair"] == "overall"]
    assert overall[0]["candidate"] in {"InS", "In2S3", "InCl"}
    assert "Materials Project not used (MP_API_KEY is not set)" in result.notes[0]
    assert (run / "analysis" / "ref_rdf.npz").is_file()


def test_incl3_distances_rank_incl3(tmp_path: Path) -> None:
    run = _prepared(tmp_path, "incl3", in_cl=(2.54, 2.54))
    result = run_match(run)
    assert next(m for m in result.rows if m.pair == "In-Cl").candidate == "InCl3"


def test_phase_explaining_two_pairs_ranks_first(tmp_path: Path) -> None:
    """An In-S-Cl phase that fits both pairs beats single-pair phases overall."""
    from pymatgen.core import Lattice, Structure

    run = _prepared(tmp_path, "both")
    # a made-up InSCl2 cell whose In has S at 2.58 A and Cl at 2.92 and 3.17 A, like the trajectory
    s = Structure(
        Lattice.orthorhombic(5.16, 5.84, 6.34),
        ["In", "S", "Cl", "Cl"],
        [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]],
    )
    s.to(filename=str(tmp_path / "InSCl_model.cif"))
    result = run_match(run, candidates=["InS", "InCl", str(tmp_path / "InSCl_model.cif")])
    assert result.candidates[0].candidate == "InSCl_model"
    assert set(result.candidates[0].pairs_matched) == {"In-S", "In-Cl"}


def test_nothing_reacts_nothing_matches(tmp_path: Path) -> None:
    run = _prepared(tmp_path, "inert", inert=True)
    result = run_match(run)
    assert all(m.score < result.threshold for m in result.rows)
    assert all(c.verdict == "not seen" for c in result.candidates)
    assert any("nothing reacted" in n for n in result.notes)
    assert all(r["md_peak_r"] == "" for r in _rows(run) if r["pair"] != "overall")


def test_broadening_is_not_a_new_bond(tmp_path: Path) -> None:
    """Bonds present from the start that only get hotter (wider distribution) match no product."""
    run = _prepared(tmp_path, "hot", noise=0.03, late_noise=0.12)
    result = run_match(run)
    assert not any(info["has_new"] for info in result.pairs.values())
    assert all(m.score == 0 for m in result.rows)


def test_mp_online_through_test_double(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from cellsim.cli import app

    run = _prepared(tmp_path, "online")
    with MPDouble() as mp:
        monkeypatch.setenv("MP_API_KEY", FAKE_KEY)
        monkeypatch.setenv("MP_API_ENDPOINT", mp.endpoint)
        r = CliRunner().invoke(app, ["refs", "fetch", "In-S"])
        assert r.exit_code == 0, r.output
        assert "mp-22216" in r.output and "mp-19795" in r.output and "mp-9999999" not in r.output  # E_hull filter
        r = CliRunner().invoke(app, ["match", str(run)])
        assert r.exit_code == 0, r.output
    # the real client sent the key to the server ...
    assert any(key == FAKE_KEY for _, key in mp.requests)
    assert any("materials/summary" in path and "chemsys=" in path for path, _ in mp.requests)
    # ... and it appears nowhere in what cellsim writes or prints
    assert FAKE_KEY not in r.output
    for f in list((tmp_path / "cache").rglob("*")) + list((run / "analysis").glob("*")) + [run / "study.yaml"]:
        if f.is_file():
            assert FAKE_KEY.encode() not in f.read_bytes(), f
    rows = _rows(run)
    assert any(row["source"].startswith("MP:mp-") for row in rows)
    cached = json.loads(next((tmp_path / "cache" / "mp").glob("chemsys_In-S.json")).read_text())
    assert {p["material_id"] for p in cached["phases"]} == {"mp-19795", "mp-22216"}


def test_mp_unreachable_gives_one_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from cellsim.cli import app

    monkeypatch.setenv("MP_API_KEY", FAKE_KEY)
    monkeypatch.setenv("MP_API_ENDPOINT", "http://127.0.0.1:9/")  # discard port: nothing listens
    r = CliRunner().invoke(app, ["refs", "fetch", "In-S"])
    assert r.exit_code == 2 and "Materials Project not reachable" in r.output and FAKE_KEY not in r.output
    run = _prepared(tmp_path, "offline")
    result = run_match(run)
    assert len(result.notes) == 1 and result.notes[0].startswith("Materials Project not used")
    assert FAKE_KEY not in result.notes[0]
    assert next(m for m in result.rows if m.pair == "In-Cl").candidate == "InCl"


def test_match_needs_analysis(tmp_path: Path) -> None:
    from cellsim.core.errors import CellsimError

    run = reaction_run(tmp_path / "r", n_frames=10, react_at=None)
    with pytest.raises(CellsimError, match=r"no analysis here; run `cellsim analyze"):
        run_match(run)
