"""Synthetic trajectories with known content, for controls, tests and benchmarks.

Public (``cellsim.testing``): users check the analysis and the matching on files whose answer is known
before trusting them on their own data (a trajectory where nothing reacts must give no product).

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
    from cellsim.io.vaspfiles import xdatcar_frame, xdatcar_header

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


def reaction_run(
    run_dir: Path,
    n_frames: int = 1000,
    react_at: int | None = 500,
    in_s: tuple[float, ...] = (2.58, 2.58),
    in_cl: tuple[float, ...] = (2.92, 3.17),
    noise: float = 0.04,
    seed: int = 0,
    late_noise: float | None = None,
    split_at: int | None = None,
) -> Path:
    """A run directory whose trajectory shows In-S and In-Cl bonds forming at chosen distances.

    Eight In atoms in a 24 A cubic box; around each, S atoms at ``in_s`` and Cl atoms at ``in_cl`` (A) from
    frame ``react_at`` on, 5.5 A away before (``react_at=None``: never). ``late_noise`` instead keeps
    the S and Cl where they start (at ``in_s``/``in_cl``) and only changes the thermal noise from
    ``react_at`` on: bonds that broaden without forming. ``split_at = k``: only the first ``k`` In atoms
    bind their S and only the others their Cl (the unbound ones stay 5.5 A away): a slab where some In
    become sulfide-like and others chloride-like. Writes ``study.yaml`` (the bundled
    Li6PS5Cl/In study, renamed) and the first segment's XDATCAR with an INCAR (POTIM 2, NBLOCK 1).
    """
    from cellsim.config.study import load_study

    rng = np.random.default_rng(seed)
    L = 24.0
    cell = np.diag([L, L, L])
    centres = np.array([[i, j, k] for i in (3.0, 15.0) for j in (3.0, 15.0) for k in (3.0, 15.0)])
    dirs = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)
    n_s, n_cl = len(in_s), len(in_cl)
    frames = []
    for f in range(n_frames):
        late = react_at is not None and f >= react_at
        reacted = late or late_noise is not None
        s_pos, cl_pos = [], []
        for i, c in enumerate(centres):
            bind_s = reacted and (split_at is None or i < split_at)
            bind_cl = reacted and (split_at is None or i >= split_at)
            for m, d in enumerate(in_s):
                s_pos.append(c + dirs[m] * (d if bind_s else 5.5))
            for m, d in enumerate(in_cl):
                # split: S and Cl bind to different In, so the Cl may take the S's directions (farther out when
                # unbound, so an unbound S and a bound Cl never meet)
                k = m if split_at is not None else n_s + m
                cl_pos.append(c + dirs[k % 6] * (d if bind_cl else 5.5 if split_at is None else 7.5))
        pos = np.vstack([centres, np.array(s_pos).reshape(-1, 3), np.array(cl_pos).reshape(-1, 3)])
        pos = pos + rng.normal(0.0, late_noise if (late and late_noise is not None) else noise, pos.shape)
        frames.append((pos / L) % 1.0)
    from cellsim.config.rundir import RunDir

    rd = RunDir(run_dir)
    seg = rd.segment_dir(0)
    seg.mkdir(parents=True, exist_ok=True)
    kinds = [("In", len(centres)), ("S", n_s * len(centres)), ("Cl", n_cl * len(centres))]
    symbols, counts = [k for k, n in kinds if n], [n for _, n in kinds if n]
    write_xdatcar(seg / "XDATCAR", symbols, counts, cell, np.array(frames))
    (seg / "INCAR").write_text("POTIM = 2.0\nNBLOCK = 1\n")
    study = load_study("li6ps5cl_in")
    study.name = "synthetic_reaction"
    study.analysis.pairs = [f"In-{el}" for el in symbols[1:]]
    rd.study_file.write_text(study.to_yaml())
    return run_dir


def write_vasprun(
    path: Path,
    symbols: list[str],
    counts: list[int],
    lattice: np.ndarray,
    frames: np.ndarray,
    potim: float = 2.0,
    tebeg: float = 300.0,
    truncate: bool = False,
) -> Path:
    """A minimal vasprun.xml (the elements cellsim and pymatgen read: incar, atominfo, one structure per
    ionic step); ``truncate`` cuts the file inside the last step, as a run killed mid-write leaves it."""

    def crystal(cell: np.ndarray) -> str:
        rows = "".join(f"    <v> {a:16.8f} {b:16.8f} {c:16.8f} </v>\n" for a, b, c in cell)
        return f'   <crystal>\n    <varray name="basis" >\n{rows}    </varray>\n   </crystal>\n'

    def structure(cell: np.ndarray, frac: np.ndarray, name: str = "") -> str:
        rows = "".join(f"    <v> {a:16.8f} {b:16.8f} {c:16.8f} </v>\n" for a, b, c in frac)
        attr = f' name="{name}"' if name else ""
        return (
            f'  <structure{attr} >\n{crystal(cell)}   <varray name="positions" >\n{rows}   </varray>\n  </structure>\n'
        )

    species = [s for s, c in zip(symbols, counts, strict=True) for _ in range(c)]
    atoms = "".join(f"    <rc><c>{s:2s}</c><c>{symbols.index(s) + 1:4d}</c></rc>\n" for s in species)
    parts = [
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<modeling>\n',
        ' <generator>\n  <i name="program" type="string">vasp </i>\n </generator>\n',
        f' <incar>\n  <i name="IBRION" type="int">     0</i>\n  <i name="POTIM">{potim:16.8f}</i>\n'
        f'  <i name="TEBEG">{tebeg:16.8f}</i>\n </incar>\n',
        f" <atominfo>\n  <atoms>{len(species)}</atoms>\n  <types>{len(symbols)}</types>\n"
        '  <array name="atoms" >\n   <dimension dim="1">ion</dimension>\n'
        '   <field type="string">element</field>\n   <field type="int">atomtype</field>\n'
        f"   <set>\n{atoms}   </set>\n  </array>\n </atominfo>\n",
        structure(lattice, frames[0], "initialpos"),
    ]
    for k, frac in enumerate(frames):
        parts.append(
            f" <calculation>\n{structure(lattice, frac)}  <energy>\n"
            f'   <i name="e_fr_energy">{-100.0 - 0.01 * k:16.8f}</i>\n  </energy>\n </calculation>\n'
        )
    text = "".join(parts) + ' <structure name="finalpos" >\n' + crystal(lattice) + " </structure>\n</modeling>\n"
    if truncate:
        text = text[: text.rfind("<calculation>") + 200]
    path.write_text(text)
    return path


def replica_run(run_dir: Path, react_ats: list[int | None], n_frames: int = 600, **kw: object) -> Path:
    """A run directory with one replica per entry of ``react_ats`` (md/replica-NN), each a
    :func:`reaction_run` whose bonds form at that frame (None: never): replicas with known differences."""
    import shutil
    import tempfile

    from cellsim.config.rundir import RunDir

    rd = RunDir(run_dir)
    for k, at in enumerate(react_ats):
        with tempfile.TemporaryDirectory() as tmp:
            src = reaction_run(Path(tmp) / "r", n_frames=n_frames, react_at=at, seed=k, **kw)  # type: ignore[arg-type]
            seg = rd.segment_dir(0, replica=k)
            seg.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(RunDir(src).segment_dir(0), seg)
            if not rd.study_file.exists():
                shutil.copy(RunDir(src).study_file, rd.study_file)
    return run_dir
