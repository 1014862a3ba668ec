"""Interfacial energetics (cellsim.engines.contacts): the configurations built from a snapshot, the rows that judge
an engine against PBE, the stored set read back, and the engine check's rows on it with stand-in engines on both
sides (one equal to PBE passes, one that under-rates the contacts fails and says so)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from cellsim.engines.contacts import (
    CONTACT_TOL,
    ContactError,
    ContactSet,
    contact_moves,
    contact_rows,
    contact_verdict,
    engine_deltas,
    min_distance,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "pbe" / "li6ps5cl_in_contacts"


def _snapshot() -> Atoms:
    """A 2x2 In(001) plane at z=10, a PS4 unit above it with one S 2.9 A from an In, a Cl 4.2 A above another In."""
    pos = [[0, 0, 10], [3.6, 0, 10], [0, 3.6, 10], [3.6, 3.6, 10]]
    sym = ["In"] * 4
    p = np.array([0.0, 0.0, 14.9])
    sym += ["P", "S", "S", "S", "S", "Cl", "Li"]
    pos += [
        list(p),
        [0.0, 0.0, 12.9],  # 2.0 A below P, 2.9 A above In0
        [1.9, 0.0, 15.6],
        [-0.95, 1.65, 15.6],
        [-0.95, -1.65, 15.6],
        [3.6, 3.6, 14.2],  # Cl 4.2 A above In3
        [3.6, 0.0, 16.5],
    ]
    return Atoms(sym, positions=pos, cell=[7.2, 7.2, 24.0], pbc=True)


def test_moves_pick_the_interfacial_anion_and_reach_their_distances() -> None:
    snap = _snapshot()
    moves = {m.name: m for m in contact_moves(snap, "In")}
    assert list(moves) == [
        "S-In tightened",
        "P-S 2.7 A",
        "P-S 3.1 A",
        "Cl-In half way",
        "Cl-In onto",
        "In pulled to S",
    ]
    assert moves["S-In tightened"].atom == 5 and moves["S-In tightened"].anchor == 0
    for m in moves.values():
        got = m.apply(snap)
        assert got.get_distance(m.anchor, m.atom, mic=True) == pytest.approx(m.distance, abs=1e-9)
        # one atom moves; the others at most by a lattice vector (the copy is wrapped into the cell)
        shift = got.get_scaled_positions(wrap=False) - snap.get_scaled_positions(wrap=False)
        moved = np.flatnonzero(np.linalg.norm((shift - np.round(shift)) @ snap.cell.array, axis=1) > 1e-9)
        assert moved.tolist() == [m.atom]
    assert moves["Cl-In half way"].distance == pytest.approx((4.2 + 2.85) / 2)
    assert moves["P-S 3.1 A"].apply(snap).get_distance(4, 5, mic=True) == pytest.approx(3.1)
    assert min_distance(snap, 5) == pytest.approx(2.0)  # the S to its P


def test_moves_need_the_metal_and_a_framework_anion() -> None:
    snap = _snapshot()
    with pytest.raises(ContactError, match="need Cu and P atoms"):
        contact_moves(snap, "Cu")
    far = snap.copy()
    far.positions[5:9] += [0, 0, 0]
    far.positions[4] = [3.6, 3.6, 20.0]  # P away from every S
    with pytest.raises(ContactError, match=r"no S within 2\.4 A of a P"):
        contact_moves(far, "In")


def _cset(deltas: dict[str, float]) -> ContactSet:
    configs = [{"name": n, "description": f"move {n}", "job": f"job-{n}", "delta_eV": d} for n, d in deltas.items()]
    return ContactSet("snap", "In", "Li6PS5Cl", 46, "PBE (test)", "job-snap", 0.0, configs)


def test_rows_give_the_error_its_sign_and_verdict() -> None:
    cset = _cset({"a": 1.0, "b": 0.5})
    rows = contact_rows("eng", cset, {"a": 1.05, "b": 0.2})
    by = {r.phase: r for r in rows}
    assert by["interface: a"].verdict == "ok" and by["interface: a"].reference == 1.0
    assert "+0.050 eV (favours it less than PBE)" in by["interface: a"].note
    assert by["interface: b"].verdict == "fail"  # 0.3 eV too eager
    assert "-0.300 eV (favours the contact more than PBE)" in by["interface: b"].note
    summary = by["interface contacts (2 configurations)"]
    assert summary.value == pytest.approx(0.175) and summary.verdict == "warn"
    assert "over-rates the metal-anion contacts" in summary.note
    assert contact_verdict(CONTACT_TOL[0]) == "ok" and contact_verdict(-CONTACT_TOL[1]) == "warn"
    assert contact_verdict(CONTACT_TOL[1] + 1e-6) == "fail"


def test_engine_deltas_are_relative_to_the_snapshot() -> None:
    frames = {"snapshot": Atoms("H"), "x": Atoms("H2")}
    assert engine_deltas(lambda a: 10.0 * len(a), frames) == {"x": 10.0}


def test_a_set_of_another_version_or_layout_is_refused_by_name(tmp_path: Path) -> None:
    f = tmp_path / "contacts.json"
    f.write_text(json.dumps({"version": 99}))
    with pytest.raises(ContactError, match=r"contacts\.json: contact set version 99"):
        ContactSet.load(f)
    f.write_text(json.dumps({"version": 1, "source": "x"}))
    with pytest.raises(ContactError, match=r"contacts\.json: not a contact set"):
        ContactSet.load(f)
    _cset({"a": 1.0}).save(f)
    assert ContactSet.load(f).configs[0]["delta_eV"] == 1.0
