"""The embedded engine's Nose-Hoover chain with fixed atoms (selective dynamics, ``fixed_metal_layers``)."""

from __future__ import annotations

from typing import Any

import numpy as np


def _slab(fixed: bool) -> tuple[Any, list[int]]:
    from ase.build import fcc111
    from ase.calculators.emt import EMT
    from ase.constraints import FixAtoms
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    atoms = fcc111("Cu", (3, 3, 4), vacuum=6.0, periodic=True)
    bottom = [a.index for a in atoms if a.tag >= 3]  # the lowest two of four planes
    if fixed:
        atoms.set_constraint(FixAtoms(indices=bottom))
    atoms.calc = EMT()
    MaxwellBoltzmannDistribution(atoms, temperature_K=300.0, rng=np.random.default_rng(1))
    Stationary(atoms)
    return atoms, bottom


def _run(dyn: Any, atoms: Any, steps: int) -> np.ndarray:
    temps = []
    for _ in range(steps):
        dyn.step()
        temps.append(atoms.get_temperature())
    return np.array(temps)


def test_fixed_atoms_stay_put_and_the_rest_holds_the_target_temperature() -> None:
    from ase.md.nose_hoover_chain import NoseHooverChainNVT
    from ase.units import fs

    from cellsim.engines.mlip import nose_hoover_nvt

    atoms, bottom = _slab(fixed=True)
    start = atoms.get_positions()
    temps = _run(nose_hoover_nvt(atoms, 2 * fs, 300.0, 80 * fs), atoms, 900)
    assert np.abs(atoms.get_positions()[bottom] - start[bottom]).max() == 0.0
    assert np.abs(atoms.get_momenta()[bottom]).max() == 0.0
    # 18 moving atoms: the instantaneous T scatters by ~60 K; the mean over 500 steps holds the target
    assert abs(temps[400:].mean() - 300.0) < 40.0, temps[400:].mean()

    # the control: ASE's integrator as it stands lets the fixed atoms' momenta absorb the heat
    atoms, _ = _slab(fixed=True)
    plain = _run(NoseHooverChainNVT(atoms, timestep=2 * fs, temperature_K=300.0, tdamp=80 * fs), atoms, 900)
    assert plain[400:].mean() < 200.0, plain[400:].mean()


def test_without_constraints_the_trajectory_is_ases_to_the_bit() -> None:
    from ase.md.nose_hoover_chain import NoseHooverChainNVT
    from ase.units import fs

    from cellsim.engines.mlip import nose_hoover_nvt

    a, _ = _slab(fixed=False)
    b, _ = _slab(fixed=False)
    _run(NoseHooverChainNVT(a, timestep=2 * fs, temperature_K=300.0, tdamp=80 * fs), a, 60)
    _run(nose_hoover_nvt(b, 2 * fs, 300.0, 80 * fs), b, 60)
    assert np.array_equal(a.get_positions(), b.get_positions())
    assert np.array_equal(a.get_momenta(), b.get_momenta())
