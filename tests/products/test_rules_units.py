"""The matching rules' functions that the end-to-end tests alone reached, on small made-up crystals and densities
(no MD): a crystal's neighbour density, one candidate's rows, the reactants' floor, every pair's table, the site
vectors and the amounts' dictionary. Every expected number is worked out in a comment beside it."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from cellsim.analysis.peaks import smooth
from cellsim.config.study import MatchSpec
from cellsim.products import amounts as am
from cellsim.products.baseline import Windows, pair_changes, reactant_floor
from cellsim.products.candidates import Candidate
from cellsim.products.scores import COMPARE_SIGMA, PairNew, raw_density, reference_density, score_candidate

DR = 0.02
R = (np.arange(250) + 0.5) * DR  # bin centres to 5 A
A = 3.01  # CsCl-type InS: In-S 8 x a sqrt(3)/2 = 2.6067 A (bin 130), In-In 6 x 3.01 A (bin 150)


def _cscl(a: float = A, b: str = "S") -> Structure:
    return Structure(Lattice.cubic(a), ["In", b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _bin(d: float) -> int:
    return int(d / DR)


# --- raw_density / reference_density ------------------------------------------------------------------------------


def test_raw_density_counts_every_image_per_a_atom() -> None:
    raw = raw_density(_cscl(), "In-S", 5.0, DR)
    assert len(raw) == 250
    expected = np.zeros(250)
    # In-S shells of the CsCl cell: 8 at a sqrt(3)/2, 24 at a sqrt(11)/2 (4.99 A, inside 5 A)
    expected[_bin(A * math.sqrt(3) / 2)] = 8
    expected[_bin(A * math.sqrt(11) / 2)] = 24
    assert raw.tolist() == expected.tolist()


def test_raw_density_of_a_like_pair_counts_both_ends() -> None:
    # In-In: 6 at a, 12 at a sqrt(2) per In atom (the histogram holds each pair once: doubled, per atom)
    raw = raw_density(_cscl(), "In-In", 4.5, DR)
    assert raw[_bin(A)] == 6 and raw[_bin(A * math.sqrt(2))] == 12 and raw.sum() == 18


def test_raw_density_per_a_atom_not_per_b_atom() -> None:
    # two In per cell (a 2 x 1 x 1 supercell) and two S: still 8 S around each In
    raw = raw_density(_cscl() * (2, 1, 1), "In-S", 2.7, DR)
    assert raw.sum() == 8 and raw[_bin(A * math.sqrt(3) / 2)] == 8


def test_raw_density_without_the_pair_s_elements_is_zero() -> None:
    raw = raw_density(_cscl(), "In-Cl", 5.0, DR)
    assert raw.dtype == float and raw.tolist() == [0.0] * 250
    assert raw_density(_cscl(), "Li-S", 1.0, DR).tolist() == [0.0] * 50


def test_reference_density_is_the_raw_density_broadened_by_sigma() -> None:
    ref = reference_density(_cscl(), "In-S", 3.0, DR, 0.1)
    assert np.array_equal(ref, smooth(raw_density(_cscl(), "In-S", 3.0, DR), 0.1 / DR))
    # 8 neighbours spread over a 0.1 A Gaussian: peak 8 x 0.02 / (sqrt(2 pi) 0.1) = 0.638 per bin, same sum
    assert ref.max() == pytest.approx(8 * DR / (math.sqrt(2 * math.pi) * 0.1), rel=2e-3)
    assert ref.sum() == pytest.approx(8.0, rel=1e-3)  # a little reflected back at the grid's end (3 A)


# --- score_candidate ------------------------------------------------------------------------------------------------


def _cand(structure: Structure, name: str = "InS-cP2") -> Candidate:
    return Candidate.of(name, structure.composition.reduced_formula, "Pm-3m", "test", structure)


def _pn(dn: np.ndarray, peak: float | None, has_new: bool = True) -> PairNew:
    return PairNew(dn, peak, float(dn.sum()), float(dn.sum()), has_new)


def _score(cand: Candidate, pn: PairNew, boot: list[PairNew], pair: str = "In-S") -> tuple[list[Any], dict]:
    return score_candidate(cand, {pair: pn}, {pair: boot}, {pair: 3.0}, R, 0.1, 0.1)


def test_a_density_that_is_the_candidate_s_scores_one() -> None:
    cand = _cand(_cscl())
    ref = reference_density(cand.structure, "In-S", 5.0, DR, 0.1)
    peak = float(R[_bin(A * math.sqrt(3) / 2)])  # 2.61, the bin of the 2.6067 A shell
    (row,), refs = _score(cand, _pn(ref, peak), [_pn(ref, peak)] * 20)
    assert np.allclose(refs["In-S"], ref, atol=1e-12)
    # the shell sits at 2.61 A (weighted mean of its one bin): delta 0, similarity 1, score 1 and so its interval
    assert (row.pair, row.candidate, row.formula, row.spacegroup, row.source) == (
        "In-S",
        "InS-cP2",
        "InS",
        "Pm-3m",
        "test",
    )
    assert (row.md_peak_r, row.ref_peak_r, row.delta_r) == (2.61, 2.61, 0.0)
    assert (row.similarity, row.score, row.score_lo, row.score_hi) == (1.0, 1.0, 1.0, 1.0)


def test_a_peak_one_tolerance_from_the_shell_scores_exp_minus_a_half() -> None:
    cand = _cand(_cscl())
    ref = reference_density(cand.structure, "In-S", 5.0, DR, 0.1)
    (row,), _ = _score(cand, _pn(ref, 2.71), [_pn(ref, 2.71)] * 20)
    assert row.ref_peak_r == 2.61 and row.delta_r == pytest.approx(0.1)
    assert row.similarity == 1.0 and row.score == round(math.exp(-0.5), 2)


def test_the_interval_is_the_bootstrap_s_five_to_ninety_five_percent() -> None:
    cand = _cand(_cscl())
    ref = reference_density(cand.structure, "In-S", 5.0, DR, 0.1)
    peak = 2.61
    # resamples: 10 with no new bonds (score 0), 10 identical to the run (score 1): 5 % -> 0, 95 % -> 1
    boot = [_pn(ref, None, has_new=False)] * 5 + [_pn(ref, peak)] * 10 + [_pn(ref, None)] * 5
    (row,), _ = _score(cand, _pn(ref, peak), boot)
    assert (row.score_lo, row.score_hi) == (0.0, 1.0)


def test_a_pair_without_new_bonds_gets_an_empty_row() -> None:
    cand = _cand(_cscl())
    ref = reference_density(cand.structure, "In-S", 5.0, DR, 0.1)
    for pn in (_pn(ref, 2.61, has_new=False), _pn(ref, None)):
        (row,), refs = _score(cand, pn, [])
        assert (row.md_peak_r, row.ref_peak_r, row.delta_r, row.similarity, row.score) == (None, None, None, 0.0, 0.0)
        assert (row.score_lo, row.score_hi, row.candidate) == (0.0, 0.0, "InS-cP2")
        assert "In-S" in refs


def test_a_candidate_without_the_pair_within_reach_gets_an_empty_row() -> None:
    # In-S 8 x 4.33 A at a = 5.0: nothing within the 5 A of the grid? no: the 4.33 A shell is there; take a = 6
    # (5.2 A, beyond 5 A): the candidate's density is zero
    cand = _cand(_cscl(6.0))
    dn = np.zeros(250)
    dn[130] = 1.0
    (row,), refs = _score(cand, _pn(dn, 2.61), [_pn(dn, 2.61)])
    assert refs["In-S"].max() == 0.0 and (row.score, row.ref_peak_r) == (0.0, None)


def test_pairs_of_elements_the_candidate_lacks_are_skipped() -> None:
    cand = _cand(_cscl(b="Cl"), "InCl-cP2")
    dn = np.zeros(250)
    rows, refs = score_candidate(
        cand, {"In-S": _pn(dn, 2.61), "In-Cl": _pn(dn, None, False)}, {"In-S": [], "In-Cl": []}, {}, R, 0.1, 0.1
    )
    assert [r.pair for r in rows] == ["In-Cl"] and list(refs) == ["In-Cl"]


def test_the_shells_reach_the_cutoff_plus_six_tenths() -> None:
    # cutoff 2.0: shells up to 2.6 A leave out the 2.6067 A shell; the nearest "shell" is then the maximum of the
    # candidate's density, its 24 S at 4.99 A: 2.38 A from the peak, score 0
    cand = _cand(_cscl())
    ref = reference_density(cand.structure, "In-S", 5.0, DR, 0.1)
    rows, _ = score_candidate(cand, {"In-S": _pn(ref, 2.61)}, {"In-S": [_pn(ref, 2.61)]}, {"In-S": 2.0}, R, 0.1, 0.1)
    assert (rows[0].ref_peak_r, rows[0].delta_r, rows[0].score) == (4.99, 2.38, 0.0)
    # cutoff 2.01: the limit 2.61 takes the shell in
    rows, _ = score_candidate(cand, {"In-S": _pn(ref, 2.61)}, {"In-S": [_pn(ref, 2.61)]}, {"In-S": 2.01}, R, 0.1, 0.1)
    assert rows[0].ref_peak_r == 2.61


# --- reactant_floor ---------------------------------------------------------------------------------------------------


def _res(pairs: list[str], counts: dict[str, int], n: dict[str, np.ndarray], bonds: dict[str, np.ndarray]) -> Any:
    settings = SimpleNamespace(pairs=pairs, dt_fs=10.0, frames_per_window=10)
    nf = len(next(iter(bonds.values())))
    return SimpleNamespace(
        r=R,
        settings=settings,
        cutoffs=dict.fromkeys(pairs, 3.0),
        element_counts=counts,
        n_per_atom=n,
        bonds=bonds,
        frame_times=(np.arange(nf) + 1) * 0.01,
        n_frames=nf,
    )


def test_the_floor_is_a_reactant_s_density_by_its_share_of_the_a_atoms() -> None:
    # 2 formula units of CsCl-InS among 8 In: a quarter of the In see InS's 8 S
    res = _res(["In-S"], {"In": 8, "S": 2}, {}, {"In-S": np.zeros(3)})
    reactants = SimpleNamespace(phases={"InS": 2.0})
    floor = reactant_floor(res, "In-S", ["InS"], reactants, {"InS": _cscl()}, {}, 0.1)
    crystal = reference_density(_cscl(), "In-S", 5.0, DR, 0.1)
    assert np.allclose(floor, smooth(0.25 * crystal, COMPARE_SIGMA / DR), atol=1e-12)


def test_the_floor_takes_the_reactant_s_thermal_density_when_there_is_one() -> None:
    res = _res(["In-S"], {"In": 2, "S": 2}, {}, {"In-S": np.zeros(3)})
    thermal = np.zeros(250)
    thermal[100] = 3.0
    floor = reactant_floor(res, "In-S", ["InS"], SimpleNamespace(phases={"InS": 1.0}), {"InS": _cscl()},
                           {"InS": {"In-S": thermal}}, 0.1)  # fmt: skip
    # share 1 x 1 In / 2 In = 0.5
    assert np.allclose(floor, smooth(0.5 * thermal, COMPARE_SIGMA / DR), atol=1e-12)


def test_a_thermal_density_on_another_grid_is_not_used() -> None:
    res = _res(["In-S"], {"In": 1, "S": 1}, {}, {"In-S": np.zeros(3)})
    floor = reactant_floor(res, "In-S", ["InS"], SimpleNamespace(phases={"InS": 1.0}), {"InS": _cscl()},
                           {"InS": {"In-S": np.ones(10)}}, 0.1)  # fmt: skip
    crystal = reference_density(_cscl(), "In-S", 5.0, DR, 0.1)
    assert np.allclose(floor, smooth(crystal, COMPARE_SIGMA / DR), atol=1e-12)


def test_the_share_is_at_most_one_and_one_when_unknown() -> None:
    crystal = smooth(reference_density(_cscl(), "In-S", 5.0, DR, 0.1), COMPARE_SIGMA / DR)
    res = _res(["In-S"], {"In": 1, "S": 1}, {}, {"In-S": np.zeros(3)})
    big = reactant_floor(res, "In-S", ["InS"], SimpleNamespace(phases={"InS": 5.0}), {"InS": _cscl()}, {}, 0.1)
    unknown = reactant_floor(res, "In-S", ["InS"], SimpleNamespace(phases={}), {"InS": _cscl()}, {}, 0.1)
    assert np.allclose(big, crystal, atol=1e-12) and np.allclose(unknown, crystal, atol=1e-12)


def test_a_trajectory_without_the_a_element_counts_one_a_atom() -> None:
    # no In counted in the trajectory: the share is over max(1, 0) = 1 atom: 0.5 units x 1 In = 0.5
    res = _res(["In-S"], {"S": 1}, {}, {"In-S": np.zeros(3)})
    floor = reactant_floor(res, "In-S", ["InS"], SimpleNamespace(phases={"InS": 0.5}), {"InS": _cscl()}, {}, 0.1)
    crystal = reference_density(_cscl(), "In-S", 5.0, DR, 0.1)
    assert np.allclose(floor, smooth(0.5 * crystal, COMPARE_SIGMA / DR), atol=1e-12)


# --- pair_changes: the pairs table of match.json -----------------------------------------------------------------


def _bump(r0: float, total: float) -> np.ndarray:
    """``total`` neighbours in one bin at ``r0``."""
    out = np.zeros(250)
    out[_bin(r0)] = total
    return out


def _changes(late_total: float = 2.0, thermal: dict | None = None, spec: MatchSpec | None = None) -> Any:
    """8 In, 4 S, 2 Li; 6 windows: In-S gains ``late_total`` neighbours per In at 2.61 A in the last two windows;
    Li-S (held by the Li2S-like reactant, a CsCl 'LiS' here) keeps its own. Bonds: In-S 0 -> 16, Li-S 8."""
    in_s = np.array([np.zeros(250)] * 4 + [_bump(2.61, late_total)] * 2)
    li_s = np.array([_bump(2.61, 8.0)] * 6)
    nf = 60
    bonds = {"In-S": np.array([0.0] * 30 + [16.0] * 30), "Li-S": np.full(nf, 8.0)}
    res = _res(["In-S", "Li-S"], {"In": 8, "S": 4, "Li": 2}, {"In-S": in_s, "Li-S": li_s}, bonds)
    reactants = SimpleNamespace(phases={"In": 8.0, "LiS": 2.0})
    structs = {"In": Structure(Lattice.cubic(3.3), ["In"], [[0, 0, 0]]), "LiS": _cscl(b="S").copy()}
    structs["LiS"].replace(0, "Li")
    win = Windows(np.arange(2), np.arange(4, 6), [(np.arange(2), np.arange(4, 6))] * 4, 0.1)
    return pair_changes(res, spec or MatchSpec(), reactants, structs, thermal or {}, win, 0.1)


def test_an_interfacial_pair_that_gained_bonds() -> None:
    pairs, pair_new, boot_new = _changes()
    row = pairs["In-S"]
    bonds = row.pop("bonds")
    # 2 new neighbours per In (all of them new: the first windows had none) at 2.61 A; 8 In: 16 new bonds
    assert row == {
        "kind": "interfacial pair",
        "reactants_with_pair": [],
        "baseline": "first windows",
        "md_peak_r": 2.61,
        "new": 2.0,
        "new_per_minority_atom": 4.0,  # per S, the minority (8 In / 4 S = 2 x)
        "minority": "S",
        "new_bonds": 16.0,
        "new_fraction": 1.0,
        "has_new": True,
        "bootstrap_support": 1.0,
        "bond_cutoff": 3.0,
    }
    assert (bonds["rose"], bonds["fell"], bonds["change"]) == (True, False, 16.0)
    assert pair_new["In-S"].has_new and pair_new["In-S"].peak == pytest.approx(2.61)
    assert len(boot_new["In-S"]) == 4 and all(b.has_new for b in boot_new["In-S"])


def test_a_reactant_pair_against_its_crystal() -> None:
    pairs, pair_new, _ = _changes()
    row = pairs["Li-S"]
    assert (row["kind"], row["reactants_with_pair"], row["has_new"]) == ("reactant pair", ["LiS"], False)
    assert row["baseline"] == "max(first windows, reactant crystal broadened to T)"
    assert row["minority"] == "Li" and row["md_peak_r"] is None and row["bonds"]["rose"] is False
    assert pair_new["Li-S"].peak is None


def test_a_reactant_pair_against_its_thermal_density() -> None:
    pairs, _, _ = _changes(thermal={"LiS": {"Li-S": np.zeros(250)}})
    assert pairs["Li-S"]["baseline"] == "max(first windows, reactant NVT at T)"


def test_too_few_new_neighbours_are_no_new_bonds() -> None:
    # 0.04 new neighbours per In, 0.08 per S: above min_new 0.05 per minority atom... with min_new 0.1 it is not
    pairs, _, boot = _changes(late_total=0.04, spec=MatchSpec(min_new=0.1))
    assert pairs["In-S"]["has_new"] is False and pairs["In-S"]["md_peak_r"] is None
    assert pairs["In-S"]["bootstrap_support"] == 0.0 and not any(b.has_new for b in boot["In-S"])
    assert pairs["In-S"]["new_per_minority_atom"] == 0.08 and pairs["In-S"]["new_bonds"] == 0.3


def test_an_empty_late_shell_has_a_zero_fraction() -> None:
    pairs, _, _ = _changes(late_total=0.0)
    assert pairs["In-S"]["new_fraction"] == 0.0 and pairs["In-S"]["new"] == 0.0


def test_a_like_pair_counts_each_bond_once() -> None:
    n = np.array([np.zeros(250)] * 4 + [_bump(3.01, 3.0)] * 2)
    res = _res(["In-In"], {"In": 8}, {"In-In": n}, {"In-In": np.array([0.0] * 30 + [12.0] * 30)})
    win = Windows(np.arange(2), np.arange(4, 6), [(np.arange(2), np.arange(3, 5))] * 2, 0.1)
    pairs, _, boot = pair_changes(res, MatchSpec(), SimpleNamespace(phases={}), {}, {}, win, 0.1)
    row = pairs["In-In"]
    # 3 new neighbours per In x 8 In / 2 (each In-In bond seen from both ends) = 12 bonds; the scale is 1
    assert (row["new_bonds"], row["new_per_minority_atom"], row["minority"]) == (12.0, 3.0, "In")
    # the resamples' late windows 3-4 hold half the new density: 1.5 per In, still new bonds
    assert row["kind"] == "pair (reactants unknown)" and row["bootstrap_support"] == 1.0
    assert [b.new for b in boot["In-In"]] == [1.5, 1.5]


# --- amounts: _site_vectors, Group.sites, Amounts.to_dict -------------------------------------------------------


def test_site_vectors_are_the_unique_partner_counts() -> None:
    # CsCl InS at cutoffs 3.0 A: each In has 8 S (its 6 In at 3.01 A are beyond the cut and never counted)
    elements = ["In", "S"]
    cut = np.full((2, 2), 3.0)
    (v,) = am._site_vectors(_cscl(), "In", elements, cut)
    assert v.tolist() == [0.0, 8.0]
    # the In-In at 3.01 A within a 3.1 A cut: counted by the environments, then dropped (partners only)
    cut[0, 0] = 3.1
    assert [x.tolist() for x in am._site_vectors(_cscl(), "In", elements, cut)] == [[0.0, 8.0]]
    assert am._site_vectors(_cscl(), "Li", [*elements, "Li"], np.full((3, 3), 3.0)) == []


def test_site_vectors_of_two_different_sites() -> None:
    # a 2 x 1 x 1 cell with one S replaced by Cl: every In has 4 S + 4 Cl, every... one vector, counted once
    s = _cscl() * (2, 1, 1)
    s.replace(3, "Cl")
    vecs = am._site_vectors(s, "In", ["In", "S", "Cl"], np.full((3, 3), 3.0))
    assert [v.tolist() for v in vecs] == [[0.0, 4.0, 4.0]]


def test_group_sites_name_each_member_s_neighbours() -> None:
    g = am.Group("In", ["InS", "In2S3"], [np.array([0.0, 6.0, 0.0]), np.array([0.0, 4.0, 0.0]),
                 np.array([0.0, 6.0, 0.0])], {"InS": 1, "In2S3": 2}, {"InS": 1, "In2S3": 2})  # fmt: skip
    assert g.sites(["In", "S", "Cl"]) == "InS: In with 6 S; In2S3: In with 4 S or 6 S"
    assert g.name == "InS / In2S3"
    empty = am.Group("In", ["X"], [np.zeros(3)], {"X": 1}, {"X": 1})
    assert empty.sites(["In", "S", "Cl"]) == "X: In with none"


def test_amounts_to_dict_holds_the_groups_and_the_rules() -> None:
    g = am.Group("In", ["InS"], [np.array([0.0, 6.0])], {"InS": 1}, {"InS": 1})
    out = am.Amounts(["In", "S"], [g], {"InS": {"atoms": 2.0}}, {"In": {"atoms": 8}}, {"Li3PS4": "why"}, {"InS": "InS"})
    assert out.to_dict() == {
        "groups": [{"name": "InS", "element": "In", "members": ["InS"], "per_formula_unit": {"InS": 1}}],
        "amounts": {"InS": {"atoms": 2.0}},
        "centres": {"In": {"atoms": 8}},
        "unseen": {"Li3PS4": "why"},
        "group_of": {"InS": "InS"},
        "rules": {
            "changed": "L1(late - early mean neighbour counts) >= 1.0",
            "reacted": ">= 2 partners gained, product weight >= 0.25 in a convex fit of the late counts by the "
            "atom's early counts and the candidate sites; residual <= max(2.0, 0.35 x neighbours)",
            "groups": "candidates counted on one element with site vectors of cosine >= 0.9",
            "interval": "5-95 % of 200 bootstrap resamples of the early and late samples",
        },
    }


# --- product_amounts: the whole output on five In atoms ------------------------------------------------------------

_SITES = {
    ("In", "In"): [[0.0, 0.0, 0.0]],
    ("In2S3", "In"): [[0.0, 6.0, 0.0]],
    ("InS", "In"): [[0.0, 6.0, 0.0]],
    ("InCl3", "In"): [[0.0, 0.0, 6.0]],
}


class _Env:
    """Environments of five In atoms (no S or Cl atoms followed): counts per sample, atom and element."""

    def __init__(self, counts: np.ndarray) -> None:
        self.elements = ["In", "S", "Cl"]
        self.species = ["In"] * counts.shape[1] + ["S"]
        self.cutoffs = np.full((3, 3), 3.0)
        self.counts = counts

    def atoms_of(self, el: str) -> np.ndarray:
        return np.flatnonzero(np.array(self.species[:-1]) == el)


def _crystal(formula: str) -> SimpleNamespace:
    from pymatgen.core import Composition

    return SimpleNamespace(composition=Composition(formula), formula=formula)


def _named(name: str) -> SimpleNamespace:
    s = _crystal(name)
    return SimpleNamespace(name=name, structure=s, elements=frozenset(el.symbol for el in s.composition))


@pytest.fixture
def amounts_case(monkeypatch: pytest.MonkeyPatch) -> am.Amounts:
    """Early: every In with 8 In and nothing else. Late (3 samples): a0 6 S (sulfide), a1 4 S + 2 Cl (2/3 sulfide,
    1/3 chloride), a2 6 Cl (chloride), a3 1 S (changed by 1, gained 1: a contact), a4 unchanged. Each In keeps its
    8 In neighbours, which the rules never count (a metal's own count)."""
    monkeypatch.setattr(
        am, "_site_vectors", lambda s, el, els, cut: [np.array(v) for v in _SITES.get((s.formula, el), [])]
    )
    early = [[8, 0, 0]] * 5
    late = [[8, 6, 0], [8, 4, 2], [8, 0, 6], [8, 1, 0], [8, 0, 0]]
    counts = np.array([early, early, late, late, late], dtype=float)
    cands = [_named("In2S3"), _named("InS"), _named("InCl3")]
    return am.product_amounts(_Env(counts), cands, {"In": _crystal("In")}, np.arange(2), np.arange(2, 5))


def test_product_amounts_groups_and_shares(amounts_case: am.Amounts) -> None:
    out = amounts_case
    assert out.elements == ["In", "S", "Cl"] and out.unseen == {}
    assert [g.members for g in out.groups] == [["In2S3", "InS"], ["InCl3"]]
    assert out.group_of == {"In2S3": "In2S3 / InS", "InS": "In2S3 / InS", "InCl3": "InCl3"}
    assert out.centres == {"In": {"atoms": 5, "changed": 4, "reacted": 3, "contacts": 1, "unassigned": 0}}
    # sulfide: a0 (1) + a1 (2/3) = 1.667 atoms -> 1.7; formula units 1.667 / 2 (In2S3) .. / 1 (InS) -> 0.8 .. 1.7
    assert out.amounts["In2S3 / InS"] == {
        "element": "In",
        "members": ["In2S3", "InS"],
        "sites": "In2S3: In with 6 S; InS: In with 6 S",
        "atoms": 1.7,
        "atoms_lo": 1.7,
        "atoms_hi": 1.7,
        "formula_units": [0.8, 1.7],
        "contributing_atoms": 2,
        "firm": False,
    }
    # chloride: a1 (1/3) + a2 (1) = 1.333 atoms -> 1.3 (every resample the same: the late samples are equal)
    assert out.amounts["InCl3"] == {
        "element": "In",
        "members": ["InCl3"],
        "sites": "InCl3: In with 6 Cl",
        "atoms": 1.3,
        "atoms_lo": 1.3,
        "atoms_hi": 1.3,
        "formula_units": [1.3, 1.3],
        "contributing_atoms": 2,
        "firm": False,
    }
