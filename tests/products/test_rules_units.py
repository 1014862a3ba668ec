"""The matching rules' functions that the end-to-end tests alone reached, on small made-up crystals and densities
(no MD): a crystal's neighbour density, one candidate's rows, the reactants' floor, every pair's table, the site
vectors and the amounts' dictionary. Every expected number is worked out in a comment beside it."""

from __future__ import annotations

import math
import warnings
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
    assert [b.new for b in boot["In-In"]] == pytest.approx([1.5, 1.5])


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


# --- what the first mutation run of these tests left: the assignment's counts, small helpers ----------------------


def test_assign_counts_contacts_unassigned_and_reacted_atoms_one_by_one() -> None:
    """Columns In, S, Cl, Li; the sulfide site 6 S is fitted (the chloride group is another element's). Every atom
    is judged on its own (none stops the loop) and every count adds up."""
    groups = [
        am.Group("In", ["S6"], [np.array([0.0, 6.0, 0.0, 0.0])], {"S6": 1}, {"S6": 1}),
        am.Group("In", ["Cl6"], [np.array([0.0, 0.0, 6.0, 0.0])], {"Cl6": 1}, {"Cl6": 1}),
    ]
    early = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 2], [0, 0, 0, 2]], float)
    late = np.array(
        [
            [0, 1, 0, 0],  # one S: product weight 1/6 < 1/4, a contact
            [0, 1, 0, 0],  # the same: a second contact
            [0, 3, 0, 3],  # 3 S and 3 Li: the Li fit by nothing, residual 3 > max(2, 0.35 x 6): unassigned
            [0, 3, 0, 3],  # a second unassigned
            [0, 3, 0, 0],  # 3 S gained, 2 Li lost: gained 3 (losses do not cancel gains), weight 0.55: reacted
            [0, 1.5, 0, 0],  # 1.5 S gained, 2 Li lost: weight 0.325 but gained 1.5 < 2: a contact
        ]
    )
    shares, stats = am._assign(early, late, groups, [0])  # the sulfide sites only: the fits above by hand
    assert stats == {"changed": 6, "reacted": 1, "contacts": 3, "unassigned": 2}
    assert shares.tolist() == [[0.0, 0.0]] * 4 + [[1.0, 0.0], [0.0, 0.0]]


def test_assign_without_groups_counts_a_change_of_exactly_one_neighbour() -> None:
    early, late = np.zeros((2, 3)), np.array([[0.0, 1.0, 0.0], [0.0, 0.5, 0.0]])
    shares, stats = am._assign(early, late, [], [])
    assert stats == {"changed": 1, "reacted": 0, "contacts": 0, "unassigned": 1} and shares.shape == (2, 0)


def test_convex_fit_weights_sum_to_one_and_the_residual_is_l1() -> None:
    # target 3 S + 1 Cl from the sites 6 S and 6 Cl: w = (1/2, 1/6) cannot sum to one; the least squares with
    # w1 + w2 = 1 is w = (2/3, 1/3): 4 S + 2 Cl, L1 residual 1 + 1 = 2
    w, resid = am._convex_fit(np.array([3.0, 1.0]), np.array([[6.0, 0.0], [0.0, 6.0]]))
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert w.tolist() == pytest.approx([2 / 3, 1 / 3], abs=1e-5) and resid == pytest.approx(2.0, abs=1e-4)


def test_small_helpers() -> None:
    assert am._l1(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert am._l1(np.array([1.0, -2.0]), np.array([0.0, 1.0])) == 4.0
    assert am._cos(np.array([0.1, 0.0]), np.array([0.2, 0.0])) == 1.0  # short vectors: still parallel
    assert am._cos(np.zeros(2), np.array([1.0, 0.0])) == 0.0
    with warnings.catch_warnings():  # pymatgen says Ne has no Pauling value: the case this checks
        warnings.simplefilter("ignore", UserWarning)
        assert am._chi("In") == pytest.approx(1.78) and am._chi("Ne") == 4.0
    from cellsim.products.scores import cosine, radial_grid

    assert cosine(np.array([0.1, 0.0]), np.array([0.2, 0.0])) == 1.0
    assert radial_grid(np.array([0.05, 0.15])) == pytest.approx((0.1, 0.2))


def test_group_sites_join_two_partners_and_walk_three_members() -> None:
    v = [np.array([0.0, 6.0, 0.0]), np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.0, 3.0]), np.array([0.0, 0.0, 6.0])]
    g = am.Group("In", ["A", "B", "C"], v, {"A": 1, "B": 1, "C": 1}, {"A": 1, "B": 1, "C": 2})
    assert g.sites(["In", "S", "Cl"]) == "A: In with 6 S; B: In with 1 S + 2 Cl; C: In with 3 Cl or 6 Cl"


def test_score_candidate_rows_of_two_pairs_the_first_empty() -> None:
    # In-Cl first without new bonds (an empty row, with the candidate's names), then In-S scored: the empty row
    # does not end the loop
    s = Structure(Lattice.cubic(A), ["In", "S", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.0]])
    cand = Candidate.of("X", "InSCl", "P4/mmm", "made up", s)
    ref = reference_density(s, "In-S", 5.0, DR, 0.1)
    pair_new = {"In-Cl": _pn(np.zeros(250), None, False), "In-S": _pn(ref, 2.61)}
    rows, _ = score_candidate(cand, pair_new, {"In-Cl": [], "In-S": [_pn(ref, 2.61)]}, {"In-S": 3.0}, R, 0.1, 0.1)
    assert [r.pair for r in rows] == ["In-Cl", "In-S"]
    assert (rows[0].formula, rows[0].spacegroup, rows[0].source) == ("InSCl", "P4/mmm", "made up")
    assert rows[1].score == 1.0


def test_score_candidate_interval_of_resamples_without_new_bonds_is_zero() -> None:
    cand = _cand(_cscl())
    ref = reference_density(cand.structure, "In-S", 5.0, DR, 0.1)
    (row,), _ = _score(cand, _pn(ref, 2.61), [_pn(ref, None, False)] * 4)
    assert (row.score, row.score_lo, row.score_hi) == (1.0, 0.0, 0.0)


def test_score_candidate_interval_is_of_scores_not_similarities() -> None:
    # every resample one tolerance off the shell: similarity 1 but score exp(-1/2) = 0.61
    cand = _cand(_cscl())
    ref = reference_density(cand.structure, "In-S", 5.0, DR, 0.1)
    (row,), _ = _score(cand, _pn(ref, 2.71), [_pn(ref, 2.71)] * 4)
    assert (row.score_lo, row.score_hi) == (0.61, 0.61)


def test_score_candidate_rounds_distances_and_similarity_to_three_decimals() -> None:
    cand = _cand(_cscl())
    ref = reference_density(cand.structure, "In-S", 5.0, DR, 0.1)
    dn = ref.copy()
    dn[140] += 0.05  # a little density the crystal lacks: similarity just under 1
    sim = float(dn[100:] @ ref[100:] / (np.linalg.norm(dn[100:]) * np.linalg.norm(ref[100:])))
    (row,), _ = _score(cand, _pn(dn, 2.6555), [_pn(dn, 2.6555)])
    assert row.md_peak_r == 2.66 and row.delta_r == round(2.6555 - 2.61, 3)
    assert row.similarity == round(sim, 3) and row.similarity != round(sim, 4)


def test_score_candidate_with_a_candidate_density_under_one_per_bin() -> None:
    # on a 3 A grid the candidate's density tops at 0.64 per bin (8 S over a 0.1 A Gaussian): still a density
    r3 = R[:150]
    cand = _cand(_cscl())
    ref = reference_density(cand.structure, "In-S", 3.0, DR, 0.1)
    rows, _ = score_candidate(cand, {"In-S": _pn(ref, 2.61)}, {"In-S": [_pn(ref, 2.61)]}, {"In-S": 2.3}, r3, 0.1, 0.1)
    assert ref.max() < 1.0 and rows[0].score == 1.0


def test_the_resamples_of_a_reactant_pair_are_held_to_its_floor() -> None:
    """Li-S bonds rise (8 -> 16) and its late density gains 1 neighbour per Li, all inside the LiS crystal's own
    density (the floor): no new Li-S bonds, in the run and in every resample."""
    in_s = np.array([np.zeros(250)] * 6)
    li_s = np.array([np.zeros(250)] * 4 + [_bump(2.61, 1.0)] * 2)
    bonds = {"In-S": np.zeros(60), "Li-S": np.array([8.0] * 30 + [16.0] * 30)}
    res = _res(["In-S", "Li-S"], {"In": 8, "S": 4, "Li": 2}, {"In-S": in_s, "Li-S": li_s}, bonds)
    structs = {"In": Structure(Lattice.cubic(3.3), ["In"], [[0, 0, 0]]), "LiS": _cscl(b="S").copy()}
    structs["LiS"].replace(0, "Li")
    win = Windows(np.arange(2), np.arange(4, 6), [(np.arange(2), np.arange(4, 6))] * 4, 0.1)
    spec = MatchSpec()
    pairs, _, boot = pair_changes(res, spec, SimpleNamespace(phases={"LiS": 2.0}), structs, {}, win, 0.1)
    assert pairs["Li-S"]["bonds"]["rose"] is True and pairs["Li-S"]["has_new"] is False
    assert pairs["Li-S"]["bootstrap_support"] == 0.0 and not any(b.has_new for b in boot["Li-S"])


def test_the_floor_adds_every_holder_and_weighs_by_its_a_atoms_per_unit() -> None:
    # two holders, the CsCl InS cell and the same crystal in a 2 x 1 x 1 cell (reduced formula InS either way:
    # 1 In per unit), 1 unit each among 4 In: a share of 1/4 each, and the two floors add up to half the crystal
    res = _res(["In-S"], {"In": 4, "S": 4}, {}, {"In-S": np.zeros(3)})
    structs = {"A": _cscl(), "B": _cscl() * (2, 1, 1)}
    floor = reactant_floor(res, "In-S", ["A", "B"], SimpleNamespace(phases={"A": 1.0, "B": 1.0}), structs, {}, 0.1)
    crystal = reference_density(_cscl(), "In-S", 5.0, DR, 0.1)
    assert np.allclose(floor, smooth(0.5 * crystal, COMPARE_SIGMA / DR), atol=1e-9)


def test_the_floor_counts_the_a_atoms_of_a_formula_unit() -> None:
    # In2S: 2 In per formula unit; 1 unit among 4 In: share 2 / 4
    s = Structure(Lattice.cubic(A), ["In", "In", "S"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0.5, 0.5]])
    res = _res(["In-S"], {"In": 4, "S": 1}, {}, {"In-S": np.zeros(3)})
    floor = reactant_floor(res, "In-S", ["In2S"], SimpleNamespace(phases={"In2S": 1.0}), {"In2S": s}, {}, 0.1)
    crystal = reference_density(s, "In-S", 5.0, DR, 0.1)
    assert np.allclose(floor, smooth(0.5 * crystal, COMPARE_SIGMA / DR), atol=1e-9)


def test_the_minority_of_equal_counts_is_the_first_element_and_one_atom_scales() -> None:
    n = np.array([np.zeros(250)] * 4 + [_bump(2.61, 1.0)] * 2)
    bonds = np.array([0.0] * 30 + [8.0] * 30)
    res = _res(["In-S"], {"In": 8, "S": 1}, {"In-S": n}, {"In-S": bonds})
    win = Windows(np.arange(2), np.arange(4, 6), [(np.arange(2), np.arange(4, 6))], 0.1)
    pairs, _, _ = pair_changes(res, MatchSpec(), SimpleNamespace(phases={}), {}, {}, win, 0.1)
    # one S among 8 In: 1 new neighbour per In is 8 per S (scale 8 / max(1, 1))
    assert pairs["In-S"]["new_per_minority_atom"] == 8.0 and pairs["In-S"]["minority"] == "S"
    res = _res(["In-S"], {"In": 4, "S": 4}, {"In-S": n}, {"In-S": bonds})
    pairs, _, _ = pair_changes(res, MatchSpec(), SimpleNamespace(phases={}), {}, {}, win, 0.1)
    assert pairs["In-S"]["minority"] == "In"


def test_a_late_shell_under_one_neighbour_still_gives_a_fraction() -> None:
    pairs, _, _ = _changes(late_total=0.5)
    assert pairs["In-S"]["new_fraction"] == 1.0


def test_assign_goes_on_past_an_unchanged_atom() -> None:
    groups = [am.Group("In", ["S6"], [np.array([0.0, 6.0, 0.0])], {"S6": 1}, {"S6": 1})]
    shares, stats = am._assign(np.zeros((2, 3)), np.array([[0.0, 0.0, 0.0], [0.0, 6.0, 0.0]]), groups, [0])
    assert stats == {"changed": 1, "reacted": 1, "contacts": 0, "unassigned": 0} and shares.tolist() == [[0], [1]]


@pytest.fixture
def fake_sites(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], list[list[float]]]:
    table: dict[tuple[str, str], list[list[float]]] = {("In", "In"): [[0.0, 0.0, 0.0]]}
    monkeypatch.setattr(
        am, "_site_vectors", lambda s, el, els, cut: [np.array(v) for v in table.get((s.formula, el), [])]
    )
    return table


def test_build_groups_go_on_past_an_element_and_a_candidate_they_cannot_count(fake_sites: dict) -> None:
    """InS: In is not in the trajectory, S counts. Then LiCl (no element present) and In2S3 (In sites like the
    metal's, within 2): both unseen, and InCl3 after them still counted."""
    fake_sites[("InS", "S")] = [[6.0, 0.0, 0.0]]
    fake_sites[("In2S3", "In")] = [[0.0, 1.0, 0.0]]
    fake_sites[("InCl3", "In")] = [[0.0, 0.0, 6.0]]
    cands = [_named("InS"), _named("LiCl"), _named("In2S3"), _named("InCl3")]
    groups, unseen = am.build_groups(cands, {"In": _crystal("In")}, ["In", "S", "Cl"], np.zeros((3, 3)), {"S"})
    assert [(g.element, g.members) for g in groups] == [("S", ["InS"])]
    groups, unseen = am.build_groups(
        cands, {"In": _crystal("In")}, ["In", "S", "Cl"], np.zeros((3, 3)), {"In", "S", "Cl"}
    )
    assert [(g.element, g.members) for g in groups] == [("S", ["InS"]), ("In", ["InCl3"])]
    assert unseen == {
        "LiCl": "no element of it can be followed to one reactant",
        "In2S3": "its In sites have the neighbours of the reactants' In (within 1.0): not distinguishable from "
        "the reactants by first-shell environments",
    }


def test_product_amounts_say_which_candidates_they_cannot_see(fake_sites: dict) -> None:
    counts = np.zeros((2, 5, 3))
    out = am.product_amounts(_Env(counts), [_named("LiCl")], {"In": _crystal("In")}, np.arange(1), np.arange(1, 2))
    assert out.unseen == {"LiCl": "no element of it can be followed to one reactant"} and out.groups == []
