"""Force/energy parity against PBE (cellsim.engines.parity): the statistics, verdicts, report lines, and real
CP2K labels of two tiny snapshots (seconds) compared with CHGNet."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from cellsim.engines import parity as par
from cellsim.engines import snapshots as snap

needs_cp2k = pytest.mark.skipif(shutil.which("cp2k.psmp") is None, reason="cp2k.psmp not installed")

TINY = {
    "basis_set": "SZV-MOLOPT-SR-GTH",
    "cutoff": 120,
    "rel_cutoff": 30,
    "ngrids": 3,
    "eps_default": 1.0e-8,
    "scf": {"eps_scf": 1.0e-5, "max_scf": 30, "smearing": None, "added_mos": 0.0},
    "kpoints": {"kspacing": None},
}


def test_force_stats_and_verdicts() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(10, 3))
    same = par.force_stats(ref, ref)
    assert same["mae"] == 0 and same["rmse"] == 0 and same["cosine"] == pytest.approx(1.0)
    flipped = par.force_stats(-ref, ref)
    assert flipped["cosine"] == pytest.approx(-1.0) and flipped["mae"] == pytest.approx(2 * np.mean(np.abs(ref)))
    # cosine leaves out atoms whose reference force has no direction
    tiny = ref.copy()
    tiny[0] = 1e-4
    assert par.force_stats(tiny, tiny)["n_cosine"] == 9
    syms = ["Li"] * 5 + ["S"] * 5
    off = ref.copy()
    off[5:] += 0.15  # S forces off by 0.15 eV/A per component
    ep = par.compare("e", "E 1", syms, [(1.0, off), (2.0, ref)], [(10.0, ref), (11.05, ref)])
    assert ep.per_element["Li"]["mae"] == 0 and ep.per_element["S"]["mae"] == pytest.approx(0.075)
    assert ep.verdicts["force_mae"] == "ok" and ep.verdicts["force_mae_S"] == "ok"
    # energies relative to their mean: engine +-0.5, PBE +-0.525 -> 0.025 eV per snapshot over 10 atoms
    assert ep.energy_diff_mae_meV_atom == pytest.approx(2.5)
    assert par._verdict_below(0.3, par.FORCE_MAE_TOL) == "fail" and par._verdict_above(0.85, par.COSINE_TOL) == "warn"
    assert par.energy_difference_mae([1.0], [2.0], 3) is None


def test_trust_lines_without_numbers_say_how_to_get_them() -> None:
    (line,) = par.trust_lines(None, "li6ps5cl_in")
    assert "No DFT check" in line and "--reference cp2k --parity" in line


@needs_cp2k
def test_parity_with_real_cp2k_labels_is_cached(tmp_path: Path) -> None:
    from cellsim.engines.cp2k import resolve_settings
    from cellsim.engines.registry import select

    settings = resolve_settings(TINY)
    frames = [
        Atoms("LiH", positions=[[2.0, 2.0, 2.0], [2.0, 2.0, 2.0 + d]], cell=[4.5, 4.5, 4.5], pbc=True)
        for d in (1.55, 1.7)
    ]
    plan = snap.SnapshotPlan("test snapshots", frames, 2.0, [])
    seen: list[str] = []
    models = select(["chgnet"])
    res = par.parity(plan, models, settings, tmp_path, progress=lambda what, *_: seen.append(what))
    assert seen.count("cp2k-start") == 2 and seen.count("cp2k-done") == 2
    assert not any(s["cached"] for s in res.snapshots) and res.natoms == 2 and res.formula == "LiH"
    (ep,) = res.engines
    assert set(ep.per_element) == {"H", "Li"} and ep.overall["mae"] > 0 and ep.energy_diff_mae_meV_atom is not None
    # the engine's numbers are its own: different from PBE's, and consistent with its calculator
    assert ep.energies_eV[0] != pytest.approx(res.snapshots[0]["energy_eV"])
    again = par.parity(plan, models, settings, tmp_path)
    assert all(s["cached"] for s in again.snapshots)
    assert again.engines[0].overall == ep.overall
    saved = res.save(tmp_path / par.PARITY_FILE)
    loaded = par.load(saved)
    assert loaded is not None and loaded.engines[0].per_element == ep.per_element
    (line,) = par.trust_lines(loaded)
    assert line.startswith("CHGNet 0.3.0 forces on this interface vs PBE") and "H " in line and "Li " in line
    assert {r["element"] for r in par.table_rows(loaded)} == {"all", "H", "Li"}


@pytest.mark.slow
def test_reduced_interfaces_are_the_study_builder_smaller() -> None:
    from cellsim.config.study import load_study

    study = load_study("li6ps5cl_in")
    reds = snap.reduced_interfaces(study)
    sizes = [r["natoms"] for r, _ in reds]
    assert sizes == sorted(sizes, reverse=True) and 30 <= sizes[-1] <= 60
    for _, s in reds:
        comp = s.composition
        assert comp["Li"] == 6 * comp["P"] == 6 * comp["Cl"] and comp["In"] > 0  # whole Li6PS5Cl units + metal


def test_budget_parsing() -> None:
    from cellsim.cli.engines import parse_budget_s
    from cellsim.core.errors import CellsimError

    assert parse_budget_s("40min") == 2400 and parse_budget_s("2h") == 7200 and parse_budget_s("90s") == 90
    assert parse_budget_s("30") == 1800
    with pytest.raises(CellsimError, match="--budget"):
        parse_budget_s("soon")


def test_recommendation_and_trust_use_the_dft_numbers(tmp_path: Path) -> None:
    from cellsim.engines import check as ec

    def report(name: str) -> ec.EngineReport:
        rows = [ec.Row(name, "In", "c/a", 1.41, 1.52, "fail"), ec.Row(name, "In", "a", 3.4, 3.25, "ok")]
        return ec.EngineReport(name, name, True, rows, s_per_step=1.0 if name == "fast" else 3.0)

    reports = [report("fast"), report("accurate")]
    assert ec.recommend(reports)[0] == "fast"  # tied: the fastest
    syms = ["In", "S"]
    ref = [(0.0, np.array([[1.0, 0, 0], [0, 1.0, 0]])), (1.0, np.array([[0, 1.0, 0], [1.0, 0, 0]]))]
    off = [(e, f + 0.3) for e, f in ref]
    res = par.ParityResult(
        "run trajectory", "InS", 2, [], "PBE (CP2K)",
        [par.compare("fast", "Fast 1", syms, off, ref), par.compare("accurate", "Accurate 1", syms, ref, ref)],
        par.thresholds(),
    )  # fmt: skip
    best, why = ec.recommend(reports, parity=res)
    assert best == "accurate" and "forces vs PBE on the interface: MAE 0.00" in why  # fast's 0.3 eV/A fails
    assert "No DFT check" in ec.parity_trust(tmp_path, "RUN")[0]
    res.save(tmp_path / par.PARITY_FILE)
    lines = ec.parity_trust(tmp_path)
    assert lines[0].startswith("Fast 1 forces on this interface vs PBE (CP2K) (0 snapshot(s) of the 2-atom interface)")
    assert "MAE 0.30 eV/A (In 0.30, S 0.30)" in lines[0] and "verdict fail (fail: In, S)" in lines[0]
