"""Unit tests that kill the mutants `make mutate` left alive in products/amounts.py (groups, sites, amounts).

Each test pins one rule at the edge a surviving mutant moved; docs/mutation.md lists every survivor with the test that
kills it or the argument that it is equivalent.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import scipy.optimize  # noqa: F401  (the convex fit's nnls: its ~1 s first import at collection, not in a test)
from pymatgen.core import Composition, Lattice, Structure

from cellsim.products import amounts as am

ELEMENTS = ["In", "S", "Cl", "Li"]


# --- _assign: the product weight and the residual limit are inclusive ---------------------------------------------


def _group(site: list[float], name: str = "X") -> am.Group:
    return am.Group("In", [name], [np.array(site, dtype=float)], {name: 1}, {name: 1})


def _fit(monkeypatch: pytest.MonkeyPatch, weights: list[float], resid: float) -> None:
    """The convex fit stubbed to ``weights`` (early first, then the sites) and ``resid``: a real least-squares fit
    lands exactly on an edge only by the luck of its last bit, which a change of solver or penalty moves."""
    monkeypatch.setattr(am, "_convex_fit", lambda target, columns: (np.array(weights), resid))


def test_a_product_weight_of_exactly_a_quarter_reacts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule 3, REACTED_WEIGHT inclusive. An In dissolved in Li (4 Li) swaps one Li for 1 S + 1 Cl: a quarter of the
    way to a 4 S + 4 Cl site (weights 0.75 early, 0.25 site, no residual), with exactly MIN_GAIN = 2 partners
    gained: reacted, not a contact."""
    _fit(monkeypatch, [0.75, 0.25], 0.0)
    early, late = np.array([[0.0, 0.0, 0.0, 4.0]]), np.array([[0.0, 1.0, 1.0, 3.0]])
    _, stats = am._assign(early, late, [_group([0.0, 4.0, 4.0, 0.0])], [0])
    assert stats["reacted"] == 1


def test_a_residual_of_exactly_the_two_neighbour_floor_is_assigned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule 3, the residual limit inclusive: an In that became In bound to 2 S (the site's whole first shell) and
    also picked up 2 Cl that no site explains. The fit takes the site whole (w = 0, 1), the residual is the 2 Cl,
    exactly MAX_RESIDUAL_MIN (0.35 x 4 neighbours = 1.4 is below the floor): reacted, not unassigned."""
    _fit(monkeypatch, [0.0, 1.0], 2.0)
    _, stats = am._assign(np.zeros((1, 4)), np.array([[0.0, 2.0, 2.0, 0.0]]), [_group([0.0, 2.0, 0.0, 0.0])], [0])
    assert stats["reacted"] == 1


# --- build_groups: rule 1's distance to the reactants, its tie-break, rule 2's cosine edge -------------------------


def _crystal(formula: str) -> SimpleNamespace:
    return SimpleNamespace(composition=Composition(formula), formula=formula)


def _cand(formula: str) -> SimpleNamespace:
    s = _crystal(formula)
    return SimpleNamespace(name=formula, structure=s, elements=frozenset(el.symbol for el in s.composition))


@pytest.fixture
def sites(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], list[list[float]]]:
    """Site vectors by (formula, element) on In, S, Cl, Li, as crystal_environments would find them (cut to the
    first elements where the environments follow fewer); the In metal has no partners."""
    table: dict[tuple[str, str], list[list[float]]] = {("In", "In"): [[0.0, 0.0, 0.0, 0.0]]}

    def fake(structure: Any, element: str, elements: list[str], cut: np.ndarray) -> list[np.ndarray]:
        return [np.array(v[: len(elements)], dtype=float) for v in table.get((structure.formula, element), [])]

    monkeypatch.setattr(am, "_site_vectors", fake)
    return table


def _groups(cands: list[SimpleNamespace], present: set[str]) -> tuple[list[am.Group], dict[str, str]]:
    return am.build_groups(cands, {"In": _crystal("In")}, ELEMENTS, np.zeros((4, 4)), present)


def test_a_candidate_with_the_sites_of_a_reactant_that_holds_its_element_is_unseen(sites: dict) -> None:
    """Rule 1 measures the distance to the counting element's sites in the reactants: Li3PS4 next to Li6PS5Cl (the
    module's own example), P with 4 S in both, is not distinguishable. Li is in both reactants and cannot count."""
    sites[("Li6PS5Cl", "P")] = [[0.0, 0.0, 4.0, 0.0]]
    sites[("Li3PS4", "P")] = [[0.0, 0.0, 4.0, 0.0]]
    react = {"Li": _crystal("Li"), "LPSC": _crystal("Li6PS5Cl")}
    elements = ["Li", "P", "S", "Cl"]
    groups, _ = am.build_groups([_cand("Li3PS4")], react, elements, np.zeros((4, 4)), set(elements))
    assert groups == []


def test_a_distance_tie_goes_to_the_more_electropositive_element_even_when_it_comes_second(sites: dict) -> None:
    """Rule 1's tie-break: InCl (the module's own example) with In bound to 6 Cl and Cl bound to 6 In, both 6
    neighbours from the reactants' sites. Cl is looked at first (sorted), the tie still goes to In."""
    sites[("InCl", "In")] = [[0.0, 0.0, 6.0, 0.0]]
    sites[("InCl", "Cl")] = [[6.0, 0.0, 0.0, 0.0]]
    groups, _ = _groups([_cand("InCl")], {"In", "Cl"})
    assert [g.element for g in groups] == ["In"]


def test_half_a_neighbour_closer_to_the_reactants_is_no_tie(sites: dict) -> None:
    """Rule 1: the farther element counts; only distances within 1e-9 tie. Cl of InCl 6 neighbours from the
    reactants, In 5.5: Cl counts though In is the more electropositive."""
    sites[("InCl", "In")] = [[0.0, 0.0, 5.5, 0.0]]
    sites[("InCl", "Cl")] = [[6.0, 0.0, 0.0, 0.0]]
    groups, _ = _groups([_cand("InCl")], {"In", "Cl"})
    assert [g.element for g in groups] == ["Cl"]


def test_a_lead_of_exactly_the_tie_tolerance_does_not_take_the_count(sites: dict) -> None:
    """Rule 1: a distance must beat the best by more than 1e-9 to take over. S of InS is 4 + 1e-9 (in floats) from
    the reactants, In exactly 4: no lead, and In keeps the count (S is the less electropositive)."""
    sites[("InS", "In")] = [[0.0, 4.0, 0.0, 0.0]]
    sites[("InS", "S")] = [[4.0 + 1e-9, 0.0, 0.0, 0.0]]
    groups, _ = _groups([_cand("InS")], {"In", "S"})
    assert [g.element for g in groups] == ["In"]


def test_a_difference_of_exactly_the_tie_tolerance_is_a_tie(sites: dict) -> None:
    """Rule 1: distances within 1e-9 (inclusive) tie, and the tie goes to the more electropositive element. In
    floats a difference of exactly 1e-9 only happens near zero, so the candidate is unseen either way; its reason
    names the element the rule picked: Li (0.98) over Cl (3.16), though Cl comes first (no Li reactant here)."""
    sites[("LiCl", "Cl")] = [[0.0, 0.0, 0.0, 0.0]]
    sites[("LiCl", "Li")] = [[1e-9, 0.0, 0.0, 0.0]]
    _, unseen = _groups([_cand("LiCl")], {"Li", "Cl"})
    assert unseen["LiCl"].startswith("its Li sites")


def test_a_tie_of_equal_electronegativity_keeps_the_first_element_in_sorted_order(sites: dict) -> None:
    """Rule 1 is deterministic: Cu and Si have the same Pauling value (1.90); with equal distances the first in
    sorted order (Cu) keeps the count, whatever order the candidate's element set iterates in."""
    sites[("CuSi", "Cu")] = [[0.0, 4.0]]
    sites[("CuSi", "Si")] = [[4.0, 0.0]]
    groups, _ = am.build_groups([_cand("CuSi")], {}, ["Cu", "Si"], np.zeros((2, 2)), {"Cu", "Si"})
    assert [g.element for g in groups] == ["Cu"]


def test_site_mixes_of_cosine_exactly_nine_tenths_are_one_group(sites: dict) -> None:
    """Rule 2, GROUP_COSINE inclusive: In with 2 each of S, Cl, Br and I and In with 1 S + 2 Cl + 2 Br + 4 I have the
    cosine 18 / (4 x 5) = 0.9, exact in floats too (whole norms, the quotient correctly rounded): one group."""
    sites[("In", "In")] = [[0.0] * 5]
    sites[("InSClBrI", "In")] = [[0.0, 2.0, 2.0, 2.0, 2.0]]
    sites[("In2SCl2Br2I4", "In")] = [[0.0, 1.0, 2.0, 2.0, 4.0]]
    cands = [_cand("InSClBrI"), _cand("In2SCl2Br2I4")]
    groups, _ = am.build_groups(cands, {"In": _crystal("In")}, ["In", "S", "Cl", "Br", "I"], np.zeros((5, 5)), {"In"})
    assert [g.members for g in groups] == [["InSClBrI", "In2SCl2Br2I4"]]


# --- build_groups / product_amounts on real crystals: the site vectors see the elements and cutoffs ----------------

A = 3.01  # CsCl-type InS: 8 S at a sqrt(3)/2 = 2.61 A per In, its 6 In at 3.01 A beyond a 3.0 A cut


def _cscl() -> Any:
    s = Structure(Lattice.cubic(A), ["In", "S"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return SimpleNamespace(name="InS", structure=s, elements=frozenset({"In", "S"}))


def _metal() -> Structure:
    return Structure(Lattice.cubic(3.3), ["In"], [[0, 0, 0]])  # In with no partner within 3.0 A


def test_build_groups_read_the_sites_of_real_crystals_within_the_cutoffs() -> None:
    """Rules 1-2 on crystals (no site table): the In of CsCl InS has 8 S within the 3.0 A cut, the In metal none;
    8 neighbours apart, so InS is counted on In with that one site."""
    cut = np.full((2, 2), 3.0)
    groups, _ = am.build_groups([_cscl()], {"In": _metal()}, ["In", "S"], cut, {"In"})
    assert [(g.element, g.members, [v.tolist() for v in g.vectors]) for g in groups] == [("In", ["InS"], [[0.0, 8.0]])]


class _Env:
    """Environments of In atoms only: counts per sample, atom and element (In, S, Cl or the given elements)."""

    def __init__(self, counts: np.ndarray, elements: list[str] | None = None) -> None:
        self.elements = elements or ["In", "S", "Cl"]
        self.species = ["In"] * counts.shape[1]
        self.cutoffs = np.full((len(self.elements),) * 2, 3.0)
        self.counts = counts

    def atoms_of(self, el: str) -> np.ndarray:
        return np.flatnonzero(np.array(self.species) == el)


def test_product_amounts_find_the_sites_with_the_environments_cutoffs() -> None:
    """Rules 1-4 on crystals: the environments' own cutoffs (3.0 A) give InS its 8-S site; an In that went from no
    partners to 8 S is one reacted atom of InS."""
    counts = np.array([[[0, 0]], [[0, 8]]], dtype=np.int16)
    out = am.product_amounts(_Env(counts, ["In", "S"]), [_cscl()], {"In": _metal()}, np.arange(1), np.arange(1, 2))
    assert out.amounts["InS"]["atoms"] == 1.0


# --- product_amounts: partners only, the formula units, the interval, the seed, the contributing atoms -------------


def _amounts(late: list[float], sites: dict, formula: str = "In2S3") -> am.Amounts:
    """One In atom with 8 In neighbours throughout, no partners early (2 samples), ``late`` in 2 late samples."""
    sites[(formula, "In")] = [[0.0, 6.0, 0.0, 0.0]]
    counts = np.array([[[8.0, 0.0, 0.0]]] * 2 + [[late]] * 2)
    return am.product_amounts(_Env(counts), [_cand(formula)], {"In": _crystal("In")}, np.arange(2), np.arange(2, 4))


def test_a_metal_s_own_neighbours_never_enter_the_fit(sites: dict) -> None:
    """Rule 1 in the assignment: an In keeping its 8 In neighbours and gaining 2 S + 1.99 Cl is fitted on its
    partners alone: 1/3 of the 6-S site, residual 1.99 Cl under the floor of 2, reacted. An own count left in the
    fit pulls it toward the early vector: 1 In (or even 0.1) pushes the residual past 2, the 8 In the weight under
    a quarter."""
    assert _amounts([8.0, 2.0, 1.99], sites).centres["In"]["reacted"] == 1


def test_the_resamples_fit_partners_only_too(sites: dict) -> None:
    """Rule 4's interval: the bootstrap's resamples drop the own count as the estimate does. Every late sample is
    the same, so every resample finds the one reacted atom: the interval's low end is 1 atom."""
    assert _amounts([8.0, 2.0, 1.99], sites).amounts["In2S3"]["atoms_lo"] == 1.0


def test_a_member_with_under_half_a_counting_atom_per_formula_unit_gives_no_formula_units(sites: dict) -> None:
    """Rule 4: formula units are atoms / the counting element's atoms per formula unit, rounded; a disordered
    In0.25S (a quarter In per unit, rounded to 0) has its reacted atoms but no formula units."""
    assert _amounts([8.0, 6.0, 0.0], sites, formula="In0.25S").amounts["In0.25S"]["formula_units"] is None


class _Stub:
    """Stands in for the per-atom assignment: records the resampled late counts it is given and returns one atom
    whose share of the first group is ``shares[call]`` (the last value for every later call)."""

    def __init__(self, shares: list[list[float]]) -> None:
        self.shares = shares
        self.late: list[np.ndarray] = []

    def __call__(
        self, early: np.ndarray, late: np.ndarray, groups: list[am.Group], gidx: list[int]
    ) -> tuple[np.ndarray, dict[str, int]]:
        call = min(len(self.late), len(self.shares) - 1)
        self.late.append(late.copy())
        out = np.zeros((len(self.shares[call]), len(groups)))
        out[:, 0] = self.shares[call]
        return out, {"changed": 0, "reacted": 0, "contacts": 0, "unassigned": 0}


def _stubbed(monkeypatch: pytest.MonkeyPatch, sites: dict, stub: _Stub, late: np.ndarray, **kw: Any) -> am.Amounts:
    """product_amounts on one In2S3 group with the assignment stubbed: 2 early samples, ``late`` the late ones."""
    monkeypatch.setattr(am, "_assign", stub)
    sites[("In2S3", "In")] = [[0.0, 6.0, 0.0, 0.0]]
    counts = np.concatenate([np.zeros((2, *late.shape[1:])), late])
    early, late_idx = np.arange(2), np.arange(2, len(counts))
    return am.product_amounts(_Env(counts), [_cand("In2S3")], {"In": _crystal("In")}, early, late_idx, **kw)


def test_the_interval_is_the_fifth_to_ninety_fifth_percentile_of_the_resamples(
    monkeypatch: pytest.MonkeyPatch, sites: dict
) -> None:
    """Rule 4's 90 % interval: the estimate finds 1000 atoms, the 200 resamples 0, 10, ..., 1990. numpy's linear
    percentiles: 5 % at rank 0.05 x 199 = 9.95 -> 99.5 atoms, 95 % at rank 189.05 -> 1890.5 atoms."""
    stub = _Stub([[1000.0]] + [[10.0 * b] for b in range(am.BOOTSTRAP)])
    a = _stubbed(monkeypatch, sites, stub, np.zeros((2, 1, 3))).amounts["In2S3"]
    assert (a["atoms_lo"], a["atoms_hi"]) == (99.5, 1890.5)


def test_the_same_seed_draws_the_same_resamples(monkeypatch: pytest.MonkeyPatch, sites: dict) -> None:
    """Rule 4's bootstrap is seeded: two runs with one seed resample the same late samples (here ten samples of
    distinct counts, so 200 resamples of them tell any two draws apart): the reported interval is reproducible."""
    late = (np.arange(10.0) ** 1.5)[:, None, None] * np.array([0.0, 1.0, 0.0])
    draws = []
    for _ in range(2):
        stub = _Stub([[0.0]])
        _stubbed(monkeypatch, sites, stub, late, seed=7)
        draws.append(np.array(stub.late[1:]))
    assert np.array_equal(draws[0], draws[1])


def test_a_share_of_exactly_one_millionth_is_not_a_contributing_atom(
    monkeypatch: pytest.MonkeyPatch, sites: dict
) -> None:
    """Rule 4's contributing atoms: a share up to 1e-6 is the convex fit's rounding (its sum-to-one row is exact to
    ~1e-6), not an atom. Of three In atoms with shares 1e-6, 2e-6 and 0.5, two contribute."""
    stub = _Stub([[1e-6, 2e-6, 0.5]])
    assert _stubbed(monkeypatch, sites, stub, np.zeros((2, 3, 3))).amounts["In2S3"]["contributing_atoms"] == 2


# --- rule 3's edges through the real fit: exact in arithmetic, read with FIT_SLACK past the fit's last bits -------


def test_a_real_fit_a_quarter_of_the_way_to_the_product_reacts() -> None:
    """An In among 12 Li that swaps 3 Li for 1 S + 1 Cl is exactly a quarter of the way to a 4 S + 4 Cl site; the
    fit returns 0.2499999999999999, which without the slack was a contact."""
    early, late = np.array([[0.0, 0.0, 0.0, 12.0]]), np.array([[0.0, 1.0, 1.0, 9.0]])
    _, stats = am._assign(early, late, [_group([0.0, 4.0, 4.0, 0.0])], [0])
    assert stats["reacted"] == 1


def test_a_real_fit_with_a_residual_of_exactly_the_floor_is_assigned() -> None:
    """2 S + 2 Cl against a 6-S site: a third of the site and a residual of exactly the 2 Cl (MAX_RESIDUAL_MIN); the
    fit returns 2.0000000000000018, which without the slack was unassigned."""
    _, stats = am._assign(np.zeros((1, 4)), np.array([[0.0, 2.0, 2.0, 0.0]]), [_group([0.0, 6.0, 0.0, 0.0])], [0])
    assert stats["reacted"] == 1


def test_a_weight_a_millionth_short_of_a_quarter_is_a_contact(monkeypatch: pytest.MonkeyPatch) -> None:
    """The slack is for rounding only: a weight 1e-6 under REACTED_WEIGHT is still a contact."""
    _fit(monkeypatch, [0.750001, 0.249999], 0.0)
    early, late = np.array([[0.0, 0.0, 0.0, 4.0]]), np.array([[0.0, 1.0, 1.0, 3.0]])
    _, stats = am._assign(early, late, [_group([0.0, 4.0, 4.0, 0.0])], [0])
    assert stats["contacts"] == 1


def test_a_residual_a_millionth_over_the_floor_is_unassigned(monkeypatch: pytest.MonkeyPatch) -> None:
    """The slack is for rounding only: a residual 1e-6 over the limit is still unassigned."""
    _fit(monkeypatch, [0.0, 1.0], 2.000001)
    _, stats = am._assign(np.zeros((1, 4)), np.array([[0.0, 2.0, 2.0, 0.0]]), [_group([0.0, 2.0, 0.0, 0.0])], [0])
    assert stats["unassigned"] == 1
