"""Figure for docs/engine.md: the In slab's RMS displacement by atomic plane over time, one panel per run.

Run from the repository root: ``.venv/bin/python scripts/fit_figures.py OUT.png LABEL=RUN_DIR ...``. Each run
directory is a `cellsim run`/`cellsim demo` of the Li6PS5Cl/In interface; displacements are about the In slab's
centre of mass, from each atom's mean position over the first 0.1 ps, sampled every 10 frames.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from ase.io import read
from matplotlib.figure import Figure

from cellsim.core.files import atomic_write_bytes


def plane_series(run: Path, metal: str = "In", every: int = 10) -> tuple[np.ndarray, list[np.ndarray], float]:
    frames = []
    for seg in sorted((run / "md").glob("seg-*/XDATCAR")):
        frames += read(seg, index=f"::{every}")
    sym = np.array(frames[0].get_chemical_symbols())
    sel = sym == metal
    s = [frames[0].get_scaled_positions(wrap=False)[sel]]
    for f in frames[1:]:
        d = f.get_scaled_positions(wrap=False)[sel] - s[-1]
        s.append(s[-1] + d - np.round(d))
    cart = np.array(s) @ frames[0].cell.array
    cart -= cart.mean(axis=1, keepdims=True)
    n0 = max(1, round(100 / (2 * every)))  # 0.1 ps at 2 fs per frame
    ref = cart[:n0].mean(axis=0)
    z = ref[:, 2]
    order = np.argsort(z)
    gaps = np.diff(z[order])
    cuts = np.flatnonzero(gaps > 1.0)
    planes = np.split(order, cuts + 1)
    t = np.arange(len(cart)) * every * 2 / 1000
    disp2 = ((cart - ref) ** 2).sum(axis=2)
    d_nn = 3.15
    return t, [np.sqrt(disp2[:, p].mean(axis=1)) for p in planes], 0.15 * d_nn


def main() -> None:
    out = Path(sys.argv[1])
    runs = [a.split("=", 1) for a in sys.argv[2:]]
    fig = Figure(figsize=(4.2 * len(runs), 3.6))
    axes = fig.subplots(1, len(runs), sharey=True)
    for ax, (label, run) in zip(np.atleast_1d(axes), runs, strict=True):
        t, series, limit = plane_series(Path(run))
        for k, y in enumerate(series):
            name = "vacuum side" if k == 0 else ("interface" if k == len(series) - 1 else None)
            ax.plot(t, y, lw=1.2, label=f"plane {k + 1}" + (f" ({name})" if name else ""))
        ax.axhline(limit, color="k", ls="--", lw=0.8, label="Lindemann 0.15 x NN")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("time (ps)")
    np.atleast_1d(axes)[0].set_ylabel("In RMS displacement (A)")
    np.atleast_1d(axes)[-1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(out, buf.getvalue())
    print(out)


if __name__ == "__main__":
    main()
