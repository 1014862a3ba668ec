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
