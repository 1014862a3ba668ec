"""cellsim.core.elements holds what ASE and pymatgen say, so the analysis path can do without importing them."""

from __future__ import annotations

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
    with pytest.raises(KeyError):
        elements.atomic_number(sym)
