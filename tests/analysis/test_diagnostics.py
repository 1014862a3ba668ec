"""Physical diagnostics on trajectories made here: synthetic solids, melts, PS4 units, energy files, and
a short real CHGNet run of indium (slow)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from cellsim.analysis.diagnostics import (
    RMSD_GROWTH_WARN,
    Diagnostics,
    DiagnosticsAccumulator,
    EnergySeries,
    diagnose,
    equilibration_time,
    guess_metal,
    layer_planes,
    read_energies,
)
from cellsim.io.vaspfiles import oszicar_line, xdatcar_frame, xdatcar_header
from cellsim.io.xdatcar import FrameBlock

if TYPE_CHECKING:
    from ase import Atoms
    from ase.calculators.calculator import Calculator

A_IN, C_IN = 3.25283, 4.94629602  # In, I4/mmm (cellsim/references/data/In_I4mmm.cif)


def bct_supercell(n: tuple[int, int, int], a: float = A_IN, c: float = C_IN) -> tuple[np.ndarray, np.ndarray]:
    """Fractional sites (corner + body centre per cell) and the supercell's lattice."""
    basis = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    cells = np.array([(i, j, k) for i in range(n[0]) for j in range(n[1]) for k in range(n[2])], dtype=float)
    frac = ((cells[:, None, :] + basis[None]) / np.array(n)).reshape(-1, 3)
    return frac, np.diag([a * n[0], a * n[1], c * n[2]])


def frames_from_cartesian(cart: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """(n, natoms, 3) Cartesian positions -> fractional, wrapped into [0, 1) as an XDATCAR stores them."""
    frac = cart @ np.linalg.inv(lattice)
    return frac - np.floor(frac)


def feed(acc: DiagnosticsAccumulator, frac: np.ndarray, lattice: np.ndarray, block: int = 64) -> None:
    for s in range(0, len(frac), block):
        f = frac[s : s + block]
        acc.update(FrameBlock(f, np.broadcast_to(lattice, (len(f), 3, 3)).copy(), s))


def vibrating_solid(n_frames: int, rms: float, seed: int = 0, drift: np.ndarray | None = None) -> tuple:
    """bct In with independent Gaussian displacements of 3D RMS ``rms`` about its sites."""
    frac0, lat = bct_supercell((3, 3, 4))
    rng = np.random.default_rng(seed)
    sites = frac0 @ lat
    cart = sites[None] + rng.normal(0.0, rms / np.sqrt(3), (n_frames, len(sites), 3))
    if drift is not None:  # the whole crystal translates (centre of mass), crossing the boundary
        cart += np.linspace(0, 1, n_frames)[:, None, None] * drift
    return frames_from_cartesian(cart, lat), lat, ["In"] * len(sites)


def test_solid_is_ordered() -> None:
    frac, lat, species = vibrating_solid(400, rms=0.1)
    acc = DiagnosticsAccumulator(species, dt_fs=10.0)
    feed(acc, frac, lat)
    d = acc.finish()
    order, layers, coord = d.check("metal order"), d.check("metal layers"), d.check("metal coordination")
    assert order is not None and order.status == "ok", order
    assert layers is not None and layers.status == "ok", layers
    assert coord is not None and coord.status == "ok", coord
    assert 0.08 < d.summary["rmsd_end_A"] < 0.13
    assert abs(d.summary["rmsd_growth_A_per_ps"]) < 0.05
    assert d.summary["layer_order_end"] > 0.95
    assert d.summary["layer_planes"] == 8
    assert d.summary["metal_nn_A"] == pytest.approx(A_IN, abs=0.15)
    assert d.summary["coordination_start"] == pytest.approx(12.0, abs=0.3)  # 4 at 3.25 A + 8 at 3.38 A
    assert d.summary["equilibrated"]


def test_melt_is_flagged() -> None:
    frac0, lat = bct_supercell((3, 3, 4))
    rng = np.random.default_rng(1)
    steps = rng.normal(0.0, 0.15, (400, len(frac0), 3))  # diffusion: sqrt(3 * 400) * 0.15 = 5.2 A at the end
    cart = frac0 @ lat + np.cumsum(steps, axis=0)
    acc = DiagnosticsAccumulator(["In"] * len(frac0), dt_fs=10.0)
    feed(acc, frames_from_cartesian(cart, lat), lat)
    d = acc.finish()
    order = d.check("metal order")
    assert order is not None and order.status == "warn"
    assert "melting" in order.message and "by plane" in order.message and "outer plane" not in order.message
    assert d.summary["rmsd_growth_A_per_ps"] > 0.5
    assert d.summary["rmsd_end_A"] > 3.0
    layers = d.check("metal layers")
    assert layers is not None and layers.status == "warn"
    assert d.summary["layer_order_end"] < 0.3
    coord = d.check("metal coordination")
    assert coord is not None and coord.status == "warn"
    assert d.rmsd_A[-1] > d.rmsd_A[len(d.rmsd_A) // 2] > d.rmsd_A[1]


def test_outer_plane_disorder_is_told_from_a_melt() -> None:
    """Interior planes vibrating about their sites, the highest plane diffusing: the check says where."""
    frac0, lat = bct_supercell((3, 3, 4))
    rng = np.random.default_rng(2)
    sites = frac0 @ lat
    top = sites[:, 2] > sites[:, 2].max() - 0.1  # the highest (001) plane: 9 of 72 atoms
    cart = sites[None] + rng.normal(0.0, 0.1 / np.sqrt(3), (400, len(sites), 3))
    # the highest plane wanders in the plane (no change of height, as an interface layer that intermixes)
    walk = np.cumsum(rng.normal(0.0, 0.2, (400, int(top.sum()), 3)), axis=0)
    walk[..., 2] = 0.0
    walk -= walk.mean(axis=1, keepdims=True)  # the layer's centre stays: displacements are about the slab's
    cart[:, top] += walk
    acc = DiagnosticsAccumulator(["In"] * len(sites), dt_fs=10.0)
    feed(acc, frames_from_cartesian(cart, lat), lat)
    d = acc.finish()
    order = d.check("metal order")
    assert order is not None and order.status == "warn", order
    by_plane = d.summary["rmsd_by_plane_A"]
    assert len(by_plane) == 8 and max(by_plane[:-1]) < 0.2 < by_plane[-1]
    assert "the 7 planes from the 1st to the 7th stay below the limit" in order.message
    assert "the disorder is in the outer plane(s), not through the slab" in order.message
    assert "melting" not in order.message


def test_boundary_crossing_is_not_melting() -> None:
    """Atoms on the cell faces vibrate across them, and the whole crystal drifts 1.7 cells along a."""
    frac, lat, species = vibrating_solid(300, rms=0.25, drift=np.array([1.7 * 3 * A_IN, 0.4, -6.0]))
    assert np.ptp(frac[:, 0, 0]) > 0.9  # atom 0 (site 0, 0, 0) jumps between ~0 and ~1 when wrapped
    acc = DiagnosticsAccumulator(species, dt_fs=10.0)
    feed(acc, frac, lat, block=7)
    d = acc.finish()
    order = d.check("metal order")
    assert order is not None and order.status == "ok", order
    assert d.summary["rmsd_end_A"] < 0.35
    layers = d.check("metal layers")
    assert layers is not None and layers.status == "ok", layers


def test_frames_are_subsampled_evenly() -> None:
    frac, lat, species = vibrating_solid(1000, rms=0.1)
    acc = DiagnosticsAccumulator(species, dt_fs=2.0, max_frames=50)
    feed(acc, frac, lat, block=37)
    d = acc.finish()
    assert acc.n_frames == 1000
    assert len(d.frame_times_ps) <= 50
    steps = np.diff(d.frame_times_ps)
    assert np.allclose(steps, steps[0])  # one stride over the whole run
    assert d.frame_times_ps[-1] > 1.8  # covers the run, not its beginning
    assert d.check("metal order").status == "ok"  # type: ignore[union-attr]


def ps4_frames(n_frames: int, break_at: int | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """4 PS4 tetrahedra (P-S 2.05 A) and 8 Li in a 14 A box; one S leaves its P at ``break_at``."""
    lat = np.eye(3) * 14.0
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3) * 2.05
    centres = np.array([[2.0, 2.0, 2.0], [9.0, 2.5, 3.0], [3.0, 9.0, 9.5], [13.5, 8.0, 7.0]])  # one on a face
    p = centres
    s = (centres[:, None, :] + tet[None]).reshape(-1, 3)
    li = np.random.default_rng(3).uniform(0, 14, (8, 3))
    rng = np.random.default_rng(4)
    base = np.concatenate([li, p, s])
    cart = base[None] + rng.normal(0, 0.03, (n_frames, len(base), 3))
    if break_at is not None:
        cart[break_at:, 8 + 4 + 1] += tet[1] / 2.05 * 1.6  # S pulled out to 3.65 A
    species = ["Li"] * 8 + ["P"] * 4 + ["S"] * 16
    return frames_from_cartesian(cart, lat), lat, species


def test_ps4_intact() -> None:
    frac, lat, species = ps4_frames(100, None)
    acc = DiagnosticsAccumulator(species, dt_fs=5.0)
    assert acc.metal is None  # Li, P, S: all electrolyte elements
    feed(acc, frac, lat)
    d = acc.finish()
    assert np.all(d.unit_fractions["PS4"] == 1.0)
    chk = d.check("PS4 integrity")
    assert chk is not None and chk.status == "ok" and chk.value == 1.0
    assert d.check("metal order") is None


def test_ps4_broken() -> None:
    frac, lat, species = ps4_frames(100, 50)
    acc = DiagnosticsAccumulator(species, dt_fs=5.0)
    feed(acc, frac, lat)
    d = acc.finish()
    assert d.unit_fractions["PS4"][0] == 1.0
    assert d.unit_fractions["PS4"][-1] == 0.75
    chk = d.check("PS4 integrity")
    assert chk is not None and chk.status == "warn" and chk.value == pytest.approx(0.75)


OSZICAR_VASP = """\
       N       E                     dE             d eps       ncg     rms          rms(c)
DAV:   1    -0.541234567890E+03   -0.54123E+03   -0.20154E+04  4464   0.141E+03
RMM:   2    -0.542810000000E+03   -0.15763E+01   -0.42138E+01  4524   0.322E+01    0.154E+01
   1 T=   300. E= -.54167440E+03 F= -.54281563E+03 E0= -.54279950E+03  EK= 0.11412E+01 SP= 0.10E-01 SK= 0.20E-01
       N       E                     dE             d eps       ncg     rms          rms(c)
DAV:   1    -0.542800000000E+03   -0.54123E+03   -0.20154E+04  4464   0.141E+03
   2 T=   296. E= -.54167441E+03 F= -.54280000E+03 E0= -.54279000E+03  EK= 0.11260E+01 SP= 0.10E-01 SK= 0.20E-01
   3 T=   290. E= -.54167442E+03 F= -.54279000E+03 E0= -.54278000E+03  EK= 0.11030E+01 SP= 0.10E-01 SK= 0.20E-01
"""


def test_oszicar_segments_and_truncation(tmp_path: Path) -> None:
    seg0, seg1 = tmp_path / "seg-000", tmp_path / "seg-001"
    seg0.mkdir()
    seg1.mkdir()
    (seg0 / "OSZICAR").write_text(OSZICAR_VASP)
    # the embedded engine's format, cut off in the middle of the third line
    text = "".join(oszicar_line(k, 300.0 + k, -10.0, -12.0 - k, 2.0) for k in (1, 2, 3))
    (seg1 / "OSZICAR").write_text(text[: len(text) - 30])
    e = read_energies([seg0, seg1])
    assert e is not None
    assert e.step.tolist() == [1, 2, 3, 4, 5]
    assert e.temperature_K.tolist() == [300.0, 296.0, 290.0, 301.0, 302.0]
    assert e.potential_eV[:3].tolist() == pytest.approx([-542.81563, -542.80, -542.79])
    assert e.total_eV[0] == pytest.approx(-541.67440)
    assert e.kinetic_eV[0] == pytest.approx(1.1412)
    assert e.thermostat_eV[0] == pytest.approx(0.03)
    assert e.potential_eV[3:].tolist() == [-13.0, -14.0]
    assert e.thermostat_eV[3:].tolist() == [0.0, 0.0]
    assert read_energies(seg0 / "OSZICAR") is not None
    empty = tmp_path / "relax"
    empty.mkdir()
    (empty / "OSZICAR").write_text("   1 F= -.1E+03 E0= -.1E+03  d E =-.1E+03\n")
    assert read_energies(empty) is None
    with pytest.warns(UserWarning, match="no OSZICAR"):
        assert read_energies([seg0, tmp_path / "missing"]) is None


def vasprun_text(n_steps: int, natoms: int = 4) -> str:
    parts = [
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<modeling>\n <generator><i name="program" type="string">vasp'
        f"</i></generator>\n <atominfo>\n  <atoms>    {natoms} </atoms>\n  <types>     1 </types>\n </atominfo>\n"
    ]
    for k in range(1, n_steps + 1):
        f = -20.0 - 0.1 * k
        parts.append(
            f""" <calculation>
  <scstep><energy><i name="e_fr_energy">   {f - 50:.8f} </i><i name="e_wo_entrp">   {f - 50:.8f} </i></energy></scstep>
  <structure><crystal><varray name="basis"><v> 5.0 0.0 0.0 </v></varray></crystal></structure>
  <varray name="forces"><v> 0.1 0.0 0.0 </v></varray>
  <energy>
   <i name="e_fr_energy">   {f:.8f} </i>
   <i name="e_wo_entrp">   {f + 0.01:.8f} </i>
   <i name="e_0_energy">   {f + 0.005:.8f} </i>
   <i name="kinetic">    0.15510000 </i>
   <i name="lattice kinetic">    0.00000000 </i>
   <i name="nosepot">    0.01000000 </i>
   <i name="nosekinetic">    0.02000000 </i>
   <i name="total">   {f + 0.1851:.8f} </i>
  </energy>
  <time name="totalsc">    1.00    1.00</time>
 </calculation>
"""
        )
    return "".join(parts) + "</modeling>\n"


def test_vasprun_streamed(tmp_path: Path) -> None:
    seg = tmp_path / "seg"
    seg.mkdir()
    (seg / "vasprun.xml").write_text(vasprun_text(5))
    e = read_energies(seg)
    assert e is not None
    assert e.step.tolist() == [1, 2, 3, 4, 5]
    assert e.potential_eV.tolist() == pytest.approx([-20.1, -20.2, -20.3, -20.4, -20.5])
    assert e.total_eV[0] == pytest.approx(-20.1 + 0.1851)
    assert e.thermostat_eV[0] == pytest.approx(0.03)
    # T = 2 EK / (kB (3N - 3)): 0.1551 eV over 9 degrees of freedom
    assert e.temperature_K[0] == pytest.approx(2 * 0.1551 / (8.617333262e-5 * 9), rel=1e-6)
    # a run still writing: cut inside the fourth step; the three whole steps come back
    text = vasprun_text(5)
    cut = text.index("<calculation>", text.index("<calculation>") + 1)
    cut = text.index("<calculation>", text.index("<calculation>", cut + 1) + 1) + 200
    (seg / "vasprun.xml").write_text(text[:cut])
    e = read_energies(seg / "vasprun.xml")
    assert e is not None and len(e) == 3


def test_equilibration_time_of_a_relaxation() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(1, 5001) * 0.002  # 10 ps in 2 fs steps
    x = -100.0 + 5.0 * np.exp(-t / 0.8) + rng.normal(0, 0.2, len(t))
    t_eq, settled = equilibration_time(t, x)
    assert settled
    assert 1.5 <= t_eq <= 3.0  # 5 exp(-t / 0.8) falls under 2 sd (0.4 eV) at 2.0 ps; blocks are 0.5 ps
    flat = -100.0 + rng.normal(0, 0.2, len(t))
    assert equilibration_time(t, flat)[0] <= 0.5
    t_drift, _ = equilibration_time(t, -100.0 - 2.0 * t + rng.normal(0, 0.2, len(t)))
    assert t_drift > 4.0


def synthetic_energies(n: int, t_mean: float, relax: bool, drift: float = 0.0, thermo: float = 0.0) -> EnergySeries:
    rng = np.random.default_rng(6)
    step = np.arange(1, n + 1)
    t = step * 0.002
    temp = t_mean + rng.normal(0, 15, n)
    pot = -500.0 + (8.0 * np.exp(-t / 0.3) if relax else 0.0) + drift * t + rng.normal(0, 0.3, n)
    kin = np.full(n, 5.0)
    return EnergySeries(step, temp, pot, pot + kin + thermo, kin, np.full(n, thermo), ["synthetic"])


def test_energy_checks() -> None:
    frac, lat, species = vibrating_solid(200, rms=0.1)
    acc = DiagnosticsAccumulator(species, dt_fs=10.0, timestep_fs=2.0)  # 200 frames x 10 fs = 1000 steps
    feed(acc, frac, lat)
    e = synthetic_energies(1000, 300.0, relax=True)
    d = acc.finish(e, target_temperature=300.0)
    assert d.check("temperature").status == "ok"  # type: ignore[union-attr]
    eq = d.check("equilibration")
    assert eq is not None and eq.status == "ok" and 0.3 < d.summary["equilibration_ps"] < 1.0
    assert d.check("potential energy drift").status == "ok"  # type: ignore[union-attr]
    cons = d.check("conserved energy drift")
    assert cons is not None and cons.status == "ok" and "not judged" in cons.message
    assert len(d.energy_times_ps) == 1000 and d.energy_times_ps[-1] == pytest.approx(2.0)
    hot = acc.finish(e, target_temperature=400.0)
    assert hot.check("temperature").status == "warn"  # type: ignore[union-attr]
    moving = acc.finish(synthetic_energies(1000, 300.0, relax=False, drift=-5.0, thermo=0.1), 300.0)
    assert moving.check("potential energy drift").status == "warn"  # type: ignore[union-attr]
    # E= with thermostat terms is judged: -5 eV/ps over 144 atoms is 35 meV/ps/atom
    assert moving.check("conserved energy drift").status == "warn"  # type: ignore[union-attr]


def test_json_round_trip(tmp_path: Path) -> None:
    frac, lat, species = ps4_frames(60, 30)
    acc = DiagnosticsAccumulator(species, dt_fs=5.0)
    feed(acc, frac, lat)
    d = acc.finish(synthetic_energies(300, 300.0, relax=True), target_temperature=300.0)
    path = d.to_json(tmp_path / "diagnostics.json")
    back = Diagnostics.from_json(path)
    assert [(c.name, c.status, c.unit, c.message) for c in back.checks] == [
        (c.name, c.status, c.unit, c.message) for c in d.checks
    ]
    assert [c.value for c in back.checks] == pytest.approx([c.value for c in d.checks])
    assert back.summary_lines() == d.summary_lines()
    assert np.allclose(back.unit_fractions["PS4"], d.unit_fractions["PS4"])
    assert np.allclose(back.temperature_K, d.temperature_K)
    assert back.summary["PS4_intact_end"] == pytest.approx(d.summary["PS4_intact_end"])
    assert any(line.startswith("[WARN] PS4 integrity") for line in d.summary_lines())


def test_guess_metal() -> None:
    assert guess_metal(["Li"] * 48 + ["P"] * 8 + ["S"] * 40 + ["Cl"] * 8 + ["In"] * 60) == "In"
    assert guess_metal(["Li"] * 10) == "Li"
    assert guess_metal(["Li"] * 48 + ["P"] * 8 + ["S"] * 40 + ["Cl"] * 8) is None
    assert guess_metal(["Cu"] * 4 + ["Ag"] * 4 + ["S"] * 3) is None  # a tie is unclear


def test_layer_planes_across_the_boundary() -> None:
    planes = layer_planes(np.array([0.05, 9.9, 9.95, 2.5, 2.45, 5.0, 7.5]), 10.0)
    # the plane at 0 = 10 is split by the boundary; it stays one plane
    assert planes.tolist() == pytest.approx([2.475, 5.0, 7.5, 9.967], abs=0.01)


def test_diagnose_xdatcar_files(tmp_path: Path) -> None:
    frac, lat, species = vibrating_solid(120, rms=0.1)
    for k, seg in enumerate(("seg-000", "seg-001")):
        d = tmp_path / seg
        d.mkdir()
        part = frac[k * 60 : (k + 1) * 60]
        xd = xdatcar_header(["In"], [len(species)], lat, "test") + "".join(
            xdatcar_frame(i + 1, f) for i, f in enumerate(part)
        )
        (d / "XDATCAR").write_text(xd)
        (d / "OSZICAR").write_text("".join(oszicar_line(i, 300.0, -1.0, -300.0, 3.0) for i in range(1, 301)))
    diag = diagnose([tmp_path / "seg-000" / "XDATCAR", tmp_path / "seg-001" / "XDATCAR"], dt_fs=10.0)
    assert diag.summary["frames"] == 120
    assert diag.check("metal order").status == "ok"  # type: ignore[union-attr]
    assert diag.energy_times_ps[-1] == pytest.approx(1.2)  # 600 steps over 120 frames of 10 fs
    assert diag.summary["temperature_mean_K"] == pytest.approx(300.0)


# --------------------------------------------------------------------------- a real MLIP run


def indium_slab() -> Atoms:
    """16 In atoms at CHGNet 0.3.0's relaxed lattice (a 3.393, c 4.819, DESIGN.md), (001) faces to vacuum."""
    from ase.io import read

    atoms = read(Path(__file__).resolve().parents[2] / "cellsim/references/data/In_I4mmm.cif")
    assert not isinstance(atoms, list)
    atoms.set_cell([3.393, 3.393, 4.819], scale_atoms=True)
    atoms = atoms.repeat((2, 2, 2))
    atoms.center(vacuum=6.0, axis=2)  # free surfaces: melting starts there, no superheating of a periodic crystal
    return atoms


def run_md(calc: Calculator, atoms: Atoms, temperature: float, steps: int, friction_fs: float, out: Path) -> None:
    """FIRE relaxation, then Langevin MD (5 fs steps) written as XDATCAR (every 2 steps) and OSZICAR."""
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from ase.optimize import FIRE
    from ase.units import fs

    atoms.calc = calc
    FIRE(atoms, logfile=None).run(fmax=0.05, steps=50)
    rng = np.random.default_rng(7)
    # from a minimum, half the kinetic energy flows into the potential: start at twice the target
    MaxwellBoltzmannDistribution(atoms, temperature_K=2 * temperature, rng=rng)
    Stationary(atoms)
    dyn = Langevin(atoms, 5.0 * fs, temperature_K=temperature, friction=friction_fs / fs, rng=rng)
    out.mkdir(parents=True)
    inv = np.linalg.inv(atoms.cell.array)
    symbols = atoms.get_chemical_symbols()
    xd = [xdatcar_header([symbols[0]], [len(atoms)], atoms.cell.array, "CHGNet")]
    osz = []
    for k in range(1, steps + 1):
        dyn.run(1)
        e_pot, e_kin = float(atoms.get_potential_energy()), float(atoms.get_kinetic_energy())
        osz.append(oszicar_line(k, atoms.get_temperature(), e_pot + e_kin, e_pot, e_kin))
        if k % 2 == 0:
            xd.append(xdatcar_frame(k // 2, (atoms.get_positions() @ inv) % 1.0))
    (out / "XDATCAR").write_text("".join(xd))
    (out / "OSZICAR").write_text("".join(osz))


@pytest.mark.slow
def test_chgnet_metal_order(tmp_path: Path) -> None:
    """Real MLIP dynamics: an In slab at 1200 K (In melts at 430 K) is flagged; fcc Pb at 150 K is not.

    The solid control is Pb, not In: CHGNet 0.3.0's In creeps even at 50 K (RMSD ~0.3 A/ps in 16- and
    36-atom cells, with almost no energy cost), which the diagnostics rightly flag.
    """
    torch = pytest.importorskip("torch")
    pytest.importorskip("chgnet")
    from ase.build import bulk

    from cellsim.engines.mlip import make_calculator

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    calc, _ = make_calculator("chgnet")
    run_md(calc, indium_slab(), 1200.0, 120, 0.01, tmp_path / "In-1200K")
    hot = diagnose([tmp_path / "In-1200K" / "XDATCAR"], dt_fs=10.0, target_temperature=1200.0)
    run_md(calc, bulk("Pb", "fcc", a=4.95, orthorhombic=True).repeat((2, 2, 2)), 150.0, 160, 0.01, tmp_path / "Pb")
    cold = diagnose([tmp_path / "Pb" / "XDATCAR"], dt_fs=10.0, target_temperature=150.0)
    print("\nIn 1200 K:", *hot.summary_lines(), "Pb 150 K:", *cold.summary_lines(), sep="\n")
    print(f"{time.perf_counter() - t0:.1f} s")
    for name in ("metal order", "metal layers"):
        assert hot.check(name).status == "warn", hot.check(name)  # type: ignore[union-attr]
        assert cold.check(name).status == "ok", cold.check(name)  # type: ignore[union-attr]
    assert hot.summary["rmsd_end_A"] > 2 * cold.summary["rmsd_end_A"]
    assert hot.summary["rmsd_growth_A_per_ps"] > RMSD_GROWTH_WARN > cold.summary["rmsd_growth_A_per_ps"]


def test_creep_below_the_limit_with_planes_is_reported_as_creep() -> None:
    """Every atom creeping slowly (RMSD growing, still under the Lindemann limit): the creep message, by plane."""
    frac0, lat = bct_supercell((3, 3, 4))
    rng = np.random.default_rng(3)
    sites = frac0 @ lat
    walk = np.cumsum(rng.normal(0.0, 0.012, (400, len(sites), 3)), axis=0)
    cart = sites[None] + walk + rng.normal(0.0, 0.05, (400, len(sites), 3))
    acc = DiagnosticsAccumulator(["In"] * len(sites), dt_fs=2.0)
    feed(acc, frames_from_cartesian(cart, lat), lat)
    d = acc.finish()
    order = d.check("metal order")
    assert order is not None and order.status == "warn", order
    assert d.summary["rmsd_end_A"] < d.summary["lindemann_limit_A"]
    assert "keep leaving their sites" in order.message and "by plane (lowest to highest along c):" in order.message


def test_a_thin_solid_block_is_not_called_outer_plane_disorder() -> None:
    """Two of eight planes near their sites, six wandering: a melt with a solid remnant, not 'outer planes'."""
    frac0, lat = bct_supercell((3, 3, 4))
    rng = np.random.default_rng(4)
    sites = frac0 @ lat
    z = sites[:, 2]
    keep = (z > z.min() + 0.1) & (z < z.min() + 2 * lat[2, 2] / 8 + 0.1)  # the 2nd and 3rd planes stay put
    cart = sites[None] + rng.normal(0.0, 0.1 / np.sqrt(3), (400, len(sites), 3))
    walk = np.cumsum(rng.normal(0.0, 0.2, (400, int((~keep).sum()), 3)), axis=0)
    walk[..., 2] = 0.0
    walk -= walk.mean(axis=1, keepdims=True)
    cart[:, ~keep] += walk
    acc = DiagnosticsAccumulator(["In"] * len(sites), dt_fs=10.0)
    feed(acc, frames_from_cartesian(cart, lat), lat)
    d = acc.finish()
    order = d.check("metal order")
    assert order is not None and order.status == "warn"
    assert sum(x < d.summary["lindemann_limit_A"] for x in d.summary["rmsd_by_plane_A"]) == 2
    assert "melting" in order.message and "outer plane" not in order.message and "by plane" in order.message


def test_known_length_gives_the_same_frames() -> None:
    """The readers' frame count starts the thinning on its final stride: the same kept frames and checks as
    doubling from every frame, with the frames it would drop never counted."""
    frac, lat, species = vibrating_solid(1000, rms=0.1)
    plain = DiagnosticsAccumulator(species, dt_fs=2.0, max_frames=50)
    feed(plain, frac, lat, block=37)
    told = DiagnosticsAccumulator(species, dt_fs=2.0, max_frames=50, expected_frames=999)
    assert told.stride == 32
    feed(told, frac, lat, block=37)
    assert told._kept_index == plain._kept_index
    a, b = plain.finish(), told.finish()
    assert a.summary == b.summary
    assert [(c.name, c.status, c.message) for c in a.checks] == [(c.name, c.status, c.message) for c in b.checks]


def test_unwrapped_paths_native_and_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C kernel's unwrapped metal paths are NumPy's diff / rint / cumsum to the bit, across blocks, for atoms
    that cross the boundary (wrapped into [0, 1) each frame) and for a metal that is a subset in any order."""
    from cellsim.core import _native

    if _native.load() is None:
        pytest.skip("no C compiler: the kernel is not built")
    rng = np.random.default_rng(4)
    species = ["In", "S"] * 20
    true = np.cumsum(rng.normal(0, 0.03, (90, 40, 3)), axis=0) + rng.random((40, 3))
    frac = true - np.floor(true)
    out = []
    for use in (True, False):
        with monkeypatch.context() as m:
            if not use:
                m.setattr(_native, "load", lambda: None)
            acc = DiagnosticsAccumulator(species, dt_fs=2.0, metal_indices=[38, 2, 0, 17, -35])  # -35: atom 5
            paths = [acc._unwrap(frac[a:b]) for a, b in ((0, 1), (1, 30), (30, 31), (31, 90))]
            out.append(np.concatenate(paths))
    np.testing.assert_array_equal(out[0], out[1])
    # the paths are the true ones, shifted by the first frame's wrap (whole cells)
    sub = true[:, [38, 2, 0, 17, 5]]
    shift = sub[0] - out[0][0]
    np.testing.assert_allclose(out[0] + shift, sub, atol=1e-9)
    np.testing.assert_allclose(shift, np.round(shift), atol=1e-9)
