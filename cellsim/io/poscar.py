"""POSCAR / CONTCAR: the species line (:func:`poscar_species`) and the whole structure (:func:`read_poscar`), read
without ASE or pymatgen (importing either costs the analysis ~1 s of start-up), and the structure written
(:func:`poscar_text`, :func:`write_poscar`: the header of an XDATCAR, then ``Direct`` and ``%.8f`` coordinates).

Layout (VASP 5): title, scale (a negative one is the cell volume in A^3), three lattice vectors, species, counts,
an optional ``Selective dynamics`` line, ``Direct`` or ``Cartesian``, then one line per atom (three numbers,
then perhaps flags or a species label, as pymatgen writes them). A VASP 4 file has no species line:
:func:`read_poscar` then refuses it (the caller knows the species from elsewhere). A species name may carry
the POTCAR's suffix and hash as VASP 6 writes them (``Li_sv/7a3b...``): the element is the part before them.

Every POSCAR/CONTCAR cellsim reads or writes goes through this module. Where a caller needs an ASE ``Atoms`` or a
pymatgen ``Structure`` (a calculator, an input set) the library reads it (:func:`read_poscar_atoms`,
:func:`read_poscar_structure`), and the files of a run directory keep the layout they have always had, so that
they stay byte for byte what they were and an MD started from them runs bit for bit the same:

* ``interface/POSCAR``, a VASP segment's ``POSCAR`` and the embedded engine's segment ``POSCAR``/``CONTCAR``:
  pymatgen's layout (:func:`pymatgen_poscar_text`, :func:`rewrite_poscar`); the CONTCAR carries VASP's
  Cartesian velocity block in A/fs (:func:`write_atoms_poscar` with ``velocities``), which the layout of
  :func:`poscar_text` has no place for, and selective dynamics, which it does not write either;
* the embedded engine's relaxed ``md/relax/CONTCAR``: ASE's layout (:func:`write_atoms_ase_poscar`), 16
  significant digits, read back as the start of the MD;
* an analysis folder's first and last frames (names from :func:`cellsim.config.rundir.frame_file`): :func:`poscar_text`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
    from ase import Atoms
    from pymatgen.core import Structure


class PoscarError(CellsimError):
    """A POSCAR cannot be read; the message names the file and the line."""


def _species_names(line: str) -> list[str] | None:
    """The element names of a species line (``Li_sv/7a3b`` is Li), None when the line is none (VASP 4 counts)."""
    names = [t.split("/")[0].split("_")[0] for t in line.split()]
    return names if names and all(n.isalpha() for n in names) else None


def poscar_species(poscar: Path) -> tuple[list[str], list[int]] | None:
    """Element symbols and atom counts from a VASP 5 POSCAR's species and counts lines, None when it has none."""
    lines = poscar.read_text(errors="replace").splitlines()
    if len(lines) < 7:
        return None
    names = _species_names(lines[5])
    if names is None:
        return None
    try:
        return names, [int(c) for c in lines[6].split()[: len(names)]]
    except ValueError:
        return None


def poscar_counts(poscar: Path, head_bytes: int = 1 << 16) -> list[int] | None:
    """Atom counts of a POSCAR in the VASP 4 (no species line) or 5 layout, from its first ``head_bytes``; None
    when it cannot tell (unreadable, too short, no integer counts)."""
    try:
        with open(poscar, "rb") as fh:
            lines = fh.read(head_bytes).replace(b"\r\n", b"\n").split(b"\n")
    except OSError:
        return None
    if len(lines) < 7:
        return None
    has_species = _species_names(lines[5].decode(errors="replace")) is not None
    try:
        return [int(t) for t in lines[6 if has_species else 5].split()] or None
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


def poscar_text(species: list[str], frac: np.ndarray, cell: np.ndarray, title: str) -> str:
    """A VASP 5 POSCAR of one structure: per-atom ``species`` (grouped by element in order of first
    appearance), fractional coordinates ``frac`` (N, 3) and the cell (rows a, b, c), under ``title``."""
    from cellsim.io.vaspfiles import species_blocks, xdatcar_header

    names, counts = species_blocks(species)
    order = np.argsort([names.index(x) for x in species], kind="stable")
    head = xdatcar_header(names, counts, cell, title).rstrip("\n").split("\n")
    body = "".join(f"  {x:.8f}  {y:.8f}  {z:.8f}\n" for x, y, z in frac[order])
    return "\n".join(head) + "\nDirect\n" + body


def write_poscar(path: Path, species: list[str], frac: np.ndarray, cell: np.ndarray, title: str) -> Path:
    """Write :func:`poscar_text` to ``path`` atomically; returns ``path``."""
    from cellsim.core.files import atomic_write_text

    return atomic_write_text(Path(path), poscar_text(species, frac, cell, title))


# --------------------------------------------------------------------------- through ASE / pymatgen


def read_poscar_atoms(poscar: Path) -> Atoms:
    """The POSCAR/CONTCAR as ASE reads it (``ase.io.read(format="vasp")``: positions as written, selective
    dynamics as constraints), for a calculator."""
    from ase.io import read

    atoms = read(poscar, format="vasp")
    if isinstance(atoms, list):  # one structure per file; the type says a list is possible
        atoms = atoms[-1]
    return atoms


def read_poscar_structure(poscar: Path) -> Structure:
    """The POSCAR/CONTCAR as pymatgen reads it (selective dynamics and velocities as site properties)."""
    from pymatgen.io.vasp import Poscar

    return Poscar.from_file(poscar).structure


def pymatgen_poscar_text(
    structure: Structure, comment: str, significant_figures: int = 8, velocities: list[list[float]] | None = None
) -> str:
    """pymatgen's POSCAR of ``structure`` (its selective dynamics kept), with VASP's velocity block when given."""
    from pymatgen.io.vasp import Poscar

    sd = structure.site_properties.get("selective_dynamics")
    poscar = Poscar(structure, comment=comment, velocities=velocities, selective_dynamics=sd)
    return str(poscar.get_str(significant_figures=significant_figures))


def rewrite_poscar(src: Path, dst: Path) -> None:
    """Write ``src`` again at ``dst`` in pymatgen's layout (its selective dynamics kept), as pymatgen's
    ``Poscar.from_file(src).write_file(dst)`` does."""
    from pymatgen.io.vasp import Poscar

    Poscar.from_file(src).write_file(dst)


def write_atoms_poscar(path: Path, atoms: Atoms, comment: str, velocities: bool = False) -> Path:
    """``atoms`` as a POSCAR/CONTCAR in pymatgen's layout (10 significant figures), atomically, with VASP's
    Cartesian velocity block (A/fs) when ``velocities``."""
    from ase.units import fs
    from pymatgen.io.ase import AseAtomsAdaptor

    from cellsim.core.files import atomic_write_text

    structure = AseAtomsAdaptor.get_structure(atoms)
    vel = (atoms.get_velocities() * fs).tolist() if velocities else None
    return atomic_write_text(path, pymatgen_poscar_text(structure, comment, 10, vel))


def write_atoms_ase_poscar(path: Path, atoms: Atoms) -> None:
    """``atoms`` as ASE writes a POSCAR (direct coordinates), to ``path`` (the caller moves it into place)."""
    from ase.io import write

    write(path, atoms, format="vasp", direct=True)
