"""The offline reference library: CIFs in ``data/`` with their provenance in ``data/library.json``.

``library.json`` holds the facts of ``data/SOURCES.md`` (and ``data/ADDED.md``) in a form the code reads (JSON,
not YAML: every analysis reads it to infer the reactants, and importing PyYAML cost it 14-21 ms);
lattice, formula and space group shown to users are computed from the CIF itself.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.core.errors import PhaseNotFoundError, StructureReadError

if TYPE_CHECKING:
    from pymatgen.core import Structure

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class ReferencePhase:
    """One phase of the library, with its provenance."""

    name: str
    file: str
    spacegroup: str
    spacegroup_number: int
    origin: str
    source: str
    mp_id: str | None
    mp_id_note: str
    first_shell: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return DATA_DIR / self.file

    @property
    def key(self) -> str:
        """Unique key: file stem, e.g. ``In2S3_I41amd``."""
        return Path(self.file).stem

    def structure(self) -> Structure:
        return load_structure(self.path)


@cache
def library() -> dict[str, ReferencePhase]:
    """All library phases by name (e.g. ``"Li6PS5Cl"``); the file stem is accepted too by ``get``."""
    import json

    raw: dict[str, Any] = json.loads((DATA_DIR / "library.json").read_text(encoding="utf-8"))
    phases = {}
    for entry in raw["phases"]:
        entry = dict(entry)
        entry["first_shell"] = {k: str(v) for k, v in (entry.get("first_shell") or {}).items()}
        phase = ReferencePhase(**entry)
        phases[phase.name] = phase
    return phases


def get_phase(name: str) -> ReferencePhase | None:
    """Find a library phase by name (``In2S3``) or file stem (``In2S3_I41amd``); exact match only."""
    lib = library()
    if name in lib:
        return lib[name]
    for phase in lib.values():
        if phase.key == name:
            return phase
    return None


def phase_by_formula(formula: str) -> ReferencePhase | None:
    """The library phase whose reduced formula is ``formula`` (``S3In2`` -> In2S3), or None.

    Library names are formulas, so no CIF is parsed; a formula held by several phases (polymorphs) is refused
    by name, since the choice changes the reference RDF.
    """
    from pymatgen.core import Composition

    try:
        want = Composition(formula).reduced_formula
    except (ValueError, KeyError, TypeError):
        return None
    hits = []
    for phase in library().values():
        try:
            if Composition(phase.name).reduced_formula == want:
                hits.append(phase)
        except (ValueError, KeyError):
            continue
    if len(hits) > 1:
        raise PhaseNotFoundError(
            f"formula {formula}: several library phases have it ({', '.join(p.key for p in hits)}); name one"
        )
    return hits[0] if hits else None


def load_structure(path: str | Path) -> Structure:
    """Read a CIF, POSCAR/CONTCAR or any format pymatgen knows; a failure names the file and the cause."""
    from pymatgen.core import Structure

    path = Path(path)
    if not path.is_file():
        raise PhaseNotFoundError(f"{path}: no such structure file")
    try:
        with warnings.catch_warnings():
            # pymatgen warns about rounding of CIF occupancies; the file is still fine.
            warnings.simplefilter("ignore")
            structure = Structure.from_file(path)
    except Exception as exc:  # pymatgen raises many types (ValueError, IndexError, KeyError...)
        raise StructureReadError(
            f"{path}: could not read a crystal structure from this file "
            f"(expected a CIF or VASP POSCAR): {type(exc).__name__}: {exc}"
        ) from exc
    if len(structure) == 0:
        raise StructureReadError(f"{path}: the file holds no atoms (expected a CIF or VASP POSCAR)")
    if not structure.is_ordered:
        raise StructureReadError(
            f"{path}: the structure has partial occupancies; cellsim needs an ordered model "
            "(order it first, e.g. with pymatgen's OrderDisorderedStructureTransformation)"
        )
    return structure


def resolve_phase(spec: str, base_dir: Path | None = None, field_name: str = "phase") -> tuple[str, Structure]:
    """Turn a study's phase entry into ``(label, structure)``.

    Parameters
    ----------
    spec
        A library name (``Li6PS5Cl``), a library file stem, a path to a CIF/POSCAR file, or the formula of
        a library phase written another way (``S3In2``).
    base_dir
        Folder that relative paths are taken from (the study file's folder).
    field_name
        Name of the study field, used in error messages.
    """
    phase = get_phase(spec)
    if phase is not None:
        return phase.name, phase.structure()
    path = Path(spec).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    looks_like_file = path.suffix.lower() in {".cif", ".vasp", ".poscar"} or path.name.upper().startswith(
        ("POSCAR", "CONTCAR")
    )
    if path.is_file():
        return path.stem, load_structure(path)
    if not looks_like_file and (by_formula := phase_by_formula(spec)) is not None:
        return by_formula.name, by_formula.structure()
    known = ", ".join(sorted(library()))
    if looks_like_file:
        raise PhaseNotFoundError(f"{field_name}: structure file '{path}' does not exist")
    raise PhaseNotFoundError(
        f"{field_name}: unknown phase '{spec}': not in the reference library ({known}) "
        "and not a path to a CIF/POSCAR file"
    )


FIRST_SPHERES_FILE = DATA_DIR / "first_spheres.json"
# a phase bonds A to B when its shortest A-B distance is within this factor of the covalent radii sum
BONDED_FACTOR = 1.3
SPHERE_GAP = 0.4  # A: the next shell after a gap wider than this is the second sphere
SPHERE_SPAN = 1.3  # the first sphere ends within this factor of its shortest distance


@cache
def first_spheres() -> dict[str, float]:
    """Longest first-sphere distance of every element pair bonded in a library phase (``"Cl-In": 3.17``), A.

    Stored in ``data/first_spheres.json`` (made by :func:`compute_first_spheres`; a test checks that it is
    current), so the analysis' default cutoffs cost no CIF parsing.
    """
    import json

    data: dict[str, float] = json.loads(FIRST_SPHERES_FILE.read_text(encoding="utf-8"))["pairs"]
    return data


def compute_first_spheres() -> dict[str, float]:
    """Per element pair (sorted symbols), the longest first-sphere distance over the phases that bond it
    (a like pair A-A: the pure element's crystal only)."""
    from ase.data import atomic_numbers, covalent_radii

    best: dict[str, float] = {}
    for phase in library().values():
        s = phase.structure()
        dists: dict[tuple[str, str], set[float]] = {}
        for site in s:
            for nb in s.get_neighbors(site, 4.5):
                key = (site.specie.symbol, nb.specie.symbol)
                if key[0] <= key[1]:
                    dists.setdefault(key, set()).add(round(float(nb.nn_distance), 2))
        pure = len(s.composition) == 1
        for (a, b), ds in dists.items():
            if a == b and not pure:
                continue  # a metal's own bonds from its own crystal (In-In 3.5 A in InCl is no metallic bond)
            d = sorted(ds)
            if d[0] > BONDED_FACTOR * float(covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]]):
                continue
            end = d[0]
            for x in d[1:]:
                if x - end > SPHERE_GAP or x > SPHERE_SPAN * d[0]:
                    break
                end = x
            best[f"{a}-{b}"] = max(best.get(f"{a}-{b}", 0.0), end)
    return dict(sorted(best.items()))
