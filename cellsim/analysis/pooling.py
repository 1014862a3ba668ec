"""Replicas of one system pooled into one analysis (:func:`pool_replicas`) and their diagnostics into one
(:func:`pool_diagnostics`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cellsim.analysis.environments import Environments
from cellsim.analysis.result import compute_g
from cellsim.analysis.store import AnalysisResult
from cellsim.core.errors import AnalysisError


def pool_replicas(results: list[AnalysisResult]) -> AnalysisResult:
    """One analysis of several replicas of the same system over what all of them hold: histograms summed
    window by window over the windows every replica filled alike (so g and n_per_atom are the replica
    mean), bond counts the per-frame mean over the shortest replica's frames (each replica's kept in
    ``replica_bonds``), environments averaged, diagnostics pooled (:func:`pool_diagnostics`). What was cut
    is said in ``info["notes"]``."""
    first = results[0]
    for r in results[1:]:
        if r.species != first.species or r.settings.dt_fs != first.settings.dt_fs:
            raise AnalysisError("replicas differ in atoms or time step; they cannot be pooled")
    nf = min(r.n_frames for r in results)
    # a replica's last window may be partial: only windows with the same frames in every replica are
    # summed (a shorter replica's partial window would bias the pooled one low)
    nw = 0
    while all(nw < len(r.window_frames) for r in results) and len({int(r.window_frames[nw]) for r in results}) == 1:
        nw += 1
    if nw == 0:
        raise AnalysisError("replicas share no whole time window; they cannot be pooled (use a shorter --window)")
    notes = []
    lengths = sorted({r.n_frames for r in results})
    if len(lengths) > 1 or nw < max(len(r.window_frames) for r in results):
        notes.append(
            f"replicas hold {', '.join(str(r.n_frames) for r in results)} frames: pooled over the shortest "
            f"replica's {nf} frames (bond counts) and the {nw} windows every replica filled alike "
            f"({int(np.sum(first.window_frames[:nw]))} frames, RDFs and peaks)"
        )
    pairs = first.settings.pairs
    pooled = AnalysisResult(
        settings=first.settings,
        sources=[s for r in results for s in r.sources],
        element_counts=first.element_counts,
        r=first.r,
        n_frames=nf,
        window_frames=first.window_frames[:nw],
        volume=np.mean([r.volume[:nw] for r in results], axis=0),
        occupied_volume=np.mean([r.occupied_volume[:nw] for r in results], axis=0),
        hist={p: np.sum([r.hist[p][:nw] for r in results], axis=0) for p in pairs},
        bonds={p: np.mean([r.bonds[p][:nf] for r in results], axis=0) for p in pairs},
        cutoffs=first.cutoffs,
        baseline=first.baseline,
        baseline_bonds=first.baseline_bonds,
        species=first.species,
        first_frame=first.first_frame,
        last_frame=first.last_frame,
        replica_bonds={p: np.array([r.bonds[p][:nf] for r in results]) for p in pairs},
    )
    envs = [r.environments for r in results if r.environments is not None]
    if len(envs) == len(results) and envs:
        ns = min(len(e.times_ps) for e in envs)
        e0 = envs[0]
        # the replicas' atoms side by side (an atom of each replica is its own sample of environments)
        pooled.environments = Environments(
            e0.elements,
            e0.species * len(envs),
            e0.times_ps[:ns],
            np.concatenate([e.counts[:ns] for e in envs], axis=1),
            e0.cutoffs,
        )
    pooled.diagnostics, diag_notes = pool_diagnostics([r.diagnostics for r in results])
    pooled.info["notes"] = notes + diag_notes
    pooled.replicas = len(results)
    compute_g(pooled)
    return pooled


def pool_diagnostics(diags: list[Any]) -> tuple[Any, list[str]]:
    """The diagnostics of replicas (index k: replica k; None where a replica has none) as one, and a note.

    Each check is its worst among the replicas (a warning names its replica); the equilibration time is
    the latest, and the run counts as equilibrated only if every replica is. The plotted series are the
    first replica's. None when no replica has diagnostics.
    """
    import copy

    from cellsim.analysis.diagnostics import Check

    have = [(k, d) for k, d in enumerate(diags) if d is not None]
    if not have:
        return None, []
    k0, d0 = have[0]
    pooled = copy.deepcopy(d0)
    names = list(dict.fromkeys(c.name for _, d in have for c in d.checks))
    pooled.checks = []
    for name in names:
        found = [(k, c) for k, d in have if (c := d.check(name)) is not None]
        k, c = next(((k, c) for k, c in found if c.status == "warn"), found[0])
        if len(have) > 1:
            c = Check(c.name, c.status, c.value, c.unit, f"replica {k}: {c.message}")
        pooled.checks.append(c)
    known = [
        (float(d.summary["equilibration_ps"]), k) for k, d in have if d.summary.get("equilibration_ps") is not None
    ]
    eq_text = ""
    if known:
        t_eq, k_eq = max(known)
        pooled.summary["equilibration_ps"] = t_eq
        pooled.summary["equilibrated"] = all(bool(d.summary.get("equilibrated", True)) for _, d in have)
        eq_text = f"; equilibration the latest ({t_eq:g} ps, replica {k_eq})"
    notes = []
    if len(have) > 1:
        notes.append(
            f"diagnostics pooled over {len(have)} replicas: each check its worst{eq_text}; plotted series of "
            f"replica {k0}"
        )
    if len(have) < len(diags):
        notes.append(f"diagnostics of {len(diags) - len(have)} replica(s) missing: not pooled")
    return pooled, notes
