"""The analysis: one pass over a trajectory (:mod:`cellsim.analysis.driver`) feeding windowed partial RDFs and
per-frame bonds, per-atom environments and the diagnostics from one neighbour search per sampled frame.

The parts: :mod:`~cellsim.analysis.result` (settings and numbers), :mod:`~cellsim.analysis.accumulators`,
:mod:`~cellsim.analysis.store` (the folder: rdf.csv, rdf.npz, bonds.csv, peaks.json, analysis.json),
:mod:`~cellsim.analysis.pooling` (replicas), :mod:`~cellsim.analysis.setup` (what to analyse when nobody
said). Their public names are importable from here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.analysis.accumulators import DiagnosticsFeed, EnvironmentsFeed, RDFAccumulator
from cellsim.analysis.defaults import default_cutoff
from cellsim.analysis.driver import Accumulator, run_pass
from cellsim.analysis.peaks import baseline_frames, peaks_report
from cellsim.analysis.pooling import pool_diagnostics, pool_replicas
from cellsim.analysis.result import AnalysisData, AnalysisSettings, bond_cutoffs, compute_g
from cellsim.analysis.store import (
    ANALYSIS_FILE,
    FORMAT_TAG,
    FORMAT_VERSION,
    REPLICA_PREFIX,
    AnalysisResult,
    load_analysis,
    load_rdf,
    write_outputs,
)
from cellsim.core.errors import AnalysisError

if TYPE_CHECKING:
    from cellsim.analysis.diagnostics import DiagnosticsAccumulator
    from cellsim.io.sources import TrajectorySource

__all__ = [
    "ANALYSIS_FILE",
    "FORMAT_TAG",
    "FORMAT_VERSION",
    "REPLICA_PREFIX",
    "AnalysisData",
    "AnalysisError",
    "AnalysisResult",
    "AnalysisSettings",
    "add_baseline",
    "analyze",
    "analyze_pass",
    "baseline_frames",
    "bond_cutoffs",
    "compute_g",
    "default_cutoff",
    "load_analysis",
    "load_rdf",
    "peaks_report",
    "pool_diagnostics",
    "pool_replicas",
    "write_outputs",
]


def analyze(
    paths: Sequence[TrajectorySource],
    settings: AnalysisSettings,
    species: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    environments: bool = True,
) -> AnalysisResult:
    """Stream the trajectory files in ``paths`` once (in order, any format of :mod:`cellsim.io.sources`).

    Memory: one block of frames plus one histogram per pair and window; never the whole trajectory.
    ``environments``: the per-atom environments too (:mod:`cellsim.analysis.environments`).
    """
    return analyze_pass(paths, settings, species, progress, None, environments)[0]


def analyze_pass(
    paths: Sequence[TrajectorySource],
    settings: AnalysisSettings,
    species: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    diagnostics: dict[str, Any] | None = None,
    environments: bool = True,
) -> tuple[AnalysisResult, DiagnosticsAccumulator | None]:
    """:func:`analyze`, with the diagnostics' frame part fed in the same pass when ``diagnostics`` holds the
    keyword arguments of a :class:`~cellsim.analysis.diagnostics.DiagnosticsAccumulator` (its checks are made
    after, with the energies: :func:`cellsim.analysis.setup.finish_diagnostics`)."""
    s = settings
    cutoffs = bond_cutoffs(s)
    for p, c in cutoffs.items():
        if c > s.rmax:
            raise AnalysisError(f"bond cutoff of {p} ({c} A) exceeds rmax ({s.rmax} A); raise rmax")
    accs: list[Accumulator] = [RDFAccumulator(s, cutoffs)]
    if environments:
        # a few samples per window to start with; the accumulator thins them as the run grows
        accs.append(EnvironmentsFeed({**s.bond_cutoffs, **cutoffs}, stride=s.frames_per_window // 4))
    if diagnostics is not None:
        accs.append(DiagnosticsFeed(**diagnostics))
    out = run_pass(paths, accs, s.dt_fs, species, progress)
    rdf = out.rdf
    nb = s.nbins
    res = AnalysisResult(
        settings=s,
        sources=[str(p) for p in paths],
        element_counts=out.element_counts,
        r=(np.arange(nb) + 0.5) * s.bin_width,
        n_frames=out.n_frames,
        window_frames=rdf["window_frames"],
        volume=rdf["volume"],
        occupied_volume=rdf["occupied_volume"],
        hist=rdf["hist"],
        bonds=rdf["bonds"],
        cutoffs=cutoffs,
        species=out.species,
        first_frame=rdf["first_frame"],
        last_frame=rdf["last_frame"],
        environments=out.get("environments"),
    )
    res.info["segments"] = [vars(x) for x in out.segments]
    if out.get("environments_note"):
        res.info.setdefault("notes", []).append(out.environments_note)
    compute_g(res)
    return res, out.get("diagnostics")


def add_baseline(res: AnalysisData, poscar: Path) -> None:
    """Neighbour densities and bond counts of the as-built structure (before relaxation and MD).

    A pre-relaxation already brings interface atoms into contact; compared with the first MD frame those
    bonds would look old. The as-built model is the state the study starts from.
    """
    from cellsim.analysis.rdf import pair_histogram
    from cellsim.io.poscar import read_poscar

    s = res.settings
    species, frac, cell = read_poscar(poscar)
    sym = np.array(species)
    for p in s.pairs:
        a, b = p.split("-")
        ia, ib = np.flatnonzero(sym == a), np.flatnonzero(sym == b)
        if len(ia) == 0 or len(ib) == 0:
            continue
        hist = np.zeros(s.nbins, dtype=np.int64)
        bonds = np.zeros(1, dtype=np.int64)
        pair_histogram(frac[None], cell[None], ia, ib, a == b, s.rmax, s.bin_width, res.cutoffs[p], hist, bonds)
        res.baseline[p] = hist * (2.0 if a == b else 1.0) / len(ia)
        res.baseline_bonds[p] = int(bonds[0])
