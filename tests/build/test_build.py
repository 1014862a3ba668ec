"""The interface builder: good builds checked independently with ASE, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase.io import read
from ase.neighborlist import neighbor_list

from cellsim.build import build_interface
from cellsim.config.study import InterfaceSpec, SlabSpec
from cellsim.core.errors import BuildError, PhaseNotFoundError, StructureReadError
from cellsim.stages import build


def run_build(study: str, run_dir: Path) -> dict:
    return build(study, run_dir).report


def _check_model(poscar: Path, electrolyte_ratio: dict[str, int], metal_elements: set[str]) -> None:
    atoms = read(poscar, format="vasp")
    n = len(atoms)
    assert 250 <= n <= 450
    sym = np.array(atoms.get_chemical_symbols())
    assert set(electrolyte_ratio) | metal_elements == set(sym)
    # independent check with ASE: every P has exactly four S within 2.3 A
    i, j, d = neighbor_list("ijd", atoms, 2.3)
    ps = (sym[i] == "P") & (sym[j] == "S")
    counts = np.bincount(i[ps], minlength=n)[sym == "P"]
    assert len(counts) > 0 and np.all(counts == 4), counts
    # no pair closer than 1.6 A, periodic images included
    i, j, d = neighbor_list("ijd", atoms, 1.6)
    assert len(d) == 0, f"pairs closer than 1.6 A: {list(zip(sym[i], sym[j], d, strict=True))[:5]}"
    # species grouped (VASP 5 header order) and electrolyte part in its ratio
    first = [s for k, s in enumerate(sym) if k == 0 or sym[k - 1] != s]
    assert len(first) == len(set(first))
    p_count = int(np.sum(sym == "P"))
    for el, r in electrolyte_ratio.items():
        if el not in metal_elements:
            assert np.sum(sym == el) == r * p_count


def test_paper_interface(paper_run: Path) -> None:
    iface = paper_run / "interface"
    _check_model(iface / "POSCAR", {"Li": 6, "P": 1, "S": 5, "Cl": 1}, {"In"})
    report = json.loads((iface / "interface.json").read_text())
    assert report["n_atoms"] == len(read(iface / "POSCAR", format="vasp"))
    assert report["species_order"] == ["Li", "P", "S", "Cl", "In"]
    assert report["ps4"]["intact"] and report["ps4"]["count"] == report["composition"]["P"]
    assert report["electrolyte_stoichiometry"]["stoichiometric"]
    assert report["strain"]["electrolyte"]["max_abs"] == 0.0
    assert 0 < report["strain"]["metal"]["max_abs"] <= 0.03
    assert report["closest_pair"]["distance"] >= 1.6
    assert report["gap"] == 2.5 and report["vacuum"] == 15.0
    assert report["area"] == pytest.approx(report["cell"]["a"] * report["cell"]["b"], rel=1e-3)
    for side in ("electrolyte", "metal"):
        assert report[side]["termination"]["facing_interface"]
        assert report[side]["terminations_available"]
    # the CIF reads back with the same atoms
    assert len(read(iface / "interface.cif")) == report["n_atoms"]
    # the resolved study has every default written out
    study = (paper_run / "study.yaml").read_text()
    for key in ("min_lateral:", "fixed_metal_layers:", "bond_cutoffs:", "checkpoint_every:", "nblock:"):
        assert key in study


def test_gap_and_vacuum_geometry(paper_run: Path) -> None:
    atoms = read(paper_run / "interface" / "POSCAR", format="vasp")
    z = atoms.positions[:, 2]
    metal = np.array(atoms.get_chemical_symbols()) == "In"
    assert z[~metal].min() - z[metal].max() == pytest.approx(2.5, abs=1e-4)
    c = atoms.cell[2, 2]
    assert c - (z.max() - z.min()) == pytest.approx(15.0, abs=1e-4)


@pytest.mark.parametrize(
    ("study", "ratio", "metal"),
    [
        ("li6ps5cl_li", {"Li": 6, "P": 1, "S": 5, "Cl": 1}, {"Li"}),
        ("li6ps5cl_liin", {"Li": 6, "P": 1, "S": 5, "Cl": 1}, {"Li", "In"}),
        ("li3ps4_in", {"Li": 3, "P": 1, "S": 4}, {"In"}),
    ],
)
def test_sibling_studies(repo: Path, tmp_path: Path, study: str, ratio: dict[str, int], metal: set[str]) -> None:
    report = run_build(str(repo / "workflows" / f"{study}.yaml"), tmp_path / study)
    _check_model(tmp_path / study / "interface" / "POSCAR", ratio, metal)
    assert report["ps4"]["intact"]
    assert report["electrolyte_stoichiometry"]["stoichiometric"]


def test_periodic_sandwich_and_fixed_layers() -> None:
    spec = InterfaceSpec(vacuum=0.0, fixed_metal_layers=2)
    model = build_interface(spec)
    s = model.structure
    z = s.cart_coords[:, 2]
    metal = np.array([site.specie.symbol == "In" for site in s])
    # across the periodic boundary the electrolyte's top meets the metal's bottom at `gap`
    assert s.lattice.c - (z[~metal].max() - z[metal].min()) == pytest.approx(2.5, abs=1e-4)
    sd = np.array(s.site_properties["selective_dynamics"])
    fixed = ~sd[:, 0]
    assert fixed.sum() == model.report["fixed_atoms"] > 0
    assert np.all(metal[fixed])
    assert z[fixed].max() < z[metal & ~fixed].min()
    assert model.report["periodic_sandwich"] is True


def test_electrolyte_strained_instead() -> None:
    model = build_interface(InterfaceSpec(strained="electrolyte"))
    assert model.report["strain"]["metal"]["max_abs"] == 0.0
    assert 0 < model.report["strain"]["electrolyte"]["max_abs"] <= 0.03
    assert model.report["ps4"]["intact"]


# ------------------------------------------------------------------------------------- bad inputs


def test_unknown_phase_name() -> None:
    spec = InterfaceSpec(metal=SlabSpec(phase="Unobtainium"))
    with pytest.raises(PhaseNotFoundError, match=r"interface\.metal\.phase: unknown phase 'Unobtainium'.*In2S3"):
        build_interface(spec)


def test_missing_structure_file(tmp_path: Path) -> None:
    spec = InterfaceSpec(metal=SlabSpec(phase="nothere.cif"))
    with pytest.raises(PhaseNotFoundError, match=r"structure file '.*nothere\.cif' does not exist"):
        build_interface(spec, tmp_path)


def test_unreadable_cif(tmp_path: Path) -> None:
    bad = tmp_path / "broken.cif"
    bad.write_text("data_broken\n_cell_length_a 3.0\nthis is not a cif loop\n")
    spec = InterfaceSpec(metal=SlabSpec(phase=str(bad)))
    with pytest.raises(StructureReadError, match=r"broken\.cif: could not read a crystal structure"):
        build_interface(spec)


def test_structure_from_relative_cif_path(tmp_path: Path) -> None:
    from cellsim.references.library import get_phase

    src = get_phase("In")
    assert src is not None
    (tmp_path / "my_in.cif").write_text(src.path.read_text())
    model = build_interface(InterfaceSpec(metal=SlabSpec(phase="my_in.cif")), tmp_path)
    assert model.report["metal"]["phase"] == "my_in"


def test_no_match_under_strain_limit() -> None:
    spec = InterfaceSpec(metal=SlabSpec(phase="In", miller=(1, 0, 1)), max_strain=0.001, max_area=250)
    with pytest.raises(BuildError, match=r"no lattice match for Li6PS5Cl\[0, 0, 1\] / In\[1, 0, 1\].*strain <= 0\.1 %"):
        build_interface(spec)


def test_too_many_atoms_lists_what_fits() -> None:
    spec = InterfaceSpec(min_atoms=300, max_atoms=310)
    with pytest.raises(BuildError, match=r"What fits under max_atoms: .* atoms"):
        build_interface(spec)


def test_smallest_model_too_big() -> None:
    spec = InterfaceSpec(electrolyte=SlabSpec(phase="Li6PS5Cl", min_thickness=60.0), max_atoms=450)
    with pytest.raises(BuildError, match=r"interface\.max_atoms: the smallest model has \d+ atoms > max_atoms=450"):
        build_interface(spec)


def test_refuses_close_contacts() -> None:
    # the facing In and S planes are laterally offset by ~1.7 A: a 0.1 A gap puts In within 1.9 A of S or Li
    spec = InterfaceSpec(gap=0.1, min_distance=1.9)
    with pytest.raises(
        BuildError,
        match=r"atoms \d+ \((In|S|Li)\) and \d+ \((In|S|Li)\) are 1\.\d+ A apart, closer than "
        r"interface\.min_distance = 1\.9 A",
    ):
        build_interface(spec)


def test_termination_index_out_of_range() -> None:
    spec = InterfaceSpec(electrolyte=SlabSpec(phase="Li6PS5Cl", termination=5, min_thickness=10))
    with pytest.raises(BuildError, match=r"interface\.electrolyte\.termination: 5 is out of range.*2 allowed"):
        build_interface(spec)


def test_termination_that_must_cut_ps4_is_refused() -> None:
    # an absurd 4 A "P-S bond" makes every cut of Li6PS5Cl(001) break one
    spec = InterfaceSpec(intact_bonds={"P-S": 2.3, "S-S": 6.0})
    with pytest.raises(BuildError, match=r"every termination of this plane cuts a bond"):
        build_interface(spec)


def test_cli_build_refuses_different_study(paper_run: Path, repo: Path) -> None:
    from cellsim.core.errors import StudyError

    with pytest.raises(StudyError, match=r"already holds a different study"):
        run_build(str(repo / "workflows" / "li6ps5cl_li.yaml"), paper_run)


def test_summary_states_the_thickness_that_was_checked(paper_run: Path) -> None:
    """interface.json and the build table give layers x layer spacing (what min_thickness is checked against)
    and, apart, the atoms' span; never the span as if it were the checked thickness."""
    from cellsim.cli.build import _thickness

    report = json.loads((paper_run / "interface" / "interface.json").read_text())
    for side, floor in (("electrolyte", 10.0), ("metal", 8.0)):
        d = report[side]
        assert d["thickness"] == pytest.approx(d["layers"] * d["layer_thickness"], abs=1e-3)
        assert d["thickness"] >= d["min_thickness"] == floor > 0 and d["atom_extent"] < d["thickness"]
        line = _thickness(d)
        assert f"= {d['thickness']:.2f} A >= {floor:g} A" in line and f"atoms span {d['atom_extent']:.2f} A" in line
