"""VASP-format output written by the embedded engine, so every later stage reads MLIP and VASP runs alike.

XDATCAR: VASP 5 layout (title, scale 1, lattice, species, counts; then ``Direct configuration=`` + one
``%12.8f`` line per atom for each stored frame). OSZICAR: one line per MD step in VASP's MD format
(``N T= ... E= ... F= ... E0= ... EK= ...``), energies in eV. CONTCAR: POSCAR of the last step with a
Cartesian velocity block in A/fs, as VASP writes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def xdatcar_header(symbols: list[str], counts: list[int], lattice: np.ndarray, title: str) -> str:
    vecs = "".join(f" {v[0]:12.6f}{v[1]:12.6f}{v[2]:12.6f}\n" for v in lattice)
    return (
        f"{title}\n           1\n{vecs}"
        + "".join(f"{s:>5}" for s in symbols)
        + "\n"
        + "".join(f"{c:6d}" for c in counts)
        + "\n"
    )


def xdatcar_frame(index: int, frac: np.ndarray) -> str:
    """One configuration block; ``frac`` (natoms, 3) fractional coordinates."""
    return f"Direct configuration={index:6d}\n" + ("%12.8f%12.8f%12.8f\n" * len(frac)) % tuple(frac.ravel())


def oszicar_line(step: int, temperature: float, e_total: float, e_pot: float, e_kin: float) -> str:
    return (
        f"{step:6d} T= {temperature:8.2f} E= {e_total:.8E} F= {e_pot:.8E} E0= {e_pot:.8E} "
        f" EK= {e_kin:.5E} SP= 0.00E+00 SK= 0.00E+00\n"
    )


def species_blocks(symbols: list[str]) -> tuple[list[str], list[int]]:
    """Run-length groups of a species list in order (VASP's species and counts lines)."""
    names: list[str] = []
    counts: list[int] = []
    for s in symbols:
        if names and names[-1] == s:
            counts[-1] += 1
        else:
            names.append(s)
            counts.append(1)
    return names, counts


def xdatcar_text(species: list[str], frac: np.ndarray, cells: np.ndarray, title: str) -> str:
    """An XDATCAR of ``frac`` (frames, atoms, 3) in ``cells`` (frames, 3, 3): one header when the cell stays
    the same, else a cell block before every frame (VASP's layout for a changing cell)."""
    names, counts = species_blocks(species)
    cells = np.asarray(cells, dtype=float)
    constant = bool(len(cells) == 0 or np.all(cells == cells[0]))
    parts = [xdatcar_header(names, counts, cells[0], title)] if constant and len(cells) else []
    for k, (f, cell) in enumerate(zip(frac, cells, strict=True), 1):
        if not constant:
            parts.append(xdatcar_header(names, counts, cell, title))
        parts.append(xdatcar_frame(k, np.asarray(f)))
    return "".join(parts)


def write_xdatcar(path: Path, species: list[str], frac: np.ndarray, cells: np.ndarray, title: str) -> Path:
    """Write :func:`xdatcar_text` to ``path`` atomically (the trajectory writer of :mod:`cellsim.io.registry`)."""
    from cellsim.core.files import atomic_write_text

    return atomic_write_text(Path(path), xdatcar_text(species, frac, cells, title))
