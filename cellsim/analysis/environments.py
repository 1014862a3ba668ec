"""Local environments: for every atom, how many neighbours of each element sit within the bond cutoffs.

Pair RDFs cannot tell In2S3 from InS (In-S 2.59 vs 2.57 A); the environment of the reacting atoms can
(how many S, Cl and In around each In). The accumulator samples frames while the analysis streams
(at most :data:`MAX_SAMPLES`, evenly spread, starting at a few per window: when full, every other sample
is dropped and the stride
doubles), so memory and time stay bounded for any trajectory length.

Cutoffs: the study's bond cutoffs for its pairs, else 1.2 x the sum of covalent radii (ASE's table).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cellsim.analysis.neighbours import half_width, kind_counts

MAX_SAMPLES = 96
# an all-pairs neighbour count of a 300-atom frame costs ~5 ms: 96 samples keep it under 0.5 s per analysis


def cutoff_table(elements: list[str], bond_cutoffs: dict[str, float]) -> np.ndarray:
    """Symmetric element x element cutoff matrix (A)."""
    from cellsim.analysis.defaults import default_cutoff

    n = len(elements)
    out = np.zeros((n, n))
    for i, a in enumerate(elements):
        for j, b in enumerate(elements):
            c = bond_cutoffs.get(f"{a}-{b}") or bond_cutoffs.get(f"{b}-{a}") or default_cutoff(f"{a}-{b}")
            out[i, j] = c
    return out


def neighbour_counts(frac: np.ndarray, cell: np.ndarray, kinds: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """(natoms, nkinds) neighbour counts of one frame within the per-element-pair cutoffs (minimum image).

    Exact while every cutoff is below half the smallest perpendicular cell width (checked by the caller).
    """
    return kind_counts(frac, cell, kinds, cut[None])[0].astype(np.int16)


@dataclass
class Environments:
    """Sampled neighbour counts: ``counts[s, atom, element]`` at ``times_ps[s]``."""

    elements: list[str]
    species: list[str]
    times_ps: np.ndarray
    counts: np.ndarray
    cutoffs: np.ndarray

    def element_index(self, el: str) -> int:
        return self.elements.index(el)

    def atoms_of(self, el: str) -> np.ndarray:
        return np.flatnonzero(np.array(self.species) == el)

    def to_arrays(self) -> dict[str, Any]:
        return {
            "env/elements": np.array(self.elements),
            "env/species": np.array(self.species),
            "env/times_ps": self.times_ps,
            "env/counts": self.counts,
            "env/cutoffs": self.cutoffs,
        }

    @classmethod
    def from_arrays(cls, z: Any) -> Environments | None:
        if "env/counts" not in z:
            return None
        return cls(
            [str(x) for x in z["env/elements"]],
            [str(x) for x in z["env/species"]],
            np.asarray(z["env/times_ps"]),
            np.asarray(z["env/counts"]),
            np.asarray(z["env/cutoffs"]),
        )

    def early_late(self, late_fraction: float = 0.34, early_fraction: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
        """Mean counts per atom over the first and the last samples (atoms x elements)."""
        n = len(self.times_ps)
        ke = max(1, round(early_fraction * n))
        kl = max(1, round(late_fraction * n))
        return self.counts[:ke].mean(axis=0), self.counts[n - kl :].mean(axis=0)

    def summary(self, centre: str, late_fraction: float = 0.34, min_change: float = 0.5) -> dict[str, Any]:
        """Environment of ``centre`` atoms: early/late mean counts, atoms that changed, late histogram.

        An atom *changed* when its mean count of some other element moved by ``min_change`` or more
        (a melting metal reshuffles its own neighbours: that is for the diagnostics, not a reaction).
        """
        idx = self.atoms_of(centre)
        if len(idx) == 0:
            return {}
        early, late = self.early_late(late_fraction)
        e, lt = early[idx], late[idx]
        others = [k for k, el in enumerate(self.elements) if el != centre] or list(range(len(self.elements)))
        changed = np.flatnonzero(np.abs(lt[:, others] - e[:, others]).max(axis=1) >= min_change)
        # late environments of the atoms that changed, as integer count vectors
        late_int = np.rint(lt[changed]).astype(int)
        hist: dict[str, int] = {}
        for row in late_int:
            key = ", ".join(f"{n} {el}" for el, n in zip(self.elements, row, strict=True) if n > 0) or "none"
            hist[key] = hist.get(key, 0) + 1
        return {
            "centre": centre,
            "atoms": len(idx),
            "early_mean": {el: round(float(e[:, k].mean()), 3) for k, el in enumerate(self.elements)},
            "late_mean": {el: round(float(lt[:, k].mean()), 3) for k, el in enumerate(self.elements)},
            "changed_atoms": [int(i) for i in idx[changed]],
            "changed_late_mean": {
                el: round(float(lt[changed, k].mean()), 3) if len(changed) else 0.0
                for k, el in enumerate(self.elements)
            },
            "changed_early_mean": {
                el: round(float(e[changed, k].mean()), 3) if len(changed) else 0.0 for k, el in enumerate(self.elements)
            },
            "late_histogram": dict(sorted(hist.items(), key=lambda kv: -kv[1])),
        }

    def motifs(self) -> dict[str, Any]:
        """Electrolyte breakdown over time: P coordination by S, S without P, Cl's Li cage."""
        out: dict[str, Any] = {"times_ps": [round(float(t), 5) for t in self.times_ps]}
        sp = self.species
        if "P" in sp and "S" in sp:
            ip, js = self.atoms_of("P"), self.element_index("S")
            n_s = self.counts[:, ip, js]
            out["P_by_nS"] = {str(k): [int(x) for x in (n_s == k).sum(axis=1)] for k in range(0, 5)}
            out["PS4_intact_fraction"] = [round(float(x), 4) for x in (n_s == 4).mean(axis=1)]
            iS, jp = self.atoms_of("S"), self.element_index("P")
            out["S_without_P"] = [int(x) for x in (self.counts[:, iS, jp] == 0).sum(axis=1)]
        if "Cl" in sp and "Li" in sp:
            icl, jli = self.atoms_of("Cl"), self.element_index("Li")
            out["Cl_mean_nLi"] = [round(float(x), 3) for x in self.counts[:, icl, jli].mean(axis=1)]
        return out


class EnvironmentAccumulator:
    """Collect :class:`Environments` from streamed frame blocks (bounded number of samples)."""

    def __init__(self, species: list[str], bond_cutoffs: dict[str, float], dt_fs: float, stride: int = 1) -> None:
        self.species = list(species)
        self.elements = list(dict.fromkeys(species))
        self.kinds = np.array([self.elements.index(s) for s in species])
        self.cut = cutoff_table(self.elements, bond_cutoffs)
        self.dt_fs = dt_fs
        self.stride = max(1, int(stride))
        self._width_ok: dict[bytes, bool] = {}
        self.samples: list[tuple[int, np.ndarray]] = []
        self.skipped_reason: str | None = None

    def wanted(self, start: int, n: int) -> np.ndarray:
        """Local indices of the frames ``start .. start + n - 1`` this accumulator may sample."""
        if self.skipped_reason is not None:
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero((start + np.arange(n)) % self.stride == 0)

    def update(
        self,
        frac: np.ndarray,
        cells: np.ndarray,
        start: int,
        counts_of: Callable[[int], np.ndarray | None] | None = None,
    ) -> None:
        """Sample the frames of a block; ``counts_of(k)`` gives frame k's counts when they were searched already
        (the analysis pass's shared neighbour search), else they are counted here."""
        if self.skipped_reason is not None:
            return
        for k in range(len(frac)):
            g = start + k
            if g % self.stride:
                continue
            key = cells[k].tobytes()
            if key not in self._width_ok:
                self._width_ok[key] = float(self.cut.max()) < half_width(cells[k])
            if not self._width_ok[key]:
                self.skipped_reason = (
                    f"cell narrower than twice the largest cutoff ({self.cut.max():.2f} A): environments not computed"
                )
                return
            shared = counts_of(k) if counts_of is not None else None
            counts = (
                shared.astype(np.int16)
                if shared is not None
                else neighbour_counts(frac[k], cells[k], self.kinds, self.cut)
            )
            self.samples.append((g, counts))
            if len(self.samples) > MAX_SAMPLES:
                self.stride *= 2
                self.samples = [s for s in self.samples if s[0] % self.stride == 0]

    def finish(self) -> Environments | None:
        if not self.samples or self.skipped_reason is not None:
            return None
        frames = np.array([g for g, _ in self.samples])
        return Environments(
            self.elements,
            self.species,
            (frames + 1) * self.dt_fs / 1000.0,
            np.array([c for _, c in self.samples]),
            self.cut,
        )


def crystal_environments(structure: Any, centre: str, elements: list[str], cut: np.ndarray) -> np.ndarray:
    """Neighbour counts (sites x elements) of every ``centre`` site of a crystal, all periodic images."""
    rows = []
    els = list(elements)
    rmax = float(cut.max()) if len(cut) else 3.5
    ci = els.index(centre) if centre in els else None
    for i, site in enumerate(structure):
        if site.specie.symbol != centre:
            continue
        row = np.zeros(len(els), dtype=int)
        for nb in structure.get_neighbors(site, rmax):
            el = nb.specie.symbol
            if el not in els or ci is None:
                continue
            j = els.index(el)
            if nb.nn_distance < cut[ci, j]:
                row[j] += 1
        rows.append(row)
        _ = i
    return np.array(rows) if rows else np.zeros((0, len(els)), dtype=int)
