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


# --------------------------------------------------------------------------- the stored set and the engine check


def _stored() -> tuple[ContactSet, Path]:
    if not (DATA / "contacts.json").is_file():
        pytest.skip("the stored contact set (data/pbe/li6ps5cl_in_contacts) is not in this install")
    return ContactSet.load(DATA / "contacts.json"), DATA


class _Lookup:
    """A stand-in engine: PBE's stored energy of each configuration (+ ``shift`` eV on the named ones)."""

    def __init__(self, cset: ContactSet, folder: Path, shift: dict[str, float]) -> None:
        from cellsim.engines.contacts import structures

        self.known = []
        frames = structures(cset, folder)
        energy = {"snapshot": cset.snapshot_energy_eV, **{c["name"]: c["energy_eV"] for c in cset.configs}}
        for name, atoms in frames.items():
            self.known.append((atoms.positions.copy(), energy[name] + shift.get(name, 0.0)))

    def __call__(self, atoms: Atoms) -> float:
        for pos, e in self.known:
            if np.allclose(pos, atoms.positions, atol=1e-6):
                return e
        raise AssertionError("not a stored configuration")


def test_the_stored_set_is_what_its_jobs_hold() -> None:
    from cellsim.engines.singlepoint import load_result

    cset, folder = _stored()
    assert (cset.metal, cset.electrolyte, cset.natoms) == ("In", "Li6PS5Cl", 46)
    ref = load_result(folder / "jobs" / cset.snapshot_job)
    assert ref is not None and ref.energy == pytest.approx(cset.snapshot_energy_eV)
    for c in cset.configs:
        res = load_result(folder / "jobs" / c["job"])
        assert res is not None and c["delta_eV"] == pytest.approx(res.energy - ref.energy)
    # the engines stored beside PBE: the bundled fit, CHGNet 0.3.0, SevenNet-0 (and the active-learning fit)
    assert {"fitted CHGNet (chgnet-in-pbe)", "chgnet", "sevennet"} <= set(cset.engines)


def test_an_engine_equal_to_pbe_passes_and_one_that_under_rates_the_contacts_fails() -> None:
    from cellsim.engines.contacts import structures

    cset, folder = _stored()
    frames = structures(cset, folder)
    same = contact_rows("pbe-copy", cset, engine_deltas(_Lookup(cset, folder, {}), frames))
    assert {r.verdict for r in same} == {"ok"} and same[-1].value == pytest.approx(0.0, abs=1e-9)
    shy = {n: 0.4 for n in ("S-In tightened", "P-S 2.7 A", "P-S 3.1 A")}
    rows = contact_rows("shy", cset, engine_deltas(_Lookup(cset, folder, shy), frames))
    by = {r.phase: r for r in rows}
    assert (
        by["interface: P-S 3.1 A"].verdict == "fail" and "favours it less than PBE" in by["interface: P-S 3.1 A"].note
    )
    assert by["interface: Cl-In onto"].verdict == "ok"
    assert "under-rates the metal-anion contacts" in rows[-1].note


def test_the_engine_check_reads_the_stored_set_for_in_on_li6ps5cl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ase.calculators.lj import LennardJones

    from cellsim.config.study import load_study
    from cellsim.engines import check as ec
    from cellsim.engines.check.settings import EngineReport
    from cellsim.engines.check.tasks import _check_contacts, _EngineCheck, _Tasks
    from cellsim.engines.registry import ModelInfo

    _stored()
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    fake = ModelInfo("fake-lj", "LJ", "1", "-", "Lennard-Jones stand-in", "-", "cellsim", "__init__.py")
    inp = ec.prepare(load_study("li6ps5cl_in"))
    report = EngineReport(engine="fake-lj", model="LJ", loaded=True)
    factory = lambda _m: LennardJones(sigma=2.6, epsilon=0.005, rc=5.0, smooth=True)  # noqa: E731
    chk = _EngineCheck(_Tasks(fake, factory, ec.CheckSettings(), True, None), inp, report)
    _check_contacts(chk)
    got = [r for r in report.rows if r.quantity.startswith("contact energy")]
    assert len(got) == 7 and got[-1].quantity == "contact energy MAE vs PBE"
    assert all(r.verdict in {"ok", "warn", "fail"} for r in got)
    # a study of another electrolyte has no stored set: no rows
    other = EngineReport(engine="fake-lj", model="LJ", loaded=True)
    li3 = _EngineCheck(
        _Tasks(fake, factory, ec.CheckSettings(), True, None), ec.prepare(load_study("li3ps4_in")), other
    )
    _check_contacts(li3)
    assert other.rows == []


def test_a_damaged_stored_set_is_a_fail_row_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ase.calculators.lj import LennardJones

    import cellsim.engines.contacts as contacts
    from cellsim.config.study import load_study
    from cellsim.engines import check as ec
    from cellsim.engines.check.settings import EngineReport
    from cellsim.engines.check.tasks import _check_contacts, _EngineCheck, _Tasks
    from cellsim.engines.registry import ModelInfo

    bad = tmp_path / "x_contacts" / "contacts.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    monkeypatch.setattr(contacts, "stored_sets", lambda root=None: [bad])
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    fake = ModelInfo("fake-lj", "LJ", "1", "-", "Lennard-Jones stand-in", "-", "cellsim", "__init__.py")
    report = EngineReport(engine="fake-lj", model="LJ", loaded=True)
    factory = lambda _m: LennardJones()  # noqa: E731
    chk = _EngineCheck(
        _Tasks(fake, factory, ec.CheckSettings(), True, None), ec.prepare(load_study("li6ps5cl_in")), report
    )
    _check_contacts(chk)
    (row,) = report.rows
    assert row.verdict == "fail" and row.quantity == "contact energy vs PBE"
    assert "contacts.json: not a contact set" in row.note
