"""POSCAR / CONTCAR: the species line (:func:`poscar_species`) and the whole structure (:func:`read_poscar`), read
without ASE or pymatgen (importing either costs the analysis ~1 s of start-up).

Layout (VASP 5): title, scale (a negative one is the cell volume in A^3), three lattice vectors, species, counts,
an optional ``Selective dynamics`` line, ``Direct`` or ``Cartesian``, then one line per atom (three numbers,
then perhaps flags or a species label, as pymatgen writes them). A VASP 4 file has no species line:
:func:`read_poscar` then refuses it (the caller knows the species from elsewhere).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cellsim.core.errors import CellsimError


class PoscarError(CellsimError):
    """A POSCAR cannot be read; the message names the file and the line."""


def poscar_species(poscar: Path) -> tuple[list[str], list[int]] | None:
    """Element symbols and atom counts from a VASP 5 POSCAR's species and counts lines, None when it has none."""
    lines = poscar.read_text(errors="replace").splitlines()
    if len(lines) < 7:
        return None
    names, counts = lines[5].split(), lines[6].split()
    if not names or not all(n.isalpha() for n in names):
        return None
    try:
        return names, [int(c) for c in counts[: len(names)]]
    except ValueError:
        return None


def read_poscar(poscar: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per-atom species, fractional coordinates wrapped into [0, 1) (N, 3) and the cell (rows a, b, c) of a
    VASP 5 POSCAR.

    Raises
    ------
    PoscarError
        The file breaks the layout of the module docstring (the message names the line).
    """
    lines = Path(poscar).read_text(errors="replace").splitlines()

    def fail(k: int, what: str) -> PoscarError:
        got = repr(lines[k].strip()) if k < len(lines) else "end of file"
        return PoscarError(f"{poscar}:{k + 1}: expected {what}, got {got}")

    try:
        scale = float(lines[1].split()[0])
    except (IndexError, ValueError):
        raise fail(1, "the scale factor") from None
    try:
        vecs = np.array([[float(x) for x in lines[k].split()[:3]] for k in (2, 3, 4)])
    except (IndexError, ValueError):
        raise fail(2, "three lattice vectors") from None
    if vecs.shape != (3, 3):
        raise fail(2, "three lattice vectors")
    got = poscar_species(Path(poscar))
    if got is None:
        raise fail(5, "a species line and the atom counts (VASP 5)")
    names, counts = got
    species = [n for n, c in zip(names, counts, strict=True) for _ in range(c)]
    k = 7
    if k < len(lines) and lines[k].strip()[:1] in ("S", "s"):
        k += 1  # Selective dynamics
    if k >= len(lines) or not lines[k].strip():
        raise fail(k, "Direct or Cartesian")
    cartesian = lines[k].strip()[0] in "CcKk"
    volume = abs(float(np.linalg.det(vecs)))
    factor = (-scale / volume) ** (1.0 / 3.0) if scale < 0 else scale
    cell = vecs * factor
    rows = lines[k + 1 : k + 1 + len(species)]
    if len(rows) < len(species):
        raise fail(k + 1 + len(rows), f"{len(species)} atom lines")
    try:
        pos = np.array([[float(x) for x in row.split()[:3]] for row in rows])
    except ValueError:
        raise fail(k + 1, "three coordinates per atom") from None
    if pos.shape != (len(species), 3) or not np.all(np.isfinite(pos)):
        raise fail(k + 1, "three finite coordinates per atom")
    frac = np.linalg.solve(cell.T, (pos * factor).T).T if cartesian else pos
    frac = frac % 1.0
    frac[frac >= 1.0] = 0.0
    return species, frac, cell
