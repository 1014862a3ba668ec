"""What counts as new (baseline.py) and how much of it (amounts.py), at the edges of every threshold: the early
and late windows, the new density's minimum and share, the bond count's noise margin, the environments'
change, gain, product weight, residual, distinctness, grouping and firmness (docs/matching.md, rules 1 and 4).
One outcome per assert; "just below" is a hair (1e-9) or, where a least-squares fit sits between the input and
the rule, one hundredth of a neighbour."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from pymatgen.core import Composition

from cellsim.analysis.peaks import smooth
from cellsim.config.study import MatchSpec
from cellsim.products import amounts as am
from cellsim.products import baseline as bl
from cellsim.products.amounts import Group, _assign, build_groups, product_amounts
from cellsim.products.baseline import bond_change, new_density, pair_kind, sample_windows, time_windows

HAIR = 1e-9


def test_the_constants() -> None:
    assert (bl.EARLY_FRACTION, bl.EARLY_MAX_PS, bl.BOOTSTRAP) == (0.05, 0.1, 200)
    assert (am.MIN_DISTINCT, am.GROUP_COSINE, am.MIN_CHANGE, am.MIN_GAIN) == (2.0, 0.9, 1.0, 2.0)
    assert (am.REACTED_WEIGHT, am.MAX_RESIDUAL_FRACTION, am.MAX_RESIDUAL_MIN, am.MIN_ATOMS) == (0.25, 0.35, 2.0, 2.0)


# --- time_windows: early = the first max(0.1 ps, 5 % of the run), late = the last late_fraction -----------------


def _windows(n: int, width_ps: float = 0.01) -> SimpleNamespace:
    return SimpleNamespace(window_frames=[None] * n, t_end=(np.arange(n) + 1) * width_ps)


def test_early_is_the_first_tenth_of_a_picosecond_in_a_short_run() -> None:
    w = time_windows(_windows(180), 0.34, 0)  # 1.8 ps: 5 % would be 0.09 ps, the 0.1 ps floor wins
    assert len(w.early) == 10
    assert w.early_ps == 0.1


def test_early_is_the_first_five_percent_of_a_longer_run() -> None:
    w = time_windows(_windows(220), 0.34, 0)  # 2.2 ps: 5 % is 0.11 ps
    assert len(w.early) == 11
    assert w.early_ps == pytest.approx(0.11, abs=1e-12)


def test_early_takes_a_window_ending_exactly_at_the_limit() -> None:
    w = time_windows(_windows(200), 0.34, 0)  # 2.0 ps: 0.1 ps either way; the window ending at 0.1 ps is early
    assert list(w.early) == list(range(10))


def test_late_is_the_rounded_late_fraction_of_the_windows() -> None:
    w = time_windows(_windows(200), 0.34, 0)
    assert list(w.late) == list(range(200 - 68, 200))


def test_early_and_late_never_overlap_in_a_short_run() -> None:
    w = time_windows(_windows(12), 0.5, 0)  # 10 early windows leave 2 of the 6 the fraction asks for
    assert list(w.early) == list(range(10))
    assert list(w.late) == [10, 11]


def test_two_windows_give_one_early_and_one_late() -> None:
    w = time_windows(_windows(2, 0.5), 0.34, 0)
    assert (list(w.early), list(w.late)) == ([0], [1])


def test_the_bootstrap_resamples_each_window_set_with_its_own_size() -> None:
    w = time_windows(_windows(200), 0.34, 7)
    assert len(w.boot) == 200
    assert all(len(e) == 10 and len(lt) == 68 for e, lt in w.boot)
    assert all(set(e) <= set(range(10)) and set(lt) <= set(range(132, 200)) for e, lt in w.boot)
    again = time_windows(_windows(200), 0.34, 7)
    assert all(
        np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(w.boot, again.boot, strict=True)
    )


def test_sample_windows_split_the_environment_samples() -> None:
    t = np.arange(10) * 0.05  # samples at 0, 0.05, ..., 0.45 ps
    e, lt = sample_windows(t, 0.1, 0.3)
    assert list(e) == [0, 1, 2]
    assert list(lt) == [7, 8, 9]


def test_sample_windows_keep_one_early_sample_when_none_is_early() -> None:
    e, lt = sample_windows(np.array([0.5, 1.0, 1.5]), 0.1, 0.34)
    assert list(e) == [0]
    assert list(lt) == [2]


def test_sample_windows_keep_the_last_sample_late() -> None:
    e, lt = sample_windows(np.array([0.0, 0.05, 0.1]), 0.1, 0.34)
    assert list(e) == [0, 1]
    assert list(lt) == [2]


# --- new_density: new >= min_new per minority atom, new >= min_new_fraction of the late shell ------------------

DR = 0.02
R = (np.arange(400) + 0.5) * DR


def _bump(area: float, r0: float = 2.61) -> np.ndarray:
    y = np.exp(-0.5 * ((R - r0) / 0.05) ** 2)
    return area * y / y.sum()


def _n(early: list[np.ndarray], late: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = np.array(early + late)
    return n, np.arange(len(early)), np.arange(len(early), len(n))


def _new(n: np.ndarray, e: np.ndarray, lt: np.ndarray, spec: MatchSpec | None = None, **kw: Any) -> Any:
    return new_density(n, e, lt, kw.pop("floor", None), R, kw.pop("limit", 4.0), spec or MatchSpec(), DR, **kw)


def test_new_bonds_just_above_the_minimum_count() -> None:
    z = np.zeros(len(R))
    pn = _new(*_n([z, z], [_bump(0.0505)]))
    assert pn.has_new is True
    assert pn.peak == pytest.approx(2.61, abs=1e-9)


def test_no_new_bonds_just_below_the_minimum_count() -> None:
    z = np.zeros(len(R))
    pn = _new(*_n([z, z], [_bump(0.0495)]))
    assert pn.has_new is False
    assert pn.peak is None


def test_the_minimum_is_inclusive() -> None:
    z = np.zeros(len(R))
    args = _n([z], [_bump(0.2)])
    new = _new(*args).new
    assert _new(*args, spec=MatchSpec(min_new=new)).has_new is True
    assert _new(*args, spec=MatchSpec(min_new=float(np.nextafter(new, 1.0)))).has_new is False


def test_the_minimum_is_per_minority_atom() -> None:
    # 0.03 new neighbours per A atom are 0.06 per atom of a minority B twice as rare: enough
    z = np.zeros(len(R))
    assert _new(*_n([z], [_bump(0.03)]), scale=2.0).has_new is True
    assert _new(*_n([z], [_bump(0.03)]), scale=1.0).has_new is False


def test_new_bonds_just_above_three_tenths_of_the_late_shell() -> None:
    pn = _new(*_n([_bump(0.69)], [_bump(1.0)]))  # 0.31 new of 1.0
    assert pn.new == pytest.approx(0.31, abs=1e-6)
    assert pn.late_shell == pytest.approx(1.0, abs=1e-6)
    assert pn.has_new is True


def test_no_new_bonds_just_below_three_tenths_of_the_late_shell() -> None:
    assert _new(*_n([_bump(0.71)], [_bump(1.0)])).has_new is False  # 0.29 of 1.0: a peak that only grew


def test_a_reactant_pair_is_not_held_to_the_share_of_its_shell() -> None:
    assert _new(*_n([_bump(0.9)], [_bump(1.0)]), reactant_pair=True).has_new is True


def test_no_new_bonds_when_the_bond_count_did_not_rise() -> None:
    z = np.zeros(len(R))
    assert _new(*_n([z], [_bump(1.0)]), bonds_rose=False).has_new is False


def test_the_baseline_is_the_largest_early_window_not_their_mean() -> None:
    z = np.zeros(len(R))
    assert _new(*_n([z, _bump(1.0)], [_bump(1.0)])).has_new is False


def test_the_late_density_is_the_mean_of_the_late_windows() -> None:
    z = np.zeros(len(R))
    pn = _new(*_n([z], [_bump(1.0), z]))
    assert pn.new == pytest.approx(0.5, abs=1e-6)


def test_the_reactant_floor_raises_the_baseline() -> None:
    z = np.zeros(len(R))
    # the floor arrives at the common resolution, as reactant_floor smooths it
    assert _new(*_n([z], [_bump(1.0)]), floor=smooth(_bump(1.0), 0.1 / DR)).has_new is False


def test_the_peak_is_sought_inside_the_limit_only() -> None:
    z = np.zeros(len(R))
    pn = _new(*_n([z], [_bump(0.5) + _bump(2.0, 3.61)]), limit=3.0)
    assert pn.peak == pytest.approx(2.61, abs=1e-9)


def test_the_new_shell_spans_six_tenths_either_side_of_the_peak() -> None:
    z = np.zeros(len(R))
    # smoothed to ~0.11 A, a bump 0.3 A from the peak lies inside the +/-0.6 A shell, one 1.0 A away outside
    near = _new(*_n([z], [_bump(1.0) + _bump(0.4, 2.61 + 0.3)])).new
    far = _new(*_n([z], [_bump(1.0) + _bump(0.4, 2.61 + 1.0)])).new
    assert near == pytest.approx(1.4, abs=0.01)
    assert far == pytest.approx(1.0, abs=0.01)


# --- bond_change: rose / fell when the late mean leaves the start by more than max(3 sd, 2 bonds, 10 %) ---------


def _res(counts: list[float]) -> SimpleNamespace:
    n = len(counts)
    return SimpleNamespace(
        bonds={"In-S": np.array(counts, dtype=float)},
        frame_times=np.arange(n) * 0.001,
        settings=SimpleNamespace(dt_fs=1.0, frames_per_window=10),
        n_frames=n,
    )


def test_two_bonds_more_than_a_quiet_start_is_within_its_noise() -> None:
    b = bond_change(_res([10] * 30 + [12] * 30), "In-S")
    assert b["margin"] == 2.0
    assert b["change"] == 2.0
    assert b["rose"] is False


def test_three_bonds_more_than_a_quiet_start_rose() -> None:
    assert bond_change(_res([10] * 30 + [13] * 30), "In-S")["rose"] is True


def test_two_bonds_fewer_is_within_the_noise() -> None:
    b = bond_change(_res([10] * 30 + [8] * 30), "In-S")
    assert b["fell"] is False
    assert b["rose"] is False


def test_three_bonds_fewer_fell() -> None:
    b = bond_change(_res([10] * 30 + [7] * 30), "In-S")
    assert b["fell"] is True
    assert b["change"] == -3.0


def test_the_margin_is_ten_percent_of_a_large_count() -> None:
    assert bond_change(_res([100] * 30 + [110] * 30), "In-S")["rose"] is False
    assert bond_change(_res([100] * 30 + [111] * 30), "In-S")["rose"] is True


def test_the_margin_is_three_sd_of_a_noisy_start() -> None:
    start = [8, 12] * 5  # baseline (10 frames): mean 10, sd 2 -> margin 6
    assert bond_change(_res(start + [16] * 50), "In-S")["rose"] is False
    assert bond_change(_res(start + [17] * 50), "In-S")["rose"] is True


def test_a_pair_without_counts_neither_rose_nor_fell() -> None:
    res = _res([10] * 30)
    res.bonds = {}
    assert bond_change(res, "In-S") == {"rose": False, "fell": False, "change": 0.0}


def test_pair_kinds() -> None:
    react = {
        "In": SimpleNamespace(composition=Composition("In")),
        "LPSC": SimpleNamespace(composition=Composition("Li6PS5Cl")),
    }
    assert pair_kind("Li-S", ["LPSC"], react) == "reactant pair"
    assert pair_kind("P-Cl", [], react) == "not bonded in the reactants"
    assert pair_kind("In-S", [], react) == "interfacial pair"
    assert pair_kind("In-S", [], {}) == "pair (reactants unknown)"


# --- amounts: _assign ------------------------------------------------------------------------------------------

ELEMENTS = ["In", "S", "Cl"]


def _group(*sites: list[float], name: str = "In2S3") -> Group:
    return Group("In", [name], [np.array(s, dtype=float) for s in sites], {name: 2}, {name: len(sites)})


def _one(late: list[float], *sites: list[float], early: list[float] | None = None) -> tuple[np.ndarray, dict[str, int]]:
    e = np.array([early or [0.0, 0.0, 0.0]])
    return _assign(e, np.array([late], dtype=float), [_group(*(sites or ([0.0, 6.0, 0.0],)))], [0])


def test_a_change_of_one_neighbour_counts_as_changed() -> None:
    assert _one([0.0, 1.0, 0.0])[1]["changed"] == 1


def test_a_change_just_under_one_neighbour_is_a_flicker() -> None:
    assert _one([0.0, 1.0 - HAIR, 0.0])[1]["changed"] == 0


def test_two_partners_gained_react() -> None:
    shares, stats = _one([0.0, 2.0, 0.0])
    assert stats["reacted"] == 1
    assert shares[0, 0] == 1.0


def test_just_under_two_partners_gained_is_a_contact() -> None:
    shares, stats = _one([0.0, 2.0 - HAIR, 0.0])
    assert stats["contacts"] == 1
    assert stats["reacted"] == 0
    assert shares[0, 0] == 0.0


def test_the_gain_counts_gains_only_not_losses() -> None:
    # one S gained and one Cl lost: an L1 change of 2, but a gain of 1, a contact
    assert _one([0.0, 1.0, 0.0], early=[0.0, 0.0, 1.0])[1]["contacts"] == 1


def test_a_product_weight_of_a_quarter_reacts() -> None:
    assert _one([0.0, 2.0, 0.0], [0.0, 8.0, 0.0])[1]["reacted"] == 1  # 2 of the site's 8 S: weight 0.25


def test_a_product_weight_just_under_a_quarter_is_a_contact() -> None:
    assert _one([0.0, 2.0, 0.0], [0.0, 8.1, 0.0])[1]["contacts"] == 1  # weight 0.247


def test_a_residual_just_under_two_neighbours_is_assigned() -> None:
    # 1.99 Cl the sulfide site cannot explain; 3.99 neighbours x 0.35 < 2, so the floor of 2 applies
    assert _one([0.0, 2.0, 1.99])[1]["reacted"] == 1


def test_a_residual_just_over_two_neighbours_is_unassigned() -> None:
    assert _one([0.0, 2.0, 2.01])[1]["unassigned"] == 1


def test_the_residual_limit_grows_with_the_neighbours() -> None:
    # 6.15 neighbours: limit 0.35 x 6.15 = 2.1525 holds a residual of 2.15, not 2.16 (6.16 x 0.35 = 2.156)
    assert _one([0.0, 4.0, 2.15], [0.0, 12.0, 0.0])[1]["reacted"] == 1
    assert _one([0.0, 4.0, 2.16], [0.0, 12.0, 0.0])[1]["unassigned"] == 1


def test_an_atom_between_two_groups_counts_half_for_each() -> None:
    groups = [_group([0.0, 6.0, 0.0]), _group([0.0, 0.0, 6.0], name="InCl3")]
    shares, stats = _assign(np.zeros((1, 3)), np.array([[0.0, 2.0, 2.0]]), groups, [0, 1])
    assert stats["reacted"] == 1
    assert shares[0] == pytest.approx([0.5, 0.5], abs=1e-6)


def test_without_groups_every_changed_atom_is_unassigned() -> None:
    _, stats = _assign(np.zeros((2, 3)), np.array([[0.0, 2.0, 0.0], [0.0, 0.5, 0.0]]), [], [])
    assert stats == {"changed": 1, "reacted": 0, "contacts": 0, "unassigned": 1}


# --- amounts: build_groups (site vectors given, as crystal_environments would find them) ------------------------


def _crystal(formula: str) -> SimpleNamespace:
    return SimpleNamespace(composition=Composition(formula), formula=formula)


def _cand(name: str, formula: str) -> SimpleNamespace:
    s = _crystal(formula)
    return SimpleNamespace(name=name, structure=s, elements=frozenset(el.symbol for el in s.composition))


@pytest.fixture
def sites(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], list[list[float]]]:
    table: dict[tuple[str, str], list[list[float]]] = {}

    def fake(structure: Any, element: str, elements: list[str], cut: np.ndarray) -> list[np.ndarray]:
        return [np.array(v, dtype=float) for v in table.get((structure.formula, element), [])]

    monkeypatch.setattr(am, "_site_vectors", fake)
    return table


def _groups(cands: list[SimpleNamespace], present: set[str] | None = None) -> tuple[list[Group], dict[str, str]]:
    return build_groups(cands, {"In": _crystal("In")}, ELEMENTS, np.zeros((3, 3)), present or {"In"})


def test_sites_two_neighbours_from_the_reactants_are_distinct(sites: dict) -> None:
    sites[("In", "In")] = [[0.0, 0.0, 0.0]]
    sites[("InS", "In")] = [[0.0, 2.0, 0.0]]
    groups, unseen = _groups([_cand("InS", "InS")])
    assert [g.members for g in groups] == [["InS"]]
    assert unseen == {}


def test_sites_just_under_two_neighbours_from_the_reactants_are_not_distinguishable(sites: dict) -> None:
    sites[("In", "In")] = [[0.0, 0.0, 0.0]]
    sites[("InS", "In")] = [[0.0, 2.0 - HAIR, 0.0]]
    groups, unseen = _groups([_cand("InS", "InS")])
    assert groups == []
    assert "not distinguishable" in unseen["InS"]


def test_site_mixes_of_cosine_above_nine_tenths_are_one_group(sites: dict) -> None:
    sites[("InS", "In")] = [[0.0, 6.0, 0.0]]
    sites[("In2S3", "In")] = [[0.0, 6.0, 2.8]]  # cosine 0.906
    groups, _ = _groups([_cand("InS", "InS"), _cand("In2S3", "In2S3")])
    assert [g.members for g in groups] == [["InS", "In2S3"]]


def test_site_mixes_of_cosine_below_nine_tenths_are_two_groups(sites: dict) -> None:
    sites[("InS", "In")] = [[0.0, 6.0, 0.0]]
    sites[("In2S3", "In")] = [[0.0, 6.0, 3.0]]  # cosine 0.894
    groups, _ = _groups([_cand("InS", "InS"), _cand("In2S3", "In2S3")])
    assert [g.members for g in groups] == [["InS"], ["In2S3"]]


def test_an_element_of_two_reactants_cannot_count(sites: dict) -> None:
    sites[("InS", "In")] = [[0.0, 6.0, 0.0]]
    react = {"In": _crystal("In"), "InP": _crystal("InP")}
    groups, unseen = build_groups([_cand("InS", "InS")], react, ELEMENTS, np.zeros((3, 3)), {"In"})
    assert groups == []
    assert unseen == {"InS": "no element of it can be followed to one reactant"}


def test_the_element_farthest_from_the_reactants_counts(sites: dict) -> None:
    sites[("InS", "In")] = [[0.0, 3.0, 0.0]]
    sites[("InS", "S")] = [[4.0, 0.0, 0.0]]
    groups, _ = _groups([_cand("InS", "InS")], {"In", "S"})
    assert groups[0].element == "S"


def test_a_tie_goes_to_the_more_electropositive_element(sites: dict) -> None:
    sites[("InS", "In")] = [[0.0, 4.0, 0.0]]
    sites[("InS", "S")] = [[4.0, 0.0, 0.0]]
    groups, _ = _groups([_cand("InS", "InS")], {"In", "S"})
    assert groups[0].element == "In"


# --- amounts: firmness (the interval's low end holds >= 2 atoms) -----------------------------------------------


class _Env:
    def __init__(self, counts: np.ndarray) -> None:
        self.elements = ELEMENTS
        self.species = ["In"] * counts.shape[1]
        self.cutoffs = np.zeros((3, 3))
        self.counts = counts

    def atoms_of(self, el: str) -> np.ndarray:
        return np.flatnonzero(np.array(self.species) == el)


def _amounts(late: list[list[list[float]]], sites: dict) -> dict[str, Any]:
    sites[("In", "In")] = [[0.0, 0.0, 0.0]]
    sites[("In2S3", "In")] = [[0.0, 6.0, 0.0]]
    sites[("InCl3", "In")] = [[0.0, 0.0, 6.0]]
    n_atoms = len(late[0])
    counts = np.array([np.zeros((n_atoms, 3)), np.zeros((n_atoms, 3)), *[np.array(s, dtype=float) for s in late]])
    cands = [_cand("In2S3", "In2S3"), _cand("InCl3", "InCl3")]
    out = product_amounts(_Env(counts), cands, {"In": _crystal("In")}, np.arange(2), np.arange(2, len(counts)))
    return out.amounts["In2S3"]


def test_two_reacted_atoms_are_a_firm_amount(sites: dict) -> None:
    a = _amounts([[[0, 2, 0], [0, 2, 0], [0, 0, 0]]] * 2, sites)
    assert a["atoms"] == 2.0
    assert a["atoms_lo"] == 2.0
    assert a["firm"] is True


def test_one_and_a_half_reacted_atoms_are_not_firm(sites: dict) -> None:
    a = _amounts([[[0, 2, 0], [0, 2, 2], [0, 0, 0]]] * 2, sites)
    assert a["atoms"] == 1.5
    assert a["firm"] is False


def test_firmness_is_judged_at_the_intervals_low_end(sites: dict) -> None:
    # the second atom reacted on average (2 S) but not in every resample: 2 atoms, low end 1, not firm
    late = [[[0, 2, 0], [0, 3, 0]], [[0, 2, 0], [0, 3, 0]], [[0, 2, 0], [0, 0, 0]]]
    a = _amounts(late, sites)
    assert a["atoms"] == 2.0
    assert a["atoms_lo"] == 1.0
    assert a["firm"] is False
