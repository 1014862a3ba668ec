"""The analysis stage: stream a trajectory once, accumulate windowed partial RDFs and per-frame bonds.

Outputs (``write_outputs``): ``rdf.csv`` (pair, window, t_start_ps, t_end_ps, r, g, n_per_atom, cn),
``rdf.npz`` (the same as arrays, plus raw histograms and volumes), ``bonds.csv`` (time_ps, pair, count for
every frame) and ``peaks.json`` (peaks per window, peaks absent from the first window, first bond times).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cellsim.analysis.peaks import bond_events, new_peaks, window_peaks
from cellsim.analysis.rdf import block_images, normalise, occupied_fraction, pair_histogram
from cellsim.errors import CellsimError
from cellsim.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text
from cellsim.trajectory import iter_segments


class AnalysisError(CellsimError):
    """Analysis settings do not fit the trajectory."""


@dataclass
class AnalysisSettings:
    """What to compute. ``dt_fs`` is the time between stored frames (POTIM * NBLOCK)."""

    pairs: list[str]
    dt_fs: float
    window_ps: float = 0.5
    rmax: float = 8.0
    bin_width: float = 0.02
    bond_cutoffs: dict[str, float] = field(default_factory=dict)
    normalisation: str = "cell"

    @property
    def frames_per_window(self) -> int:
        return max(1, round(self.window_ps * 1000.0 / self.dt_fs))

    @property
    def nbins(self) -> int:
        return round(self.rmax / self.bin_width)


@dataclass
class AnalysisResult:
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
    # n_per_atom of the as-built structure (interface/POSCAR), the baseline for "new" peaks and bonds
    baseline: dict[str, np.ndarray] = field(default_factory=dict)
    baseline_bonds: dict[str, int] = field(default_factory=dict)

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


def default_cutoff(pair: str) -> float:
    """1.2 x the sum of covalent radii (ASE's table): a first-shell bond for pairs the study does not list."""
    from ase.data import atomic_numbers, covalent_radii

    a, b = pair.split("-")
    return round(1.2 * float(covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]]), 3)


def frame_interval(segment_dir: Path) -> float | None:
    """fs between frames of a segment: INCAR POTIM * NBLOCK (VASP), else engine.json (embedded engine)."""
    dt = frame_interval_from_incar(segment_dir / "INCAR")
    if dt is None and (segment_dir / "engine.json").is_file():
        import json

        info = json.loads((segment_dir / "engine.json").read_text())
        dt = float(info["timestep_fs"]) * int(info.get("nblock", 1))
    return dt


def read_incar_tags(incar: Path) -> dict[str, str]:
    """INCAR tags as raw strings (upper-case names), {} when the file is missing.

    A few tags do not justify importing pymatgen.io.vasp (0.9 s measured here, python -X importtime).
    """
    tags: dict[str, str] = {}
    if not incar.is_file():
        return tags
    for raw in incar.read_text(errors="replace").splitlines():
        for part in re.split(r"[;]", re.split(r"[#!]", raw, maxsplit=1)[0]):
            if "=" in part:
                k, v = part.split("=", 1)
                tags[k.strip().upper()] = v.strip()
    return tags


def frame_interval_from_incar(incar: Path) -> float | None:
    """POTIM * NBLOCK (fs) from an INCAR, or None when POTIM is absent."""
    tags = read_incar_tags(incar)
    if "POTIM" not in tags:
        return None
    try:
        potim = float(tags["POTIM"].split()[0])
        nblock = int(float(tags.get("NBLOCK", "1").split()[0]))
    except (ValueError, IndexError):
        raise AnalysisError(
            f"{incar}: POTIM/NBLOCK are not numbers ({tags.get('POTIM')!r}, {tags.get('NBLOCK')!r})"
        ) from None
    return potim * nblock


def analyze(
    paths: list[Path],
    settings: AnalysisSettings,
    species: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> AnalysisResult:
    """Stream the segments in ``paths`` (in order) and compute everything ``settings`` asks for.

    Memory: one block of frames plus one histogram per pair and window; never the whole trajectory.
    """
    s = settings
    if s.rmax <= 0 or s.bin_width <= 0 or s.nbins < 1:
        raise AnalysisError(f"rmax ({s.rmax}) and bin width ({s.bin_width}) must be positive, rmax > bin width")
    fpw = s.frames_per_window
    nb = s.nbins
    hist: dict[str, list[np.ndarray]] = {p: [] for p in s.pairs}
    bonds: dict[str, list[np.ndarray]] = {p: [] for p in s.pairs}
    window_frames: list[int] = []
    vol_sum: list[float] = []
    occ_sum: list[float] = []
    cutoffs = {p: s.bond_cutoffs.get(p, s.bond_cutoffs.get("-".join(reversed(p.split("-"))), 0.0)) for p in s.pairs}
    for p, c in cutoffs.items():
        if c <= 0:
            cutoffs[p] = default_cutoff(p)
        if cutoffs[p] > s.rmax:
            raise AnalysisError(f"bond cutoff of {p} ({cutoffs[p]} A) exceeds rmax ({s.rmax} A); raise rmax")
    index_cache: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {}
    element_counts: dict[str, int] = {}
    n_frames = 0
    for hdr, block in iter_segments(paths, species=species):
        if not index_cache:
            sym = np.array(hdr.species)
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
    )
    volume = res.occupied_volume if s.normalisation == "occupied" else res.volume
    for p in s.pairs:
        a, b = p.split("-")
        g, n, cn = [], [], []
        for w in range(len(wf)):
            gw, nw, cw = normalise(
                res.hist[p][w], int(wf[w]), element_counts[a], element_counts[b], a == b, float(volume[w]), s.bin_width
            )
            g.append(gw)
            n.append(nw)
            cn.append(cw)
        res.g[p], res.n_per_atom[p], res.cn[p] = np.array(g), np.array(n), np.array(cn)
    return res


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


def write_outputs(res: AnalysisResult, out_dir: Path) -> dict[str, Path]:
    """Write rdf.csv, rdf.npz, bonds.csv and peaks.json into ``out_dir`` (atomically)."""
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
    paths = {"rdf_csv": atomic_write_text(out_dir / "rdf.csv", buf.getvalue())}

    npz = io.BytesIO()
    arrays: dict[str, Any] = {
        "r": res.r,
        "t_start_ps": res.t_start,
        "t_end_ps": res.t_end,
        "window_frames": res.window_frames,
        "volume": res.volume,
        "occupied_volume": res.occupied_volume,
        "pairs": np.array(s.pairs),
    }
    for p, base in res.baseline.items():
        arrays[f"baseline/{p}"] = base
    for p in s.pairs:
        arrays[f"g/{p}"] = res.g[p]
        arrays[f"n_per_atom/{p}"] = res.n_per_atom[p]
        arrays[f"cn/{p}"] = res.cn[p]
        arrays[f"hist/{p}"] = res.hist[p]
    np.savez(npz, **arrays)
    paths["rdf_npz"] = atomic_write_bytes(out_dir / "rdf.npz", npz.getvalue())

    times = res.frame_times
    bbuf = io.StringIO()
    bbuf.write("# bonds: pairs closer than the cutoff in each frame; cutoffs (A): ")
    bbuf.write(", ".join(f"{p} {c}" for p, c in res.cutoffs.items()) + "\n")
    bbuf.write("time_ps,pair,count\n")
    t_txt = [f"{t:.6g}" for t in times]
    for p in s.pairs:
        bbuf.write("".join(f"{t},{p},{c}\n" for t, c in zip(t_txt, res.bonds[p].tolist(), strict=True)))
    paths["bonds_csv"] = atomic_write_text(out_dir / "bonds.csv", bbuf.getvalue())

    report = peaks_report(res)
    report["sources"] = res.sources
    report["element_counts"] = res.element_counts
    paths["peaks_json"] = atomic_write_json(out_dir / "peaks.json", report)
    return paths


def load_rdf(path: Path) -> dict[str, Any]:
    """Read rdf.npz back into plain arrays (``g``, ``n_per_atom``, ``cn``, ``hist`` as dicts by pair)."""
    with np.load(path) as z:
        out: dict[str, Any] = {k: z[k] for k in z.files if "/" not in k}
        for kind in ("g", "n_per_atom", "cn", "hist", "baseline"):
            out[kind] = {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(kind + "/")}
    out["pairs"] = [str(p) for p in out["pairs"]]
    return out
