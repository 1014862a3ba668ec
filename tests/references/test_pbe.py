"""The project's PBE phase diagram (cellsim.references.pbe) on the stored GPAW energies of data/pbe/phases_pw.

No DFT runs here except the one marked slow, which recomputes a stored phase with GPAW and compares.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from cellsim.references import pbe

ROOT = Path(__file__).resolve().parents[2] / "data" / "pbe" / "phases_pw"
# the phases the reference library lacked (issue 34) and the elements' corners
ADDED = ("InPS4", "Li3InCl6", "InP", "Li7PS6", "Li4P2S6", "P4S10", "P", "S8", "Cl2")


@pytest.fixture(scope="module")
def phases() -> dict[str, pbe.PbePhase]:
    out = pbe.stored_phases(ROOT)
    assert out, f"no stored PBE phases under {ROOT}"
    return out


@pytest.fixture(autouse=True)
def _quiet() -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_at_least_twenty_phases_with_the_missing_ones(phases) -> None:
    assert len(phases) >= 20
    for name in ADDED:
        assert name in phases, name


def test_every_stored_energy_is_the_job_folder_s_own(phases) -> None:
    """The loader reads what GPAW wrote: energy per atom = result.json energy / atoms, the settings stated."""
    index = json.loads((ROOT / "index.json").read_text())
    for name, ph in phases.items():
        data = json.loads((ROOT / "jobs" / index[name] / "result.json").read_text())
        assert ph.energy_per_atom == pytest.approx(data["energy_eV"] / data["natoms"], abs=1e-12)
        assert data["code"] == "gpaw" and data["settings"]["xc"] == "PBE"
        assert data["settings"]["ecut_eV"] == 450.0
        assert data["settings"]["smearing"] == {"name": "marzari-vanderbilt", "width": 0.1}


def test_formation_energies_recomputed_by_hand(phases) -> None:
    ef = pbe.formation_energies(phases)
    li, cl2, s8 = (phases[n].energy_per_atom for n in ("Li", "Cl2", "S8"))
    assert ef["LiCl"] == pytest.approx((phases["LiCl"].energy_per_atom * 2 - li - cl2) / 2, abs=1e-9)
    assert ef["Li2S"] == pytest.approx((phases["Li2S"].energy_per_atom * 3 - 2 * li - s8) / 3, abs=1e-9)
    for name in ("LiCl", "Li2S", "Li3P", "InS_exp", "LiInS2", "Li6PS5Cl", "Li3PS4"):
        assert ef[name] < -0.2, name


def test_li6ps5cl_lies_slightly_above_the_hull_and_decomposes_as_known(phases) -> None:
    rows = {r["phase"]: r for r in pbe.hull_table(phases)}
    r = rows["Li6PS5Cl"]
    assert 0.0 < r["e_above_hull_eV_per_atom"] < 0.1
    assert sorted(r["decomposes_to"]) == ["Li2S", "Li3PS4", "LiCl"]


def test_li_reduces_li6ps5cl_to_li2s_li3p_licl(phases) -> None:
    out = pbe.interface_thermo("Li6PS5Cl", "Li", phases=phases)
    assert out["closed"]["exergonic"]
    assert out["closed"]["energy_eV_per_atom"] < -0.3
    assert sorted(out["closed"]["products"]) == ["Li2S", "Li3P", "LiCl"]


def test_li_in_alloy_potential_is_near_experiment(phases) -> None:
    """In + LiIn two-phase electrode: ~0.62 V vs Li in experiment."""
    pot = pbe.li_potential(phases)
    assert 0.4 < pot["voltage_V"] < 0.8
    li = phases["Li"].energy_per_atom
    by_hand = 2 * phases["LiIn"].energy_per_atom - phases["In"].energy_per_atom
    assert pot["mu_li_eV"] == pytest.approx(by_hand, abs=1e-5)
    assert pot["voltage_V"] == pytest.approx(li - by_hand, abs=1e-4)


def test_control_products_made_unstable_give_no_reaction(phases) -> None:
    """Negative control: the Li reduction products raised by 1 eV/atom -> nothing exergonic."""
    keep = ("Li", "Li6PS5Cl", "P", "S8", "Cl2")  # every other phase 1 eV/atom higher
    energies = {n: p.energy_per_atom + (0.0 if n in keep else 1.0) for n, p in phases.items()}
    shifted = pbe.with_energies(phases, energies)
    out = pbe.interface_thermo("Li6PS5Cl", "Li", phases=shifted)
    assert not out["closed"]["exergonic"]
    assert out["closed"]["reaction"] is None


def test_open_li_at_the_alloy_potential_is_computed_for_in(phases) -> None:
    out = pbe.interface_thermo("Li6PS5Cl", "In", phases=phases)
    assert out["li_electrode"]["electrode"] == "In + LiIn"
    assert "exergonic" in out["open_li"] and out["open_li"]["mu_li_eV"] == out["li_electrode"]["mu_li_eV"]
    # the sentence states both answers and which energies
    assert out["sentence"].startswith("PBE, closed: ")
    assert "At the Li-In alloy's Li potential (" in out["sentence"]
    # a reaction between the two is stated exactly when it is exergonic
    closed_text = out["sentence"].split(". At the Li-In")[0]
    assert ("no reaction between In and Li6PS5Cl" in closed_text or "no exergonic reaction" in closed_text) == (
        not out["closed"]["exergonic"]
    )


def test_mp2020_corrections_are_pymatgen_s(phases) -> None:
    plain = {e.data["name"]: e for e in pbe.entries({n: phases[n] for n in ("Li2S", "LiCl")})}
    corr = {e.data["name"]: e for e in pbe.entries({n: phases[n] for n in ("Li2S", "LiCl")}, mp2020=True)}
    # MP2020: S -0.503 eV per S (sulfide), Cl -0.614 eV per Cl; the entries hold the primitive cells' atoms
    n_s = phases["Li2S"].natoms // 3
    assert corr["Li2S"].energy - plain["Li2S"].energy == pytest.approx(-0.503 * n_s, abs=0.01)
    assert corr["LiCl"].energy - plain["LiCl"].energy == pytest.approx(-0.614 * phases["LiCl"].natoms / 2, abs=0.01)


def test_unknown_reactants_are_skipped_with_the_reason(phases) -> None:
    out = pbe.interface_thermo("Li10GeP2S12", "In", phases=phases)
    assert out["skipped"] == "no stored PBE energy of Li10GeP2S12"
    assert pbe.interface_thermo("Li6PS5Cl", "In", phases={})["skipped"].startswith("no stored PBE phases")


def test_structures_are_stored_beside_the_energies(phases) -> None:
    s = phases["InPS4"].structure()
    assert s.composition.reduced_formula == "InPS4"
    assert len(s) == phases["InPS4"].natoms
    assert np.isfinite(phases["InPS4"].pressure_GPa)


@pytest.mark.slow
def test_a_stored_phase_is_recomputed_by_gpaw(phases, tmp_path) -> None:
    """The stored Li energy comes back from a fresh GPAW run with the stored structure and settings."""
    from ase.io import read

    from cellsim.engines import planewave

    try:
        planewave.find_gpaw_python()
    except planewave.GpawNotFoundError:
        pytest.skip("GPAW not installed (apt-get install gpaw)")
    job = phases["Li"].job
    params = json.loads((job / "params.json").read_text())
    settings = {k: params[k] for k in ("xc", "ecut_eV", "kpts", "smearing")}
    res = planewave.single_point(read(job / "structure.json"), tmp_path, settings, stress=True)
    assert not res.cached
    assert res.energy == pytest.approx(phases["Li"].energy_per_atom, abs=1e-4)


def test_reproducing_md_quotes_the_stored_numbers(phases) -> None:
    """docs/reproducing.md's PBE paragraph is the stored data's, recomputed here (a new phase that moves them
    fails this until the page says the new numbers)."""
    text = " ".join((ROOT.parents[2] / "docs" / "reproducing.md").read_text().split())
    ins = pbe.interface_thermo("Li6PS5Cl", "In", phases=phases)
    li = pbe.interface_thermo("Li6PS5Cl", "Li", phases=phases)
    liin = pbe.interface_thermo("Li6PS5Cl", "LiIn", phases=phases)
    c = ins["closed"]
    assert f"lies {1000 * ins['electrolyte_e_above_hull_eV_per_atom']:.0f} meV/atom above the PBE hull" in text
    assert f"({1000 * li['closed']['mixing_eV_per_atom']:+.0f} meV/atom beyond each reactant on its own)" in text
    assert f"(In atom fraction {c['metal_fraction']:.2f}) gives {' + '.join(c['products'])}" in text
    assert f"{1000 * c['mixing_eV_per_atom']:+.0f} meV/atom beyond each reactant on its own" in text
    assert f"({1000 * c['energy_eV_per_atom']:+.0f} meV/atom of the mixture" in text
    assert f"(In + LiIn, {ins['li_electrode']['voltage_V']:.2f} V vs Li in PBE" in text
    assert ins["open_li"]["exergonic"] is False and "indium adds no reaction beyond that" in text
    lc = liin["closed"]
    assert f"closed: {' + '.join(lc['products'])}, {1000 * lc['mixing_eV_per_atom']:+.0f} meV/atom" in text
    stored = {
        r["engine"]: r
        for r in pbe.stored_engine_reactions("Li6PS5Cl", "In", ROOT)
        if r["quantity"] == "interface reaction"
    }
    quoted = (
        f"CHGNet 0.3.0 {1000 * stored['chgnet']['engine_eV_per_atom']:+.0f}, "
        f"SevenNet-0 {1000 * stored['sevennet']['engine_eV_per_atom']:+.0f} and the bundled fit only "
        f"{1000 * stored['chgnet:model.pth.tar']['engine_eV_per_atom']:+.0f} meV/atom against PBE's "
        f"{1000 * c['mixing_eV_per_atom']:+.0f}"
    )
    assert quoted in text
