"""What to analyse when the caller did not say it all, decided from the system itself: the species of a VASP 4
XDATCAR (a POSCAR beside it), the pairs (:mod:`cellsim.analysis.defaults`), where each bond cutoff comes from,
the time window (fitted to the run's length, read from the reader's index), the reactants, the diagnostics'
metal, and the diagnostics finished with the energies beside the trajectory.

The analyze stage (:func:`cellsim.stages.analyze`) only wires these together.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.core.errors import AnalysisError, CellsimError
from cellsim.io.poscar import poscar_species

if TYPE_CHECKING:
    from cellsim.analysis.checks import Diagnostics
    from cellsim.analysis.defaults import PairChoice
    from cellsim.analysis.diagnostics import DiagnosticsAccumulator
    from cellsim.analysis.result import AnalysisSettings
    from cellsim.config.rundir import RunDir
    from cellsim.config.study import AnalysisSpec, Study
    from cellsim.io.sources import TrajectorySource
    from cellsim.references.reactants import Reactants

# a default window longer than an eighth of the run leaves too few windows to see anything change
MIN_WINDOWS = 6
AUTO_WINDOWS = 10


# --------------------------------------------------------------------------- atoms and pairs


def default_pairs(
    species: Sequence[str], study: Study | None = None, frame: tuple[Any, Any] | None = None
) -> PairChoice:
    """Pairs to analyse when none are listed, from the system itself (:mod:`cellsim.analysis.defaults`).

    With a study, its metal phase's elements are the electrode and its electrolyte phase's the electrolyte;
    without, the metal is chosen by metallic character and the rest is the electrolyte. ``frame``
    (``(frac, cell)`` of the first frame) keeps only the framework pairs bonded in it. Returns a
    :class:`~cellsim.analysis.defaults.PairChoice`; a system without any such pair gets each element with itself.
    """
    from cellsim.analysis.defaults import PairChoice
    from cellsim.analysis.defaults import default_pairs as by_rule

    metal = study_phase_elements(study, "metal")
    electrolyte = study_phase_elements(study, "electrolyte")
    choice = by_rule(species, metal, frame, electrolyte, "the study's metal phase" if metal else "")
    if study is None and not choice.metal and frame is not None:
        # symbols cannot tell a Li anode from the Li of a Li electrolyte; the composition can: 310 atoms
        # Li198 P16 S80 Cl16 are 16 Li6PS5Cl + 102 Li, and that Li metal is the electrode (Li-P, Li3P)
        from collections import Counter

        from cellsim.analysis.defaults import is_metal
        from cellsim.references.reactants import infer_reactants

        react = infer_reactants(dict(Counter(species)))
        metals = [n for n in react.phases if all(is_metal(e) for e in _formula_elements(n))]
        if len(metals) == 1 and len(react.phases) > 1:
            els = _formula_elements(metals[0])
            rest = [e for n in react.phases if n != metals[0] for e in _formula_elements(n)]
            choice = by_rule(species, els, frame, rest, f"the inferred reactants ({metals[0]} metal)")
    if not choice.pairs:
        like = [f"{e}-{e}" for e in dict.fromkeys(species)]
        choice = PairChoice(like, choice.metal, choice.metal_source, {"like": like})
    return choice


def _formula_elements(formula: str) -> list[str]:
    from cellsim.core.elements import parse_formula

    plain = parse_formula(formula)
    if plain is not None:
        return list(plain)
    from pymatgen.core import Composition

    return [el.symbol for el in Composition(formula)]


def study_phase_elements(study: Study | None, side: str) -> list[str] | None:
    """Elements of the study's ``interface.<side>.phase`` in formula order, None without a study or file."""
    if study is None:
        return None
    from cellsim.references.library import resolve_phase

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, s = resolve_phase(getattr(study.interface, side).phase, None, f"interface.{side}.phase")
    except CellsimError:
        return None
    return [el.symbol for el in s.composition]


def study_metal(study: Study | None) -> str | None:
    """The element standing for the study's metal phase: a pure metal's element (In, Li, Cu), an alloy's only
    non-alkali metal (LiIn -> In, by metallic character); else None (then guessed from the trajectory)."""
    from cellsim.analysis.defaults import phase_metal

    elements = study_phase_elements(study, "metal")
    return phase_metal(elements) if elements else None


def first_frame(path: TrajectorySource, species: list[str] | None) -> tuple[list[str], tuple[Any, Any]] | None:
    """Per-atom species and ``(frac, cell)`` of the first frame of ``path`` (one block read), None if empty."""
    from cellsim.io.sources import _file_blocks, detect_format

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for hdr, block in _file_blocks(path, species, detect_format(path)):
            if len(block):
                return list(hdr.species), (block.frac[0].copy(), block.cells[0].copy())
    return None


def elements_of(path: TrajectorySource, species: list[str] | None) -> list[str]:
    from cellsim.io.sources import MemorySource, _file_blocks, detect_format
    from cellsim.io.xdatcar import read_header

    if isinstance(path, MemorySource):
        return path.symbols
    fmt = detect_format(path)
    if fmt == "xdatcar":
        return list(read_header(path, species).symbols)
    if fmt == "vasprun":
        from cellsim.io.sources import vasprun_species

        return list(dict.fromkeys(vasprun_species(path)))
    for hdr, _ in _file_blocks(path, species, fmt):
        return hdr.symbols
    return []


def parse_pairs(pairs: str | Sequence[str] | None) -> list[str] | None:
    """``"A-B,C-D"`` or a list of such strings (each may itself hold commas) -> validated list."""
    from cellsim.config.study import _check_pair

    if pairs is None:
        return None
    items = [pairs] if isinstance(pairs, str) else list(pairs)
    out: list[str] = []
    for item in items:
        for p in str(item).split(","):
            p = p.strip()
            if not p:
                continue
            try:
                p = _check_pair(p)
            except ValueError as exc:
                raise CellsimError(f"--pairs: {exc}") from None
            if p in out:
                raise CellsimError(f"--pairs: {p} is listed twice")
            out.append(p)
    if not out:
        raise CellsimError("--pairs: no pair given (expected e.g. In-S,In-Cl)")
    return out


def resolve_species(files: list[Path], candidates: list[Path], given: list[str] | None) -> list[str] | None:
    """Element symbols for VASP 4 XDATCARs: given, else from a POSCAR beside (checked against the counts)."""
    from cellsim.io.sources import detect_format
    from cellsim.io.xdatcar import TrajectoryError, read_header

    if detect_format(files[0]) != "xdatcar":
        return given
    try:
        hdr = read_header(files[0], given)
    except TrajectoryError as exc:
        if given is not None or "VASP 4" not in str(exc):
            raise
        hdr = None
    if hdr is not None and (hdr.vasp5 or given is not None):
        if given is not None and hdr.vasp5 and given != hdr.symbols:
            raise CellsimError(
                f"--species {','.join(given)}: {files[0]} names its species itself ({' '.join(hdr.symbols)})"
            )
        return given
    for poscar in candidates:
        if poscar.is_file():
            got = poscar_species(poscar)
            if got is None:
                continue
            names, counts = got
            h = read_header(files[0], names)
            if h.counts != counts:
                raise CellsimError(
                    f"{files[0]}: VASP 4 XDATCAR with atom counts {h.counts}, but {poscar} has {counts}: "
                    "they are not the same atoms; give --species"
                )
            return names
    if hdr is None:
        raise CellsimError(
            f"{files[0]}: VASP 4 XDATCAR (no species line): give the elements in POSCAR order with "
            "--species, e.g. --species Li,P,S,Cl,In"
        )
    return given


def check_interface_atoms(rd: RunDir, species: list[str]) -> None:
    got = poscar_species(rd.interface_poscar) if rd.interface_poscar.is_file() else None
    if got is None:
        return
    names, counts = got
    built = [n for n, c in zip(names, counts, strict=False) for _ in range(c)]
    if built != species:
        have = {e: species.count(e) for e in dict.fromkeys(species)}
        raise CellsimError(
            f"{rd.root}: the trajectory's atoms ({sum(have.values())}: {have}) differ from the run's interface "
            f"({len(built)}: {dict(zip(names, counts, strict=False))}); analyse it on its own with "
            "`cellsim analyze FILE -o OUT`"
        )


@dataclass
class PairPlan:
    """The pairs to analyse, where they come from (option / study / derived / study + derived) and the notes."""

    pairs: list[str] | None
    source: str = "option"
    rule: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def choose_pairs(
    explicit: list[str] | None,
    spec: AnalysisSpec,
    first_file: TrajectorySource,
    species: list[str] | None,
    study: Study | None,
) -> PairPlan:
    """The given pairs, else the study's that fit the atoms plus the system's own, else the system's own
    (:func:`default_pairs` on the first frame)."""
    if explicit is not None:
        return PairPlan(explicit)
    # the pairs must fit the atoms present: peek at the first frame
    first = first_frame(first_file, species)
    per_atom = first[0] if first else elements_of(first_file, species)
    elements = list(dict.fromkeys(per_atom))
    choice = default_pairs(per_atom, study, first[1] if first else None)
    if spec.pairs is None:
        note = (
            f"pairs from the system's elements (docs/analysis.md; metal {', '.join(choice.metal) or 'none'}: "
            f"{choice.metal_source}): {', '.join(choice.pairs)}"
        )
        return PairPlan(choice.pairs, "derived", choice.to_dict(), [note])
    kept = [p for p in spec.pairs if set(p.split("-")) <= set(elements)]
    if len(kept) == len(spec.pairs):
        return PairPlan(spec.pairs, "study")
    added = [p for p in choice.pairs if p not in kept and "-".join(reversed(p.split("-"))) not in kept]
    note = (
        f"the study's pairs without atoms in this trajectory skipped: "
        f"{sorted(set(spec.pairs) - set(kept))}; the system's own added: {', '.join(added) or 'none'}"
    )
    return PairPlan(kept + added, "study + derived", choice.to_dict(), [note])


def make_settings(spec: AnalysisSpec, pairs: list[str] | None, dt_fs: float, **given: Any) -> AnalysisSettings:
    """The analysis settings: the study's (or the defaults) with what was given (None: not given)."""
    from cellsim.analysis.result import AnalysisSettings

    cutoffs = given.pop("cutoffs", None) or {}
    try:
        return AnalysisSettings(
            **{
                **spec.model_dump(),
                "pairs": pairs or spec.pairs,
                **{k: v or getattr(spec, k) for k, v in given.items()},
                "bond_cutoffs": {**spec.bond_cutoffs, **cutoffs},
                "dt_fs": dt_fs,
            }
        )
    except ValueError as exc:
        raise AnalysisError(one_line_validation(exc)) from None


def one_line_validation(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors():
            field = ".".join(str(x) for x in e["loc"]) or "settings"
            opt = {"window_ps": "--window", "rmax": "--rmax", "bin_width": "--bin-width", "dt_fs": "--dt"}.get(
                field, field
            )
            parts.append(f"{opt}: {e['msg']} (got {e.get('input')!r})")
        return "; ".join(parts)
    return str(exc)


def cutoff_sources(pairs: Sequence[str], option: dict[str, float], study: dict[str, float]) -> dict[str, str]:
    """Where each pair's bond cutoff comes from: ``option`` (--cutoff), ``study``, else the rule's origin
    (``reference first sphere`` or ``covalent radii``, :func:`cellsim.analysis.defaults.rule_cutoff`)."""
    from cellsim.analysis.defaults import rule_cutoff

    def has(table: dict[str, float], p: str) -> bool:
        return table.get(p, table.get("-".join(reversed(p.split("-"))), 0.0)) > 0

    return {p: "option" if has(option, p) else "study" if has(study, p) else rule_cutoff(p)[1] for p in pairs}


def cutoff_note(sources: dict[str, str]) -> str | None:
    """The note naming the bond cutoffs nobody gave (by rule, with the rule's origin)."""
    from cellsim.analysis.defaults import rule_cutoff

    by_rule = [p for p, src in sources.items() if src not in ("option", "study")]
    if not by_rule:
        return None
    return "bond cutoffs nobody gave, by rule (docs/analysis.md): " + ", ".join(
        f"{p} {rule_cutoff(p)[0]:g} A ({sources[p]})" for p in by_rule
    )


# --------------------------------------------------------------------------- the time window


def auto_window(n_frames: int, settings: AnalysisSettings) -> tuple[float, str | None]:
    """The window for a run of ``n_frames``: the settings' unless it gives fewer than :data:`MIN_WINDOWS`
    windows, then :data:`AUTO_WINDOWS` equal ones; with the note saying so."""
    duration = n_frames * settings.dt_fs / 1000.0
    if not n_frames or duration / settings.window_ps >= MIN_WINDOWS:
        return settings.window_ps, None
    fpw = max(1, n_frames // AUTO_WINDOWS)
    auto = fpw * settings.dt_fs / 1000.0
    return auto, (
        f"window {settings.window_ps:g} ps would give {max(1, round(duration / settings.window_ps))} window(s) "
        f"over {duration:.3f} ps; used {auto:g} ps ({AUTO_WINDOWS} windows)"
    )


def indexed_frames(files: Sequence[TrajectorySource], species: list[str] | None) -> int | None:
    """Frames in ``files`` from the readers' index (an XDATCAR's last configuration number, the objects'
    count) without reading them; None when a file has no index (then :func:`count_frames` reads them)."""
    from cellsim.io.sources import MemorySource, detect_format
    from cellsim.io.xdatcar import indexed_frame_count, read_header

    total = 0
    for f in files:
        if isinstance(f, MemorySource):
            total += f.n_frames
            continue
        if detect_format(f) != "xdatcar":
            return None
        n = indexed_frame_count(f, read_header(f, species))
        if n is None:
            return None
        total += n
    return total


def count_frames(files: Sequence[TrajectorySource], species: list[str] | None) -> int:
    """Whole frames in ``files`` (a first pass, made only when the window must fit the run's length)."""
    from cellsim.io.sources import iter_trajectory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sum(len(block) for _, block in iter_trajectory(files, species))


# --------------------------------------------------------------------------- reactants and diagnostics


def choose_reactants(
    given: str | Sequence[str] | None, study: Study | None, element_counts: dict[str, int]
) -> Reactants:
    """The given reactant phases, else the study's electrolyte and metal, else inferred from the composition."""
    from cellsim.references.reactants import given_reactants, infer_reactants

    if given:
        names = [x.strip() for x in (given.split(",") if isinstance(given, str) else given)]
        return given_reactants([n for n in names if n], element_counts)
    if study is not None:
        try:
            react = given_reactants([study.interface.electrolyte.phase, study.interface.metal.phase], element_counts)
            react.source = "the study's electrolyte and metal"
            return react
        except CellsimError as exc:
            react = infer_reactants(element_counts)
            react.notes.append(f"the study's reactants do not fit this trajectory ({exc}); inferred instead")
            return react
    return infer_reactants(element_counts)


def diagnostics_options(
    study: Study | None, dt_assumed: bool, indexed: int | None = None, n_files: int = 1
) -> dict[str, Any]:
    """Keyword arguments of the pass's :class:`~cellsim.analysis.diagnostics.DiagnosticsAccumulator`.

    ``indexed``: the frame count of the readers' index (:func:`indexed_frames`), which may count one frame
    too many per file (a cut-off last frame, a repeated first frame dropped in stitching): less that, it is
    the lower bound the diagnostics' thinning starts from.
    """
    # 500 evenly spread frames resolve drifts and order parameters; more only costs time
    return {
        "metal": study_metal(study),
        "timestep_fs": study.md.timestep_fs if study is not None else None,
        "max_frames": 500,
        "dt_assumed": dt_assumed,
        "expected_frames": None if indexed is None else max(0, indexed - n_files),
    }


def finish_diagnostics(
    acc: DiagnosticsAccumulator | None,
    files: list[Path],
    temperature: float,
    notes: list[str],
    energy_files: list[Path] | None = None,
) -> Diagnostics | None:
    """Diagnostics of the trajectory, with the energies of the files' OSZICAR/vasprun.xml when there are any
    (``energy_files``: a run directory's OSZICARs, parts of restarted segments included), and the engine's
    deviation record (``deviation.csv``) beside them when the run wrote one."""
    if acc is None:
        return None
    diag = _finish(acc, files, temperature, notes, energy_files)
    _deviation(diag, energy_files or [])
    return diag


def _deviation(diag: Diagnostics, energy_files: list[Path]) -> None:
    """The "engine deviation" check and series, from the ``deviation.csv`` beside each segment's OSZICAR."""
    import json

    from cellsim.analysis.checks import deviation_check
    from cellsim.io.deviation import DEVIATION_FILE, read_deviation

    folders = list(dict.fromkeys(f.parent for f in energy_files))
    series = read_deviation([d / DEVIATION_FILE for d in folders])
    if series is None:
        diag.summary["engine_deviation"] = None
        return
    kind, members = "committee", 0
    for d in folders:
        try:
            info = json.loads((d / "engine.json").read_text()).get("deviation") or {}
        except (OSError, ValueError, AttributeError):
            continue
        kind, members = str(info.get("kind", kind)), len(info.get("members", [])) or members
    diag.deviation_times_ps = series.time_ps
    diag.deviation_max_eV_A = series.max_eV_A
    check = deviation_check(series.time_ps, series.max_eV_A, series.element, kind, members)
    diag.summary["engine_deviation"] = {"kind": kind, "members": members, "frames": len(series), "value": check.value}
    diag.checks.append(check)


def _finish(
    acc: DiagnosticsAccumulator,
    files: list[Path],
    temperature: float,
    notes: list[str],
    energy_files: list[Path] | None,
) -> Diagnostics:
    from cellsim.analysis.diagnostics import read_energies
    from cellsim.io.sources import detect_format

    items: list[Path] = list(energy_files or [])
    if not items:
        for f in files:
            fmt = detect_format(f)
            if fmt == "vasprun":
                items.append(f)
            elif fmt == "xdatcar":
                items.append(f.parent)
    energies = None
    if items and (energy_files or len(items) == len(files)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            energies = read_energies(list(dict.fromkeys(items)))
        if energies is None:
            notes.append("no OSZICAR or vasprun.xml beside the trajectory: no temperature/energy diagnostics")
        notes.extend(str(w.message) for w in caught if "no OSZICAR" not in str(w.message))
    return acc.finish(energies, target_temperature=temperature)
