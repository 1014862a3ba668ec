"""Interfacial energetics: does an engine price an anion's move onto the metal as PBE does?

Whether MD at a metal/electrolyte interface forms metal-anion bonds and breaks the electrolyte's units is
decided by a few configurations: an interfacial S pulled tighter onto the metal, the same S pulled off its P
(the first step of decomposition), a halide moved from its Li cage onto the metal, a metal atom pulled out to an
S. This module builds those configurations from one labelled snapshot of the reduced interface (rigid moves of
one atom along a bond line, so every engine and PBE see the very same structures), and compares each engine's
energy of each configuration relative to the snapshot with PBE's.

A negative error (engine minus PBE) means the engine favours the contact more than PBE (it would over-react),
a positive one that it under-rates it (it would under-react). Verdicts: :data:`CONTACT_TOL` on the absolute
error of each configuration's energy, in eV per configuration (a 46-atom cell; 0.1 eV is 4 kT at 300 K, the
scale at which a Boltzmann factor changes by e^4).

The stored set: ``data/pbe/li6ps5cl_in_contacts/contacts.json`` (:func:`stored_sets`), made by
``data/pbe/li6ps5cl_in_contacts.py``; the engine check reads it (:func:`contact_rows`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms

    from cellsim.engines.check.settings import Row

CONTACT_VERSION = 1
CONTACT_FILE = "contacts.json"
# |engine - PBE| of a configuration's energy relative to the snapshot, eV: ok up to the first, warn up to the second
CONTACT_TOL = (0.10, 0.25)
# target distances of a contact, A: In-S in In2S3 2.45-2.65, In-Cl in InCl3 2.5 and InCl 3.1-3.3
CONTACT_DISTANCE = {"S": 2.55, "Cl": 2.85, "Br": 3.0, "I": 3.15}
# a framework anion belongs to its unit while within this distance of the central atom (P-S 2.05 A in PS4)
UNIT_BOND = 2.4
# the framework bond stretched to these lengths: 2.7 A (weakened) and 3.1 A (broken; S then bridges metal atoms)
STRETCH = (2.7, 3.1)
HALIDES = ("Cl", "Br", "I")


class ContactError(ValueError):
    """No configuration can be built (no metal, no anion near it)."""


@dataclass(frozen=True)
class ContactMove:
    """Move atom ``atom`` along the line from ``anchor`` through it until their distance is ``distance`` A."""

    name: str
    description: str
    atom: int
    anchor: int
    distance: float

    def apply(self, atoms: Atoms) -> Atoms:
        """A copy of ``atoms`` with the move made (minimum image; the cell is unchanged), wrapped into the cell."""
        out = atoms.copy()
        vec = out.get_distance(self.anchor, self.atom, mic=True, vector=True)
        out.positions[self.atom] = out.positions[self.anchor] + vec / np.linalg.norm(vec) * self.distance
        out.wrap()
        return out


def _nearest(atoms: Atoms, i: int, among: np.ndarray) -> tuple[int, float]:
    d = atoms.get_distances(i, among, mic=True)
    k = int(np.argmin(d))
    return int(among[k]), float(d[k])


def contact_moves(atoms: Atoms, metal: str, centre: str = "P", anion: str = "S") -> list[ContactMove]:
    """The configurations that decide bond formation at a ``metal`` surface, from one snapshot.

    The framework anion (``anion`` within :data:`UNIT_BOND` of a ``centre``) nearest the metal: pulled onto its
    nearest metal atom to the contact distance, and pulled off its centre to each length of :data:`STRETCH`;
    the halide nearest the metal: moved onto its nearest metal atom, half way and all the way; the metal atom
    nearest that anion: pulled out to it.

    Raises
    ------
    ContactError
        When the snapshot has no ``metal`` atom or no framework anion.
    """
    sym = np.array(atoms.get_chemical_symbols())
    metals, centres = np.flatnonzero(sym == metal), np.flatnonzero(sym == centre)
    if not len(metals) or not len(centres):
        raise ContactError(f"contact configurations need {metal} and {centre} atoms; the snapshot has {set(sym)}")
    framework = [int(i) for i in np.flatnonzero(sym == anion) if _nearest(atoms, int(i), centres)[1] < UNIT_BOND]
    if not framework:
        raise ContactError(f"no {anion} within {UNIT_BOND} A of a {centre}: no framework anion to move")
    s = min(framework, key=lambda i: _nearest(atoms, i, metals)[1])
    m, d_ms = _nearest(atoms, s, metals)
    c, d_cs = _nearest(atoms, s, centres)
    bond = CONTACT_DISTANCE.get(anion, 2.6)
    moves = [
        ContactMove(
            f"{anion}-{metal} tightened",
            f"{anion}{s} of a {centre}{anion}4 unit pulled onto {metal}{m}: {d_ms:.2f} -> {bond:.2f} A",
            s,
            m,
            bond,
        )
    ]
    for length in STRETCH:
        moves.append(
            ContactMove(
                f"{centre}-{anion} {length:g} A",
                f"{anion}{s} pulled off {centre}{c} towards the {metal}: {centre}-{anion} {d_cs:.2f} -> {length:.2f} A",
                s,
                c,
                length,
            )
        )
    for hal in HALIDES:
        hals = np.flatnonzero(sym == hal)
        if not len(hals):
            continue
        h = min((int(i) for i in hals), key=lambda i: _nearest(atoms, i, metals)[1])
        mh, d_mh = _nearest(atoms, h, metals)
        target = CONTACT_DISTANCE[hal]
        if d_mh <= target:
            continue
        for frac, what in ((0.5, "half way"), (1.0, "onto")):
            dist = d_mh + frac * (target - d_mh)
            moves.append(
                ContactMove(
                    f"{hal}-{metal} {what}",
                    f"{hal}{h} moved {what} {metal}{mh}: {d_mh:.2f} -> {dist:.2f} A",
                    h,
                    mh,
                    dist,
                )
            )
    moves.append(
        ContactMove(
            f"{metal} pulled to {anion}",
            f"{metal}{m} pulled out of the surface to {anion}{s}: {d_ms:.2f} -> {bond + 0.05:.2f} A",
            m,
            s,
            bond + 0.05,
        )
    )
    return moves


@dataclass
class ContactSet:
    """PBE energies of the contact configurations of one snapshot (what the data script stores)."""

    source: str
    metal: str
    electrolyte: str
    natoms: int
    reference: str
    snapshot_job: str
    snapshot_energy_eV: float
    configs: list[dict[str, Any]]  # name, description, job, energy_eV, delta_eV (vs the snapshot), min_distance_A
    engines: dict[str, dict[str, float]] = field(default_factory=dict)  # engine -> name -> delta_eV
    version: int = CONTACT_VERSION

    def save(self, path: str | os.PathLike[str]) -> Path:
        from cellsim.core.files import atomic_write_json

        atomic_write_json(Path(path), asdict(self))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ContactSet:
        """Read a stored set; a file of another version or layout is refused by name."""
        p = Path(path)
        try:
            data = json.loads(p.read_text())
            if data.get("version") != CONTACT_VERSION:
                raise ContactError(
                    f"{p}: contact set version {data.get('version')!r}, this cellsim reads {CONTACT_VERSION}"
                )
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            if isinstance(exc, ContactError):
                raise
            raise ContactError(f"{p}: not a contact set ({exc})") from None


def min_distance(atoms: Atoms, i: int) -> float:
    """The shortest distance from atom ``i`` to any other atom (minimum image), A."""
    d = atoms.get_distances(i, [j for j in range(len(atoms)) if j != i], mic=True)
    return float(d.min())


def stored_sets(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """The stored contact sets (``data/pbe/*/contacts.json``) of a source checkout, if present."""
    from cellsim.engines.cp2k import stored_labels

    roots = [Path(root)] if root is not None else sorted({p.parent.parent for p in stored_labels()})
    return sorted(f for r in roots for f in r.glob(f"*/{CONTACT_FILE}"))


def structures(cset: ContactSet, folder: Path) -> dict[str, Atoms]:
    """The snapshot (``"snapshot"``) and every configuration of a stored set, read from its job folders."""
    from ase.io import read

    out: dict[str, Atoms] = {}
    for name, job in [("snapshot", cset.snapshot_job), *((c["name"], c["job"]) for c in cset.configs)]:
        got = read(folder / "jobs" / job / "structure.json")
        assert not isinstance(got, list)
        out[name] = got
    return out


def engine_deltas(energy_of: Callable[[Atoms], float], frames: dict[str, Atoms]) -> dict[str, float]:
    """Each configuration's engine energy relative to the snapshot's (eV)."""
    ref = energy_of(frames["snapshot"])
    return {n: float(energy_of(a) - ref) for n, a in frames.items() if n != "snapshot"}


def contact_verdict(error_eV: float) -> str:
    """ok / warn / fail of one configuration's energy error by :data:`CONTACT_TOL`."""
    err = abs(error_eV)
    return "ok" if err <= CONTACT_TOL[0] else "warn" if err <= CONTACT_TOL[1] else "fail"


def contact_rows(engine: str, cset: ContactSet, deltas: dict[str, float]) -> list[Row]:
    """Rows of the engine check: each configuration's energy, engine against PBE, and a summary row."""
    from cellsim.engines.check.settings import Row

    rows: list[Row] = []
    errors: list[float] = []
    for c in cset.configs:
        mine = deltas.get(c["name"])
        if mine is None:
            continue
        err = mine - float(c["delta_eV"])
        errors.append(err)
        lean = "favours the contact more than PBE" if err < 0 else "favours it less than PBE"
        rows.append(
            Row(
                engine,
                f"interface: {c['name']}",
                "contact energy vs PBE",
                mine,
                float(c["delta_eV"]),
                contact_verdict(err),
                "eV",
                f"{c['description']}; engine - PBE {err:+.3f} eV ({lean})",
            )
        )
    if errors:
        mae = float(np.mean(np.abs(errors)))
        bias = float(np.mean(errors))
        lean = "over-rates" if bias < 0 else "under-rates"
        rows.append(
            Row(
                engine,
                f"interface contacts ({len(errors)} configurations)",
                "contact energy MAE vs PBE",
                mae,
                f"<= {CONTACT_TOL[0]:g}",
                contact_verdict(mae),
                "eV",
                f"mean engine - PBE {bias:+.3f} eV: it {lean} the metal-anion contacts; ok <= {CONTACT_TOL[0]} eV, "
                f"warn <= {CONTACT_TOL[1]} eV; {cset.reference}, {cset.natoms} atoms",
            )
        )
    return rows


def matching_sets(metal: str, electrolyte: str, sets: Sequence[Path] | None = None) -> list[tuple[ContactSet, Path]]:
    """Stored sets of this metal (element) and electrolyte (reduced formula)."""
    out = []
    for f in stored_sets() if sets is None else sets:
        cset = ContactSet.load(f)
        if cset.metal == metal and cset.electrolyte == electrolyte:
            out.append((cset, f.parent))
    return out
