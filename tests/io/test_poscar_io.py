"""Every POSCAR/CONTCAR goes through cellsim.io.poscar (issue 35): its ASE and pymatgen entry points give what the
library calls they stand for give, byte for byte; the reader of the VASP continuation reads pymatgen's CONTCAR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from cellsim.io.poscar import (
    PoscarError,
    poscar_counts,
    pymatgen_poscar_text,
    read_poscar,
    read_poscar_atoms,
    read_poscar_structure,
    rewrite_poscar,
    write_atoms_ase_poscar,
    write_atoms_poscar,
)


@pytest.fixture
def atoms() -> Atoms:
    from ase.build import bulk
    from ase.constraints import FixAtoms

    a = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 1, 1)
    a.symbols[[1, 5]] = "Li"
    a.rattle(0.05, seed=3)
    a.set_constraint(FixAtoms([0, 1]))
    a.set_velocities(np.random.default_rng(0).normal(0.0, 0.01, (len(a), 3)))
    return a


@pytest.mark.parametrize("selective", [True, False])
def test_pymatgen_text_is_pymatgens(atoms: Atoms, selective: bool) -> None:
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.io.vasp import Poscar

    s = AseAtomsAdaptor.get_structure(atoms)
    if not selective:
        s.remove_site_property("selective_dynamics")
    assert pymatgen_poscar_text(s, "t") == Poscar(s, comment="t").get_str(significant_figures=8)


def test_contcar_with_velocities_reads_back(tmp_path: Path, atoms: Atoms) -> None:
    """The embedded engine's CONTCAR (pymatgen, selective dynamics, velocity block): read_poscar (the VASP
    continuation's reader) gives ASE's fractional coordinates; ASE and pymatgen read what they always read."""
    from ase.io import read

    path = write_atoms_poscar(tmp_path / "CONTCAR", atoms, "end", velocities=True)
    species, frac, cell = read_poscar(path)
    ase_atoms = read(path, format="vasp")
    assert species == ase_atoms.get_chemical_symbols()
    np.testing.assert_allclose(frac, ase_atoms.get_scaled_positions(wrap=True), atol=1e-9)
    np.testing.assert_allclose(cell, ase_atoms.cell.array, atol=1e-9)
    got = read_poscar_atoms(path)
    assert (got.positions == ase_atoms.positions).all() and repr(got.constraints) == repr(ase_atoms.constraints)
    assert read_poscar_structure(path).site_properties["velocities"] is not None
    assert poscar_counts(path) == [1, 1, 3, 1, 2]


def test_rewrite_and_ase_layouts(tmp_path: Path, atoms: Atoms) -> None:
    from ase.io import write
    from pymatgen.io.vasp import Poscar

    write_atoms_ase_poscar(tmp_path / "ours", atoms)
    write(tmp_path / "ase", atoms, format="vasp", direct=True)
    assert (tmp_path / "ours").read_bytes() == (tmp_path / "ase").read_bytes()
    rewrite_poscar(tmp_path / "ase", tmp_path / "POSCAR")
    Poscar.from_file(tmp_path / "ase").write_file(tmp_path / "pmg")
    assert (tmp_path / "POSCAR").read_bytes() == (tmp_path / "pmg").read_bytes()


def test_a_cut_contcar_is_refused_by_line(tmp_path: Path, atoms: Atoms) -> None:
    path = write_atoms_poscar(tmp_path / "CONTCAR", atoms, "end")
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:12]))
    with pytest.raises(PoscarError, match=r"CONTCAR:\d+: expected 8 atom lines"):
        read_poscar(path)
