"""Benchmark: time-resolved partial RDFs of a 304-atom slab XDATCAR, side by side with the usual tools.

Workload (issue 5): Li/P/S/Cl/In slab, 19.7 x 19.7 x 40 A slightly triclinic cell, 10,000 frames;
In-S, In-Cl, P-S partial RDFs in 250-frame windows, r < 8 A, 0.02 A bins.

* cellsim: ``cellsim analyze`` as a user runs it (a whole process: start-up, reading, RDFs, bonds per
  frame, peaks and all four output files), with its peak memory, at 10,000 and 100,000 frames.
* plain vectorised NumPy (minimum image), MDAnalysis InterRDF (universe from arrays), freud RDF: the same
  windows and pairs; trajectory read with cellsim's reader (MDAnalysis has no XDATCAR reader), reading
  not counted for them.
* pymatgen (Xdatcar + pymatgen-analysis-diffusion RadialDistributionFunction) and ASE (ase.io.read +
  ase.geometry.rdf.get_rdf): reading included; run on a prefix of the trajectory and scaled linearly to
  10,000 frames unless --full (they take ~10 minutes each at full length).

Run: ``make bench`` or ``.venv/bin/python bench/bench_analysis.py [--full]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
PAIRS = [("In", "S"), ("In", "Cl"), ("P", "S")]
WINDOW, RMAX, DR = 250, 8.0, 0.02
NBINS = round(RMAX / DR)


def make_files() -> tuple[Path, Path]:
    from cellsim.testing import jitter_frames, slab_model, xdatcar_text

    OUT.mkdir(exist_ok=True)
    f10, f100 = OUT / "XDATCAR_10k", OUT / "XDATCAR_100k"
    if not f10.exists():
        sy, co, lat, base = slab_model()
        with open(f10.with_suffix(".tmp"), "w") as fh:
            for k in range(0, 10_000, 500):
                txt = xdatcar_text(sy, co, lat, jitter_frames(base, lat, 500, seed=k), start=k + 1)
                fh.write(txt if k == 0 else txt[txt.index("Direct") :])
        f10.with_suffix(".tmp").rename(f10)
    if not f100.exists():
        text = f10.read_bytes()
        body = text[text.index(b"Direct") :]
        with open(f100.with_suffix(".tmp"), "wb") as fh:
            fh.write(text)
            for _ in range(9):
                fh.write(body)
        f100.with_suffix(".tmp").rename(f100)
    return f10, f100


_RUN_AND_REPORT = """
import sys
from cellsim.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exc:
    if exc.code:
        raise
for line in open("/proc/self/status"):
    if line.startswith("VmHWM"):
        print(int(line.split()[1]) / 1024, file=sys.stderr)
"""


def run_cellsim(path: Path) -> tuple[float, float]:
    """Wall time and peak RSS (MB) of ``cellsim analyze`` in its own process.

    The peak is the process's own VmHWM (reset by exec); rusage of a forked child would include the
    parent's memory at fork time.
    """
    out = OUT / f"analysis_{path.name}"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_AND_REPORT, "analyze", str(path), "--dt", "2", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
        check=True,
    )
    wall = time.perf_counter() - t0
    return wall, float(proc.stderr.strip().splitlines()[-1])


def load_all(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    from cellsim.io.xdatcar import read_trajectory

    hdr, frac, cells = read_trajectory(path)
    return hdr.species, frac, cells


def numpy_reference(species: list[str], frac: np.ndarray, cells: np.ndarray) -> float:
    sym = np.array(species)
    H = cells[0]
    t0 = time.perf_counter()
    for a, b in PAIRS:
        ia, ib = np.flatnonzero(sym == a), np.flatnonzero(sym == b)
        for w0 in range(0, len(frac), WINDOW):
            hist = np.zeros(NBINS, dtype=np.int64)
            for f0 in range(w0, min(w0 + WINDOW, len(frac)), 50):
                x = frac[f0 : min(f0 + 50, w0 + WINDOW)]
                d = x[:, None, ib, :] - x[:, ia, None, :]
                d -= np.rint(d)
                r = np.sqrt(np.einsum("...i,...i->...", d @ H, d @ H))
                hist += np.bincount((r[r < RMAX] / DR).astype(np.int64), minlength=NBINS)[:NBINS]
    return time.perf_counter() - t0


def mdanalysis(species: list[str], frac: np.ndarray, cells: np.ndarray) -> float:
    import MDAnalysis as mda
    from MDAnalysis.analysis.rdf import InterRDF
    from MDAnalysis.lib.mdamath import triclinic_box

    n = len(species)
    u = mda.Universe.empty(n, trajectory=True)
    u.add_TopologyAttr("name", species)
    pos = (frac @ cells[0]).astype(np.float32)
    dims = np.tile(triclinic_box(*cells[0]), (len(frac), 1))
    u.load_new(pos, dimensions=dims)
    t0 = time.perf_counter()
    for a, b in PAIRS:
        ga, gb = u.select_atoms(f"name {a}"), u.select_atoms(f"name {b}")
        for w0 in range(0, len(frac), WINDOW):
            InterRDF(ga, gb, nbins=NBINS, range=(0.0, RMAX)).run(start=w0, stop=w0 + WINDOW)
    return time.perf_counter() - t0


def freud_rdf(species: list[str], frac: np.ndarray, cells: np.ndarray) -> float:
    import freud

    sym = np.array(species)
    box = freud.box.Box.from_matrix(cells[0].T)
    pts = frac @ cells[0]
    pts = box.wrap(pts.reshape(-1, 3)).reshape(pts.shape).astype(np.float32)
    t0 = time.perf_counter()
    for a, b in PAIRS:
        ia, ib = np.flatnonzero(sym == a), np.flatnonzero(sym == b)
        for w0 in range(0, len(frac), WINDOW):
            rdf = freud.density.RDF(bins=NBINS, r_max=RMAX)
            for f in range(w0, min(w0 + WINDOW, len(frac))):
                rdf.compute(system=(box, pts[f, ib]), query_points=pts[f, ia], reset=False)
    return time.perf_counter() - t0


def prefix_file(path: Path, n_frames: int) -> Path:
    text = path.read_bytes()
    cut, pos = 0, 0
    for _ in range(n_frames + 1):
        pos = text.find(b"Direct", pos + 1)
        if pos < 0:
            pos = len(text)
            break
        cut = pos
    out = OUT / f"XDATCAR_{n_frames}"
    out.write_bytes(text[:cut])
    return out


def pymatgen_rdf(path: Path) -> float:
    from pymatgen.analysis.diffusion.aimd.rdf import RadialDistributionFunction
    from pymatgen.io.vasp import Xdatcar

    t0 = time.perf_counter()
    structures = Xdatcar(str(path)).structures
    sym = [s.specie.symbol for s in structures[0]]
    for a, b in PAIRS:
        ia = [k for k, s in enumerate(sym) if s == a]
        ib = [k for k, s in enumerate(sym) if s == b]
        for w0 in range(0, len(structures), WINDOW):
            RadialDistributionFunction(
                structures[w0 : w0 + WINDOW], indices=ib, reference_indices=ia, ngrid=NBINS + 1, rmax=RMAX, cell_range=1
            )
    return time.perf_counter() - t0


def ase_rdf(path: Path) -> float:
    from ase.geometry.rdf import get_rdf
    from ase.io import read

    t0 = time.perf_counter()
    images = read(path, index=":", format="vasp-xdatcar")
    for a, b in PAIRS:
        for w0 in range(0, len(images), WINDOW):
            get_rdf(images[w0 : w0 + WINDOW], RMAX, NBINS, elements=(a, b))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="run pymatgen and ASE on all 10,000 frames")
    parser.add_argument("--prefix", type=int, default=500, help="frames for pymatgen/ASE without --full")
    args = parser.parse_args()
    f10, f100 = make_files()
    rows: list[tuple[str, str, str]] = []
    print("running cellsim ...", file=sys.stderr)
    t10, m10 = run_cellsim(f10)
    t100, m100 = run_cellsim(f100)
    rows.append(("cellsim analyze (whole process, all outputs)", f"{t10:.2f} s", f"peak {m10:.0f} MB"))
    rows.append(("cellsim analyze, 100,000 frames", f"{t100:.2f} s", f"peak {m100:.0f} MB"))
    species, frac, cells = load_all(f10)
    for name, fn in (
        ("plain vectorised NumPy, minimum image", numpy_reference),
        ("MDAnalysis InterRDF (universe from arrays)", mdanalysis),
        ("freud RDF", freud_rdf),
    ):
        print(f"running {name} ...", file=sys.stderr)
        try:
            rows.append((name, f"{fn(species, frac, cells):.2f} s", "analysis only"))
        except ImportError as exc:
            rows.append((name, "n/a", f"not installed ({exc.name}); pip install -e .[bench]"))
    n = 10_000 if args.full else args.prefix
    src = f10 if args.full else prefix_file(f10, n)
    for name, fn2 in (
        ("pymatgen Xdatcar + pymatgen-analysis-diffusion", pymatgen_rdf),
        ("ASE read + ase.geometry.rdf.get_rdf", ase_rdf),
    ):
        print(f"running {name} on {n} frames ...", file=sys.stderr)
        try:
            sec = fn2(src)
        except ImportError as exc:
            rows.append((name, "n/a", f"not installed ({exc.name})"))
            continue
        note = "reading included" if args.full else f"reading included; {sec:.1f} s for {n} frames x {10_000 // n}"
        rows.append((name, f"{sec * 10_000 / n:.1f} s", note))
    width = max(len(r[0]) for r in rows)
    print(f"\n304-atom slab, In-S/In-Cl/P-S, {WINDOW}-frame windows, r < {RMAX} A, {DR} A bins; 10,000 frames")
    print(f"{'tool':<{width}}  {'time':>9}  note")
    for name, t, note in rows:
        print(f"{name:<{width}}  {t:>9}  {note}")


if __name__ == "__main__":
    main()
