"""What an analysis is: its settings (:class:`AnalysisSettings`) and its numbers (:class:`AnalysisData`, saved and
loaded as :class:`cellsim.analysis.store.AnalysisResult`), with g(r) from the raw histograms (:func:`compute_g`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from cellsim.analysis.defaults import default_cutoff
from cellsim.analysis.environments import Environments
from cellsim.analysis.info import AnalysisInfo
from cellsim.analysis.rdf import normalise
from cellsim.config.study import AnalysisSpec

if TYPE_CHECKING:
    from cellsim.analysis.checks import Diagnostics


class AnalysisSettings(AnalysisSpec):
    """The study's analysis section plus the time between stored frames (``dt_fs`` = POTIM * NBLOCK).

    One model for the API, the CLI and the study: the defaults are :class:`cellsim.config.study.AnalysisSpec`'s.
    """

    dt_fs: float = Field(gt=0, le=1000, description="fs between stored frames")
    # an analysis runs on named pairs; cellsim.analyze derives them from the system when the study has none
    pairs: list[str] = Field(min_length=1, description="element pairs A-B")

    @property
    def frames_per_window(self) -> int:
        return max(1, round(self.window_ps * 1000.0 / self.dt_fs))

    @property
    def nbins(self) -> int:
        return round(self.rmax / self.bin_width)


@dataclass
class AnalysisData:
    """Everything the analysis stage computed (:class:`cellsim.analysis.store.AnalysisResult` adds the folder
    round trip)."""

    settings: AnalysisSettings
    sources: list[str]
    element_counts: dict[str, int]
    r: np.ndarray
    n_frames: int
    window_frames: np.ndarray
    volume: np.ndarray
    occupied_volume: np.ndarray
    hist: dict[str, np.ndarray]
    bonds: dict[str, np.ndarray]
    cutoffs: dict[str, float]
    g: dict[str, np.ndarray] = field(default_factory=dict)
    n_per_atom: dict[str, np.ndarray] = field(default_factory=dict)
    cn: dict[str, np.ndarray] = field(default_factory=dict)
    # n_per_atom of the as-built structure (interface/POSCAR): shown for reference, not the baseline of "new"
    baseline: dict[str, np.ndarray] = field(default_factory=dict)
    baseline_bonds: dict[str, int] = field(default_factory=dict)
    species: list[str] = field(default_factory=list)
    first_frame: tuple[np.ndarray, np.ndarray] | None = None  # (frac, cell)
    last_frame: tuple[np.ndarray, np.ndarray] | None = None
    environments: Environments | None = None
    info: dict[str, Any] = field(default_factory=dict)
    diagnostics: Diagnostics | None = None
    out_dir: Path | None = None
    # replicas pooled into this result: per-replica bond counts (replicas x frames) by pair
    replica_bonds: dict[str, np.ndarray] = field(default_factory=dict)
    replicas: int = 1  # histograms hold this many replicas' frames per window

    @property
    def t_start(self) -> np.ndarray:
        fpw = self.settings.frames_per_window
        return np.arange(len(self.window_frames)) * fpw * self.settings.dt_fs / 1000.0

    @property
    def t_end(self) -> np.ndarray:
        return self.t_start + self.window_frames * self.settings.dt_fs / 1000.0

    @property
    def frame_times(self) -> np.ndarray:
        return (np.arange(self.n_frames) + 1) * self.settings.dt_fs / 1000.0

    @property
    def meta(self) -> AnalysisInfo:
        """The typed view of :attr:`info` (what other layers read: time step and temperature sources, reactants,
        run directory, replicas, notes, the analysis id)."""
        return AnalysisInfo.from_dict(self.info)

    @property
    def temperature_K(self) -> float:
        t = self.meta.temperature_K
        return 300.0 if t is None else t

    def __repr__(self) -> str:
        """A few lines, not the arrays: where the frames came from, how many, the pairs and the folder."""
        m = self.meta
        s = self.settings
        names = m.source_names or [Path(x).name for x in self.sources]
        src = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        where = m.run_dir or src or "frames in memory"
        if m.replica is not None:
            where += f" (replica {m.replica})"
        elif m.replica_ids:
            where += f" ({len(m.replica_ids)} replicas pooled)"
        atoms = " ".join(f"{k}{v}" for k, v in self.element_counts.items())
        pairs = s.pairs if len(s.pairs) <= 8 else [*s.pairs[:8], f"... {len(s.pairs) - 8} more"]
        lines = [
            f"{type(self).__name__}({where}",
            f"  {self.n_frames} frames x {s.dt_fs:g} fs = {self.n_frames * s.dt_fs / 1000.0:.3f} ps, "
            f"{len(self.window_frames)} windows of {s.window_ps:g} ps; {sum(self.element_counts.values())} atoms "
            f"({atoms})",
            f"  pairs {', '.join(pairs)}; T {self.temperature_K:g} K ({m.temperature_source or '?'}), "
            f"dt from {m.dt_source or '?'}",
        ]
        if self.out_dir is not None:
            lines.append(f"  folder {self.out_dir}")
        return "\n".join(lines) + ")"

    def to_dataframe(self) -> Any:
        """The rdf.csv table (pair, window, t_start_ps, t_end_ps, r, g, n_per_atom, cn) as a pandas DataFrame."""
        import pandas as pd

        frames = []
        nw, nb = len(self.window_frames), len(self.r)
        for p in self.settings.pairs:
            frames.append(
                pd.DataFrame(
                    {
                        "pair": p,
                        "window": np.repeat(np.arange(nw), nb),
                        "t_start_ps": np.repeat(self.t_start, nb),
                        "t_end_ps": np.repeat(self.t_end, nb),
                        "r": np.tile(self.r, nw),
                        "g": self.g[p].ravel(),
                        "n_per_atom": self.n_per_atom[p].ravel(),
                        "cn": self.cn[p].ravel(),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def bonds_dataframe(self) -> Any:
        """The bonds.csv table (time_ps, pair, count) as a pandas DataFrame."""
        import pandas as pd

        t = self.frame_times
        return pd.concat(
            [pd.DataFrame({"time_ps": t, "pair": p, "count": self.bonds[p]}) for p in self.settings.pairs],
            ignore_index=True,
        )


def bond_cutoffs(s: AnalysisSpec) -> dict[str, float]:
    """Bond cutoff of every analysed pair: the settings' (either order), else :func:`default_cutoff`."""
    out = {}
    for p in s.pairs or []:
        c = s.bond_cutoffs.get(p, s.bond_cutoffs.get("-".join(reversed(p.split("-"))), 0.0))
        out[p] = c if c > 0 else default_cutoff(p)
    return out


def compute_g(res: AnalysisData) -> None:
    """g(r), n_per_atom and cn of every pair and window from the raw histograms."""
    s = res.settings
    wf = res.window_frames
    volume = res.occupied_volume if s.normalisation == "occupied" else res.volume
    for p in s.pairs:
        a, b = p.split("-")
        g, n, cn = [], [], []
        for w in range(len(wf)):
            gw, nw, cw = normalise(
                res.hist[p][w],
                int(wf[w]) * res.replicas,
                res.element_counts[a],
                res.element_counts[b],
                a == b,
                float(volume[w]),
                s.bin_width,
            )
            g.append(gw)
            n.append(nw)
            cn.append(cw)
        res.g[p], res.n_per_atom[p], res.cn[p] = np.array(g), np.array(n), np.array(cn)
