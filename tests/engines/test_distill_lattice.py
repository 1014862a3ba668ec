"""The distillation's bulk-metal frames and the student's lattices against its teacher (cellsim.engines.distill):
the metal strained along c at constant volume (what taught the student In's c/a), and a lattice check that passes a
student equal to its teacher and fails one whose crystal is 5 % larger."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cellsim.engines.distill import LATTICE_AGREEMENT, lattice_against_teacher, metal_frames
from cellsim.engines.student import DataSettings, card_markdown, record_card


def _conventional_ca(atoms) -> float:
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    conv = SpacegroupAnalyzer(AseAtomsAdaptor.get_structure(atoms), symprec=1e-3).get_conventional_standard_structure()
    return float(conv.lattice.c / conv.lattice.a)


def test_metal_frames_strain_c_at_constant_volume_then_scale_the_volume() -> None:
    data = DataSettings(metal_strains=(-0.06, 0.0, 0.04), metal_volumes=(0.97,))
    clean = metal_frames("In", data, rattle=0.0)
    assert [(a.info["c_strain"], a.info["volume_scale"]) for a in clean] == [
        (-0.06, 1.0),
        (0.0, 1.0),
        (0.04, 1.0),
        (0.0, 0.97),
    ]
    assert all(a.info["group"] == "bulk-metal" and len(a) >= 16 for a in clean)
    base = _conventional_ca(clean[1])
    assert base == pytest.approx(1.52, abs=0.01)  # the library's In
    # c x (1 + eps), a x (1 + eps)^-1/2: c/a x (1 + eps)^1.5; -6 % reaches fcc's sqrt(2) side of the Bain path
    assert _conventional_ca(clean[0]) == pytest.approx(base * 0.94**1.5, rel=1e-4)
    assert _conventional_ca(clean[2]) == pytest.approx(base * 1.04**1.5, rel=1e-4)
    vol = [a.get_volume() / len(a) for a in clean]
    assert vol[0] == pytest.approx(vol[1]) and vol[3] == pytest.approx(0.97 * vol[1])
    rattled = metal_frames("In", data)
    shift = np.abs(rattled[1].positions - clean[1].positions)
    assert 0 < shift.max() < 0.2  # seeded, small
    assert np.array_equal(rattled[1].positions, metal_frames("In", data)[1].positions)


def test_the_lattice_check_passes_a_faithful_student_and_fails_a_wrong_one(tmp_path: Path) -> None:
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.io import write

    cif = tmp_path / "Cu.cif"
    write(cif, bulk("Cu", "fcc", a=3.6, cubic=True))
    same = lattice_against_teacher(EMT(), EMT(), [str(cif)])
    assert same[0]["quantity"] == "a (A)" and same[0]["ok"] and abs(same[0]["difference"]) < 1e-3

    class Larger(EMT):  # the same crystal 5 % larger: EMT of the positions and cell scaled down by 1.05
        def calculate(self, atoms=None, properties=("energy",), system_changes=()):
            small = atoms.copy()
            small.set_cell(atoms.cell.array / 1.05, scale_atoms=True)
            super().calculate(small, properties, system_changes)
            self.atoms = atoms.copy()
            if "forces" in self.results:
                self.results["forces"] = self.results["forces"] / 1.05
            if "stress" in self.results:
                self.results["stress"] = self.results["stress"] * 1.05**2

    wrong = lattice_against_teacher(Larger(), EMT(), [str(cif)])
    assert wrong[0]["difference"] == pytest.approx(0.05, abs=0.01) and not wrong[0]["ok"]
    assert LATTICE_AGREEMENT == 0.01


def test_the_card_shows_the_lattice_rows(tmp_path: Path) -> None:
    card = {
        "key": "k",
        "teacher": {"path": "t", "sha256": "0" * 64},
        "data": {"frames": 1, "train_frames": 1, "heldout_frames": 0, "key": "d"},
        "model": {"parameters": 1, "species": [49]},
        "settings": {},
        "training": {"cpu_seconds": 1.0},
        "errors_after": {},
    }
    (tmp_path / "card.json").write_text(json.dumps(card))
    rows = [
        {
            "phase": "In",
            "quantity": "c/a",
            "student": 1.4142,
            "teacher": 1.538,
            "difference": -0.1238,
            "relative": False,
            "ok": False,
        },
        {
            "phase": "Li6PS5Cl",
            "quantity": "a (A)",
            "student": 10.29,
            "teacher": 10.26,
            "difference": 0.0029,
            "relative": True,
            "ok": True,
        },
    ]
    got = record_card(tmp_path, "lattice", rows)
    assert got["lattice"] == rows
    md = card_markdown(got)
    assert "| In c/a | 1.4142 | 1.5380 | -0.1238 | no |" in md
    assert "| Li6PS5Cl a (A) | 10.2900 | 10.2600 | +0.29 % | yes |" in md
    assert (tmp_path / "card.md").read_text() == md
