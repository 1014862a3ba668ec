"""Benchmark: time-resolved partial RDFs of a 304-atom slab XDATCAR, side by side with the usual tools, in one run.

Workload (issue 23): Li/P/S/Cl/In slab, 19.7 x 19.7 x 40 A slightly triclinic cell, 10,000 and 100,000 frames
(dt 2 fs); In-S, In-Cl, P-S partial RDFs in 0.5 ps (250-frame) windows, r < 8 A, 0.02 A bins.

Every row is one whole process (start-up, imports, reading, the analysis, its outputs), timed from outside, with
the process's own peak RSS (VmHWM):

* ``cellsim analyze`` as a user runs it, every feature on (RDFs, bonds per frame, environments, diagnostics,
  peaks, all output files); the window from the default 0.5 ps (no --window: the run's length is read from the
  reader's index);
* cellsim RDF only: the same pass with the RDF accumulator alone (Python API, rdf outputs written);
* the file-read floor: cellsim's reader over the whole file, nothing else;
* plain vectorised NumPy (minimum image), MDAnalysis ``InterRDF`` (a memory universe per window) and freud
  ``density.RDF``: the same windows and pairs, frames read with cellsim's reader one window at a time (so
  memory stays flat for them too); their own analysis time is a separate column.

MDAnalysis and freud come with the ``bench`` extra (``pip install -e ".[bench]"``); a tool that is not installed
is a row saying so. Results go to ``bench/out/bench_analysis.csv`` (``--csv``), which docs/performance.md quotes.

cellsim's bytecode and C kernels are compiled first (as ``pip install`` and any earlier analysis leave them). Every
tool runs once a round, in turn (``--repeat`` rounds at 10,000 frames, default 3; ``--big-repeat`` beyond, default
1). A row gives the median whole-process time with its min-max, and x NumPy is the median of the rounds' ratios to
the NumPy process of the same round: on a shared machine a slow spell then hits both sides.

Run: ``make bench`` or ``.venv/bin/python bench/bench_analysis.py [--sizes 10000,100000] [--tools ...]``.
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
PAIRS = "In-S,In-Cl,P-S"
DT_FS, WINDOW_FRAMES, RMAX, DR = 2.0, 250, 8.0, 0.02
TOOLS = ("cellsim", "cellsim-rdf", "read", "numpy", "mdanalysis", "freud")
LABELS = {
    "cellsim": "cellsim analyze, all features (CLI)",
    "cellsim-rdf": "cellsim, RDF + bonds only (API)",
    "read": "file-read floor (cellsim reader only)",
    "numpy": "plain vectorised NumPy, minimum image",
    "mdanalysis": "MDAnalysis InterRDF",
    "freud": "freud density.RDF",
}


def _renumber(m: re.Match[bytes], shift: int) -> bytes:
    return b"Direct configuration=%6d" % (int(m.group(1)) + shift)


def make_files(sizes: list[int]) -> dict[int, Path]:
    """The benchmark XDATCARs: 10,000 frames of a jittered slab; longer ones repeat its frames, renumbered."""
    from cellsim.testing import jitter_frames, slab_model, xdatcar_text

    OUT.mkdir(exist_ok=True)
    f10 = OUT / "XDATCAR_10k"
    if not f10.exists():
        sy, co, lat, base = slab_model()
        with open(f10.with_suffix(".tmp"), "w") as fh:
            for k in range(0, 10_000, 500):
                txt = xdatcar_text(sy, co, lat, jitter_frames(base, lat, 500, seed=k), start=k + 1)
                fh.write(txt if k == 0 else txt[txt.index("Direct") :])
        f10.with_suffix(".tmp").rename(f10)
    files = {10_000: f10}
    text = f10.read_bytes()
    start = text.index(b"Direct")
    head, body = text[:start], text[start:]
    config = re.compile(rb"Direct configuration= *(\d+)")
    for n in sizes:
        if n in files:
            continue
        if n % 10_000:
            raise SystemExit(f"--sizes: {n} is not a multiple of 10,000")
        path = OUT / f"XDATCAR_{n // 1000}k_v2"  # v2: configuration numbers continue across the copies
        if not path.exists():
            with open(path.with_suffix(".tmp"), "wb") as fh:
                fh.write(head)
                for copy in range(n // 10_000):
                    fh.write(config.sub(functools.partial(_renumber, shift=copy * 10_000), body))
            path.with_suffix(".tmp").rename(path)
        files[n] = path
    return {n: files[n] for n in sizes}


# each tool runs in its own process: the peak memory is that process's, the time includes its start-up
_PEAK = """
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            print("PEAK_MB", int(line.split()[1]) / 1024, file=sys.stderr)
"""

_CELLSIM = (
    "import sys\n"
    + _PEAK
    + """
from cellsim.cli import console_main  # the console script's entry point, as a user runs it
try:
    console_main()  # reads sys.argv[1:], the arguments after -c CODE
except SystemExit as exc:
    if exc.code:
        raise
_peak()
"""
)

_CELLSIM_RDF = (
    "import sys, time\n"
    + _PEAK
    + """
from pathlib import Path
from cellsim.analysis.analyze import AnalysisSettings, analyze
path, out = Path(sys.argv[1]), Path(sys.argv[2])
s = AnalysisSettings(pairs=sys.argv[3].split(","), dt_fs=float(sys.argv[4]), window_ps=float(sys.argv[5]),
                     rmax=float(sys.argv[6]), bin_width=float(sys.argv[7]))
t0 = time.perf_counter()
res = analyze([path], s, environments=False)
res.save(out)
print("ANALYSIS_S", time.perf_counter() - t0, file=sys.stderr)
_peak()
"""
)

_READ = (
    "import sys, time\n"
    + _PEAK
    + """
from cellsim.io.xdatcar import iter_frames
t0 = time.perf_counter()
n = sum(len(b) for b in iter_frames(sys.argv[1]))
print("ANALYSIS_S", time.perf_counter() - t0, file=sys.stderr)
print("FRAMES", n, file=sys.stderr)
_peak()
"""
)

# the comparison tools: frames streamed one window at a time with cellsim's reader (MDAnalysis has no XDATCAR
# reader); the analysis time counts the tool's own work only
_OTHERS = (
    "import sys, time\n"
    + _PEAK
    + """
import numpy as np
from cellsim.io.xdatcar import iter_frames, read_header
tool, path, pairs = sys.argv[1], sys.argv[2], sys.argv[3]
window, rmax, dr = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
nbins = round(rmax / dr)
sym = np.array(read_header(path).species)
pairs = [p.split("-") for p in pairs.split(",")]

def windows():
    buf, n = [], 0
    for b in iter_frames(path, block_frames=window):
        buf.append(b.frac); n += len(b)
        while n >= window:
            allf = np.concatenate(buf)
            yield allf[:window], b.cells[0]
            rest = allf[window:]
            buf, n = ([rest] if len(rest) else []), len(rest)
    if n:
        yield np.concatenate(buf), b.cells[0]

def numpy_window(frac, H):
    for a, b in pairs:
        ia, ib = np.flatnonzero(sym == a), np.flatnonzero(sym == b)
        hist = np.zeros(nbins, dtype=np.int64)
        for f0 in range(0, len(frac), 50):
            x = frac[f0 : f0 + 50]
            d = x[:, None, ib, :] - x[:, ia, None, :]
            d -= np.rint(d)
            v = d @ H
            r = np.sqrt(np.einsum("...i,...i->...", v, v))
            hist += np.bincount((r[r < rmax] / dr).astype(np.int64), minlength=nbins)[:nbins]

def mda_window(frac, H):
    import MDAnalysis as mda
    from MDAnalysis.analysis.rdf import InterRDF
    from MDAnalysis.lib.mdamath import triclinic_box
    u = mda.Universe.empty(len(sym), trajectory=True)
    u.add_TopologyAttr("name", list(sym))
    u.load_new((frac @ H).astype(np.float32), dimensions=np.tile(triclinic_box(*H), (len(frac), 1)))
    for a, b in pairs:
        InterRDF(u.select_atoms(f"name {a}"), u.select_atoms(f"name {b}"), nbins=nbins, range=(0.0, rmax)).run()

def freud_window(frac, H):
    import freud
    box = freud.box.Box.from_matrix(H.T)
    pts = box.wrap((frac @ H).reshape(-1, 3)).reshape(frac.shape).astype(np.float32)
    for a, b in pairs:
        ia, ib = np.flatnonzero(sym == a), np.flatnonzero(sym == b)
        rdf = freud.density.RDF(bins=nbins, r_max=rmax)
        for f in range(len(frac)):
            rdf.compute(system=(box, pts[f, ib]), query_points=pts[f, ia], reset=False)

fn = {"numpy": numpy_window, "mdanalysis": mda_window, "freud": freud_window}[tool]
if tool == "mdanalysis":
    import MDAnalysis  # noqa: F401  (an ImportError before any work)
if tool == "freud":
    import freud  # noqa: F401
spent = 0.0
for frac, H in windows():
    t0 = time.perf_counter()
    fn(frac, H)
    spent += time.perf_counter() - t0
print("ANALYSIS_S", spent, file=sys.stderr)
_peak()
"""
)


def run_tool(tool: str, path: Path, timeout: float) -> dict[str, object]:
    """One whole process: wall seconds (from outside), its own analysis seconds and peak RSS (MB)."""
    py = sys.executable
    window_ps = WINDOW_FRAMES * DT_FS / 1000.0
    if tool == "cellsim":
        out = OUT / f"analysis_{path.name}"
        cmd = [py, "-c", _CELLSIM, "analyze", str(path), "--dt", str(DT_FS), "--pairs", PAIRS, "-o", str(out)]
    elif tool == "cellsim-rdf":
        out = OUT / f"analysis_rdf_{path.name}"
        cmd = [py, "-c", _CELLSIM_RDF, str(path), str(out), PAIRS, str(DT_FS), str(window_ps), str(RMAX), str(DR)]
    elif tool == "read":
        cmd = [py, "-c", _READ, str(path)]
    else:
        cmd = [py, "-c", _OTHERS, tool, str(path), PAIRS, str(WINDOW_FRAMES), str(RMAX), str(DR)]
    env = {**os.environ, "COLUMNS": "120", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"wall_s": None, "note": f"over the {timeout:g} s limit (--timeout)"}
    wall = time.perf_counter() - t0
    err = proc.stderr
    if proc.returncode:
        last = (err.strip().splitlines() or ["?"])[-1]
        missing = re.search(r"No module named '([^']+)'", err)
        note = f"not installed ({missing.group(1)}); pip install -e .[bench]" if missing else f"failed: {last[:100]}"
        return {"wall_s": None, "note": note}
    found = dict(re.findall(r"^(PEAK_MB|ANALYSIS_S|FRAMES) (\S+)$", err, re.M))
    return {
        "wall_s": wall,
        "analysis_s": float(found["ANALYSIS_S"]) if "ANALYSIS_S" in found else None,
        "peak_mb": float(found["PEAK_MB"]) if "PEAK_MB" in found else None,
        "note": "",
    }


def _compile_ahead() -> None:
    """cellsim's modules compiled to bytecode, as an installed package has them: with PYTHONDONTWRITEBYTECODE set
    (or a read-only tree) an edited module would be compiled again by every process, ~0.07 s of each start; and
    the C kernels built into their cache, as any earlier analysis on the machine leaves them (on a fresh machine
    the first timed round built them: 1.27 s against 0.50-0.53 s for the four rounds after it)."""
    import compileall

    import cellsim
    from cellsim.core import _native

    compileall.compile_dir(str(Path(cellsim.__file__).parent), quiet=1)
    _native.load()


def _num(v: object) -> float | None:
    return v if isinstance(v, float) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="frame counts, multiples of 10,000")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"subset of {','.join(TOOLS)}")
    parser.add_argument("--big-tools", default=",".join(TOOLS), help="tools run beyond 10,000 frames")
    parser.add_argument("--repeat", type=int, default=3, help="rounds at 10,000 frames (every tool once a round)")
    parser.add_argument("--big-repeat", type=int, default=1, help="rounds beyond 10,000 frames")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per process at most")
    parser.add_argument("--csv", type=Path, default=OUT / "bench_analysis.csv")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    tools = [t for t in args.tools.split(",") if t]
    big = set(args.big_tools.split(","))
    files = make_files(sizes)
    _compile_ahead()
    rows: list[dict[str, object]] = []
    fields = [
        "tool", "label", "frames", "runs", "wall_s", "wall_min_s", "wall_max_s", "analysis_s", "peak_mb",
        "vs_numpy", "note",
    ]  # fmt: skip
    args.csv.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        """The CSV so far (rewritten after every round: a long run cut short keeps what it measured)."""
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in r.items() if k in fields})

    def summarise(n: int, runs: dict[str, list[dict[str, object]]]) -> list[dict[str, object]]:
        """One row per tool: median, min and max wall over the rounds; x NumPy is the median of the rounds'
        ratios to the NumPy process of the same round (paired: a slow spell of the machine hits both)."""
        out = []
        ref = runs.get("numpy", [])
        for tool, rs in runs.items():
            ok = [r for r in rs if isinstance(r["wall_s"], float)]
            row: dict[str, object] = {"tool": tool, "label": LABELS[tool], "frames": n, "runs": len(ok)}
            if not ok:
                out.append({**row, "wall_s": None, "note": rs[-1]["note"]})
                continue
            walls = [w for r in ok if (w := _num(r["wall_s"])) is not None]
            own = [a for r in ok if (a := _num(r.get("analysis_s"))) is not None]
            peaks = [m for r in ok if (m := _num(r.get("peak_mb"))) is not None]
            ratios = [
                x / y
                for a, b in zip(rs, ref, strict=False)
                if (x := _num(a["wall_s"])) is not None and (y := _num(b["wall_s"])) is not None
            ]
            # Rounded as the CSV stores them, so the printed table, the CSV and the docs quoting it agree (an
            # unrounded 0.2749 printed as 0.27 while the CSV's 0.275 reads as 0.28).
            row.update(
                wall_s=round(statistics.median(walls), 3),
                wall_min_s=round(min(walls), 3),
                wall_max_s=round(max(walls), 3),
                analysis_s=round(statistics.median(own), 3) if own else None,
                peak_mb=round(max(peaks), 3) if peaks else None,
                vs_numpy=round(statistics.median(ratios), 3) if ratios else None,
                note="",
            )
            out.append(row)
        return out

    for n, path in files.items():
        run_now = [t for t in tools if n <= 10_000 or t in big]
        skipped = {t: {"tool": t, "label": LABELS[t], "frames": n, "wall_s": None, "note": "not run"} for t in tools}
        rounds = args.repeat if n <= 10_000 else args.big_repeat
        runs: dict[str, list[dict[str, object]]] = {t: [] for t in run_now}
        done = len(rows)
        for k in range(max(1, rounds)):
            for tool in run_now:  # every tool once a round, in turn
                print(f"round {k + 1}/{rounds}: {tool} on {n} frames ...", file=sys.stderr, flush=True)
                runs[tool].append(run_tool(tool, path, args.timeout))
                print(f"  {runs[tool][-1]}", file=sys.stderr, flush=True)
            measured = {str(r["tool"]): r for r in summarise(n, runs)}
            rows[done:] = [measured.get(t, skipped[t]) for t in tools]  # in the tools' order
            save()
    save()
    print(
        f"\n304-atom slab, {PAIRS}, {WINDOW_FRAMES}-frame ({WINDOW_FRAMES * DT_FS / 1000:g} ps) windows, "
        f"r < {RMAX} A, {DR} A bins; whole processes (start-up included), peak = the process's VmHWM"
    )
    width = max(len(str(r["label"])) for r in rows)
    print(
        f"{'tool':<{width}}  {'frames':>7}  {'runs':>4}  {'whole s':>8}  {'min-max s':>11}  {'own s':>7}"
        f"  {'peak MB':>7}  {'x NumPy':>7}  note"
    )

    def fmt(v: object, spec: str) -> str:
        return format(v, spec) if isinstance(v, float) else "-"

    def spread(r: dict[str, object]) -> str:
        lo, hi = r.get("wall_min_s"), r.get("wall_max_s")
        return f"{lo:.2f}-{hi:.2f}" if isinstance(lo, float) and isinstance(hi, float) else "-"

    for r in rows:
        print(
            f"{r['label']!s:<{width}}  {r['frames']:>7}  {r.get('runs', 0):>4}  {fmt(r['wall_s'], '8.2f')}"
            f"  {spread(r):>11}"
            f"  {fmt(r.get('analysis_s'), '7.2f')}  {fmt(r.get('peak_mb'), '7.0f')}  {fmt(r.get('vs_numpy'), '7.2f')}"
            f"  {r['note']}"
        )
    print(f"\nwritten to {args.csv}")


if __name__ == "__main__":
    main()
