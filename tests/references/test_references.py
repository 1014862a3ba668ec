"""The shipped reference library matches its provenance file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from cellsim.references.library import DATA_DIR, get_phase, library


def test_every_shared_structure_is_shipped(repo: Path) -> None:
    shared = repo.parent / "shared" / "reference-structures"
    if not shared.is_dir():
        pytest.skip("../shared not beside this checkout")
    for cif in shared.glob("*.cif"):
        assert (DATA_DIR / cif.name).read_bytes() == cif.read_bytes(), cif.name
    assert (DATA_DIR / "SOURCES.md").read_bytes() == (shared / "SOURCES.md").read_bytes()


@pytest.mark.parametrize("name", sorted(library()))
def test_library_entry_matches_cif(name: str) -> None:
    phase = library()[name]
    s = phase.structure()
    assert s.composition.reduced_formula == phase.name or phase.name in s.composition.reduced_formula
    sga = SpacegroupAnalyzer(s, symprec=0.1)
    assert sga.get_space_group_number() == phase.spacegroup_number
    assert phase.source and phase.first_shell
    # the provenance table names every file
    provenance = (DATA_DIR / "SOURCES.md").read_text() + (DATA_DIR / "ADDED.md").read_text()
    assert f"`{phase.file}`" in provenance


def test_lookup_by_file_stem() -> None:
    assert get_phase("In2S3_I41amd") is get_phase("In2S3")
    assert get_phase("in2s3") is None  # exact names only


def test_first_spheres_table_is_current() -> None:
    """data/first_spheres.json (the default bond cutoffs' source) is what the library's CIFs give."""
    from cellsim.references.library import compute_first_spheres, first_spheres

    assert first_spheres() == compute_first_spheres()


def test_default_cutoffs_hold_the_first_spheres() -> None:
    """InCl's second short shell (3.17 A) is inside the default In-Cl cutoff, a broken PS4 bond (2.5 A) is not."""
    from cellsim.analysis.analyze import default_cutoff

    assert 3.17 < default_cutoff("In-Cl") < 3.6
    assert 2.07 < default_cutoff("P-S") < 2.4
    assert 3.38 < default_cutoff("In-In") < 3.9
    assert default_cutoff("S-In") == default_cutoff("In-S")
