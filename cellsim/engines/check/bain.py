"""The PBE reference (CP2K) along the metal's Bain path, beside each engine's curve, and its figure."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
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
        The CP2K job folders (stored labels or the cache) and their total CP2K wall time.
    errors
        Engine key -> why its curve is missing (the model did not load).
    """

    element: str
    volume: float
    c_a: list[float]
    curves: dict[str, list[float]] = field(default_factory=dict)
    minima: dict[str, tuple[float | None, bool]] = field(default_factory=dict)
    pbe_jobs: list[str] = field(default_factory=list)
    pbe_wall_s: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)


PBE_LABEL = "PBE (CP2K)"


def bain_reference(
    metal: Phase,
    models: Sequence[ModelInfo],
    factory: CalculatorFactory | None = None,
    cp2k_settings: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> BainReference:
    """PBE (CP2K) and every engine's E(c/a) on the same 2-atom bct cells of the study's metal.

    The PBE points come from the labels stored with cellsim (``data/pbe``) when they match the cells and
    settings, else CP2K computes them (one job per cell, cached in ``$CELLSIM_CACHE/cp2k``; minutes each).

    Raises
    ------
    CellsimError
        The metal is not one element, or CP2K is missing and the labels are not stored.
    """
    from cellsim.engines import cp2k
    from cellsim.engines.registry import load_calculator

    elements = sorted({str(s.specie) for s in metal.structure})
    if len(elements) != 1:
        raise CellsimError(f"Bain path reference: the metal {metal.label} is not one element ({elements})")
    el = elements[0]
    volume = cp2k.BAIN_VOLUME.get(el, metal.structure.volume / len(metal.structure))
    settings = cp2k.resolve_settings(cp2k.BAIN_SETTINGS, cp2k_settings)
    cas = list(cp2k.BAIN_CA)
    cells = [cp2k.bain_cell(el, ca, volume) for ca in cas]
    ref = BainReference(el, float(volume), cas)
    pbe = []
    for ca, atoms in zip(cas, cells, strict=True):
        res = cp2k.single_point(
            atoms, cp2k.cache_dir(), settings, stress=True, label=f"{el} bct c/a={ca}", labels=cp2k.stored_labels()
        )
        if progress:
            progress(PBE_LABEL, f"Bain c/a {ca}", float(res.data.get("wall_s", 0.0)), res.cached)
        pbe.append(res.energy / len(atoms))
        ref.pbe_jobs.append(str(res.job_dir))
        ref.pbe_wall_s += float(res.data.get("wall_s", 0.0))
    ref.curves[PBE_LABEL] = [1000 * (e - pbe[0]) for e in pbe]
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
    from cellsim.engines.cp2k import parabola_minimum

    ref.minima = {name: parabola_minimum(cas, ys) for name, ys in ref.curves.items()}
    return ref


def plot_bain(ref: BainReference, path: str | os.PathLike[str]) -> Path:
    """One figure of E(c/a) - E(fcc) for PBE and every engine, written atomically as PNG."""
    import io

    from matplotlib.figure import Figure

    from cellsim.core.files import atomic_write_bytes

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for name, ys in ref.curves.items():
        if name == PBE_LABEL:
            ax.plot(ref.c_a, ys, label=name, color="black", lw=2.5, marker="o")
        else:
            ax.plot(ref.c_a, ys, label=name, lw=1.2, marker="s")
    ax.axvline(math.sqrt(2), color="grey", ls=":", lw=1)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("c/a (bct; fcc = 1.414)")
    ax.set_ylabel("E - E(fcc) (meV/atom)")
    ax.set_title(f"{ref.element} Bain path at {ref.volume:g} A$^3$/atom")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    return atomic_write_bytes(path, buf.getvalue())
