"""cellsim.core.elements holds what ASE and pymatgen say, so the analysis path can do without importing them."""

from __future__ import annotations

import re

import pytest

from cellsim.core import elements


def test_table_matches_ase_and_pymatgen() -> None:
    from ase.data import atomic_masses, chemical_symbols, covalent_radii
    from pymatgen.core.periodic_table import Element

    assert list(elements.SYMBOLS) == chemical_symbols[1:119]
    for z, sym in enumerate(elements.SYMBOLS, start=1):
        assert elements.covalent_radius(sym) == float(covalent_radii[z]), sym
        assert elements.atomic_mass(sym) == float(atomic_masses[z]), sym
        assert elements.is_metal(sym) == bool(Element(sym).is_metal), sym
        assert elements.atomic_number(sym) == z


@pytest.mark.parametrize("sym", ["D", "T", "In", "Og"])
def test_valid_symbols_as_pymatgen(sym: str) -> None:
    from pymatgen.core.periodic_table import Element

    assert elements.is_symbol(sym) == Element.is_valid_symbol(sym)


@pytest.mark.parametrize("sym", ["X", "Xx", "in", "", "Uue"])
def test_invalid_symbols(sym: str) -> None:
    assert not elements.is_symbol(sym)
    with pytest.raises(KeyError, match=f"^{re.escape(repr(sym))}$"):
        elements.atomic_number(sym)


@pytest.mark.parametrize("formula", ["Li6PS5Cl", "In2S3", "InCl", "In2S4", "LiIn", "Li3PS4", "H2O", "SS"])
def test_plain_formulas_as_pymatgen(formula: str) -> None:
    from pymatgen.core import Composition

    comp = Composition(formula).reduced_composition
    assert elements.parse_formula(formula) == {el.symbol: int(n) for el, n in comp.items()}


@pytest.mark.parametrize("formula", ["Li(PS4)", "Li0.5In", "In2S3-", "Xx2", "li2S", "In02", ""])
def test_other_formulas_are_left_to_pymatgen(formula: str) -> None:
    assert elements.parse_formula(formula) is None
