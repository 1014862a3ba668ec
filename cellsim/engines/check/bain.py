"""The PBE references along the metal's Bain path, beside each engine's curve, and its figure.

Two DFT codes label the same crystals: CP2K (Gaussian basis, the code of the interface parity check) and
GPAW with plane waves. For In the two disagree: CP2K's curve stays within 0.8 meV/atom of fcc at converged
k-meshes, plane waves put bct 5.7 meV/atom below fcc with the minimum near c/a 1.54 (data/pbe/README.md).
The plane-wave curve is the reference for the metal's c/a (:data:`LATTICE_REFERENCE`); both are shown.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
    from ase import Atoms

    from cellsim.engines.registry import ModelInfo
from cellsim.engines.check.settings import CalculatorFactory, Phase, Progress

# --------------------------------------------------------------------------- PBE reference (CP2K): the Bain path


@dataclass
class BainReference:
    """The metal's energy along the Bain path (bct, fixed volume) from PBE and from each engine.

    Attributes
    ----------
    element, volume
        The metal and the volume per atom (A^3) of every cell.
    c_a
        The c/a values (sqrt(2) = fcc).
    curves
        Name (``"PBE (CP2K)"`` first, then engine keys) -> E - E(fcc) in meV/atom at each c/a.
    minima
        Name -> (parabola-fit c/a of the minimum or None, whether the scan brackets it).
    pbe_jobs, pbe_wall_s
        The DFT job folders (stored labels or the cache) and their total wall time, of every code.
    codes
        PBE label -> (jobs, wall time in s) of that code.
    errors
        Curve name -> why it is missing (the model did not load; the DFT code is not installed and its
        labels are not stored).
    """

    element: str
    volume: float
    c_a: list[float]
    curves: dict[str, list[float]] = field(default_factory=dict)
    minima: dict[str, tuple[float | None, bool]] = field(default_factory=dict)
    pbe_jobs: list[str] = field(default_factory=list)
    pbe_wall_s: float = 0.0
    codes: dict[str, tuple[int, float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def lattice_reference(self) -> str | None:
        """The PBE curve the metal's c/a is read from: plane waves when present, else CP2K's."""
        return next((name for name in (PW_LABEL, PBE_LABEL) if name in self.curves), None)


PBE_LABEL = "PBE (CP2K)"
PW_LABEL = "PBE (plane waves, GPAW)"
LATTICE_REFERENCE = PW_LABEL


def _cp2k_runner(settings: dict[str, Any]) -> Callable[[Atoms, str], Any]:
    from cellsim.engines import cp2k

    def run(atoms: Atoms, label: str) -> Any:
        labels = cp2k.stored_labels()
        return cp2k.single_point(atoms, cp2k.cache_dir(), settings, stress=True, label=label, labels=labels)

    return run


def _pw_runner(settings: dict[str, Any]) -> Callable[[Atoms, str], Any]:
    from cellsim.engines import planewave

    def run(atoms: Atoms, label: str) -> Any:
        return planewave.single_point(
            atoms, planewave.cache_dir(), settings, stress=True, label=label, labels=planewave.stored_labels()
        )

    return run


def bain_reference(
    metal: Phase,
    models: Sequence[ModelInfo],
    factory: CalculatorFactory | None = None,
    cp2k_settings: dict[str, Any] | None = None,
    progress: Progress | None = None,
    codes: Sequence[str] = ("cp2k", "gpaw"),
    pw_settings: dict[str, Any] | None = None,
) -> BainReference:
    """PBE (CP2K and plane-wave GPAW) and every engine's E(c/a) on bct cells of the study's metal.

    The PBE points come from the labels stored with cellsim (``data/pbe``) when they match the cells and
    settings, else the code computes them (one job per cell, cached in ``$CELLSIM_CACHE/cp2k`` or
    ``/gpaw``; CP2K minutes, GPAW ~20 s each on one core). CP2K labels the 2-atom conventional cell, GPAW
    the 1-atom primitive one (the same crystal); the engines the 2-atom cell.

    Raises
    ------
    CellsimError
        The metal is not one element, or no code in ``codes`` could give a curve (each reason is named).
    """
    from cellsim.engines import cp2k, planewave
    from cellsim.engines.registry import load_calculator

    elements = sorted({str(s.specie) for s in metal.structure})
    if len(elements) != 1:
        raise CellsimError(f"Bain path reference: the metal {metal.label} is not one element ({elements})")
    el = elements[0]
    volume = cp2k.BAIN_VOLUME.get(el, metal.structure.volume / len(metal.structure))
    cas = list(cp2k.BAIN_CA)
    cells = [cp2k.bain_cell(el, ca, volume) for ca in cas]
    ref = BainReference(el, float(volume), cas)
    for code in codes:
        if code == "cp2k":
            label, run = PBE_LABEL, _cp2k_runner(cp2k.resolve_settings(cp2k.BAIN_SETTINGS, cp2k_settings))
            inputs = cells
        elif code == "gpaw":
            label, run = PW_LABEL, _pw_runner(planewave.resolve_settings(pw_settings))
            inputs = [planewave.primitive_bct_cell(el, ca, volume) for ca in cas]
        else:
            raise CellsimError(f"Bain path reference: unknown code {code!r} (expected cp2k or gpaw)")
        pbe, wall, dirs = [], 0.0, []
        try:
            for ca, atoms in zip(cas, inputs, strict=True):
                res = run(atoms, f"{el} bct c/a={ca}")
                if progress:
                    progress(label, f"Bain c/a {ca}", float(res.data.get("wall_s", 0.0)), res.cached)
                pbe.append(res.energy / len(atoms))
                dirs.append(str(res.job_dir))
                wall += float(res.data.get("wall_s", 0.0))
        except CellsimError as exc:  # one code missing (and its labels not stored) leaves the other's curve
            ref.errors[label] = str(exc)[:400]
            continue
        ref.curves[label] = [1000 * (e - pbe[0]) for e in pbe]
        ref.codes[label] = (len(dirs), wall)
        ref.pbe_jobs += dirs
        ref.pbe_wall_s += wall
    if not ref.curves:
        why = "; ".join(f"{k}: {v}" for k, v in ref.errors.items())
        raise CellsimError(f"Bain path reference: no PBE curve; {why}")
    make = factory or load_calculator
    for model in models:
        t0 = time.perf_counter()
        try:
            calc = make(model)
        except Exception as exc:  # a model that does not load gets no curve; the others still do
            ref.errors[model.key] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        es = []
        for atoms in cells:
            a = atoms.copy()
            a.calc = calc
            es.append(float(a.get_potential_energy()) / len(a))
        ref.curves[model.key] = [1000 * (e - es[0]) for e in es]
        if progress:
            progress(model.key, "Bain path", time.perf_counter() - t0, False)
    ref.minima = {name: cp2k.parabola_minimum(cas, ys) for name, ys in ref.curves.items()}
    return ref


def plot_bain(ref: BainReference, path: str | os.PathLike[str]) -> Path:
    """One figure of E(c/a) - E(fcc) for PBE and every engine, written atomically as PNG."""
    import io

    from matplotlib.figure import Figure

    from cellsim.core.files import atomic_write_bytes

    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    for name, ys in ref.curves.items():
        if name == PW_LABEL:
            ax.plot(ref.c_a, ys, label=name, color="black", lw=2.5, marker="o")
        elif name == PBE_LABEL:
            ax.plot(ref.c_a, ys, label=name, color="grey", lw=2.0, ls="--", marker="o")
        else:
            ax.plot(ref.c_a, ys, label=name, lw=1.2, marker="s")
    ax.axvline(math.sqrt(2), color="grey", ls=":", lw=1)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("c/a (bct; fcc = 1.414)")
    ax.set_ylabel("E - E(fcc) (meV/atom)")
    ax.set_title(f"{ref.element} Bain path at {ref.volume:g} A$^3$/atom")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))  # outside: never over a curve
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    return atomic_write_bytes(path, buf.getvalue())
