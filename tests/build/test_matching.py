"""Lattice matching: strain arithmetic and the known sqrt(10) In(001) coincidence."""

from __future__ import annotations

import numpy as np
import pytest

from cellsim.build.matching import find_matches, strain_of


def test_strain_of_pure_stretch_and_rotation() -> None:
    guest = np.array([[1.0, 0.0], [0.0, 2.0]])
    th = np.radians(30)
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    U = np.diag([1.02, 0.99])
    host = (R @ U @ guest.T).T
    strains, rot, det = strain_of(guest, host)
    assert sorted(strains) == pytest.approx([-0.01, 0.02])
    assert rot == pytest.approx(30.0)
    assert det == pytest.approx(1.02 * 0.99)


def test_sqrt10_coincidence_of_in_on_li6ps5cl() -> None:
    a_e, a_in = 10.22674454, 3.25283
    host = np.array([[a_e, 0.0], [0.0, a_e]])
    guest = np.array([[a_in, 0.0], [0.0, a_in]])
    matches = find_matches(host, guest, 0.03, 120)
    assert matches, "the (3,1)x(-1,3) In cell must match the 1x1 Li6PS5Cl(001) cell"
    m = matches[0]
    assert round(abs(np.linalg.det(m.guest_T))) == 10
    expected = a_e / (a_in * np.sqrt(10)) - 1
    assert m.principal_strains == pytest.approx((expected, expected), abs=1e-9)
    # always a proper map (never a mirror image)
    assert np.linalg.det(m.guest_T) > 0 and np.linalg.det(m.host_T) > 0
    assert strain_of(m.guest_vectors, m.host_vectors)[2] > 0


def test_strain_limit_is_respected() -> None:
    host = np.array([[10.0, 0.0], [0.0, 10.0]])
    guest = np.array([[3.1, 0.0], [0.0, 3.1]])
    for m in find_matches(host, guest, 0.02, 500):
        assert m.max_strain <= 0.02 + 1e-12
