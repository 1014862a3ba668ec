"""Defaults derived from the system itself (issue 20): pairs, cutoffs, the metal, slab thickness, the study's own
CIF phases as reactants and candidates, and the plausibility of the time between frames."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cellsim.analysis.defaults import covalent_cutoff, default_pairs, guess_metal, rule_cutoff
from cellsim.testing import write_xdatcar

# --------------------------------------------------------------------------- helpers


def grouped(symbols: list[str], frac: np.ndarray) -> tuple[list[str], list[int], np.ndarray]:
    """Species grouped by element (POSCAR order) with their counts and positions."""
    order = list(dict.fromkeys(symbols))
    idx = np.concatenate([[i for i, s in enumerate(symbols) if s == e] for e in order]).astype(int)
    return order, [symbols.count(e) for e in order], frac[idx]


def lpscl() -> tuple[list[str], np.ndarray, np.ndarray]:
    from cellsim.references.library import get_phase

    s = get_phase("Li6PS5Cl").structure()  # type: ignore[union-attr]
    return [site.specie.symbol for site in s], s.frac_coords, s.lattice.matrix


def cu_cif(path: Path) -> Path:
    """A small fcc Cu crystal written by the test itself (pymatgen, experimental a = 3.615 A)."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter

    CifWriter(Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.615), ["Cu"], [[0, 0, 0]])).write_file(str(path))
    return path


def pt_water() -> Any:
    """Pt(111), 4 x 4 x 2 (32 Pt), with 24 H2O above it: 48 H outnumber the metal."""
    from ase.build import fcc111, molecule

    slab = fcc111("Pt", size=(4, 4, 2), vacuum=8.0)
    top = slab.positions[:, 2].max()
    a, b = slab.cell[0], slab.cell[1]
    for i in range(4):
        for j in range(3):
            for k in range(2):
                w = molecule("H2O")
                w.translate(a * (i + 0.5) / 4 + b * (j + 0.5) / 3 + np.array([0.0, 0.0, top + 2.5 + 3.0 * k]))
                slab += w
    return slab


# --------------------------------------------------------------------------- pairs and cutoffs


def test_pairs_of_li6ps5cl_on_cu_come_from_its_elements() -> None:
    """Li6PS5Cl next to Cu atoms: Cu-anion, Cu-P, the PS4 framework, Li-anion; never In, never P-Cl."""
    sym, frac, cell = lpscl()
    # a Cu layer in a cell twice as tall: the electrolyte keeps its bonds, Cu sits 5 A away from it
    tall = cell.copy()
    tall[2] *= 2
    f = frac.copy()
    f[:, 2] /= 2
    cu = np.array([[x / 4, y / 4, 0.75] for x in range(4) for y in range(4)])
    choice = default_pairs([*sym, *["Cu"] * 16], frame=(np.vstack([f, cu]), tall))
    assert choice.metal == ["Cu"] and choice.metal_source == "by metallic character"
    assert choice.pairs == ["Cu-S", "Cu-Cl", "Cu-P", "P-S", "Li-S", "Li-Cl"]
    assert choice.groups["framework"] == ["P-S"]
    # bulk electrolyte: no metal, its framework and Li pairs only
    assert default_pairs(sym, frame=(frac, cell)).pairs == ["P-S", "Li-S", "Li-Cl"]
    # bonded = within 1.2 x the covalent radii (Cordero: Cu 1.32, S 1.05, Li 1.28, Cl 1.02)
    assert covalent_cutoff("Cu-S") == pytest.approx(1.2 * 2.37, abs=1e-3)
    assert covalent_cutoff("Li-Cl") == pytest.approx(2.76, abs=1e-3)
    # no library phase bonds Cu to S: its bond cutoff is the covalent one, and says so
    assert rule_cutoff("Cu-S") == (covalent_cutoff("Cu-S"), "covalent radii")


def test_study_without_pairs_inherits_nothing_from_the_in_study() -> None:
    from cellsim.config.study import parse_study

    s = parse_study("name: cu\ninterface:\n  metal: {phase: Cu.cif}\n")
    assert s.analysis.pairs is None and s.analysis.bond_cutoffs == {}
    # the bundled studies keep their own pairs and cutoffs
    from cellsim.config.study import load_study

    paper = load_study("li6ps5cl_in")
    assert paper.analysis.pairs == ["In-S", "In-Cl", "P-S"]
    assert paper.analysis.bond_cutoffs == {"In-S": 3.0, "In-Cl": 3.3, "P-S": 2.3}


def test_study_metal_phase_sets_the_metal_pairs(tmp_path: Path) -> None:
    from cellsim.config.study import parse_study
    from cellsim.stages import _study_metal
    from cellsim.stages import default_pairs as stage_pairs

    cif = cu_cif(tmp_path / "Cu.cif")
    study = parse_study(f"name: cu\ninterface:\n  metal: {{phase: {cif}}}\n")
    sym = lpscl()[0]
    choice = stage_pairs([*sym, "Cu"], study)
    assert choice.pairs[:2] == ["Cu-S", "Cu-Cl"] and choice.metal_source == "the study's metal phase"
    assert _study_metal(study) == "Cu"
    # an alloy: its non-alkali metal stands for it; Li metal is the study's word, never a guess
    assert _study_metal(parse_study("name: a\ninterface:\n  metal: {phase: LiIn}\n")) == "In"
    li = parse_study("name: b\ninterface:\n  metal: {phase: Li}\n")
    assert _study_metal(li) == "Li"
    assert stage_pairs(sym, li).pairs[:3] == ["Li-S", "Li-Cl", "Li-P"]
    assert guess_metal(sym) is None  # Li of Li6PS5Cl is not a metal electrode by symbols


# --------------------------------------------------------------------------- the metal


def test_pt_slab_with_water_is_pt_not_h() -> None:
    from cellsim.analysis.diagnostics import DiagnosticsAccumulator
    from cellsim.analysis.diagnostics import guess_metal as diag_guess

    atoms = pt_water()
    sym = atoms.get_chemical_symbols()
    assert sym.count("H") == 48 > sym.count("Pt") == 32
    assert diag_guess(sym) == "Pt"
    acc = DiagnosticsAccumulator(sym, dt_fs=2.0)
    assert acc.metal == "Pt" and len(acc.metal_idx) == 32
    choice = default_pairs(sym, frame=(atoms.get_scaled_positions(), atoms.cell.array))
    assert choice.pairs == ["Pt-O", "Pt-H", "H-O"]


def test_several_metals_are_told_apart_by_their_neighbours() -> None:
    """Pt next to ZrO2: both metals; the frame shows which one has no oxygen around it."""
    from ase.build import bulk

    zro2 = bulk("ZrO2", "fluorite", a=5.07, cubic=True)  # 4 Zr, 8 O
    pt = bulk("Pt", "fcc", a=5.07, cubic=True)  # the same cell, 4 Pt (strained: only who bonds to O matters)
    pt.translate([0, 0, 5.07 + 2.0])
    both = zro2.copy()
    both += pt
    both.set_cell([5.07, 5.07, 2 * 5.07 + 4.0])
    sym = both.get_chemical_symbols()
    assert guess_metal(sym) is None  # Zr or Pt by symbols alone: unclear
    assert guess_metal(sym, both.get_scaled_positions(), both.cell.array) == "Pt"


# --------------------------------------------------------------------------- builder thickness


def test_min_thickness_has_one_default_per_side() -> None:
    import yaml

    from cellsim.config.study import (
        ELECTROLYTE_MIN_THICKNESS,
        METAL_MIN_THICKNESS,
        InterfaceSpec,
        SlabSpec,
        parse_study,
    )

    s = parse_study("name: x\ninterface:\n  electrolyte: {phase: Li6PS5Cl}\n  metal: {phase: Cu.cif}\n")
    assert s.interface.electrolyte.min_thickness == ELECTROLYTE_MIN_THICKNESS == 10.0
    assert s.interface.metal.min_thickness == METAL_MIN_THICKNESS == 8.0
    written = yaml.safe_load(s.to_yaml())["interface"]
    assert written["electrolyte"]["min_thickness"] == 10.0 and written["metal"]["min_thickness"] == 8.0
    spec = InterfaceSpec(electrolyte=SlabSpec(phase="Li3PS4"), metal=SlabSpec(phase="In", min_thickness=4.0))
    assert spec.min_thickness("electrolyte") == 10.0 and spec.min_thickness("metal") == 4.0


# --------------------------------------------------------------------------- phases of the study's own


def test_formulas_and_files_as_phases(tmp_path: Path) -> None:
    from cellsim.references.library import resolve_phase
    from cellsim.references.reactants import Reactants, given_reactants, reactant_structures

    assert resolve_phase("S3In2")[0] == "In2S3" and resolve_phase("ClLi")[0] == "LiCl"
    cif = cu_cif(tmp_path / "Cu.cif")
    react = given_reactants(["Li6PS5Cl", "Cu.cif"], {"Li": 24, "P": 4, "S": 20, "Cl": 4, "Cu": 16}, tmp_path)
    assert react.phases == {"Li6PS5Cl": pytest.approx(4.0), "Cu": pytest.approx(16.0)}
    assert react.files == {"Cu": str(cif.resolve())}
    # the record carries the structure: matching needs neither the file nor --reactants
    back = Reactants.from_dict(json.loads(json.dumps(react.to_dict())))
    cif.unlink()
    structs = reactant_structures(back)
    assert structs["Cu"].composition.reduced_formula == "Cu" and len(structs["Li6PS5Cl"]) == 52


# --------------------------------------------------------------------------- time step plausibility


def test_large_moves_with_no_time_step_are_flagged(tmp_path: Path) -> None:
    """Li6PS5Cl snapshots 0.5 A apart (as frames 100 fs apart are) read with no dt: 2 fs cannot be right."""
    import cellsim

    sym, frac, cell = lpscl()
    order, counts, base = grouped(sym, frac)
    rng = np.random.default_rng(3)
    frames = (base[None] + rng.normal(0.0, 0.35, (40, len(base), 3)) @ np.linalg.inv(cell)) % 1.0
    xd = write_xdatcar(tmp_path / "XDATCAR", order, counts, cell, frames)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cellsim.analyze(xd, out=tmp_path / "out", temperature_K=300.0)
    rec = res.info["dt_check"]
    assert rec["status"] == "implausible" and rec["assumed"] is True and rec["dt_fs"] == 2.0
    assert rec["implied_dt_fs"][0] > 10 and rec["implied_dt_fs"][1] is None
    chk = res.diagnostics.check("time step")
    assert chk.status == "warn" and "assumed" in chk.message and "cannot be right" in chk.message
    saved = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert saved["dt_check"]["status"] == "implausible"
    # the pairs came from the system and say so, with their cutoffs
    assert saved["pairs_source"] == "derived" and saved["settings"]["pairs"] == ["P-S", "Li-S", "Li-Cl"]
    assert set(saved["bond_cutoff_sources"].values()) <= {"reference first sphere", "covalent radii"}
    note = next(n for n in saved["notes"] if n.startswith("bond cutoffs nobody gave"))
    for p, used in saved["bond_cutoffs_used"].items():
        assert f"{p} {used:g} A ({saved['bond_cutoff_sources'][p]})" in note
    # given explicitly and still impossible: flagged too, not as assumed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cellsim.analyze(xd, dt_fs=2.0, out=tmp_path / "out2", temperature_K=300.0)
    assert res.info["dt_check"]["status"] == "implausible" and res.info["dt_check"]["assumed"] is False


def emt_md(tmp_path: Path, every: int, steps: int = 240) -> Path:
    """Real dynamics (ASE EMT, velocity Verlet, 2 fs steps) of fcc Cu at ~300 K; a frame every ``every`` steps."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.md.velocitydistribution import Stationary, thermalize_momenta
    from ase.md.verlet import VelocityVerlet
    from ase.units import fs

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 3, 3))
    atoms.calc = EMT()
    thermalize_momenta(atoms, 600.0, rng=np.random.default_rng(1))
    Stationary(atoms)
    dyn = VelocityVerlet(atoms, 2.0 * fs)
    frames = []
    for k in range(steps):
        dyn.run(1)
        if (k + 1) % every == 0:
            frames.append(atoms.get_scaled_positions() % 1.0)
    out = tmp_path / f"every{every}"
    out.mkdir()
    return write_xdatcar(out / "XDATCAR", ["Cu"], [len(atoms)], atoms.cell.array, np.array(frames))


def test_real_dynamics_pass_at_their_own_time_step(tmp_path: Path) -> None:
    import cellsim

    def check(xd: Path, dt: float | None) -> dict[str, Any]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = cellsim.analyze(xd, dt_fs=dt, out=xd.parent / f"a{dt}", temperature_K=300.0)
        return res.info["dt_check"]

    fine = emt_md(tmp_path, 1)
    ok = check(fine, 2.0)
    assert ok["status"] == "ok" and ok["ballistic"] and ok["implied_dt_fs"][0] < 2.0 < ok["implied_dt_fs"][1]
    assert check(fine, None)["status"] == "ok"  # 2 fs assumed, and right: no alarm
    assert check(fine, 20.0)["status"] == "implausible"  # the atoms fly ballistically: not 20 fs apart
    coarse = emt_md(tmp_path, 25)  # frames 50 fs apart
    assert check(coarse, 50.0)["status"] == "ok"
    wrong = check(coarse, None)
    assert wrong["status"] == "implausible" and wrong["assumed"] and wrong["implied_dt_fs"][0] > 5.0


# --------------------------------------------------------------------------- the Cu study end to end


@pytest.mark.slow
def test_study_with_its_own_cu_cif_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Li6PS5Cl(001) on the user's Cu.cif: build, 20 CHGNet steps, Cu-S and Cu-Cl analysed by default,
    matched with Cu as a reactant (recorded, and given as --reactants ...,Cu.cif), CIF and formula candidates."""
    pytest.importorskip("chgnet")
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter
    from typer.testing import CliRunner

    from cellsim import stages
    from cellsim.cli import app

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MP_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    cu_cif(tmp_path / "Cu.cif")
    cucl = Structure.from_spacegroup("F-43m", Lattice.cubic(5.42), ["Cu", "Cl"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    CifWriter(cucl).write_file(str(tmp_path / "CuCl.cif"))
    study = tmp_path / "cu.yaml"
    study.write_text(
        "name: lpscl_cu\n"
        "interface:\n"
        "  electrolyte: {phase: Li6PS5Cl, min_thickness: 5.0}\n"
        "  metal: {phase: Cu.cif, min_thickness: 3.0}\n"
        "  max_strain: 0.05\n  min_lateral: 9.0\n  max_area: 120\n  min_atoms: 60\n  max_atoms: 200\n"
        "md: {relax_steps: 5, total_time_ps: 0.04}\n"
        "match: {candidates: [CuCl.cif, ClLi]}\n"
    )
    run = tmp_path / "run"
    built = stages.build(study, run)
    assert built.report["metal"]["phase"] == "Cu" and built.report["n_atoms"] <= 200
    m = built.report["metal"]
    assert m["thickness"] == pytest.approx(m["layers"] * m["layer_thickness"], abs=1e-3)
    assert m["thickness"] >= m["min_thickness"] == 3.0
    stages.run(run, steps=20)
    runner = CliRunner()
    r = runner.invoke(app, ["analyze", str(run)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    saved = json.loads((run / "analysis" / "analysis.json").read_text())
    pairs = saved["settings"]["pairs"]
    assert pairs[:2] == ["Cu-S", "Cu-Cl"] and "P-S" in pairs and not any(p.startswith("In") for p in pairs)
    assert saved["pair_rule"]["metal_source"] == "the study's metal phase"
    assert "Cu-S 2.844 A" in " ".join(r.output.split())  # the radii cutoffs are stated in the summary
    assert set(saved["reactants"]["phases"]) == {"Li6PS5Cl", "Cu"} and "Cu" in saved["reactants"]["structures"]
    assert saved["dt_check"]["assumed"] is False
    result = stages.match(run)
    names = {c.candidate for c in result.candidates}
    assert names == {"CuCl", "LiCl"}, names
    assert set(result.reactants["phases"]) == {"Li6PS5Cl", "Cu"}
    r = runner.invoke(app, ["match", str(run), "--reactants", "Li6PS5Cl,Cu.cif"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "reactants (given): Li6PS5Cl, Cu" in r.output
