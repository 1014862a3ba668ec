"""Plane-wave PBE (GPAW) single points: real GPAW on a 1-atom cell (seconds), caching, errors, the Bain curves."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from cellsim.engines import planewave
from cellsim.engines.planewave import GpawError, GpawNotFoundError, primitive_bct_cell, resolve_settings

TINY = {"kpts": [4, 4, 4], "ecut_eV": 250.0}


def _have_gpaw() -> bool:
    try:
        planewave.find_gpaw_python()
    except GpawNotFoundError:
        return False
    return True


needs_gpaw = pytest.mark.skipif(not _have_gpaw(), reason="GPAW not installed (apt-get install gpaw)")


def test_primitive_bct_cell_is_the_conventional_crystal():
    from cellsim.engines.cp2k import bain_cell

    for ca in (2**0.5, 1.54):
        prim, conv = primitive_bct_cell("In", ca, 27.3), bain_cell("In", ca, 27.3)
        assert len(prim) == 1 and prim.get_volume() == pytest.approx(27.3)
        # the same neighbour shells out to 6 A
        dp = np.sort((prim * (5, 5, 5)).get_all_distances(mic=True)[0])[1:]
        dc = np.sort((conv * (4, 4, 3)).get_all_distances(mic=True)[0])[1:]
        assert np.allclose(dp[dp < 6.0], dc[dc < 6.0][: np.sum(dp < 6.0)], atol=1e-6)


def test_settings_are_checked():
    assert resolve_settings({"kpts": [2, 2, 2]})["kpts"] == [2, 2, 2]
    with pytest.raises(GpawError, match="plane-wave setting 'ecut'"):
        resolve_settings({"ecut": 300})
    with pytest.raises(GpawError, match="kpts: expected three positive integers"):
        resolve_settings({"kpts": [4, 4]})


def test_missing_gpaw_names_the_python_and_the_install(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLSIM_GPAW_PYTHON", str(tmp_path / "no-python"))
    planewave._probe.cache_clear()
    with pytest.raises(GpawNotFoundError, match=r"no-python.*apt-get install gpaw"):
        planewave.single_point(primitive_bct_cell("In", 1.5, 27.3), tmp_path / "jobs", TINY)
    planewave._probe.cache_clear()


@needs_gpaw
def test_single_point_runs_once_and_is_reused(tmp_path, monkeypatch):
    atoms = primitive_bct_cell("Li", 1.0, 20.0)  # bcc Li: 3 electrons, a second
    res = planewave.single_point(atoms, tmp_path / "jobs", TINY, stress=True, label="Li bcc", meta={"why": "test"})
    assert not res.cached and res.forces.shape == (1, 3) and np.abs(res.forces).max() < 1e-6
    assert res.stress is not None and res.stress.shape == (3, 3) and np.isfinite(res.energy)
    assert res.data["code"] == "gpaw" and res.data["settings"]["kpts"] == [4, 4, 4]
    assert res.data["meta"] == {"why": "test"} and res.data["irreducible_kpoints"] >= 1
    for name in ("job.py", "params.json", "structure.json", "job.txt", "result.json"):
        assert (res.job_dir / name).is_file(), name
    assert json.loads((res.job_dir / "params.json").read_text())["stress"] is True
    # cubic cell: the stress is isotropic
    assert res.stress[0, 0] == pytest.approx(res.stress[2, 2], abs=1e-4)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("GPAW ran again"))
    again = planewave.single_point(atoms, tmp_path / "jobs", TINY, stress=True)
    assert again.cached and again.energy == res.energy
    # stored labels are searched first: a copy of the job folder elsewhere is found without running
    elsewhere = planewave.single_point(atoms, tmp_path / "other", TINY, stress=True, labels=[tmp_path / "jobs"])
    assert elsewhere.cached and elsewhere.job_dir.parent == tmp_path / "jobs"


def test_bain_reference_keeps_one_code_when_the_other_is_missing(tmp_path, monkeypatch):
    """GPAW missing and its labels not stored: the CP2K curve remains and the reason is kept; none: an error."""
    from ase.calculators.lj import LennardJones
    from pymatgen.core import Lattice, Structure

    from cellsim.core.errors import CellsimError
    from cellsim.engines import check as ec
    from cellsim.engines import cp2k

    if not cp2k.stored_labels():
        pytest.skip("no stored CP2K labels in this install")
    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CELLSIM_GPAW_PYTHON", str(tmp_path / "no-python"))
    monkeypatch.setattr(planewave, "stored_labels", lambda: [])
    planewave._probe.cache_clear()
    metal = ec.Phase("In", Structure(Lattice.tetragonal(3.25, 4.95), ["In", "In"], [[0, 0, 0], [0.5] * 3]), "x")
    ref = ec.bain_reference(metal, [], factory=lambda m: LennardJones())
    assert list(ref.curves) == [ec.PBE_LABEL] and "GPAW does not import" in ref.errors[ec.PW_LABEL]
    assert ref.lattice_reference == ec.PBE_LABEL
    with pytest.raises(CellsimError, match=r"no PBE curve.*GPAW does not import"):
        ec.bain_reference(metal, [], codes=("gpaw",))
    planewave._probe.cache_clear()


@needs_gpaw
def test_label_set_labels_in_order_keeps_an_index_and_resumes(tmp_path, capsys):
    configs = [
        (f"li-{k}", primitive_bct_cell("Li", 1.0, v), TINY, {"volume": v}) for k, v in enumerate((19.0, 20.0, 21.0))
    ]
    index = planewave.label_set(configs, tmp_path, max_new=2)
    assert list(index) == ["li-0", "li-1"]
    assert json.loads((tmp_path / "index.json").read_text()) == index
    planewave.label_set(configs, tmp_path, list_only=True)
    listing = capsys.readouterr().out.splitlines()[-3:]
    assert [line.split()[-1] for line in listing] == ["done", "done", "-"]
    again = planewave.label_set(configs, tmp_path)  # resumes: the first two are reused, the third runs
    assert list(again) == ["li-0", "li-1", "li-2"] and "cached" in capsys.readouterr().out
