"""CP2K single points (cellsim.engines.cp2k): settings chain, input, cache, and real CP2K on H2."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from cellsim.engines import cp2k
from cellsim.engines.cp2k import Cp2kError, Cp2kNotFoundError, resolve_settings

HAVE_CP2K = shutil.which("cp2k.psmp") is not None
needs_cp2k = pytest.mark.skipif(not HAVE_CP2K, reason="cp2k.psmp not installed (apt-get install cp2k)")

# seconds, not physics: minimal basis, coarse grid, Gamma only, no smearing
TINY = {
    "basis_set": "SZV-MOLOPT-SR-GTH",
    "cutoff": 120,
    "rel_cutoff": 30,
    "ngrids": 3,
    "eps_default": 1.0e-8,
    "scf": {"eps_scf": 1.0e-5, "max_scf": 30, "smearing": None, "added_mos": 0.0},
    "kpoints": {"kspacing": None},
}


def h2(d: float = 0.80) -> Atoms:
    return Atoms("H2", positions=[[2.5, 2.5, 2.5 - d / 2], [2.5, 2.5, 2.5 + d / 2]], cell=[5.0, 5.0, 5.0], pbc=True)


def test_settings_chain_and_unknown_key(tmp_path):
    base = resolve_settings()
    assert base["xc"] == "PBE" and base["basis_set"] == "DZVP-MOLOPT-SR-GTH"
    assert base["scf"]["smearing"]["method"] == "FERMI_DIRAC"
    f = tmp_path / "mine.yaml"
    f.write_text("cutoff: 500\nscf: {mixing: {alpha: 0.1}}\n")
    s = resolve_settings(f, {"cutoff": 450, "valence": {"In": 3}})
    assert s["cutoff"] == 450 and s["scf"]["mixing"]["alpha"] == 0.1
    assert s["scf"]["mixing"]["nbroyden"] == 8  # untouched keys of a merged mapping stay
    assert s["valence"] == {"In": 3}
    with pytest.raises(Cp2kError, match=r"scf\.mixing: unknown CP2K setting 'alpa'"):
        resolve_settings({"scf": {"mixing": {"alpa": 0.1}}})
    f.write_text("- 1\n")
    with pytest.raises(Cp2kError, match=r"mine\.yaml: expected a mapping"):
        resolve_settings(f)


def test_kpoint_mesh_small_cells_and_gamma_for_big_ones():
    s = resolve_settings()
    a = (2 * 27.3 / 1.52) ** (1 / 3)
    cell = Atoms("In2", cell=[a, a, 1.52 * a], scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], pbc=True)
    mesh = cp2k.kpoint_mesh(cell, s)
    assert mesh is not None and mesh[0] == mesh[1] and mesh[2] < mesh[0]
    assert cp2k.kpoint_mesh(cell.repeat((3, 3, 3)), s) is None  # 54 atoms > gamma_only_above_atoms
    assert cp2k.kpoint_mesh(cell, resolve_settings({"kpoints": {"mesh": [3, 3, 2]}})) == (3, 3, 2)
    with pytest.raises(Cp2kError, match=r"kpoints\.mesh"):
        cp2k.kpoint_mesh(cell, resolve_settings({"kpoints": {"mesh": [3, 0, 2]}}))


def test_job_key_tracks_structure_and_physics_not_how_it_runs():
    s = resolve_settings()
    k = cp2k.job_key(h2(), s)
    assert cp2k.job_key(h2(), resolve_settings({"threads": 4, "timeout": 60})) == k
    assert cp2k.job_key(h2(0.81), s) != k
    assert cp2k.job_key(h2(), resolve_settings({"cutoff": 500})) != k
    assert cp2k.job_key(h2(), s, stress=True) != k


def test_missing_binary_says_how_to_install(tmp_path):
    s = resolve_settings(TINY, {"command": "cp2k-not-installed-here"})
    with pytest.raises(Cp2kNotFoundError, match=r"'cp2k-not-installed-here' not found on PATH: .*apt-get install cp2k"):
        cp2k.single_point(h2(), tmp_path, s)


@needs_cp2k
def test_input_names_explicit_valence_and_kpoints():
    s = resolve_settings({"kpoints": {"mesh": [4, 4, 3]}})
    text = cp2k.write_input(Atoms("LiIn", cell=[3, 3, 4], scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], pbc=True), s)
    assert "POTENTIAL GTH-PBE-q3" in text and "BASIS_SET DZVP-MOLOPT-SR-GTH-q3" in text  # Li
    assert "POTENTIAL GTH-PBE-q13" in text and "BASIS_SET DZVP-MOLOPT-SR-GTH-q13" in text  # In
    assert "SCHEME MONKHORST-PACK 4 4 3" in text and "METHOD FERMI_DIRAC" in text
    assert "STRESS_TENSOR ANALYTICAL" not in text
    # GTH-PBE-q3 exists for In but no DZVP-MOLOPT-SR basis of that valence: refused, never mismatched
    with pytest.raises(Cp2kError, match=r"no basis set 'DZVP-MOLOPT-SR-GTH' for In with 3 valence electrons"):
        cp2k.write_input(Atoms("In", cell=[3, 3, 3], pbc=True), resolve_settings({"valence": {"In": 3}}))
    with pytest.raises(Cp2kError, match=r"no pseudopotential 'GTH-PBE-q99' .* for In"):
        cp2k.write_input(Atoms("In", cell=[3, 3, 3], pbc=True), resolve_settings({"valence": {"In": 99}}))


@needs_cp2k
def test_real_cp2k_energy_forces_stress_cached(tmp_path, monkeypatch):
    s = resolve_settings(TINY)
    res = cp2k.single_point(h2(), tmp_path, s, stress=True, label="H2", meta={"why": "test"})
    assert not res.cached
    assert -40 < res.energy < -25  # eV: H2 at PBE with GTH is about -31.7 eV
    assert res.forces.shape == (2, 3)
    # 0.80 A is stretched (PBE bond ~0.75 A): the atoms pull together along z, equal and opposite
    assert res.forces[0, 2] > 0.5 and res.forces[1, 2] < -0.5
    assert np.allclose(res.forces.sum(axis=0), 0, atol=0.05)
    assert res.stress is not None and res.stress.shape == (3, 3)
    data = json.loads((res.job_dir / "result.json").read_text())
    assert data["scf_converged"] and data["label"] == "H2" and data["meta"] == {"why": "test"}
    assert data["cp2k_version"] and data["kpoints"] == "gamma" and data["wall_s"] > 0
    assert (res.job_dir / "job.inp").is_file() and res.job_dir.name.startswith("H2-")
    assert not (res.job_dir / ".lock").exists()  # finished jobs keep no lock file

    def no_cp2k(*args, **kwargs):
        raise AssertionError("CP2K ran although the result was stored")

    monkeypatch.setattr(subprocess, "run", no_cp2k)
    again = cp2k.single_point(h2(), tmp_path, s, stress=True)
    assert again.cached and again.energy == res.energy and np.array_equal(again.forces, res.forces)
    # a missing binary does not matter when the result is stored
    assert cp2k.single_point(h2(), tmp_path, resolve_settings(TINY, {"command": "nope"}), stress=True).cached


@needs_cp2k
def test_real_cp2k_unconverged_scf_is_an_error(tmp_path):
    # a minimal basis converges H2 in 2 steps at 1e-5: ask for 1e-12 in 2 steps, which it cannot reach
    s = resolve_settings(TINY, {"scf": {"max_scf": 2, "eps_scf": 1.0e-12}})
    with pytest.raises(Cp2kError, match=r"job\.out: the SCF did not converge in 2 steps"):
        cp2k.single_point(h2(), tmp_path, s)
    assert not list(tmp_path.glob("*/result.json"))  # nothing stored: the next call runs again


def test_parabola_minimum_brackets_or_says_edge():
    x = [1.414, 1.46, 1.50, 1.52, 1.54, 1.58]
    y = [(v - 1.53) ** 2 for v in x]
    xm, inside = cp2k.parabola_minimum(x, y)
    assert inside and xm == pytest.approx(1.53, abs=1e-9)
    xm, inside = cp2k.parabola_minimum(x, [v for v in x])  # rising: lowest point is the first
    assert not inside and xm is None  # a straight line has no minimum
    assert cp2k.parabola_minimum([1.0, 1.1], [0.0, 1.0]) == (None, False)


def test_bain_cell_is_fcc_at_sqrt2():
    from ase.geometry.cell import Cell

    atoms = cp2k.bain_cell("In", 2**0.5, 27.3)
    assert atoms.get_volume() / len(atoms) == pytest.approx(27.3)
    # the 2-atom bct cell at c/a = sqrt(2) is fcc: 12 equal nearest neighbours
    d = atoms.repeat((3, 3, 3)).get_all_distances(mic=True)[0][1:]
    assert np.sum(np.isclose(d, d.min(), atol=1e-6)) == 12
    assert Cell(atoms.cell).get_bravais_lattice().name == "TET"  # a conventional tetragonal cell


@pytest.mark.skipif(not cp2k.stored_labels(), reason="no stored PBE labels (data/pbe) in this install")
def test_bain_reference_and_plot_from_stored_labels(tmp_path, monkeypatch):
    """PBE curve from data/pbe (no CP2K run when the labels are stored) beside an engine's on the same cells."""
    from ase.calculators.lj import LennardJones
    from pymatgen.core import Lattice, Structure

    from cellsim.engines import check as ec
    from cellsim.engines.registry import MODELS

    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    forbid_dft_runs(monkeypatch, "a DFT code ran although labels are stored")
    metal = ec.Phase("In", Structure(Lattice.tetragonal(3.25, 4.95), ["In", "In"], [[0, 0, 0], [0.5] * 3]), "x")
    seen = []
    ref = ec.bain_reference(
        metal,
        [MODELS[0]],
        factory=lambda m: LennardJones(sigma=2.9, epsilon=0.1, rc=7.0),
        progress=lambda *a: seen.append(a),
    )
    assert ref.c_a == list(cp2k.BAIN_CA) and ref.volume == 27.3
    pbe = ref.curves[ec.PBE_LABEL]
    assert pbe[0] == 0.0 and len(pbe) == len(ref.c_a) and all(abs(v) < 50 for v in pbe)
    assert ref.curves[MODELS[0].key][0] == 0.0 and set(ref.minima) == set(ref.curves)
    assert ref.codes[ec.PBE_LABEL][0] == len(ref.c_a) and ref.pbe_wall_s > 0
    assert any(s[0] == ec.PBE_LABEL for s in seen)
    # the plane-wave labels (data/pbe/in_bain_pw) give In's tetragonal minimum, the lattice reference
    pw = ref.curves[ec.PW_LABEL]
    assert ref.lattice_reference == ec.PW_LABEL and ref.codes[ec.PW_LABEL][0] == len(ref.c_a)
    x, inside = ref.minima[ec.PW_LABEL]
    assert inside and x is not None and 1.52 <= x <= 1.56 and min(pw) < -4.0
    assert len(ref.pbe_jobs) == 2 * len(ref.c_a)
    png = ec.plot_bain(ref, tmp_path / "bain.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not cp2k.stored_labels(), reason="no stored PBE labels (data/pbe) in this install")
def test_cli_reference_cp2k_prints_pbe_and_engine_minima(tmp_path, monkeypatch, engines_cli):
    from ase.calculators.lj import LennardJones
    from typer.testing import CliRunner

    from cellsim.engines import registry

    monkeypatch.setenv("CELLSIM_CACHE", str(tmp_path / "cache"))
    forbid_dft_runs(monkeypatch, "a DFT code ran although labels are stored")
    monkeypatch.setattr(registry, "load_calculator", lambda m: LennardJones(sigma=2.9, epsilon=0.1, rc=7.0))
    app = engines_cli
    runner = CliRunner()
    png = tmp_path / "bain.png"
    args = [
        "engines",
        "check",
        "li6ps5cl_in",
        "--reference",
        "cp2k",
        "--reference-only",
        "--parity",
        "0",
        "-e",
        "chgnet",
    ]
    res = runner.invoke(app, [*args, "--plot", str(png)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "PBE (CP2K)" in res.output and "c/a at minimum" in res.output and "chgnet" in res.output
    ref, span = ec_bain_min()
    from cellsim.cli.engines import BAIN_FLAT_MEV

    if span < BAIN_FLAT_MEV:  # the stored CP2K curve is flat within its convergence: no c/a claimed
        assert "flat (span" in res.output and "no c/a minimum can be read" in res.output
        assert f"{ref:.3f}" not in res.output.split("c/a at minimum")[1].split("\n")[0]
    else:
        assert f"{ref:.3f}" in res.output  # the stored labels' parabola minimum
    assert png.is_file()
    assert "PBE (plane waves, GPAW)" in res.output
    line = next(x for x in res.output.splitlines() if x.startswith("PBE c/a of In:"))
    assert "from PBE (plane waves, GPAW)" in line and 1.52 <= float(line.split("c/a ")[2].split()[0]) <= 1.56
    # --json with --reference-only: the table as data, the figure beside it, nothing in the current directory
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out" / "bain.json"
    out.parent.mkdir()
    res = runner.invoke(app, [*args, "--json", str(out)], terminal_width=200)
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())["bain"]
    assert data["element"] == "In"
    assert set(data["curves_meV_per_atom"]) >= {"PBE (CP2K)", "PBE (plane waves, GPAW)", "chgnet"}
    assert data["lattice_reference"] == "PBE (plane waves, GPAW)"
    assert (out.parent / "engines-bain.png").is_file()
    assert not (tmp_path / "engines-bain.png").exists()
    bad = runner.invoke(app, ["engines", "check", "li6ps5cl_in", "--reference", "vasp"])
    assert bad.exit_code == 2 and "expected 'cp2k'" in bad.output


def forbid_dft_runs(monkeypatch, why: str) -> None:
    """Fail the test if CP2K or GPAW's Python is started (other programs, e.g. matplotlib's fc-list, still run)."""
    real = subprocess.run

    def run(cmd, *a, **k):
        prog = str(cmd[0] if isinstance(cmd, list | tuple) else cmd)
        if "cp2k" in prog or "python" in prog:
            pytest.fail(f"{why}: {cmd}")
        return real(cmd, *a, **k)

    monkeypatch.setattr(subprocess, "run", run)


def ec_bain_min() -> tuple[float, float]:
    """The PBE parabola minimum of the stored Bain labels and the curve's span (meV/atom), from their files."""
    s = resolve_settings(cp2k.BAIN_SETTINGS)
    es = []
    for ca in cp2k.BAIN_CA:
        atoms = cp2k.bain_cell("In", ca, cp2k.BAIN_VOLUME["In"])
        name = cp2k.job_dir(Path("."), atoms, s, stress=True).name
        res = next(r for d in cp2k.stored_labels() if (r := cp2k.load_result(d / name)) is not None)
        es.append(res.energy)
    x, inside = cp2k.parabola_minimum(list(cp2k.BAIN_CA), es)
    assert inside and x is not None
    n = len(cp2k.bain_cell("In", 1.5, cp2k.BAIN_VOLUME["In"]))
    return x, 1000 * (max(es) - min(es)) / n


@needs_cp2k
def test_same_structure_read_back_finds_its_job(tmp_path, monkeypatch):
    """A structure a few 1e-6 A off (as read back from a text file) hashes differently but is the same job."""
    s = resolve_settings(TINY)
    first = cp2k.single_point(h2(), tmp_path, s)
    moved = h2()
    moved.positions[0, 0] += 3e-6
    assert cp2k.job_key(moved, s) != first.key
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("CP2K ran for the same structure"))
    again = cp2k.single_point(moved, tmp_path, s)
    assert again.cached and again.job_dir == first.job_dir
    far = h2(0.9)  # a different structure is not matched
    assert cp2k.jobs.find_matching(far, s, False, [tmp_path]) is None
    assert cp2k.jobs.find_matching(moved, s, True, [tmp_path]) is None  # stress asked: another job


@needs_cp2k
def test_label_set_labels_in_order_keeps_an_index_and_resumes(tmp_path, capsys):
    """The CP2K label sets (data/pbe/li6ps5cl_in_interface.py) run through the same loop as the plane-wave ones."""
    configs = [(f"h2-{k}", h2(d), TINY, {"d": d}) for k, d in enumerate((0.74, 0.80))]
    index = cp2k.label_set(configs, tmp_path, max_new=1)
    assert list(index) == ["h2-0"] and json.loads((tmp_path / "index.json").read_text()) == index
    assert json.loads((tmp_path / "jobs" / index["h2-0"] / "result.json").read_text())["meta"] == {"d": 0.74}
    cp2k.label_set(configs, tmp_path, list_only=True)
    assert [line.split()[-1] for line in capsys.readouterr().out.splitlines()[-2:]] == ["done", "-"]
    again = cp2k.label_set(configs, tmp_path)
    assert list(again) == ["h2-0", "h2-1"] and "cached" in capsys.readouterr().out
