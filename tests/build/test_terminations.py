"""Both faces of a bond-preserving cut: Li6PS5Cl(001) has one cut that keeps every PS4 whole, and its two faces
differ (Li1S2 below, Li4S1 above); termination 1 is the same cut turned over, its other face against the metal."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cellsim.build.interface import build_interface
from cellsim.build.slabs import SlabTemplate, slab_templates, turned_over, with_both_faces
from cellsim.config.study import InterfaceSpec, SlabSpec
from cellsim.references.library import resolve_phase


@pytest.fixture(scope="module")
def cut() -> SlabTemplate:
    _, bulk = resolve_phase("Li6PS5Cl", None, "phase")
    return slab_templates(bulk, (0, 0, 1), "Li6PS5Cl", {("P", "S"): 2.3})[0]


def _distances(pos: np.ndarray) -> np.ndarray:
    return np.sort(np.linalg.norm(pos[:, None] - pos[None], axis=-1).ravel())


def test_turning_over_moves_no_atom_relative_to_another(cut: SlabTemplate) -> None:
    assert np.allclose(_distances(turned_over(cut).positions), _distances(cut.positions), atol=1e-8)


def test_turned_over_faces_swap(cut: SlabTemplate) -> None:
    other = turned_over(cut)
    assert (other.bottom, other.top) == (cut.top, cut.bottom)


def test_turned_over_layer_keeps_its_lattice(cut: SlabTemplate) -> None:
    other = turned_over(cut)
    assert (other.area, other.layer_thickness) == (pytest.approx(cut.area), pytest.approx(cut.layer_thickness))


def test_turned_over_basis_stays_right_handed(cut: SlabTemplate) -> None:
    assert np.linalg.det(turned_over(cut).inplane) > 0


def test_a_cut_with_equal_faces_is_offered_once() -> None:
    _, bulk = resolve_phase("In", None, "phase")
    assert len(with_both_faces(slab_templates(bulk, (0, 0, 1), "In"))) == 1


def test_li6ps5cl_001_offers_both_faces(cut: SlabTemplate) -> None:
    assert [(t.bottom, t.turned_over) for t in with_both_faces([cut])] == [("Li1S2", False), ("Li4S1", True)]


@pytest.fixture(scope="module")
def other_face() -> dict[str, Any]:
    spec = InterfaceSpec(electrolyte=SlabSpec(phase="Li6PS5Cl", termination=1), metal=SlabSpec(phase="Li"))
    return build_interface(spec).report


def test_termination_1_puts_the_other_face_against_the_metal(other_face: dict[str, Any]) -> None:
    assert other_face["electrolyte"]["termination"]["facing_interface"] == "Li4S1"


def test_termination_1_keeps_every_ps4_whole(other_face: dict[str, Any]) -> None:
    assert other_face["ps4"]["intact"] and other_face["ps4"]["count"] == other_face["composition"]["P"]


def test_termination_1_keeps_the_stoichiometry(other_face: dict[str, Any]) -> None:
    assert other_face["electrolyte_stoichiometry"]["stoichiometric"]


def test_termination_1_keeps_atoms_apart(other_face: dict[str, Any]) -> None:
    assert other_face["closest_pair"]["distance"] >= 1.6
