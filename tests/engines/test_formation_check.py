"""The engine check against the stored PBE phase diagram (cellsim.engines.check.formation): verdicts at their
thresholds, the worst phase, and the sign of the interface reaction, with a stand-in engine whose energies are
PBE's plus chosen errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from cellsim.engines.check import formation
from cellsim.engines.check.formation import FORMATION_TOL, formation_rows, formation_verdict
from cellsim.references import pbe

ROOT = Path(__file__).resolve().parents[2] / "data" / "pbe" / "phases_pw"
ELEMENTS = {"Li", "P", "S", "Cl"}


@pytest.fixture(autouse=True)
def _stored(monkeypatch) -> object:
    monkeypatch.setenv("CELLSIM_PBE_PHASES", str(ROOT))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _engine(errors: dict[str, float]):
    """energy_of for a stand-in engine on the scale MPtrj-trained potentials learned: PBE's energy per atom with
    MP2020 anion corrections, + errors[name] (eV/atom)."""
    phases = pbe.stored_phases(ROOT)
    corrected = {e.data["name"]: e.energy_per_atom for e in pbe.entries(phases, mp2020=True)}

    def energy_of(label: str, structure) -> float:
        return corrected[label] + errors.get(label, 0.0)

    return energy_of


def test_each_engine_is_judged_on_the_energy_scale_it_learned() -> None:
    """A raw-PBE engine (SevenNet-0's scale) and an MP2020-corrected one (CHGNet's) both pass on their own scale;
    the row says which scale and both medians."""
    phases = pbe.stored_phases(ROOT)
    plain = formation_rows("plain", lambda label, s: phases[label].energy_per_atom, ELEMENTS)
    corrected = formation_rows("corr", _engine({}), ELEMENTS)
    for rows, scale in ((plain, "PBE"), (corrected, "PBE + MP2020")):
        head = rows[0]
        assert (head.quantity, head.reference) == ("energy scale", scale)
        assert head.note.startswith(f"judged against {scale}, the scale its energies follow (median |error| vs PBE ")
        assert {r.verdict for r in rows if r.quantity == "formation energy"} == {"ok"}
    # the other scale is off by the anion corrections: LiCl by -0.614 eV per Cl, 307 meV/atom
    licl_plain = next(r for r in plain if r.phase == "LiCl" and r.quantity == "formation energy")
    licl_corr = next(r for r in corrected if r.phase == "LiCl" and r.quantity == "formation energy")
    assert licl_plain.reference - licl_corr.reference == pytest.approx(0.307, abs=0.002)


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (FORMATION_TOL[0] - 1e-4, "ok"),
        (FORMATION_TOL[0] + 1e-4, "warn"),
        (FORMATION_TOL[1] - 1e-4, "warn"),
        (FORMATION_TOL[1] + 1e-4, "fail"),
        (-(FORMATION_TOL[1] + 1e-4), "fail"),
    ],
)
def test_formation_verdict_edges(error: float, verdict: str) -> None:
    assert formation_verdict(error) == verdict


def test_an_engine_equal_to_pbe_passes_every_row() -> None:
    rows = formation_rows("same", _engine({}), ELEMENTS, ("Li6PS5Cl", "Li"))
    assert rows
    assert {r.verdict for r in rows if r.quantity != "energy scale"} == {"ok"}
    worst = [r for r in rows if r.quantity == "worst formation error"]
    assert worst == [] or abs(worst[0].value) < 1e-6


def test_one_phase_off_by_40_mev_is_the_worst_and_warns() -> None:
    # LiCl's energy per atom +0.04 eV: its formation energy per atom moves by the same 0.04 eV
    rows = formation_rows("off", _engine({"LiCl": 0.04}), ELEMENTS)
    licl = next(r for r in rows if r.phase == "LiCl" and r.quantity == "formation energy")
    assert licl.verdict == "warn"
    assert licl.value - licl.reference == pytest.approx(0.04, abs=1e-4)
    worst = next(r for r in rows if r.quantity == "worst formation error")
    assert worst.phase == "LiCl"
    assert worst.value == pytest.approx(40.0, abs=0.1)
    others = [r for r in rows if r.quantity == "formation energy" and r.phase != "LiCl"]
    assert {r.verdict for r in others} == {"ok"}


def test_an_engine_that_stabilises_the_electrolyte_gets_the_reaction_sign_wrong() -> None:
    """Li + Li6PS5Cl is exergonic in PBE; an engine with the products 1.5 eV/atom too high says no reaction."""
    bad = {n: 1.5 for n in ("Li2S", "Li3P", "LiCl", "Li3PS4", "Li7PS6", "Li4P2S6", "LiP", "LiS")}
    rows = formation_rows("bad", _engine(bad), ELEMENTS, ("Li6PS5Cl", "Li"))
    reaction = next(r for r in rows if r.quantity == "interface reaction")
    assert reaction.verdict == "fail"
    assert "the signs differ" in reaction.note
    good = formation_rows("same", _engine({}), ELEMENTS, ("Li6PS5Cl", "Li"))
    assert next(r for r in good if r.quantity == "interface reaction").verdict == "ok"


def test_missing_corner_is_stated_not_guessed(monkeypatch) -> None:
    monkeypatch.setattr(formation, "engine_energies", lambda energy_of, elements: ({}, {}))
    rows = formation_rows("x", _engine({}), ELEMENTS)
    assert [r.verdict for r in rows] == ["n/a"]
    assert rows[0].note.startswith("no stored PBE energy of")


def test_the_docs_quote_the_thresholds() -> None:
    text = " ".join((ROOT.parents[2] / "docs" / "matching.md").read_text().split())
    assert f"(ok <= {1000 * FORMATION_TOL[0]:.0f}, warn <= {1000 * FORMATION_TOL[1]:.0f} meV/atom)" in text
