"""Synthetic trajectories for tests and benchmarks: an XDATCAR writer and a slab model with jitter.

Real MD output comes from VASP or the embedded engine; these helpers make files with known content
(positions, cells, quirks) so the readers and the analysis can be checked against exact answers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def xdatcar_text(
    symbols: list[str],
    counts: list[int],
    lattice: np.ndarray,
    frames: np.ndarray,
    title: str = "cellsim synthetic",
    cells: np.ndarray | None = None,
    vasp4: bool = False,
    start: int = 1,
) -> str:
    """XDATCAR text (VASP 5 layout unless ``vasp4``); ``cells`` (n, 3, 3) writes a cell block per frame."""
    from cellsim.md.vaspfiles import xdatcar_frame, xdatcar_header

    def header(lat: np.ndarray) -> str:
        text = xdatcar_header(symbols, counts, lat, title)
        if vasp4:  # VASP 4: no species line
            lines = text.splitlines(keepends=True)
            text = "".join(lines[:5] + lines[6:])
        return text

    out = [] if cells is not None else [header(lattice)]
    for k, frame in enumerate(frames):
        if cells is not None:
            out.append(header(cells[k]))
        out.append(xdatcar_frame(start + k, frame))
    return "".join(out)


def write_xdatcar(path: Path, *args: object, **kwargs: object) -> Path:
    """Write :func:`xdatcar_text` to ``path``."""
    path.write_text(xdatcar_text(*args, **kwargs))  # type: ignore[arg-type]
    return path


def slab_model(seed: int = 0) -> tuple[list[str], list[int], np.ndarray, np.ndarray]:
    """A 304-atom Li/P/S/Cl/In slab in a 19.7 x 19.7 x 40 A, slightly triclinic cell.

    In fills the bottom (z 5-15 A), the electrolyte elements the top (z 17-33 A); positions on a jittered
    grid so no two atoms overlap. Returns symbols, counts, lattice (rows) and fractional positions.
    """
    rng = np.random.default_rng(seed)
    symbols, counts = ["Li", "P", "S", "Cl", "In"], [96, 16, 80, 16, 96]
    lattice = np.array([[19.7, 0.0, 0.0], [0.35, 19.7, 0.0], [0.4, -0.3, 40.0]])

    def grid(n: int, z0: float, z1: float) -> np.ndarray:
        spacing = np.cbrt(19.7 * 19.7 * (z1 - z0) / n)
        side = int(np.ceil(19.7 / spacing))
        nz = int(np.ceil(n / side**2))
        pts = np.array([(i, j, k) for k in range(nz) for i in range(side) for j in range(side)], dtype=float)[:n]
        frac = np.column_stack(
            [(pts[:, 0] + 0.5) / side, (pts[:, 1] + 0.5) / side, (z0 + (pts[:, 2] + 0.5) * (z1 - z0) / nz) / 40.0]
        )
        return frac + rng.normal(0, 0.004, frac.shape)

    elec = grid(208, 17.5, 33.0)
    rng.shuffle(elec)
    metal = grid(96, 5.0, 15.0)
    frac = np.concatenate([elec[:96], elec[96:112], elec[112:192], elec[192:208], metal])
    return symbols, counts, lattice, frac % 1.0


def jitter_frames(
    base: np.ndarray, lattice: np.ndarray, n_frames: int, amplitude: float = 0.1, seed: int = 1
) -> np.ndarray:
    """``n_frames`` copies of ``base`` (fractional) with Gaussian thermal displacements of ``amplitude`` A."""
    rng = np.random.default_rng(seed)
    inv = np.linalg.inv(lattice)
    disp = rng.normal(0.0, amplitude, (n_frames, *base.shape)) @ inv
    return (base[None] + disp) % 1.0
