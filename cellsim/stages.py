"""The stages as plain functions: build -> inputs -> run -> analyze -> match -> report.

The CLI, the FireWorks tasks, the demo, the tests and notebooks all call these; the CLI only parses and
prints. Heavy modules (pymatgen, torch, matplotlib) are imported inside the stage that needs them, so
``import cellsim`` stays fast.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.config.rundir import RunDir, default_analysis_dir, find_run_dir
from cellsim.core.errors import CellsimError, RunDirError

if TYPE_CHECKING:
    from cellsim.analysis.analyze import AnalysisResult
    from cellsim.config.study import Study
    from cellsim.engines.mlip import RunSummary
    from cellsim.inputsets.vasp import InputsReport
    from cellsim.io.sources import TrajectorySource
    from cellsim.products.match import MatchResult

PathLike = str | Path
MIN_WINDOWS = 6
AUTO_WINDOWS = 10


# --------------------------------------------------------------------------- build, inputs, run


@dataclass
class BuildOutcome:
    report: dict[str, Any]
    reused: bool
    run_dir: RunDir


def build(study_ref: PathLike, run_dir: PathLike, force: bool = False) -> BuildOutcome:
    """Load a study, write ``RUN_DIR/study.yaml`` and build ``RUN_DIR/interface/``.

    A finished interface of the same study is reused unless ``force``; one of a different study is an error.
    A build that fails leaves no ``study.yaml`` behind, so a corrected study can use the same folder.
    """
    import json

    from cellsim.build import build_interface, write_interface
    from cellsim.config.rundir import save_resolved
    from cellsim.config.study import load_study, resolve_study_paths

    rd = RunDir(run_dir)
    study = load_study(study_ref)
    src = Path(study_ref)
    base_dir = src.parent.resolve() if src.is_file() else None
    # structure files by absolute path, so the resolved study works from any folder
    resolve_study_paths(study, base_dir)
    if rd.interface_json.exists() and not force:
        save_resolved(study, rd.root)  # raises if the run directory holds another study
        return BuildOutcome(json.loads(rd.interface_json.read_text()), True, rd)
    if rd.interface_dir.exists() and not force:
        raise RunDirError(f"{rd.interface_dir}: exists without interface.json; use --force to rebuild")
    had_study = rd.study_file.exists()
    save_resolved(study, rd.root, force=force)
    try:
        spec, lattice_report = _engine_lattice_spec(study, rd, base_dir)
        model = build_interface(spec, base_dir)
    except BaseException:
        if not had_study:
            rd.study_file.unlink(missing_ok=True)
        raise
    if lattice_report:
        model.report["lattice"] = lattice_report
    write_interface(model, rd.root, title=f"cellsim {study.name}")
    return BuildOutcome(model.report, False, rd)


def _engine_lattice_spec(study: Study, rd: RunDir, base_dir: Path | None) -> tuple[Any, dict[str, Any]]:
    """The interface spec to build: as the study says, or (``interface.lattice: engine``) with both bulk
    crystals at the study engine's relaxed lattice, and how far each is from the reference."""
    if study.interface.lattice == "reference":
        return study.interface, {}
    import numpy as np
    from pymatgen.io.cif import CifWriter

    from cellsim.engines.check import relaxed_structure
    from cellsim.references.library import resolve_phase

    engine = study.engine.name if study.engine.name != "vasp" else "chgnet"
    spec = study.interface.model_copy(deep=True)
    report: dict[str, Any] = {"source": "engine", "engine": engine}
    for side_name in ("metal", "electrolyte"):
        side = getattr(spec, side_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, ref = resolve_phase(side.phase, base_dir, f"interface.{side_name}.phase")
        relaxed = relaxed_structure(ref, engine)
        path = rd.engine_phase_file(side_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        CifWriter(relaxed).write_file(str(path))
        a0, a1 = np.array(ref.lattice.abc), np.array(relaxed.lattice.abc)
        report[side_name] = {
            "reference": side.phase,
            "reference_abc": [round(float(x), 4) for x in a0],
            "engine_abc": [round(float(x), 4) for x in a1],
            "engine_vs_reference": [round(float(x), 5) for x in a1 / a0 - 1.0],
            "file": str(path),
        }
        side.phase = str(path.resolve())
    return spec, report


def inputs(run_dir: PathLike, force: bool = False) -> InputsReport:
    """VASP NVT inputs of the first segment and the segment plan (``md/plan.json``)."""
    from cellsim.inputsets.vasp import write_inputs

    rd = RunDir(run_dir)
    return write_inputs(rd.root, rd.load_study(), force=force)


def run(
    run_dir: PathLike,
    engine: str | None = None,
    time: str | float | None = None,
    steps: int | None = None,
    threads: int | None = None,
    relax_steps: int | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    replica: int | None = None,
    device: str | None = None,
) -> RunSummary:
    """The embedded-engine MD on a built run directory (resumes where it stopped).

    ``time`` is a duration (``"2ps"``, ``"500fs"``; a number means ps) or ``steps`` a step count, not both.
    """
    from cellsim.config.rundir import steps_for
    from cellsim.engines.mlip import EngineError, parse_time_ps, run_mlip

    rd = RunDir(run_dir)
    study = rd.load_study()
    if relax_steps is not None:
        study.md.relax_steps = relax_steps
    if steps is not None and time is not None:
        raise EngineError("give --time or --steps, not both")
    if steps is not None and steps < 1:
        raise EngineError(f"--steps {steps}: expected a positive number of MD steps")
    total = steps
    if time is not None:
        total = steps_for(parse_time_ps(str(time)), study.md.timestep_fs)
    from cellsim.core.files import BusyError, WriterLock

    try:
        # one MD writer per run directory (two would interleave frames in the same XDATCAR)
        with WriterLock(rd.lock_file, f"the MD of {rd.root}"):
            return run_mlip(rd.root, study, engine, total, threads, progress=progress, replica=replica, device=device)
    except BusyError as exc:
        raise CellsimError(str(exc)) from None


def engine_check(run_dir: PathLike, engines: Sequence[str] | None = None, quick: bool = False) -> list[Any]:
    """``cellsim engines check`` on a run directory's own phases; the rows go to ``RUN/engine-check.json``.

    Default: the study's engine only (results are cached, so a repeated demo does not pay again).
    """
    from cellsim.engines.check import CheckSettings, check_engines, prepare, write_json
    from cellsim.engines.registry import select

    rd = RunDir(run_dir)
    study = rd.load_study()
    names: list[str] = list(engines) if engines else [study.engine.name if study.engine.name != "vasp" else "chgnet"]
    inp = prepare(study, rd.root.resolve(), rd.root)
    reports = check_engines(inp, select(names, study), CheckSettings.quick() if quick else CheckSettings())
    write_json(rd.engine_check_file, reports)
    return reports


# --------------------------------------------------------------------------- analyze


def default_pairs(species: Sequence[str], study: Study | None = None, frame: tuple[Any, Any] | None = None) -> Any:
    """Pairs to analyse when none are listed, from the system itself (:mod:`cellsim.analysis.defaults`).

    With a study, its metal phase's elements are the electrode and its electrolyte phase's the electrolyte;
    without, the metal is chosen by metallic character and the rest is the electrolyte. ``frame``
    (``(frac, cell)`` of the first frame) keeps only the framework pairs bonded in it. Returns a
    :class:`~cellsim.analysis.defaults.PairChoice`; a system without any such pair gets each element with itself.
    """
    from cellsim.analysis.defaults import PairChoice
    from cellsim.analysis.defaults import default_pairs as by_rule

    metal = _study_phase_elements(study, "metal")
    electrolyte = _study_phase_elements(study, "electrolyte")
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
    from pymatgen.core import Composition

    return [el.symbol for el in Composition(formula)]


def _study_phase_elements(study: Study | None, side: str) -> list[str] | None:
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


def _first_frame(path: TrajectorySource, species: list[str] | None) -> tuple[list[str], tuple[Any, Any]] | None:
    """Per-atom species and ``(frac, cell)`` of the first frame of ``path`` (one block read), None if empty."""
    from cellsim.io.sources import _file_blocks, detect_format

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for hdr, block in _file_blocks(path, species, detect_format(path)):
            if len(block):
                return list(hdr.species), (block.frac[0].copy(), block.cells[0].copy())
    return None


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


def _species_from_poscar(poscar: Path) -> tuple[list[str], list[int]] | None:
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


def _resolve_species(files: list[Path], candidates: list[Path], given: list[str] | None) -> list[str] | None:
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
            got = _species_from_poscar(poscar)
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


def analyze(
    trajectory_or_run_dir: PathLike | Sequence[PathLike] | Any,
    *,
    dt_fs: float | None = None,
    pairs: str | Sequence[str] | None = None,
    window_ps: float | None = None,
    out: PathLike | None = None,
    rmax: float | None = None,
    bin_width: float | None = None,
    normalisation: str | None = None,
    cutoffs: dict[str, float] | None = None,
    species: Sequence[str] | None = None,
    temperature_K: float | None = None,
    reactants: str | Sequence[str] | None = None,
    replica: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> AnalysisResult:
    """Time-resolved partial RDFs, bond counts, environments and diagnostics of a trajectory; saved to ``out``.

    Parameters
    ----------
    trajectory_or_run_dir
        A run directory (all its MD segments, stitched), or one or several trajectory files in order:
        XDATCAR (VASP 4 or 5, plain or compressed; pymatgen-written too), vasprun.xml, or anything ASE
        reads (extxyz, .traj). Or the frames as Python objects, read in memory (no file written): ASE
        ``Atoms`` (one or a list), an ``ase.io.Trajectory``, a pymatgen ``Trajectory``, ``Structure`` (one
        or a list) or ``Xdatcar``; the analysis records them as ``python:<kind>, N frames`` with a sha256
        of the coordinates, and writes to ``analysis/`` in the current folder unless ``out`` is given.
    dt_fs
        Time between stored frames, fs. Default: INCAR beside the file (POTIM x NBLOCK), vasprun.xml,
        the embedded engine's record, the study; else 2 fs with a warning. Python objects: required, unless
        they carry their own (a pymatgen Trajectory's ``time_step``).
    pairs
        ``"In-S,In-Cl"`` or ``["In-S", "In-Cl"]``. Default: the study's, or for a trajectory from elsewhere
        the study defaults it has plus its cation-anion pairs and S-S.
    window_ps
        RDF time window, ps (default 0.5, or the study's).
    out
        Output folder. Default: ``RUN_DIR/analysis``, or ``analysis/`` beside the (first) trajectory file.
    rmax, bin_width, normalisation, cutoffs
        r range (A), bin width (A), ``"cell"`` or ``"occupied"`` volume, bond cutoffs per pair (A).
    species
        Element symbols in POSCAR order, for VASP 4 XDATCARs without a species line.
    temperature_K
        MD temperature (for the reference broadening in matching). Default: INCAR TEBEG, the study, else 300 K.
    reactants
        Reactant phases (library names or structure files), e.g. ``"Li6PS5Cl,In"``. Default: the study's
        electrolyte and metal, or the trajectory's composition decomposed into library phases.
    replica
        Analyse replica ``replica`` of a run directory (``md/replica-NN``) into ``analysis/replica-NN``.
    progress
        Called with the number of frames read so far.

    Returns
    -------
    AnalysisResult
        With ``.to_dataframe()`` (the rdf.csv table); also written to ``out``.
    """
    from cellsim.analysis.analyze import AnalysisError, AnalysisSettings, add_baseline
    from cellsim.analysis.analyze import analyze as analyze_files
    from cellsim.config.study import AnalysisSpec
    from cellsim.core.files import BusyError, WriterLock
    from cellsim.io.sources import MemorySource, python_trajectory, resolve_md_conditions
    from cellsim.references.reactants import given_reactants, infer_reactants

    given = python_trajectory(trajectory_or_run_dir)  # ASE / pymatgen objects, or None for paths
    mem = given if isinstance(given, MemorySource) else None
    if isinstance(given, list):  # an ase.io.Trajectory read from its file
        trajectory_or_run_dir = given
    targets = (
        []
        if mem is not None
        else [Path(trajectory_or_run_dir)]
        if isinstance(trajectory_or_run_dir, str | Path)
        else [Path(t) for t in trajectory_or_run_dir]
    )
    if not targets and mem is None:
        raise CellsimError("analyze: no trajectory given")
    if mem is not None and species:
        raise CellsimError("species: only for VASP 4 XDATCARs; Python objects name their atoms themselves")
    files: list[TrajectorySource]
    study: Study | None = None
    rd: RunDir | None = None
    if len(targets) == 1 and targets[0].is_dir():
        rd = RunDir(targets[0])
        if not rd.is_run and not rd.trajectory_files(replica):
            found = [targets[0] / n for n in ("XDATCAR", "vasprun.xml") if (targets[0] / n).is_file()]
            if not found:
                raise RunDirError(
                    f"{targets[0]}: no trajectory found (not a run directory: no study.yaml; no XDATCAR or "
                    "vasprun.xml in it)"
                )
            targets, rd = found[:1], None
    if rd is not None and replica is None and not rd.trajectory_files() and rd.replicas():
        return _analyze_replicas(
            rd,
            out,
            progress,
            dt_fs=dt_fs,
            pairs=pairs,
            window_ps=window_ps,
            rmax=rmax,
            bin_width=bin_width,
            normalisation=normalisation,
            cutoffs=cutoffs,
            species=species,
            temperature_K=temperature_K,
            reactants=reactants,
        )
    if rd is not None:
        study = rd.load_study() if rd.is_run else None
        segment_files = rd.trajectory_files(replica)
        files = list(segment_files)
        if not files:
            where = rd.md_root(replica)
            raise RunDirError(
                f"{where}: no segment with an XDATCAR, no trajectory found; run `cellsim run {rd.root}` "
                "(embedded engine) or the VASP segments first"
            )
        out_dir = Path(out) if out else (rd.replica_analysis_dir(replica) if replica is not None else rd.analysis_dir)
        poscars = [segment_files[0].parent / "POSCAR", rd.interface_poscar]
    elif mem is not None:
        files, poscars = [mem], []
        # objects have no folder of their own: they sit in the current one, so analysis/ goes there
        out_dir = Path(out) if out else default_analysis_dir(Path(mem.label))
    else:
        for t in targets:
            if t.is_dir():
                raise CellsimError(f"{t}: a folder among several trajectory files; give the files themselves")
            if not t.is_file():
                raise CellsimError(f"{t}: neither a run directory nor an XDATCAR or other trajectory file")
        files = list(targets)
        out_dir = Path(out) if out else default_analysis_dir(targets[0])
        poscars = [targets[0].parent / "POSCAR"]
    if rd is None and (owner := find_run_dir(out_dir)) is not None and out_dir == owner.analysis_dir:
        raise CellsimError(
            f"-o {out_dir}: that is the analysis folder of run directory {owner.root}, whose own trajectory it "
            "must describe; analyse into another folder"
        )
    paths = [f for f in files if isinstance(f, Path)]  # files, not objects in memory
    sp = _resolve_species(paths, poscars, list(species) if species else None) if paths else None
    cond = resolve_md_conditions(files[0], dt_fs, temperature_K, study)
    for note in cond.warnings:
        warnings.warn(note, UserWarning, stacklevel=2)
    spec = study.analysis if study is not None else AnalysisSpec()
    explicit_pairs = parse_pairs(pairs)
    notes = list(cond.warnings)
    pairs_source, pair_rule = "option", None
    chosen = explicit_pairs or spec.pairs
    if explicit_pairs is None:
        # the pairs must fit the atoms present: peek at the first frame
        first = _first_frame(files[0], sp)
        per_atom = first[0] if first else _elements_of(files[0], sp)
        elements = list(dict.fromkeys(per_atom))
        choice = default_pairs(per_atom, study, first[1] if first else None)
        if spec.pairs is None:
            chosen, pairs_source, pair_rule = choice.pairs, "derived", choice.to_dict()
            notes.append(
                f"pairs from the system's elements (docs/analysis.md; metal {', '.join(choice.metal) or 'none'}: "
                f"{choice.metal_source}): {', '.join(choice.pairs)}"
            )
        else:
            pairs_source = "study"
            kept = [p for p in spec.pairs if set(p.split("-")) <= set(elements)]
            if len(kept) < len(spec.pairs):
                added = [p for p in choice.pairs if p not in kept and "-".join(reversed(p.split("-"))) not in kept]
                notes.append(
                    f"the study's pairs without atoms in this trajectory skipped: "
                    f"{sorted(set(spec.pairs) - set(kept))}; the system's own added: {', '.join(added) or 'none'}"
                )
                chosen, pairs_source, pair_rule = kept + added, "study + derived", choice.to_dict()
    try:
        settings = AnalysisSettings(
            **{
                **spec.model_dump(),
                "pairs": chosen,
                "window_ps": window_ps or spec.window_ps,
                "rmax": rmax or spec.rmax,
                "bin_width": bin_width or spec.bin_width,
                "normalisation": normalisation or spec.normalisation,
                "bond_cutoffs": {**spec.bond_cutoffs, **(cutoffs or {})},
                "dt_fs": cond.dt_fs,
            }
        )
    except ValueError as exc:
        raise AnalysisError(_one_line_validation(exc)) from None
    cutoff_source = _cutoff_sources(settings.pairs, cutoffs or {}, spec.bond_cutoffs)
    by_rule = [p for p, src in cutoff_source.items() if src not in ("option", "study")]
    if by_rule:
        from cellsim.analysis.defaults import rule_cutoff

        notes.append(
            "bond cutoffs nobody gave, by rule (docs/analysis.md): "
            + ", ".join(f"{p} {rule_cutoff(p)[0]:g} A ({cutoff_source[p]})" for p in by_rule)
        )
    if window_ps is None:
        # a default window longer than an eighth of the run leaves too few windows to see anything change
        n_total = count_frames(files, sp)
        duration = n_total * settings.dt_fs / 1000.0
        if n_total and duration / settings.window_ps < MIN_WINDOWS:
            fpw = max(1, n_total // AUTO_WINDOWS)
            auto = fpw * settings.dt_fs / 1000.0
            notes.append(
                f"window {settings.window_ps:g} ps would give {max(1, round(duration / settings.window_ps))} window(s) "
                f"over {duration:.3f} ps; used {auto:g} ps ({AUTO_WINDOWS} windows)"
            )
            settings.window_ps = auto
    lock = WriterLock(out_dir.parent / f".{out_dir.name}.lock", str(out_dir))
    try:
        with lock:
            diag = _DiagnosticsObserver(
                settings.dt_fs,
                _study_metal(study),
                study.md.timestep_fs if study is not None else None,
                dt_assumed=cond.dt_source == "default",
            )
            res = analyze_files(files, settings, sp, progress, observers=[diag])
            if rd is not None and rd.interface_poscar.is_file():
                _check_interface_atoms(rd, res.species)
                add_baseline(res, rd.interface_poscar)
            n_windows = len(res.window_frames)
            duration = res.n_frames * settings.dt_fs / 1000.0
            if window_ps is not None and window_ps > duration:
                raise AnalysisError(
                    f"--window {window_ps} ps is longer than the trajectory ({res.n_frames} frames = {duration:.3f} ps)"
                )
            if n_windows < 2:
                notes.append(
                    f"one time window only ({settings.window_ps} ps over {duration:.3f} ps): nothing can be compared "
                    "over time; use a shorter --window"
                )
            if reactants:
                names = [x.strip() for x in (reactants.split(",") if isinstance(reactants, str) else reactants)]
                react = given_reactants([n for n in names if n], res.element_counts)
            elif study is not None:
                try:
                    react = given_reactants(
                        [study.interface.electrolyte.phase, study.interface.metal.phase], res.element_counts
                    )
                    react.source = "the study's electrolyte and metal"
                except CellsimError as exc:
                    react = infer_reactants(res.element_counts)
                    react.notes.append(f"the study's reactants do not fit this trajectory ({exc}); inferred instead")
            else:
                react = infer_reactants(res.element_counts)
            res.info.update(
                {
                    "dt_fs": settings.dt_fs,
                    "dt_source": cond.dt_source,
                    "temperature_K": cond.temperature_K,
                    "temperature_source": cond.temperature_source,
                    "run_dir": str(rd.root.resolve()) if rd is not None else None,
                    "replica": replica,
                    "study": study.name if study is not None else None,
                    "reactants": react.to_dict(),
                    "pairs_source": pairs_source,
                    "pair_rule": pair_rule,
                    "bond_cutoff_sources": cutoff_source,
                    "notes": notes + react.notes,
                }
            )
            res.diagnostics = _finish_diagnostics(
                diag, paths, cond.temperature_K, notes, rd.energy_files(replica) if rd is not None else None
            )
            if res.diagnostics is not None:
                res.info["equilibration_ps"] = res.diagnostics.summary.get("equilibration_ps")
                res.info["dt_check"] = res.diagnostics.summary.get("dt_check")
            res.save(out_dir)
    except BusyError as exc:
        raise CellsimError(str(exc)) from None
    return res


def _analyze_replicas(rd: RunDir, out: PathLike | None, progress: Any, **kw: Any) -> AnalysisResult:
    """Each replica into ``analysis/replica-NN``, then the pooled analysis (replica means) into ``analysis/``."""
    import json

    from cellsim.analysis.analyze import pool_replicas
    from cellsim.core.files import BusyError, WriterLock

    reps = rd.replicas()
    results = [analyze(rd.root, replica=k, progress=progress, **kw) for k in reps]
    pooled = pool_replicas(results)
    formation: dict[str, dict[str, list[float | None]]] = {}
    for k, r in zip(reps, results, strict=True):
        assert r.out_dir is not None
        peaks = json.loads((r.out_dir / "peaks.json").read_text())
        for p, d in peaks["pairs"].items():
            f = formation.setdefault(p, {"formation_ps": [], "break_ps": [], "final_bonds": []})
            f["formation_ps"].append(d["bonds"]["formation_ps"])
            f["break_ps"].append(d["bonds"]["break_ps"])
            f["final_bonds"].append(d["bonds"]["late_mean"])
        _ = k
    warns = sorted({c.message for r in results if r.diagnostics is not None for c in r.diagnostics.warnings})
    pooled.info = {
        **results[0].info,
        "replica": None,
        "replica_ids": reps,
        "replica_folders": [str(r.out_dir) for r in results],
        "replica_events": formation,
        "notes": [
            f"pooled over {len(reps)} replicas (seeds engine.seed + k); bond counts are replica means",
            *pooled.info.get("notes", []),  # what pool_replicas cut or pooled, said there
        ],
    }
    # pool_replicas pooled the diagnostics of every replica (latest equilibration, worst checks)
    pooled.info["equilibration_ps"] = (
        pooled.diagnostics.summary.get("equilibration_ps") if pooled.diagnostics is not None else None
    )
    if pooled.diagnostics is not None and warns:
        pooled.info["notes"].append(f"diagnostics of the replicas warned: {'; '.join(warns)}")
    out_dir = Path(out) if out else rd.analysis_dir
    try:
        with WriterLock(out_dir.parent / f".{out_dir.name}.lock", str(out_dir)):
            pooled.save(out_dir)
    except BusyError as exc:
        raise CellsimError(str(exc)) from None
    return pooled


def count_frames(files: Sequence[TrajectorySource], species: list[str] | None) -> int:
    """Whole frames in ``files`` (a first pass, made only when the window must fit the run's length)."""
    from cellsim.io.sources import iter_trajectory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sum(len(block) for _, block in iter_trajectory(files, species))


def _one_line_validation(exc: Exception) -> str:
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


def _elements_of(path: TrajectorySource, species: list[str] | None) -> list[str]:
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


def _check_interface_atoms(rd: RunDir, species: list[str]) -> None:
    got = _species_from_poscar(rd.interface_poscar) if rd.interface_poscar.is_file() else None
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


def _cutoff_sources(pairs: Sequence[str], option: dict[str, float], study: dict[str, float]) -> dict[str, str]:
    """Where each pair's bond cutoff comes from: ``option`` (--cutoff), ``study``, else the rule's origin
    (``reference first sphere`` or ``covalent radii``, :func:`cellsim.analysis.defaults.rule_cutoff`)."""
    from cellsim.analysis.defaults import rule_cutoff

    def has(table: dict[str, float], p: str) -> bool:
        return table.get(p, table.get("-".join(reversed(p.split("-"))), 0.0)) > 0

    return {p: "option" if has(option, p) else "study" if has(study, p) else rule_cutoff(p)[1] for p in pairs}


class _DiagnosticsObserver:
    """Feeds the streamed frames to a DiagnosticsAccumulator made when the species are known."""

    def __init__(self, dt_fs: float, metal: str | None, timestep_fs: float | None, dt_assumed: bool = False) -> None:
        self.dt_fs, self.metal, self.timestep_fs, self.dt_assumed = dt_fs, metal, timestep_fs, dt_assumed
        self.acc: Any = None

    def __call__(self, species: list[str], block: Any) -> None:
        from cellsim.analysis.diagnostics import DiagnosticsAccumulator

        if self.acc is None:
            # 500 evenly spread frames resolve drifts and order parameters; more only costs time
            self.acc = DiagnosticsAccumulator(
                species,
                dt_fs=self.dt_fs,
                metal=self.metal,
                timestep_fs=self.timestep_fs,
                max_frames=500,
                dt_assumed=self.dt_assumed,
            )
        self.acc.update(block)


def _study_metal(study: Study | None) -> str | None:
    """The element standing for the study's metal phase: a pure metal's element (In, Li, Cu), an alloy's only
    non-alkali metal (LiIn -> In, by metallic character); else None (then guessed from the trajectory)."""
    from cellsim.analysis.defaults import phase_metal

    elements = _study_phase_elements(study, "metal")
    return phase_metal(elements) if elements else None


def _finish_diagnostics(
    obs: _DiagnosticsObserver,
    files: list[Path],
    temperature: float,
    notes: list[str],
    energy_files: list[Path] | None = None,
) -> Any:
    """Diagnostics of the trajectory, with the energies of the files' OSZICAR/vasprun.xml when there are any
    (``energy_files``: a run directory's OSZICARs, parts of restarted segments included)."""
    from cellsim.analysis.diagnostics import read_energies
    from cellsim.io.sources import detect_format

    if obs.acc is None:
        return None
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
    return obs.acc.finish(energies, target_temperature=temperature)


# --------------------------------------------------------------------------- match


def _analysis_folder(target: PathLike | AnalysisResult) -> tuple[Path, RunDir | None]:
    from cellsim.analysis.analyze import AnalysisResult

    if isinstance(target, AnalysisResult):
        if target.out_dir is None:
            raise CellsimError("match: this analysis was never saved; give its folder or call .save(folder) first")
        folder = target.out_dir
    else:
        folder = Path(target)
    rd = RunDir(folder)
    if rd.is_run:
        return rd.analysis_dir, rd
    return folder, find_run_dir(folder)


def match(
    analysis: PathLike | AnalysisResult,
    *,
    candidates: Sequence[str] | None = None,
    use_mp: bool | None = None,
    reactants: str | Sequence[str] | None = None,
    thermo: bool | None = None,
    reactant_md: bool | None = None,
) -> MatchResult:
    """Rank candidate reaction products for the analysis in ``analysis`` (a run directory or analysis folder).

    Parameters
    ----------
    analysis
        A run directory, an analysis folder written by :func:`analyze`, or its result object.
    candidates
        Library names or structure files to compare with (default: automatic, see docs/matching.md).
    use_mp
        Add Materials Project phases (needs ``MP_API_KEY`` and network; cached on disk).
    reactants
        Override the reactants recorded by the analysis (``"Li6PS5Cl,In"``).
    thermo
        The phase-diagram cross-check (:mod:`cellsim.products.thermo`) with the study's engine (CHGNet for a trajectory
        from elsewhere): True computes the missing relaxed energies (cached), None uses cached ones only, False
        skips it.
    reactant_md
        Baseline of the reactant pairs from a short NVT of each bulk reactant with the same engine at the run's
        temperature (0.2 ps, cached): True runs the missing ones, None uses cached ones (else the crystals
        broadened to T), False never.

    Returns
    -------
    MatchResult
        Verdicts per candidate (formed / possible / not seen) with scores and intervals;
        ``.to_dataframe()`` gives the products.csv table. Also written into the analysis folder.
    """
    from cellsim.analysis.analyze import AnalysisResult
    from cellsim.config.study import MatchSpec
    from cellsim.core.files import BusyError, WriterLock
    from cellsim.products.match import match_analysis, named_candidates
    from cellsim.references.reactants import Reactants, given_reactants

    folder, rd = _analysis_folder(analysis)
    res = analysis if isinstance(analysis, AnalysisResult) else AnalysisResult.load(folder)
    if rd is not None and res.info.get("run_dir") is not None:
        spec = rd.load_study().match.model_copy()
    else:
        spec = MatchSpec()
    if use_mp is not None:
        spec.use_mp = use_mp
    cands = None
    if candidates:
        cands = named_candidates(list(candidates), Path.cwd())
    if reactants:
        names = [x.strip() for x in (reactants.split(",") if isinstance(reactants, str) else reactants) if x.strip()]
        react = given_reactants(names, res.element_counts)
    else:
        react = Reactants.from_dict(res.info.get("reactants") or {})
    per_replica = []
    for sub in res.info.get("replica_folders") or []:
        per_replica.append(
            match(sub, candidates=candidates, use_mp=use_mp, reactants=reactants, thermo=False, reactant_md=reactant_md)
        )
    try:
        with WriterLock(folder.parent / f".{folder.name}.lock", str(folder)):
            study_engine = rd.load_study().engine.name if rd is not None and rd.study_file.is_file() else "chgnet"
            # VASP runs and trajectories from elsewhere are cross-checked with the default offline model
            engine = "chgnet" if study_engine == "vasp" else study_engine
            thermo_fn = None
            if thermo is not False:
                from cellsim.products.thermo import engine_energies_check

                thermo_fn = engine_energies_check(engine, bool(thermo))
            md_fn = None
            if reactant_md is not False:
                md_fn = _reactant_md_fn(engine, res.temperature_K, res.settings.dt_fs, bool(reactant_md))
            result = match_analysis(
                res, spec, react, cands, base_dir=rd.root if rd else None, thermo=thermo_fn, reactant_md=md_fn
            )
            if per_replica:
                result.replicas = replica_support(per_replica)
            result.save(folder)
    except BusyError as exc:
        raise CellsimError(str(exc)) from None
    return result


def _reactant_md_fn(engine: str, temperature: float, dt_fs: float, compute: bool) -> Any:
    """The matching's reactant-NVT baseline (cached; ``compute`` runs what is missing); never fails the match."""

    def run(structs: dict[str, Any], pairs: list[str], rmax: float, dr: float) -> dict[str, Any]:
        from cellsim.engines.check import reactant_densities

        # the embedded engine's step, not the frame spacing: frames may be NBLOCK steps apart
        step = min(float(dt_fs), 2.0)
        try:
            return reactant_densities(engine, structs, temperature, step, pairs, rmax, dr, cached_only=not compute)[0]
        except Exception:  # an engine that cannot run here leaves the crystal baseline (said in match.json)
            return {}

    return run


def replica_support(results: list[MatchResult]) -> dict[str, dict[str, Any]]:
    """Per candidate: how many replicas gave each verdict, and the spread of their best scores."""
    import numpy as np

    out: dict[str, dict[str, Any]] = {}
    for r in results:
        for c in r.candidates:
            d = out.setdefault(c.candidate, {"formed": 0, "possible": 0, "not seen": 0, "scores": []})
            d[c.verdict] += 1
            d["scores"].append(c.best_score)
    for d in out.values():
        s = np.array(d["scores"], dtype=float)
        d["n"] = len(s)
        d["score_mean"] = round(float(s.mean()), 2)
        d["score_sd"] = round(float(s.std(ddof=1)), 2) if len(s) > 1 else 0.0
    return out


# --------------------------------------------------------------------------- report


def report(target: PathLike) -> dict[str, Path]:
    """Figures, ``report.html`` and ``report.md`` for a run directory (``RUN/report``) or an analysis folder
    (``ANALYSIS/report``)."""
    from cellsim.core.files import BusyError, WriterLock
    from cellsim.reporting.document import make_report

    folder, rd = _analysis_folder(target)
    try:
        with WriterLock(folder.parent / f".{folder.name}.report.lock", f"the report of {folder}"):
            return make_report(folder, rd)
    except BusyError as exc:
        raise CellsimError(str(exc)) from None
