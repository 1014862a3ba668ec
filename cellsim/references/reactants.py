"""What a trajectory started from: its composition decomposed into reference phases.

A run directory knows its reactants (the study's electrolyte and metal). A trajectory from elsewhere
does not, so its element counts are written as a non-negative combination of library phases: first with
reactant-like phases only (elemental metals and alloys, lithium thiophosphate electrolytes), fewest
phases first; the decomposition must be exact (every atom accounted for). Products (In2S3, LiCl, ...)
are never proposed as reactants: when nothing else fits, the reactants are unknown and every pair is
judged by its change over the run alone.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

NON_METALS = {"H", "B", "C", "N", "O", "F", "P", "S", "Cl", "Se", "Br", "I", "Si", "Ge", "As", "Te"}


@dataclass
class Reactants:
    """Reactant phases (name -> formula units in the trajectory) and how they were found.

    ``files`` and ``structures`` hold the phases that are not in the library (a study's own CIF): the file
    they came from and the structure itself (pymatgen ``as_dict``), so an analysis folder that records them
    stays self-contained (matching needs neither the file nor ``--reactants``).
    """

    phases: dict[str, float]
    source: str
    residual: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    structures: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "phases": self.phases,
            "source": self.source,
            "residual": self.residual,
            "notes": self.notes,
        }
        if self.files:
            out["files"] = self.files
            out["structures"] = self.structures
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reactants:
        return cls(
            dict(d.get("phases", {})),
            str(d.get("source", "")),
            dict(d.get("residual", {})),
            list(d.get("notes", [])),
            dict(d.get("files", {})),
            dict(d.get("structures", {})),
        )


def _is_reactant_like(elements: set[str]) -> bool:
    metals = elements - NON_METALS
    if elements == metals:  # element or alloy
        return True
    return {"Li", "P", "S"} <= elements  # lithium thiophosphate electrolytes (Li6PS5Cl, Li3PS4, LGPS, ...)


def _compositions() -> list[tuple[str, dict[str, float], bool]]:
    from cellsim.core.elements import parse_formula
    from cellsim.references.library import library

    out = []
    for p in library().values():
        # library names are formulas: no CIF parsing (pymatgen's CIF reader costs ~1.5 s for the library), and
        # plain ones without pymatgen at all (its import costs the analysis ~0.6 s)
        plain = parse_formula(p.name)
        if plain is not None:
            d = {el: float(n) for el, n in plain.items()}
        else:
            from pymatgen.core import Composition

            try:
                comp = Composition(p.name).reduced_composition
            except (ValueError, KeyError):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    comp = p.structure().composition.reduced_composition
            d = {el.symbol: float(n) for el, n in comp.items()}
        out.append((p.name, d, _is_reactant_like(set(d))))
    return out


def _solve(counts: dict[str, int], phases: list[tuple[str, dict[str, float]]]) -> tuple[np.ndarray, float] | None:
    els = sorted(counts)
    a = np.array([[ph.get(e, 0.0) for _, ph in phases] for e in els])
    b = np.array([counts[e] for e in els], dtype=float)
    x, *_ = np.linalg.lstsq(a, b, rcond=None)
    if np.any(x < -1e-9):
        return None
    resid = float(np.abs(a @ x - b).sum())
    return x, resid


def infer_reactants(element_counts: dict[str, int], max_phases: int = 3) -> Reactants:
    """Decompose ``element_counts`` into library phases (see the module docstring)."""
    present = {e for e, n in element_counts.items() if n > 0}
    comps = [(n, c, r) for n, c, r in _compositions() if set(c) <= present]
    # only reactant-like phases: a product phase (InCl, Li2S) that happens to fit the composition is what the
    # matching looks for, never a baseline
    pool = [(n, c) for n, c, r in comps if r]
    for k in range(1, max_phases + 1):
        best: tuple[float, list[tuple[str, dict[str, float]]], np.ndarray] | None = None
        for combo in itertools.combinations(pool, k):
            if set().union(*(set(c) for _, c in combo)) != present:
                continue
            sol = _solve(element_counts, list(combo))
            if sol is None:
                continue
            x, resid = sol
            if resid < 1e-6 * sum(element_counts.values()) and (best is None or resid < best[0]):
                best = (resid, list(combo), x)
        if best is not None:
            phases = {n: round(float(v), 4) for (n, _), v in zip(best[1], best[2], strict=True)}
            return Reactants(phases, "inferred from the composition")
    return Reactants(
        {},
        "unknown",
        {},
        [
            "the composition is no combination of library phases: every pair is judged by its change over the "
            "run only (give --reactants to compare with reactant crystals)"
        ],
    )


def given_reactants(
    names: list[str], element_counts: dict[str, int], base_dir: Path | None = None, option: str = "--reactants"
) -> Reactants:
    """Reactants named by the user or the study, checked against the atoms.

    Parameters
    ----------
    names
        Library names, formulas of library phases, or structure files (CIF/POSCAR; relative to ``base_dir``,
        else the current folder).
    element_counts
        The trajectory's atoms per element.
    base_dir
        Folder of relative structure paths.
    option
        Where the names came from, for messages (``--reactants``, ``interface.metal.phase``).
    """
    from cellsim.core.errors import PhaseNotFoundError
    from cellsim.references.library import get_phase, resolve_phase

    phases: dict[str, float] = {}
    comps = []
    files: dict[str, str] = {}
    structures: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                label, s = resolve_phase(name, base_dir, option)
        except PhaseNotFoundError as exc:
            msg = str(exc)
            raise PhaseNotFoundError(msg if msg.startswith(option) else f"{option}: {msg}") from None
        path = Path(name).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if get_phase(name) is None and path.is_file():
            # a phase of the user's own (resolve_phase prefers library names, then files): keep the structure
            files[label] = str(path.resolve())
            structures[label] = s.as_dict()
        comp = {el.symbol: float(n) for el, n in s.composition.reduced_composition.items()}
        comps.append((label, comp))
    missing = sorted({e for _, c in comps for e in c} - {e for e, n in element_counts.items() if n > 0})
    if missing:
        from cellsim.core.errors import CellsimError

        raise CellsimError(
            f"--reactants {','.join(names)}: the trajectory has no {', '.join(missing)} atoms "
            f"(it has {', '.join(f'{e} {n}' for e, n in element_counts.items())})"
        )
    sol = _solve(element_counts, comps)
    notes = []
    if sol is not None:
        x, resid = sol
        phases = {n: round(float(v), 4) for (n, _), v in zip(comps, x, strict=True)}
        if resid > 1e-6 * sum(element_counts.values()):
            notes.append(f"the named reactants leave {resid:.1f} atoms unexplained")
    else:
        phases = {n: 0.0 for n, _ in comps}
        notes.append("the named reactants do not add up to the composition")
    return Reactants(phases, "given", {}, notes, files, structures)


def reactant_structures(reactants: Reactants) -> dict[str, Any]:
    """Structures of the reactant phases (name -> pymatgen Structure): the recorded structure of a phase of
    the user's own, else the library phase (or the file) of that name."""
    from pymatgen.core import Structure

    from cellsim.references.library import resolve_phase

    out = {}
    for name in reactants.phases:
        if name in reactants.structures:
            out[name] = Structure.from_dict(reactants.structures[name])
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, s = resolve_phase(reactants.files.get(name, name), None, "reactants")
        out[name] = s
    return out
