"""An interface the engine agrees with (issue 13): both slabs built at the study engine's relaxed lattice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pymatgen.core import Structure


@pytest.mark.slow
def test_build_at_the_engines_lattice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cellsim.engines.mlip import set_threads
    from cellsim.stages import build

    set_threads(1)
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    study = tmp_path / "s.yaml"
    study.write_text("name: engine_lattice\ninterface:\n  lattice: engine\n")
    out = build(study, tmp_path / "run")
    lat = out.report["lattice"]
    assert lat["engine"] == "chgnet"
    metal = Structure.from_file(lat["metal"]["file"])
    # CHGNet pulls In's body-centred tetragonal cell toward fcc: a up, c down (measured 3.399 / 4.805 A)
    assert metal.lattice.a == pytest.approx(3.40, abs=0.03) and metal.lattice.c < 4.9
    assert lat["metal"]["engine_vs_reference"][0] > 0.03
    report = json.loads((tmp_path / "run" / "interface" / "interface.json").read_text())
    assert report["lattice"]["electrolyte"]["engine_abc"][0] == pytest.approx(10.26, abs=0.05)
    assert 250 <= report["n_atoms"] <= 450 and report["ps4"]["intact"]
    # the resolved study keeps the reference names and the choice, so the run can be rebuilt
    text = (tmp_path / "run" / "study.yaml").read_text()
    assert "lattice: engine" in text and "phase: In\n" in text
