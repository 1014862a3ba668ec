"""`cellsim engines` and `cellsim engines check`: verdicts, Debye RMS, reaction balancing, JSON, caching."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cellsim.config.study import load_study, parse_study
from cellsim.core.errors import CellsimError
from cellsim.engines import check as ec
from cellsim.engines.registry import MODELS, ModelInfo, select, study_model

KEYS = {"engine", "phase", "quantity", "value", "reference", "verdict"}


# --------------------------------------------------------------------------- verdict logic on made-up numbers


def test_ca_pulled_toward_fcc_fails_and_says_so() -> None:
    verdict, note = ec.ca_verdict(1.42, 1.52)
    assert verdict == "fail"
    assert "toward fcc" in note and "1.414" in note
    assert ec.ca_verdict(1.51, 1.52)[0] == "ok"
    assert ec.ca_verdict(1.48, 1.52)[0] == "warn"  # -2.6 %
    # a primitive-tetragonal cell has no fcc limit at sqrt(2): no such words
    assert "fcc" not in ec.ca_verdict(1.42, 1.52, centring="P")[1]


def test_lattice_volume_and_md_thresholds() -> None:
    assert ec.lattice_verdict(3.30, 3.253) == "ok"  # +1.4 %
    assert ec.lattice_verdict(3.375, 3.253) == "warn"  # +3.8 %
    assert ec.lattice_verdict(3.393, 3.253) == "fail"  # +4.3 %
    assert ec.volume_verdict(27.5, 26.17) == "ok"  # +5 %
    assert ec.volume_verdict(30.0, 26.17) == "fail"
    assert ec.rms_verdict(0.37, 0.31) == "ok"  # SevenNet-0's In at 300 K
    assert ec.rms_verdict(0.45, 0.31) == "warn"
    assert ec.rms_verdict(0.72, 0.31) == "fail"  # CHGNet 0.3.0's long-run plateau
    assert ec.lindemann_verdict(0.72 / 3.25) == "fail"
    assert ec.lindemann_verdict(0.10) == "ok"
    assert ec.intact_verdict(1.0) == "ok" and ec.intact_verdict(0.75) == "fail"


def test_sign_verdict() -> None:
    assert ec.sign_verdict(0.14, ">") == "ok"
    assert ec.sign_verdict(-0.2, ">") == "fail"
    assert ec.sign_verdict(-0.005, ">") == "warn"  # wrong sign, but within MLIP noise
    assert ec.sign_verdict(-0.3, "<") == "ok"
    assert ec.sign_verdict(-0.3, None) == "n/a"


def test_debye_rms_against_a_hand_value() -> None:
    # In, Theta_D 108 K, 300 K: <u_x^2> = 3 hbar^2 T / (m kB Theta^2)
    #   = 3 * (1.0546e-34)^2 * 300 / (114.818 * 1.6605e-27 * 1.3806e-23 * 108^2) = 3.26e-22 m^2 = 0.0326 A^2
    # 3-D RMS = sqrt(3 * 0.0326) = 0.313 A (the ~0.3 A expected for solid In at 300 K)
    assert ec.debye_rms(114.818, 108.0, 300.0) == pytest.approx(0.3127, abs=0.001)
    # classical: <u^2> is linear in T and goes as 1/m
    assert ec.debye_rms(114.818, 108.0, 600.0) == pytest.approx(0.3127 * math.sqrt(2), abs=0.002)
    li = ec.debye_rms(6.94, 344.0, 300.0)
    assert li == pytest.approx(0.3127 * math.sqrt(114.818 / 6.94) * 108 / 344, rel=1e-3)


# --------------------------------------------------------------------------- reactions


def test_balance_reactions() -> None:
    assert ec.balance(["InCl"], ["In", "InCl3"]) == ([3], [2, 1])
    assert ec.balance(["Li3PS4", "Li"], ["Li3P", "Li2S"]) == ([1, 8], [1, 4])
    assert ec.balance(["Li6PS5Cl"], ["Li3PS4", "Li2S", "LiCl"]) == ([1], [1, 1, 1])
    assert ec.balance(["InS"], ["In", "In2S3"]) == ([3], [1, 1])
    assert ec.reaction_label(["InCl"], ["In", "InCl3"], ([3], [2, 1])) == "3 InCl -> 2 In + InCl3"
    with pytest.raises(CellsimError, match=r"^InCl -> InS: no unique balance$"):
        ec.balance(["InCl"], ["InS"])  # Cl cannot go anywhere


def test_reaction_energy_per_atom() -> None:
    # 3 InCl (6 atoms) -> 2 In + InCl3 (6 atoms); made-up energies per atom
    e = {"InCl": -3.0, "In": -2.5, "InCl3": -3.2}
    de = ec.reaction_energy(["InCl"], ["In", "InCl3"], ([3], [2, 1]), e)
    assert de == pytest.approx((2 * -2.5 + 4 * -3.2 - 6 * -3.0) / 6)


def test_reactions_picked_for_the_study_elements() -> None:
    from cellsim.references.library import library

    avail = set(library())
    picked = ec.pick_reactions({"Li", "P", "S", "Cl", "In"}, avail, 4)
    assert len(picked) == 4 and all(sign is not None for *_, sign, _ in picked)
    li_only = ec.pick_reactions({"Li", "P", "S", "Cl"}, avail, 4)
    assert li_only and all("In" not in "".join((*r, *p)) for r, p, *_ in li_only)
    assert all(ec.balance(r, p) for r, p, *_ in picked + li_only)


# --------------------------------------------------------------------------- registry


def test_registry_names_and_selection() -> None:
    from cellsim.config.engines import ENGINE_NAMES, mlip_for
    from cellsim.config.study import EngineSpec
    from cellsim.core.errors import StudyError
    from cellsim.engines.mlip import _CHGNET_MODELS, _SEVENNET_MODELS, ENGINES

    # one table: the registry's models, plus the DFT codes, are the study's engine names and the MD's engines
    names = [m.name for m in MODELS]
    assert ENGINES == (*names, "cp2k") and ENGINE_NAMES == (*names, "vasp", "cp2k")
    assert set(_CHGNET_MODELS) | set(_SEVENNET_MODELS) == set(names)
    assert EngineSpec.model_json_schema()["properties"]["name"]["enum"] == list(ENGINE_NAMES)
    assert mlip_for("vasp") == mlip_for("cp2k") == "chgnet" and mlip_for("sevennet") == "sevennet"
    assert parse_study("name: s\nengine: {name: cp2k}\n").engine.name == "cp2k"
    with pytest.raises(StudyError, match=r"engine\.name.*'mace' is not an engine"):
        parse_study("name: s\nengine: {name: mace}\n")
    assert [m.name for m in select(None)] == [m.name for m in MODELS if m.default]
    assert {"chgnet", "sevennet"} <= {m.name for m in select(None)}
    assert len(select(["all"])) == len(MODELS)
    with pytest.raises(CellsimError, match="not an offline model"):
        select(["mace-mp-0"])
    study = parse_study("name: s\nengine: {name: sevennet, model_path: /tmp/my.pth}\n")
    extra = study_model(study)
    assert extra is not None and extra.key == "sevennet:my.pth" and extra.model_path == "/tmp/my.pth"
    assert select(["study"], study) == [extra]


def test_bundled_weights_are_installed() -> None:
    missing = [m.key for m in MODELS if m.weights_file() is None]
    assert not missing, f"weights not installed for {missing}"


# --------------------------------------------------------------------------- the check with a stand-in potential

FAKE = ModelInfo("fake-lj", "LJ", "1", "-", "Lennard-Jones stand-in", "-", "cellsim", "__init__.py")


def _lj_factory(calls: list[str]) -> Any:
    def factory(model: ModelInfo) -> Any:
        from ase.calculators.lj import LennardJones

        calls.append(model.key)
        return LennardJones(sigma=2.6, epsilon=0.005, rc=5.0, smooth=True)

    return factory


def _tiny_settings() -> ec.CheckSettings:
    return ec.CheckSettings(
        relax_steps=3,
        metal_md_ps=0.05,
        electrolyte_md_ps=0.02,
        speed_steps=1,
        speed_max_atoms=60,
        max_reactions=2,
    )


# the engine check's rules by row quantity (its temperature suffix removed), from the row's value and reference
_VERDICT_RULES: dict[str, Any] = {
    "a": ec.lattice_verdict,
    "c": ec.lattice_verdict,
    "V/atom": ec.volume_verdict,
    "c/a": lambda v, ref: ec.ca_verdict(v, ref)[0],
    "RMS displacement": ec.rms_verdict,
    "Lindemann ratio": lambda v, _ref: ec.lindemann_verdict(v),
    "PS4 intact": lambda v, _ref: ec.intact_verdict(v),
    "reaction energy": lambda v, ref: ec.sign_verdict(v, ref.split()[0]),
}


def test_check_json_schema_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    inp = ec.prepare(load_study("li6ps5cl_in"))
    calls: list[str] = []
    first = ec.check_engines(inp, [FAKE], _tiny_settings(), factory=_lj_factory(calls))
    assert calls == ["fake-lj"]  # loaded once for all checks
    rows = ec.rows_json(first)
    quantities = {(r["phase"], r["quantity"]) for r in rows}
    assert {("In", "a"), ("In", "c"), ("In", "c/a"), ("Li6PS5Cl", "a"), ("In", "Lindemann ratio")} <= quantities
    assert ("Li6PS5Cl", "PS4 intact 300 K") in quantities and ("In", "RMS displacement 300 K") in quantities
    assert sum(r["quantity"] == "reaction energy" for r in rows) == 2
    for r in rows:
        assert KEYS <= set(r) and r["engine"] == "fake-lj"
        assert isinstance(r["value"], float)
    # each verdict is the one its rule gives for the row's own value and reference (the fake's numbers fall on
    # both sides: In's -17 % lattice fails, Li6PS5Cl's +0.7 % passes); the formation rows have their own tests
    checked = 0
    for r in rows:
        rule = _VERDICT_RULES.get(r["quantity"].removesuffix(" 300 K"))
        if r["reference"] is None:
            assert r["verdict"] == "n/a", r
        elif rule is not None:
            assert r["verdict"] == rule(r["value"], r["reference"]), r
            checked += 1
    assert checked == 11
    assert {r["verdict"] for r in rows if r["quantity"] in {"a", "c", "V/atom"}} == {"ok", "fail"}
    out = ec.write_json(tmp_path / "rows.json", first)
    assert json.loads(out.read_text()) == rows

    # second call: everything from the cache, the model is not even loaded
    calls.clear()
    second = ec.check_engines(inp, [FAKE], _tiny_settings(), factory=_lj_factory(calls))
    assert calls == []
    assert ec.rows_json(second) == rows
    # another temperature is another key for the MD checks only
    study = load_study("li6ps5cl_in")
    study.md.temperature = 350.0
    third = ec.check_engines(ec.prepare(study), [FAKE], _tiny_settings(), factory=_lj_factory(calls))
    assert calls == ["fake-lj"]
    assert any(r.quantity == "RMS displacement 350 K" for r in third[0].rows)
    # without the cache everything is recomputed
    calls.clear()
    ec.check_engines(inp, [FAKE], _tiny_settings(), factory=_lj_factory(calls), use_cache=False)
    assert calls == ["fake-lj"]


def test_a_model_that_does_not_load_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    inp = ec.prepare(load_study("li6ps5cl_in"))

    def broken(model: ModelInfo) -> Any:
        raise FileNotFoundError("no weights")

    (rep,) = ec.check_engines(inp, [FAKE], _tiny_settings(), factory=broken)
    assert not rep.loaded and [r.quantity for r in rep.rows] == ["model loads"] and rep.rows[0].verdict == "fail"
    best, why = ec.recommend([rep])
    assert best is None and "no engine" in why


def test_recommendation_fewest_failures_then_speed() -> None:
    def rep(name: str, verdicts: list[str], s: float) -> ec.EngineReport:
        r = ec.EngineReport(name, name, True, s_per_step=s)
        r.rows = [ec.Row(name, "In", f"q{i}", 1.0, 1.0, v) for i, v in enumerate(verdicts)]
        return r

    a = rep("a", ["fail", "ok", "ok"], 0.1)
    b = rep("b", ["warn", "ok", "ok"], 0.5)
    c = rep("c", ["warn", "ok", "ok"], 0.2)
    best, why = ec.recommend([a, b, c])
    assert best == "c" and "tied with b" in why and "fastest" in why
    a.rows[0].verdict = "fail"
    b.rows[0] = ec.Row("b", "In", "q0", 1.0, 1.0, "fail")
    c.rows[0] = ec.Row("c", "In", "q0", 1.0, 1.0, "fail")
    assert "every engine fails In q0" in ec.recommend([a, b, c])[1]


# --------------------------------------------------------------------------- CLI


def test_engines_subapp_registers_and_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engines_cli: Any) -> None:
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    app = engines_cli
    runner = CliRunner()
    res = runner.invoke(app, ["engines", "--no-load"], terminal_width=200)
    assert res.exit_code == 0, res.output
    for m in MODELS:
        assert m.name in res.output
    bad = runner.invoke(app, ["engines", "check", "li6ps5cl_in", "--engine", "mace-mp-0"])
    assert bad.exit_code == 2 and "not an offline model" in bad.output
    missing = runner.invoke(app, ["engines", "check", str(tmp_path)])
    assert missing.exit_code == 2 and "not a run directory" in missing.output


@pytest.mark.slow
def test_real_chgnet_quick_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CHGNet 0.3.0 on the paper's study, --quick, through the CLI; the second run comes from the cache."""
    from cellsim.cli.engines import engines_app
    from cellsim.engines.mlip import set_threads

    set_threads(1)
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    out = tmp_path / "engines.json"
    args = ["check", "li6ps5cl_in", "--quick", "--engine", "chgnet", "--json", str(out)]
    res = runner.invoke(engines_app, args, terminal_width=160)
    assert res.exit_code == 0, res.output
    assert "recommendation:" in res.output and "chgnet" in res.output
    rows = json.loads(out.read_text())
    by = {(r["phase"], r["quantity"]): r for r in rows}
    assert all(KEYS <= set(r) for r in rows)
    assert 3.0 < by[("In", "a")]["value"] < 3.6 and by[("In", "a")]["reference"] == pytest.approx(3.2528, abs=1e-3)
    assert by[("Li6PS5Cl", "PS4 intact 300 K")]["value"] == pytest.approx(1.0)
    # InCl is stable against disproportionation (In-Cl phase diagram) and CHGNet 0.3.0 gets the sign right
    # (docs/engine.md: reaction signs 4/4): the row is positive and "ok"
    incl = by[("3 InCl -> 2 In + InCl3", "reaction energy")]
    assert incl["value"] > 0
    assert incl["verdict"] == "ok"
    # from the cache: the second run writes nothing there (it computed nothing), and gives the same rows
    cache = tmp_path / "cache"
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    again = runner.invoke(engines_app, args, terminal_width=160)
    assert again.exit_code == 0, again.output
    assert before
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == before
    assert json.loads(out.read_text()) == rows


def test_run_directory_times_its_own_interface(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ase.build import bulk

    from cellsim.cli.engines import load_study_or_run

    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    (run / "interface").mkdir(parents=True)
    (run / "study.yaml").write_text(load_study("li6ps5cl_in").to_yaml())
    bulk("In", "fcc", a=4.7, cubic=True).repeat((2, 2, 1)).write(run / "interface" / "POSCAR", format="vasp")
    study, _, run_dir = load_study_or_run(str(run))
    assert run_dir == run and study.name == "li6ps5cl_in"
    inp = ec.prepare(study, run, run_dir)
    assert inp.interface is not None and len(inp.interface) == 16
    (rep,) = ec.check_engines(inp, [FAKE], _tiny_settings(), factory=_lj_factory([]))
    speed = [r for r in rep.rows if r.quantity == "MD speed"]
    assert speed and speed[0].phase == "interface (16 atoms)" and "scaled" not in speed[0].note
