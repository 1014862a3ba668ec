"""Analysis: exact pair histograms, agreement with ASE and pymatgen-analysis-diffusion, outputs, CLI."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from cellsim.analysis.analyze import AnalysisSettings, analyze, load_rdf
from cellsim.analysis.rdf import image_range, normalise, occupied_fraction, pair_histogram
from cellsim.core import _native
from cellsim.testing import write_xdatcar

TRICLINIC = np.array([[5.0, 0.0, 0.0], [1.3, 5.4, 0.0], [-0.9, 0.8, 6.1]])


@pytest.fixture(params=["native", "numpy"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "numpy":
        monkeypatch.setattr(_native, "load", lambda: None)
    elif _native.load() is None:  # else "native" would run the NumPy path a second time
        pytest.skip("no C compiler (or CELLSIM_NO_NATIVE): the kernel is not built")
    return str(request.param)


def brute_force(
    frac: np.ndarray, cell: np.ndarray, ia: np.ndarray, ib: np.ndarray, same: bool, rmax: float, dr: float
) -> np.ndarray:
    """All images in a generous range, plain loops: the reference."""
    nb = round(rmax / dr)
    hist = np.zeros(nb, dtype=np.int64)
    n = 4  # images -4..4: > 19 A across each pair of lattice planes (4.8 A apart), beyond rmax 7.5 A + the cell
    cart = frac @ cell
    for f in range(len(frac)):
        for x, i in enumerate(ia):
            for y, j in enumerate(ib):
                if same and y < x:
                    continue
                for o in product(range(-n, n + 1), repeat=3):
                    if same and i == j and o <= (0, 0, 0):
                        continue  # self: each +/- image pair once, never the atom itself
                    d = cart[f, j] + np.array(o) @ cell - cart[f, i]
                    r = float(np.sqrt(d @ d))
                    if r < rmax:
                        hist[int(r / dr)] += 1
    return hist


@pytest.mark.parametrize("rmax", [2.4, 7.5])  # minimum image, and periodic images beyond half the width
@pytest.mark.parametrize("same", [False, True])
def test_histogram_equals_brute_force(backend: str, rmax: float, same: bool) -> None:
    rng = np.random.default_rng(3)
    frac = rng.random((2, 9, 3))
    ia = np.array([0, 2, 4, 6]) if same else np.array([0, 1, 2])
    ib = ia if same else np.array([3, 4, 5, 6, 7, 8])
    dr = 0.05
    hist = np.zeros(round(rmax / dr), dtype=np.int64)
    bonds = np.zeros(2, dtype=np.int64)
    cells = np.array([TRICLINIC, TRICLINIC])
    pair_histogram(frac, cells, ia, ib, same, rmax, dr, 2.0, hist, bonds)
    ref = brute_force(frac, TRICLINIC, ia, ib, same, rmax, dr)
    assert np.abs(hist - ref).max() <= 1e-10
    assert hist.sum() > 0
    assert bonds.sum() == ref[: round(2.0 / dr)].sum()
    if rmax > 3:
        assert np.any(image_range(TRICLINIC, rmax))


def _native_and_numpy(
    monkeypatch: pytest.MonkeyPatch,
    frac: np.ndarray,
    cells: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    rmax: float,
    dr: float,
    bond_cut: float,
    nbins: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(hist, bonds) of the A-B pairs from the C kernel, then from the NumPy path (the kernel unloaded)."""
    if _native.load() is None:  # else NumPy would be compared with itself
        pytest.skip("no C compiler (or CELLSIM_NO_NATIVE): the kernel is not built")
    out = []
    for use in (True, False):
        if not use:
            monkeypatch.setattr(_native, "load", lambda: None)
        hist = np.zeros(nbins, dtype=np.int64)
        bonds = np.zeros(len(frac), dtype=np.int64)
        pair_histogram(frac, cells, ia, ib, False, rmax, dr, bond_cut, hist, bonds)
        out.append((hist, bonds))
    return out


def test_native_and_numpy_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    frac = rng.random((3, 20, 3))
    cells = np.array([TRICLINIC * s for s in (1.0, 1.01, 0.99)])
    out = _native_and_numpy(monkeypatch, frac, cells, np.arange(10), np.arange(10, 20), 5.0, 0.05, 2.5, 100)
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_tall_cell_window_and_unwrapped_coordinates(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell much taller than rmax along c: the C kernel scans only the atoms within rmax in c (around the
    boundary too); coordinates outside [0, 1) are wrapped by it. Counts equal the NumPy path's exactly."""
    rng = np.random.default_rng(9)
    cells = np.array([np.array([[9.0, 0.0, 0.0], [0.7, 9.3, 0.0], [0.5, -0.4, 30.0]]) * s for s in (1.0, 1.002)])
    frac = rng.random((2, 60, 3))
    frac[:, :, 2] = rng.choice([0.01, 0.5, 0.97], size=(2, 60)) + rng.normal(scale=0.05, size=(2, 60))
    frac[0, :7] += rng.integers(-2, 3, size=(7, 3))  # outside [0, 1): some below 0, some above 1
    out = _native_and_numpy(monkeypatch, frac, cells, np.arange(25), np.arange(25, 60), 4.0, 0.02, 2.5, 200)
    assert out[0][0].sum() > 100
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


@pytest.mark.parametrize("rmax", [1.0, 2.9, 3.7, 4.4, 6.0, 7.4])
def test_binned_c_window_misses_no_pair(monkeypatch: pytest.MonkeyPatch, rmax: float) -> None:
    """The C kernel bins the B atoms along c and scans the bins within reach of each A atom (more or fewer bins
    as rmax / cell height varies, and the full scan when the bins would cover the cell). Atoms on the bin edges,
    at c = 0 and just below 1, and pairs right at rmax across c = 0, are all counted as the NumPy path counts
    them."""
    rng = np.random.default_rng(int(rmax * 10))
    cell = np.array([[9.0, 0.0, 0.0], [0.7, 9.3, 0.0], [0.5, -0.4, 31.0]])
    frac = rng.random((3, 80, 3))
    for nc in (8, 13, 20, 31):  # edges of bins of several widths
        frac[:, :8, 2] = np.arange(8) / nc
    frac[:, 8:12, 2] = [0.0, 1.0 - 1e-16, 1.0 - 1e-12, 0.5]
    height = np.linalg.det(cell) / np.linalg.norm(np.cross(cell[0], cell[1]))
    frac[:, 12, :] = [0.3, 0.3, 0.0]  # A at c = 0, a B atom right across c = 0 at just under rmax
    frac[:, 50, :] = [0.3, 0.3, 1.0 - (rmax - 1e-9) / height]
    cells = np.array([cell, cell * 1.001, cell * 0.999])
    # bond cutoff below rmax, as the analysis requires
    out = _native_and_numpy(monkeypatch, frac, cells, np.arange(40), np.arange(40, 80), rmax, 0.02, 0.6 * rmax, 400)
    assert out[0][0].sum() > 0 and out[0][1].sum() > 0
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


def _bulk_like(tmp_path: Path, n_frames: int = 3) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    cell = np.array([[12.0, 0.0, 0.0], [0.6, 12.2, 0.0], [0.4, -0.5, 12.5]])
    frac = rng.random((n_frames, 40, 3))
    p = write_xdatcar(tmp_path / "XDATCAR", ["In", "S"], [16, 24], cell, frac)
    return p, frac, cell


def test_g_agrees_with_ase(tmp_path: Path) -> None:
    from ase import Atoms
    from ase.geometry.rdf import get_rdf

    p, frac, cell = _bulk_like(tmp_path)
    res = analyze([p], AnalysisSettings(pairs=["In-S", "S-S"], dt_fs=2.0, window_ps=1.0, rmax=5.0, bin_width=0.05))
    images = [Atoms(["In"] * 16 + ["S"] * 24, scaled_positions=np.round(f, 8), cell=cell, pbc=True) for f in frac]
    g_ase, _ = get_rdf(images, 5.0, 100, elements=("In", "S"))
    np.testing.assert_allclose(res.g["In-S"][0], g_ase, rtol=1e-10, atol=1e-12)
    # ASE divides by N_B / V also for A == B; cellsim by (N_B - 1) / V (ordered distinct pairs)
    g_ase_ss, _ = get_rdf(images, 5.0, 100, elements=("S", "S"))
    np.testing.assert_allclose(res.g["S-S"][0] * 23 / 24, g_ase_ss, rtol=1e-10, atol=1e-12)


def test_g_agrees_with_pymatgen_diffusion(tmp_path: Path) -> None:
    from pymatgen.analysis.diffusion.aimd.rdf import RadialDistributionFunction
    from pymatgen.core import Lattice, Structure

    p, frac, cell = _bulk_like(tmp_path)
    res = analyze([p], AnalysisSettings(pairs=["In-S"], dt_fs=2.0, window_ps=1.0, rmax=5.0, bin_width=0.05))
    structures = [Structure(Lattice(cell), ["In"] * 16 + ["S"] * 24, np.round(f, 8)) for f in frac]
    rdf = RadialDistributionFunction(
        structures, indices=list(range(16, 40)), reference_indices=list(range(16)), ngrid=101, rmax=5.0, cell_range=1
    )
    np.testing.assert_allclose(res.g["In-S"][0], rdf.raw_rdf[:100], rtol=1e-10, atol=1e-12)


def test_normalisation_definitions() -> None:
    hist = np.array([0, 2, 4, 0])
    g, n, cn = normalise(hist, n_frames=2, n_a=2, n_b=5, same=False, volume=100.0, dr=0.5)
    np.testing.assert_allclose(n, [0, 0.5, 1.0, 0])
    np.testing.assert_allclose(cn, [0, 0.5, 1.5, 1.5])
    shell = 4 / 3 * np.pi * (1.0**3 - 0.5**3)
    assert g[1] == pytest.approx(0.5 / (5 / 100 * shell))
    g2, n2, _ = normalise(hist, 2, 2, 2, True, 100.0, 0.5)
    np.testing.assert_allclose(n2, 2 * n)  # unordered pairs count twice around A atoms
    assert g2[1] == pytest.approx(n2[1] / (1 / 100 * shell))


def reacting_trajectory(tmp_path: Path, n_frames: int = 1000, react_at: int = 500) -> Path:
    """4 In and a PS4 unit in a 20 A box: at frame ``react_at`` each In gains an S at 2.6 A and the
    PS4's S move to 3.6 A from P (P-S bonds break). Small thermal noise throughout."""
    cell = np.diag([20.0, 20.0, 20.0])
    rng = np.random.default_rng(0)
    p_pos = np.array([10.0, 10.0, 10.0])
    in_pos = np.array([[3.0, 3.0, 3.0], [3.0, 15.0, 3.0], [15.0, 3.0, 15.0], [15.0, 15.0, 3.0]])
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    frames = []
    for k in range(n_frames):
        reacted = k >= react_at
        s_ps = p_pos + tet * (3.6 if reacted else 2.05)
        s_in = in_pos + np.array([0.0, 0.0, 1.0]) * (2.6 if reacted else 6.0)
        pos = np.vstack([in_pos, p_pos[None], s_ps, s_in]) + rng.normal(0, 0.02, (13, 3))
        frames.append(pos @ np.linalg.inv(cell))
    run = tmp_path / "run"
    seg = run / "md" / "seg-000"
    seg.mkdir(parents=True)
    write_xdatcar(seg / "XDATCAR", ["In", "P", "S"], [4, 1, 8], cell, np.array(frames) % 1.0)
    (seg / "INCAR").write_text("IBRION = 0\nPOTIM = 2.0 ! fs\nNBLOCK = 1\n")
    return run


def test_reaction_is_detected(tmp_path: Path) -> None:
    from cellsim.stages import analyze as run_analyze

    run = reacting_trajectory(tmp_path)
    res = run_analyze(run, pairs=["In-S", "P-S"], window_ps=0.5, rmax=8.0, cutoffs={"In-S": 3.0, "P-S": 2.3})
    assert res.out_dir is not None
    paths = {
        k: res.out_dir / n
        for k, n in (
            ("peaks_json", "peaks.json"),
            ("rdf_csv", "rdf.csv"),
            ("bonds_csv", "bonds.csv"),
            ("rdf_npz", "rdf.npz"),
        )
    }
    assert res.settings.dt_fs == 2.0  # from the INCAR
    peaks = json.loads(paths["peaks_json"].read_text())
    ins = peaks["pairs"]["In-S"]
    assert ins["bonds"]["initial"] == 0 and ins["bonds"]["final"] == 4
    assert ins["bonds"]["first_formation_ps"] == pytest.approx(501 * 0.002)
    assert any(abs(p["r"] - 2.6) < 0.05 for p in ins["new_peaks"])
    assert ins["new_peak_first_seen"][0]["first_t_ps"] == pytest.approx(1.0)
    ps = peaks["pairs"]["P-S"]
    assert ps["bonds"]["present_at_start"] and ps["bonds"]["initial"] == 4 and ps["bonds"]["final"] == 0
    # tidy tables
    import csv

    rows = [r for r in csv.reader(ln for ln in paths["rdf_csv"].read_text().splitlines() if not ln.startswith("#"))]
    assert rows[0] == ["pair", "window", "t_start_ps", "t_end_ps", "r", "g", "n_per_atom", "cn"]
    assert len(rows) - 1 == 2 * 4 * 400
    brow = paths["bonds_csv"].read_text().splitlines()
    assert brow[1] == "time_ps,pair,count" and len(brow) - 2 == 2 * 1000
    data = load_rdf(paths["rdf_npz"])
    assert data["g"]["In-S"].shape == (4, 400) and data["pairs"] == ["In-S", "P-S"]
    # running coordination of In-S in the last window: one S within 3 A per In
    k = int(3.0 / 0.02)
    assert data["cn"]["In-S"][-1][k] == pytest.approx(1.0)
    assert data["cn"]["In-S"][0][k] == pytest.approx(0.0)


def test_occupied_normalisation_rescales_g_in_a_slab(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    cell = np.diag([14.0, 14.0, 40.0])
    frac = rng.random((2, 120, 3))
    frac[:, :, 2] = 0.25 + 0.25 * frac[:, :, 2]  # atoms in a 10 A thick slab, 30 A of vacuum
    p = write_xdatcar(tmp_path / "XDATCAR", ["Li", "S"], [60, 60], cell, frac)
    base = dict(pairs=["Li-S"], dt_fs=2.0, window_ps=1.0, rmax=6.0, bin_width=0.1)
    cell_g = analyze([p], AnalysisSettings(**base)).g["Li-S"][0]  # type: ignore[arg-type]
    occ = analyze([p], AnalysisSettings(**base, normalisation="occupied"))  # type: ignore[arg-type]
    ratio = occ.g["Li-S"][0][10:] / cell_g[10:]
    # cell normalisation inflates g by V_cell / V_occupied (~4 here); occupied undoes it
    np.testing.assert_allclose(ratio, (occ.occupied_volume[0] / (14 * 14)) / 40.0, rtol=1e-12)
    assert 9.0 < occ.occupied_volume[0] / (14 * 14) < 10.0
    # n_per_atom needs no volume: identical
    np.testing.assert_allclose(occ.n_per_atom["Li-S"], analyze([p], AnalysisSettings(**base)).n_per_atom["Li-S"])  # type: ignore[arg-type]


def test_exact_species_matching(tmp_path: Path) -> None:
    from cellsim.analysis.analyze import AnalysisError

    cell = np.diag([10.0, 10.0, 10.0])
    frac = np.random.default_rng(0).random((1, 4, 3))
    p = write_xdatcar(tmp_path / "XDATCAR", ["I", "Cl"], [2, 2], cell, frac)
    with pytest.raises(AnalysisError, match=r"pair In-Cl: no In atoms .*elements there: I, Cl"):
        analyze([p], AnalysisSettings(pairs=["In-Cl"], dt_fs=1.0))
    res = analyze([p], AnalysisSettings(pairs=["I-Cl"], dt_fs=1.0))
    assert res.element_counts == {"I": 2, "Cl": 2}


def test_cli_analyze_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cellsim.cli import app

    run = reacting_trajectory(tmp_path, n_frames=300, react_at=100)
    xd = run / "md" / "seg-000" / "XDATCAR"
    r = CliRunner().invoke(app, ["analyze", str(xd), "--dt", "2", "--pairs", "In-S,P-S", "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "In-S" in r.output and "0 -> 4" in r.output
    assert (tmp_path / "out" / "rdf.csv").is_file()
    r = CliRunner().invoke(app, ["analyze", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "neither a run directory nor an XDATCAR" in r.output
    empty = tmp_path / "emptyrun"
    empty.mkdir()
    r = CliRunner().invoke(app, ["analyze", str(empty)])
    assert r.exit_code == 2 and "no trajectory found" in r.output


def test_occupied_fraction_native_and_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bucket kernel gives NumPy's sort-and-diff doubles: slabs with vacuum inside the cell or across its
    boundary, layers of equal c, atoms at exactly 0 and 1, one atom, uniform and clustered coordinates; out of
    [0, 1] it hands over to the sort."""
    if _native.load() is None:
        pytest.skip("no C compiler: the kernel is not built")
    rng = np.random.default_rng(11)
    layers = np.repeat(np.round(rng.uniform(0.1, 0.5, (3, 6)), 3), 8, axis=1)  # 8 atoms on each of 6 planes
    cases = [
        np.concatenate([rng.uniform(0.2, 0.6, (4, 30)), rng.uniform(0.7, 0.75, (4, 5))], axis=1),
        np.mod(rng.uniform(0.8, 1.3, (3, 40)), 1.0),  # the slab crosses c = 0: the vacuum is in the middle
        layers,
        np.array([[0.0, 1.0, 0.5, 0.5, 0.25], [0.1, 0.1, 0.1, 0.1, 0.1]]),
        np.array([[0.3]]),
        rng.random((6, 304)),
        rng.random((2, 50)) ** 8,  # most atoms in the first bucket
        rng.uniform(-0.3, 1.6, (2, 30)),  # unwrapped: the sort
    ]
    for z in cases:
        frac = np.stack([rng.random(z.shape), rng.random(z.shape), z], axis=-1)
        native = occupied_fraction(frac)
        with monkeypatch.context() as m:
            m.setattr(_native, "load", lambda: None)
            numpy_path = occupied_fraction(frac)
        np.testing.assert_array_equal(native, numpy_path)
    frac = np.zeros((1, 3, 3))
    frac[0, :, 2] = [0.2, 0.4, 0.6]  # a slab from 0.2 to 0.6: 40 % of c (the gap 0.6 -> 1.2 is the largest)
    assert occupied_fraction(frac)[0] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="n_frames, natoms, 3"):
        occupied_fraction(frac[:, :, 2])  # the old (n_frames, natoms) argument
