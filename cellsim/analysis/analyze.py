"""The analysis stage: stream a trajectory once, accumulate windowed partial RDFs and per-frame bonds.

Outputs (``write_outputs``): ``rdf.csv`` (pair, window, t_start_ps, t_end_ps, r, g, n_per_atom, cn),
``rdf.npz`` (the same as arrays, plus raw histograms and volumes), ``bonds.csv`` (time_ps, pair, count for
every frame) and ``peaks.json`` (peaks per window, peaks absent from the first window, first bond times).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from cellsim.analysis.defaults import default_cutoff
from cellsim.analysis.environments import Environments
from cellsim.analysis.peaks import bond_events, departure_time, new_peaks, window_peaks
from cellsim.analysis.rdf import block_images, normalise, occupied_fraction, pair_histogram
from cellsim.config.study import AnalysisSpec
from cellsim.core.errors import AnalysisError
from cellsim.core.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from cellsim.io.xdatcar import FrameBlock

if TYPE_CHECKING:
    from cellsim.io.sources import TrajectorySource


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
class AnalysisResult:
    """Everything the analysis stage computed; :meth:`save` and :meth:`load` round-trip it through a folder."""

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
    diagnostics: Any = None
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
    def temperature_K(self) -> float:
        return float(self.info.get("temperature_K", 300.0))

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

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write the analysis folder (all files, swapped in at once; see :func:`write_outputs`)."""
        return write_outputs(self, Path(out_dir))

    @classmethod
    def load(cls, folder: str | Path) -> AnalysisResult:
        """Read an analysis folder written by :meth:`save` (``cellsim analyze``)."""
        return load_analysis(Path(folder))


def analyze(
    paths: Sequence[TrajectorySource],
    settings: AnalysisSettings,
    species: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    observers: list[Callable[[list[str], FrameBlock], None]] | None = None,
) -> AnalysisResult:
    """Stream the trajectory files in ``paths`` (in order, any format of :mod:`cellsim.io.sources`).

    Memory: one block of frames plus one histogram per pair and window; never the whole trajectory.
    ``observers`` get every block too (diagnostics), with the per-atom species.
    """
    from cellsim.analysis.environments import EnvironmentAccumulator
    from cellsim.io.sources import SegmentInfo, iter_trajectory

    s = settings
    fpw = s.frames_per_window
    nb = s.nbins
    hist: dict[str, list[np.ndarray]] = {p: [] for p in s.pairs}
    bonds: dict[str, list[np.ndarray]] = {p: [] for p in s.pairs}
    window_frames: list[int] = []
    vol_sum: list[float] = []
    occ_sum: list[float] = []
    cutoffs = bond_cutoffs(s)
    for p, c in cutoffs.items():
        if c > s.rmax:
            raise AnalysisError(f"bond cutoff of {p} ({c} A) exceeds rmax ({s.rmax} A); raise rmax")
    index_cache: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {}
    element_counts: dict[str, int] = {}
    sym_list: list[str] = []
    segments: list[SegmentInfo] = []
    env: EnvironmentAccumulator | None = None
    first: tuple[np.ndarray, np.ndarray] | None = None
    last: tuple[np.ndarray, np.ndarray] | None = None
    n_frames = 0
    for hdr, block in iter_trajectory(paths, species, segments):
        if not index_cache:
            sym_list = list(hdr.species)
            sym = np.array(sym_list)
            element_counts = {el: int(c) for el, c in zip(hdr.symbols, hdr.counts, strict=True)}
            for p in s.pairs:
                a, b = p.split("-")
                ia, ib = np.flatnonzero(sym == a), np.flatnonzero(sym == b)
                missing = [x for x, idx in ((a, ia), (b, ib)) if len(idx) == 0]
                if missing:
                    raise AnalysisError(
                        f"pair {p}: no {', '.join(missing)} atoms in {hdr.path} "
                        f"(elements there: {', '.join(hdr.symbols)}); elements match exactly"
                    )
                index_cache[p] = (ia, ib, a == b)
            # a few samples per window to start with; the accumulator thins them as the run grows
            env = EnvironmentAccumulator(sym_list, {**s.bond_cutoffs, **cutoffs}, s.dt_fs, stride=fpw // 4)
            first = (block.frac[0].copy(), block.cells[0].copy())
        # split the block at window boundaries
        k0 = 0
        while k0 < len(block):
            g_idx = block.start + k0
            w = g_idx // fpw
            k1 = min(len(block), k0 + (w + 1) * fpw - g_idx)
            while len(window_frames) <= w:
                window_frames.append(0)
                vol_sum.append(0.0)
                occ_sum.append(0.0)
                for p in s.pairs:
                    hist[p].append(np.zeros(nb, dtype=np.int64))
            frac, cells = block.frac[k0:k1], block.cells[k0:k1]
            vols = np.abs(np.linalg.det(cells))
            window_frames[w] += k1 - k0
            vol_sum[w] += float(vols.sum())
            occ_sum[w] += float((vols * occupied_fraction(frac[:, :, 2])).sum())
            images = block_images(cells, s.rmax)
            for p in s.pairs:
                ia, ib, same = index_cache[p]
                counts = np.zeros(k1 - k0, dtype=np.int64)
                pair_histogram(frac, cells, ia, ib, same, s.rmax, s.bin_width, cutoffs[p], hist[p][w], counts, images)
                bonds[p].append(counts)
            k0 = k1
        assert env is not None
        env.update(block.frac, block.cells, block.start)
        for obs in observers or []:
            obs(sym_list, block)
        last = (block.frac[-1].copy(), block.cells[-1].copy())
        n_frames += len(block)
        if progress is not None:
            progress(n_frames)
    if n_frames == 0:
        raise AnalysisError(f"no whole frame in {', '.join(str(p) for p in paths)}")
    wf = np.array(window_frames)
    res = AnalysisResult(
        settings=s,
        sources=[str(p) for p in paths],
        element_counts=element_counts,
        r=(np.arange(nb) + 0.5) * s.bin_width,
        n_frames=n_frames,
        window_frames=wf,
        volume=np.array(vol_sum) / wf,
        occupied_volume=np.array(occ_sum) / wf,
        hist={p: np.array(h) for p, h in hist.items()},
        bonds={p: np.concatenate(b) for p, b in bonds.items()},
        cutoffs=cutoffs,
        species=sym_list,
        first_frame=first,
        last_frame=last,
        environments=env.finish() if env is not None else None,
    )
    res.info["segments"] = [vars(x) for x in segments]
    if env is not None and env.skipped_reason:
        res.info.setdefault("notes", []).append(env.skipped_reason)
    compute_g(res)
    return res


def bond_cutoffs(s: AnalysisSpec) -> dict[str, float]:
    """Bond cutoff of every analysed pair: the settings' (either order), else :func:`default_cutoff`."""
    out = {}
    for p in s.pairs or []:
        c = s.bond_cutoffs.get(p, s.bond_cutoffs.get("-".join(reversed(p.split("-"))), 0.0))
        out[p] = c if c > 0 else default_cutoff(p)
    return out


def compute_g(res: AnalysisResult) -> None:
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


def add_baseline(res: AnalysisResult, poscar: Path) -> None:
    """Neighbour densities and bond counts of the as-built structure (before relaxation and MD).

    A pre-relaxation already brings interface atoms into contact; compared with the first MD frame those
    bonds would look old. The as-built model is the state the study starts from.
    """
    from ase.io import read

    from cellsim.analysis.rdf import pair_histogram

    s = res.settings
    atoms = read(poscar, format="vasp")
    assert not isinstance(atoms, list)
    sym = np.array(atoms.get_chemical_symbols())
    frac = atoms.get_scaled_positions(wrap=True)[None]
    cells = atoms.cell.array[None]
    for p in s.pairs:
        a, b = p.split("-")
        ia, ib = np.flatnonzero(sym == a), np.flatnonzero(sym == b)
        if len(ia) == 0 or len(ib) == 0:
            continue
        hist = np.zeros(s.nbins, dtype=np.int64)
        bonds = np.zeros(1, dtype=np.int64)
        pair_histogram(frac, cells, ia, ib, a == b, s.rmax, s.bin_width, res.cutoffs[p], hist, bonds)
        res.baseline[p] = hist * (2.0 if a == b else 1.0) / len(ia)
        res.baseline_bonds[p] = int(bonds[0])


def peaks_report(res: AnalysisResult) -> dict[str, Any]:
    """The content of peaks.json."""
    s = res.settings
    times = res.frame_times
    out: dict[str, Any] = {
        "normalisation": s.normalisation,
        "dt_frame_fs": s.dt_fs,
        "frames": res.n_frames,
        "window_ps": s.window_ps,
        "windows": len(res.window_frames),
        "definitions": {
            "peaks": "local maxima of g(r) smoothed with a 0.04 A Gaussian, prominence >= 10 % of the maximum",
            "new_peaks": "peaks of the last window whose +/-0.2 A neighbourhood holds < 50 % as many neighbours "
            "(n_per_atom) in the first window; also listed per window against the first",
            "first_formation_ps": "first frame with a bond (d < cutoff) when the first frame has none",
            "formation_ps": "first time the bond count's running mean leaves its starting baseline upwards by more "
            "than max(3 sd, 2 bonds, 10 %) for as long as the running mean's width (peaks.departure_time)",
            "break_ps": "the same, downwards (bonds break)",
            "first_above_as_built_ps": "first frame with more bonds than the as-built interface (run directories)",
        },
        "pairs": {},
    }
    for p in s.pairs:
        per_window: list[dict[str, Any]] = []
        for w in range(len(res.window_frames)):
            per_window.append(
                {
                    "window": w,
                    "t_start_ps": round(float(res.t_start[w]), 6),
                    "t_end_ps": round(float(res.t_end[w]), 6),
                    "peaks": window_peaks(res.r, res.g[p][w], s.bin_width),
                }
            )
        first_new: dict[float, dict[str, Any]] = {}
        for w in range(1, len(per_window)):
            for pk in new_peaks(res.r, res.n_per_atom[p][0], res.n_per_atom[p][w], per_window[w]["peaks"]):
                key = round(pk["r"] / 0.2)  # same peak in later windows: keep its first appearance
                if key not in first_new:
                    first_new[key] = {**pk, "first_window": w, "first_t_ps": per_window[w]["t_start_ps"]}
        last = len(per_window) - 1
        late_new = (
            new_peaks(res.r, res.n_per_atom[p][0], res.n_per_atom[p][last], per_window[last]["peaks"])
            if last > 0
            else []
        )
        events = bond_events(times, res.bonds[p])
        events.update(departure_time(times, res.bonds[p], baseline_frames(res)))
        if p in res.baseline_bonds:
            built = res.baseline_bonds[p]
            events["as_built"] = built
            grown = res.bonds[p] > built
            events["first_above_as_built_ps"] = float(times[np.argmax(grown)]) if grown.any() else None
        out["pairs"][p] = {
            "bond_cutoff": res.cutoffs[p],
            "windows": per_window,
            "new_peaks": late_new,
            "new_peak_first_seen": sorted(first_new.values(), key=lambda d: d["r"]),
            "bonds": events,
        }
    return out


_RDF_HEADER = """# cellsim partial RDFs, one row per pair, time window and r bin
# r: bin centre (A); window: {fpw} frames of {dt} fs ({window} ps), t in ps from the start of the MD
# g: n_per_atom / (rho_B * 4/3 pi (r_hi^3 - r_lo^3)), rho_B = N_B / V (N_B - 1 when A == B),
#    V = {vol_desc}
# n_per_atom: mean number of B atoms in the shell around an A atom (no volume involved)
# cn: running coordination number (sum of n_per_atom up to the bin's outer edge)
"""


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


def baseline_frames(res: AnalysisResult) -> int:
    """Frames of the starting baseline: the first window, at most 0.2 ps and 10 % of the run, at least 5."""
    per_02ps = max(1, round(200.0 / res.settings.dt_fs))
    return max(5, min(res.settings.frames_per_window, per_02ps, res.n_frames // 10))


ANALYSIS_FILE = "analysis.json"
REPLICA_PREFIX = "replica-"
FORMAT_TAG = "cellsim-analysis"
FORMAT_VERSION = 2


def _poscar_text(species: list[str], frac: np.ndarray, cell: np.ndarray, title: str) -> str:
    from cellsim.io.vaspfiles import species_blocks, xdatcar_header

    names, counts = species_blocks(species)
    order = np.argsort([names.index(x) for x in species], kind="stable")
    head = xdatcar_header(names, counts, cell, title).rstrip("\n").split("\n")
    body = "".join(f"  {x:.8f}  {y:.8f}  {z:.8f}\n" for x, y, z in frac[order])
    return "\n".join(head) + "\nDirect\n" + body


def write_outputs(res: AnalysisResult, out_dir: Path) -> dict[str, Path]:
    """Write the analysis folder: rdf.csv, rdf.npz, bonds.csv, peaks.json, analysis.json, first/last frames.

    The set is written into a staging folder and swapped in as a whole (:func:`cellsim.core.files.replace_dir`):
    a kill leaves the previous folder or the new one, never a mix. Results of later stages in the folder
    (match) belong to the old analysis and go with it. ``out_dir`` must be new, empty or an analysis folder.
    """
    import uuid

    from cellsim.core.files import recover_dir, replace_dir, staging_dir
    from cellsim.core.version import __version__

    out_dir = Path(out_dir)
    recover_dir(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise AnalysisError(f"{out_dir}: exists and is not a folder; give another -o")
        others = [p for p in out_dir.iterdir() if not p.name.startswith(".") and not p.name.startswith(REPLICA_PREFIX)]
        if others and not ((out_dir / ANALYSIS_FILE).is_file() or (out_dir / "rdf.npz").is_file()):
            raise AnalysisError(
                f"{out_dir}: exists and holds files that are not a cellsim analysis; give a new or empty -o folder"
            )
    stage = staging_dir(out_dir)
    try:
        paths = _write_files(res, stage)
        res.info["id"] = uuid.uuid4().hex
        res.info["cellsim_version"] = __version__
        manifest = {
            "format": FORMAT_TAG,
            "version": FORMAT_VERSION,
            **res.info,
            "species_order": list(res.element_counts),
            "element_counts": res.element_counts,
            "natoms": sum(res.element_counts.values()),
            "frames": res.n_frames,
            "duration_ps": round(res.n_frames * res.settings.dt_fs / 1000.0, 6),
            "settings": res.settings.model_dump(mode="json"),
            "replicas": res.replicas,
            "bond_cutoffs_used": res.cutoffs,
            "baseline_bonds": res.baseline_bonds,
            "cell_first": res.first_frame[1].tolist() if res.first_frame else None,
            "cell_last": res.last_frame[1].tolist() if res.last_frame else None,
            "files": sorted(p.name for p in paths.values()),
        }
        paths["analysis_json"] = atomic_write_json(stage / ANALYSIS_FILE, manifest)
        if out_dir.is_dir():
            # the replicas' own analyses live inside the pooled one; they are not part of this set
            for sub in out_dir.glob(f"{REPLICA_PREFIX}*"):
                if sub.is_dir():
                    sub.rename(stage / sub.name)
        replace_dir(stage, out_dir)
    except BaseException:
        import shutil

        shutil.rmtree(stage, ignore_errors=True)
        raise
    res.out_dir = out_dir
    return {k: out_dir / v.name for k, v in paths.items()}


def _write_files(res: AnalysisResult, out: Path) -> dict[str, Path]:
    s = res.settings
    vol_desc = (
        "mean occupied volume of the window (cell area x extent of the atoms along c)"
        if s.normalisation == "occupied"
        else "mean cell volume of the window (as pymatgen, ASE, MDAnalysis and freud)"
    )
    buf = io.StringIO()
    buf.write(_RDF_HEADER.format(fpw=s.frames_per_window, dt=s.dt_fs, window=s.window_ps, vol_desc=vol_desc))
    buf.write("pair,window,t_start_ps,t_end_ps,r,g,n_per_atom,cn\n")
    r_txt = [f"{x:.4f}" for x in res.r]
    for p in s.pairs:
        for w in range(len(res.window_frames)):
            prefix = f"{p},{w},{res.t_start[w]:.6g},{res.t_end[w]:.6g},"
            g, n, cn = res.g[p][w], res.n_per_atom[p][w], res.cn[p][w]
            buf.write(
                "".join(
                    f"{prefix}{rt},{gv:.6g},{nv:.6g},{cv:.6g}\n" for rt, gv, nv, cv in zip(r_txt, g, n, cn, strict=True)
                )
            )
    paths = {"rdf_csv": atomic_write_text(out / "rdf.csv", buf.getvalue())}

    npz = io.BytesIO()
    arrays: dict[str, Any] = {
        "r": res.r,
        "t_start_ps": res.t_start,
        "t_end_ps": res.t_end,
        "window_frames": res.window_frames,
        "volume": res.volume,
        "occupied_volume": res.occupied_volume,
        "pairs": np.array(s.pairs),
        "species": np.array(res.species),
    }
    for p, base in res.baseline.items():
        arrays[f"baseline/{p}"] = base
    for p in s.pairs:
        arrays[f"g/{p}"] = res.g[p]
        arrays[f"n_per_atom/{p}"] = res.n_per_atom[p]
        arrays[f"cn/{p}"] = res.cn[p]
        arrays[f"hist/{p}"] = res.hist[p]
        arrays[f"bonds/{p}"] = res.bonds[p]
    for name, fr in (("first", res.first_frame), ("last", res.last_frame)):
        if fr is not None:
            arrays[f"frame/{name}_frac"], arrays[f"frame/{name}_cell"] = fr
    if res.environments is not None:
        arrays.update(res.environments.to_arrays())
    for p, rb in res.replica_bonds.items():
        arrays[f"replica_bonds/{p}"] = rb
    np.savez(npz, **arrays)
    paths["rdf_npz"] = atomic_write_bytes(out / "rdf.npz", npz.getvalue())

    times = res.frame_times
    bbuf = io.StringIO()
    bbuf.write("# bonds: pairs closer than the cutoff in each frame; cutoffs (A): ")
    bbuf.write(", ".join(f"{p} {c}" for p, c in res.cutoffs.items()) + "\n")
    bbuf.write("time_ps,pair,count\n")
    t_txt = [f"{t:.6g}" for t in times]
    for p in s.pairs:
        bbuf.write("".join(f"{t},{p},{c}\n" for t, c in zip(t_txt, res.bonds[p].tolist(), strict=True)))
    paths["bonds_csv"] = atomic_write_text(out / "bonds.csv", bbuf.getvalue())

    report = peaks_report(res)
    report["sources"] = res.sources
    report["element_counts"] = res.element_counts
    if res.environments is not None:
        report["environments"] = {
            c: res.environments.summary(c) for c in dict.fromkeys(p.split("-")[0] for p in s.pairs)
        }
        report["motifs"] = res.environments.motifs()
    paths["peaks_json"] = atomic_write_json(out / "peaks.json", report)
    for name, fr in (("first", res.first_frame), ("last", res.last_frame)):
        if fr is not None:
            paths[f"{name}_frame"] = atomic_write_text(
                out / f"{name}_frame.vasp", _poscar_text(res.species, fr[0], fr[1], f"cellsim {name} frame")
            )
    if res.diagnostics is not None:
        paths["diagnostics_json"] = res.diagnostics.to_json(out / "diagnostics.json")
    return paths


def load_analysis(folder: Path) -> AnalysisResult:
    """An :class:`AnalysisResult` from an analysis folder: the arrays of rdf.npz, the facts of analysis.json
    (format :data:`FORMAT_VERSION` only; another is refused by name) and diagnostics.json when there."""
    import json
    import zipfile

    from cellsim.core.files import recover_dir

    recover_dir(folder)
    npz, man = folder / "rdf.npz", folder / ANALYSIS_FILE
    if not npz.is_file():
        raise AnalysisError(f"{npz}: no analysis here; run `cellsim analyze TRAJECTORY -o {folder}` first")
    if not man.is_file():
        raise AnalysisError(f"{man}: missing (an analysis from an older cellsim?); run `cellsim analyze` again")
    try:
        info = json.loads(man.read_text())
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise AnalysisError(
            f"{folder}: damaged analysis files ({type(exc).__name__}: {exc}); run `cellsim analyze` again"
        ) from None
    if not isinstance(info, dict) or info.get("format") != FORMAT_TAG:
        raise AnalysisError(f"{man}: not a cellsim analysis manifest")
    if info.get("version") != FORMAT_VERSION:
        from cellsim.core.version import __version__

        raise AnalysisError(
            f"{man}: written by cellsim {info.get('cellsim_version', '?')} in analysis format "
            f"{info.get('version', '(none)')}; this cellsim ({__version__}) reads format {FORMAT_VERSION}; "
            "re-run `cellsim analyze`"
        )
    pairs = [str(p) for p in arrays["pairs"]]

    def by_pair(kind: str) -> dict[str, np.ndarray]:
        return {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(kind + "/")}

    settings = AnalysisSettings.model_validate(info["settings"])
    fr = {
        n: (arrays[f"frame/{n}_frac"], arrays[f"frame/{n}_cell"])
        for n in ("first", "last")
        if f"frame/{n}_frac" in arrays
    }
    keep = {k: v for k, v in info.items() if k not in ("settings", "baseline_bonds")}
    diagnostics = None
    if (folder / "diagnostics.json").is_file():
        from cellsim.analysis.diagnostics import Diagnostics

        try:
            diagnostics = Diagnostics.from_json(folder / "diagnostics.json")
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise AnalysisError(
                f"{folder / 'diagnostics.json'}: damaged ({type(exc).__name__}: {exc}); run `cellsim analyze` again"
            ) from None
    res = AnalysisResult(
        settings=settings,
        sources=[s["path"] for s in info.get("segments", [])],
        element_counts={k: int(v) for k, v in info["element_counts"].items()},
        r=arrays["r"],
        n_frames=int(info["frames"]),
        window_frames=arrays["window_frames"],
        volume=arrays["volume"],
        occupied_volume=arrays["occupied_volume"],
        hist=by_pair("hist"),
        bonds=by_pair("bonds"),
        cutoffs={k: float(v) for k, v in info["bond_cutoffs_used"].items()},
        g=by_pair("g"),
        n_per_atom=by_pair("n_per_atom"),
        cn=by_pair("cn"),
        baseline=by_pair("baseline"),
        baseline_bonds={k: int(v) for k, v in info.get("baseline_bonds", {}).items()},
        species=[str(x) for x in arrays.get("species", [])],
        first_frame=fr.get("first"),
        last_frame=fr.get("last"),
        environments=Environments.from_arrays(arrays),
        info=keep,
        diagnostics=diagnostics,
        out_dir=folder,
        replica_bonds=by_pair("replica_bonds"),
        replicas=int(info.get("replicas", 1)),
    )
    if set(pairs) != set(res.g):
        raise AnalysisError(f"{npz}: pairs {pairs} but arrays for {sorted(res.g)}; run `cellsim analyze` again")
    return res


def load_rdf(path: Path) -> dict[str, Any]:
    """Read rdf.npz back into plain arrays (``g``, ``n_per_atom``, ``cn``, ``hist`` as dicts by pair)."""
    with np.load(path) as z:
        out: dict[str, Any] = {k: z[k] for k in z.files if "/" not in k}
        for kind in ("g", "n_per_atom", "cn", "hist", "baseline"):
            out[kind] = {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(kind + "/")}
    out["pairs"] = [str(p) for p in out["pairs"]]
    return out
