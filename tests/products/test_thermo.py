"""The phase-diagram cross-check (cellsim.products.thermo): pymatgen's InterfacialReactivity on given energies."""

from __future__ import annotations

import warnings

import pytest

from cellsim.products.thermo import cross_check
from cellsim.references.library import get_phase

NAMES = ("Li6PS5Cl", "Li", "Li2S", "Li3P", "LiCl", "Li3PS4")
# CHGNet 0.3.0 energies per atom of the relaxed library crystals (eV), measured once with
# cellsim.engines.check.relaxed_energies("chgnet", ...)
CHGNET = {"Li6PS5Cl": -4.3570, "Li": -1.8803, "Li2S": -4.1121, "Li3P": -3.3957, "LiCl": -3.9814, "Li3PS4": -4.6389}


@pytest.fixture(scope="module")
def structures() -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {n: get_phase(n).structure() for n in NAMES}  # type: ignore[union-attr]


def test_li_reduces_li6ps5cl_to_the_known_products(structures: dict) -> None:
    react = {n: structures[n] for n in ("Li6PS5Cl", "Li")}
    out = cross_check(react, {n: structures[n] for n in NAMES[2:]}, CHGNET, "test")
    assert out["reaction"] == "Li6PS5Cl + 8 Li -> 5 Li2S + Li3P + LiCl"
    assert out["exergonic"] and out["energy_eV_per_atom"] < -0.3
    assert sorted(out["products"]) == ["Li2S", "Li3P", "LiCl"]


def test_no_exergonic_reaction_when_the_products_are_unstable(structures: dict) -> None:
    """Control: products far above the reactants -> the interface is stable, nothing expected."""
    energies = {**CHGNET, "Li2S": -2.0, "Li3P": -1.0, "LiCl": -1.5, "Li3PS4": -2.0}
    react = {n: structures[n] for n in ("Li6PS5Cl", "Li")}
    out = cross_check(react, {n: structures[n] for n in NAMES[2:]}, energies, "test")
    assert not out["exergonic"], out


def test_needs_two_reactants_with_energies(structures: dict) -> None:
    out = cross_check({"Li6PS5Cl": structures["Li6PS5Cl"]}, {}, CHGNET, "test")
    assert "skipped" in out


# --- PBE first, the engine beside it (cellsim.products.thermo.pbe_cross_check, thermo_lines)


@pytest.fixture
def stored_pbe(monkeypatch):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "data" / "pbe" / "phases_pw"
    monkeypatch.setenv("CELLSIM_PBE_PHASES", str(root))
    return root


def test_pbe_leads_and_the_engine_stays_beside_it(structures: dict, stored_pbe) -> None:
    from cellsim.products.thermo import pbe_cross_check, thermo_lines

    react = {n: structures[n] for n in ("Li6PS5Cl", "Li")}
    engine = cross_check(react, {n: structures[n] for n in NAMES[2:]}, CHGNET, "chgnet test energies")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = pbe_cross_check(react, engine)
    assert out["source"].startswith("PBE (plane waves, GPAW")
    assert out["reactants"] == ["Li6PS5Cl", "Li"]
    assert out["exergonic"] is True
    assert sorted(out["products"]) == ["Li2S", "Li3P", "LiCl"]
    assert out["engine"] == engine
    lines = thermo_lines(out)
    assert len(lines) == 3
    assert lines[0].startswith("PBE, closed: Li6PS5Cl on its own: ")
    assert lines[1].startswith("engine (chgnet test energies): ")
    # every offline engine's value of the same reaction, stored by data/pbe/engine_thermo.py
    assert lines[2].startswith("the most exergonic reaction with each engine's energies (0 = none exergonic; PBE ")
    assert "chgnet " in lines[2] and "sevennet " in lines[2]


def test_pbe_missing_leaves_the_engine_s_answer_and_says_why(structures: dict, stored_pbe) -> None:
    from pymatgen.core import Lattice, Structure

    from cellsim.products.thermo import pbe_cross_check, thermo_lines

    ge = Structure(Lattice.cubic(5.6), ["Ge", "Ge"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    react = {"Ge": ge, "Li": structures["Li"]}
    engine = {"skipped": "energies of Ge not computed yet", "source": "chgnet"}
    out = pbe_cross_check(react, engine)
    assert out["pbe"]["skipped"] == "no stored PBE energy of Ge"
    assert out["skipped"] == "energies of Ge not computed yet"
    assert thermo_lines(out)[-1] == "engine (chgnet): energies of Ge not computed yet"


def test_thermo_lines_of_a_record_without_pbe_keep_the_engine_line() -> None:
    from cellsim.products.thermo import thermo_lines

    old = {
        "reaction": "Li6PS5Cl + 8 Li -> 5 Li2S + Li3P + LiCl",
        "energy_eV_per_atom": -0.5,
        "exergonic": True,
        "reactants_react": True,
        "reactants": ["Li6PS5Cl", "Li"],
        "source": "chgnet energies",
    }
    assert thermo_lines(old) == ["engine (chgnet energies): Li6PS5Cl + 8 Li -> 5 Li2S + Li3P + LiCl, -0.500 eV/atom"]
    assert thermo_lines({}) == []
