"""The analyze stage: what was given (run directory, files, objects) wired to the analysis package.

The domain decisions (species, pairs, cutoffs, window, reactants, diagnostics) are made in
:mod:`cellsim.analysis.setup`; the pass itself is :func:`cellsim.analysis.analyze.analyze_pass`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.config.rundir import AnalysisFiles, RunDir, default_analysis_dir, find_run_dir
from cellsim.core.errors import AnalysisError, CellsimError, RunDirError

if TYPE_CHECKING:
    from cellsim.analysis.analyze import AnalysisResult
    from cellsim.analysis.diagnostics import DiagnosticsAccumulator
    from cellsim.analysis.result import AnalysisSettings
    from cellsim.analysis.setup import PairPlan
    from cellsim.config.study import Study
    from cellsim.io.sources import MDConditions, TrajectorySource

PathLike = str | Path


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
    options = _Options(
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
    given = _Targets.of(trajectory_or_run_dir, species, replica)
    if given.replicas_only:
        assert given.rd is not None
        return _analyze_replicas(given.rd, out, progress, **options.as_kwargs())
    return _analyze_targets(given, options, out, replica, progress)


@dataclass(frozen=True)
class _Options:
    """The analysis options :func:`analyze` was given (None: not given), as it names them."""

    dt_fs: float | None
    pairs: str | Sequence[str] | None
    window_ps: float | None
    rmax: float | None
    bin_width: float | None
    normalisation: str | None
    cutoffs: dict[str, float] | None
    species: Sequence[str] | None
    temperature_K: float | None
    reactants: str | Sequence[str] | None

    def as_kwargs(self) -> dict[str, Any]:
        """The options as :func:`analyze`'s keyword arguments (for each replica's own analysis)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class _Plan:
    """What :func:`analyze` settles before reading the trajectory: species, conditions, pairs, settings, notes."""

    study: Study | None
    paths: list[Path]  # the files among the sources (not objects in memory)
    species: list[str] | None
    cond: MDConditions
    pairs: PairPlan
    settings: AnalysisSettings
    cutoff_source: dict[str, str]
    notes: list[str]
    n_index: int | None  # frames by the readers' index, None where a file has none
    base_window: float  # the settings' window before it was fitted to the run's length
    window_note: str | None


def _analyze_targets(
    given: _Targets, o: _Options, out: PathLike | None, replica: int | None, progress: Callable[[int], None] | None
) -> AnalysisResult:
    """:func:`analyze` of one run directory's segments, trajectory files or objects: planned, read, saved."""
    from cellsim.core.files import BusyError, WriterLock

    rd, out_dir = given.rd, given.out_dir(out)
    study: Study | None = rd.load_study() if rd is not None and rd.is_run else None
    if rd is None and (owner := find_run_dir(out_dir)) is not None and out_dir == owner.analysis_dir:
        raise CellsimError(
            f"-o {out_dir}: that is the analysis folder of run directory {owner.root}, whose own trajectory it "
            "must describe; analyse into another folder"
        )
    plan = _plan(given, o, study)
    lock = WriterLock(out_dir.parent / f".{out_dir.name}.lock", str(out_dir))
    try:
        with lock:
            res, diag = _read(given.files, plan, o.window_ps, rd, progress)
            _record(res, diag, plan, o.reactants, rd, replica)
            res.save(out_dir)
    except BusyError as exc:
        raise CellsimError(str(exc)) from None
    return res


def _plan(given: _Targets, o: _Options, study: Study | None) -> _Plan:
    """Species, time step and temperature, pairs, settings, bond cutoffs and the window, with their notes."""
    from cellsim.analysis import setup
    from cellsim.config.study import AnalysisSpec
    from cellsim.io.sources import resolve_md_conditions

    files = given.files
    paths = [f for f in files if isinstance(f, Path)]  # files, not objects in memory
    sp = setup.resolve_species(paths, given.poscars, list(o.species) if o.species else None) if paths else None
    cond = resolve_md_conditions(files[0], o.dt_fs, o.temperature_K, study)
    for note in cond.warnings:
        # attributed to analyze's caller: _plan <- _analyze_targets <- analyze <- caller
        warnings.warn(note, UserWarning, stacklevel=4)
    spec = study.analysis if study is not None else AnalysisSpec()
    pairs = setup.choose_pairs(setup.parse_pairs(o.pairs), spec, files[0], sp, study)
    notes = list(cond.warnings) + pairs.notes
    settings = setup.make_settings(
        spec,
        pairs.pairs,
        cond.dt_fs,
        window_ps=o.window_ps,
        rmax=o.rmax,
        bin_width=o.bin_width,
        normalisation=o.normalisation,
        cutoffs=o.cutoffs,
    )
    cutoff_source = setup.cutoff_sources(settings.pairs, o.cutoffs or {}, spec.bond_cutoffs)
    if (cut_note := setup.cutoff_note(cutoff_source)) is not None:
        notes.append(cut_note)
    # without --window the window fits the run's length: the frame count from the readers' index, so the
    # trajectory is read once (counted by a first read only where a file has no index)
    # (the index also lets the diagnostics' thinning start on its final stride)
    n_index, base_window, window_note = setup.indexed_frames(files, sp), settings.window_ps, None
    if o.window_ps is None:
        n_total = n_index if n_index is not None else setup.count_frames(files, sp)
        settings.window_ps, window_note = setup.auto_window(n_total, settings)
    return _Plan(study, paths, sp, cond, pairs, settings, cutoff_source, notes, n_index, base_window, window_note)


def _read(
    files: list[TrajectorySource],
    plan: _Plan,
    window_ps: float | None,
    rd: RunDir | None,
    progress: Callable[[int], None] | None,
) -> tuple[AnalysisResult, DiagnosticsAccumulator | None]:
    """The pass over the trajectory (a second one only where the index miscounted and the window changes)."""
    from cellsim.analysis import setup
    from cellsim.analysis.analyze import add_baseline, analyze_pass

    settings, sp = plan.settings, plan.species
    diag_options = setup.diagnostics_options(plan.study, plan.cond.dt_source == "default", plan.n_index, len(files))
    res, diag = analyze_pass(files, settings, sp, progress, diag_options)
    if window_ps is None and plan.n_index is not None and plan.n_index != res.n_frames:
        # the index was off (a cut-off last frame, a dropped repeated frame): the window of the real
        # count, and a second pass only if that window differs
        fpw = settings.frames_per_window
        settings.window_ps = plan.base_window
        settings.window_ps, plan.window_note = setup.auto_window(res.n_frames, settings)
        if settings.frames_per_window != fpw:
            res, diag = analyze_pass(files, settings, sp, progress, diag_options)
    if plan.window_note:
        plan.notes.append(plan.window_note)
    if rd is not None and rd.interface_poscar.is_file():
        setup.check_interface_atoms(rd, res.species)
        add_baseline(res, rd.interface_poscar)
    duration = res.n_frames * settings.dt_fs / 1000.0
    if window_ps is not None and window_ps > duration:
        raise AnalysisError(
            f"--window {window_ps} ps is longer than the trajectory ({res.n_frames} frames = {duration:.3f} ps)"
        )
    if len(res.window_frames) < 2:
        plan.notes.append(
            f"one time window only ({settings.window_ps} ps over {duration:.3f} ps): nothing can be compared "
            "over time; use a shorter --window"
        )
    return res, diag


def _record(
    res: AnalysisResult,
    diag: DiagnosticsAccumulator | None,
    plan: _Plan,
    reactants: str | Sequence[str] | None,
    rd: RunDir | None,
    replica: int | None,
) -> None:
    """The analysis's record of where its inputs came from (``res.info``), and its finished diagnostics."""
    from cellsim.analysis import setup

    study, cond, notes = plan.study, plan.cond, plan.notes
    react = setup.choose_reactants(reactants, study, res.element_counts)
    res.info.update(
        {
            "dt_fs": plan.settings.dt_fs,
            "dt_source": cond.dt_source,
            "temperature_K": cond.temperature_K,
            "temperature_source": cond.temperature_source,
            "run_dir": str(rd.root.resolve()) if rd is not None else None,
            "replica": replica,
            "study": study.name if study is not None else None,
            "reactants": react.to_dict(),
            "pairs_source": plan.pairs.source,
            "pair_rule": plan.pairs.rule,
            "bond_cutoff_sources": plan.cutoff_source,
            "notes": notes + react.notes,
        }
    )
    res.diagnostics = setup.finish_diagnostics(
        diag, plan.paths, cond.temperature_K, notes, rd.energy_files(replica) if rd is not None else None
    )
    if res.diagnostics is not None:
        res.info["equilibration_ps"] = res.diagnostics.summary.get("equilibration_ps")
        res.info["dt_check"] = res.diagnostics.summary.get("dt_check")


def _analyze_replicas(rd: RunDir, out: PathLike | None, progress: Any, **kw: Any) -> AnalysisResult:
    """Each replica into ``analysis/replica-NN``, then the pooled analysis (replica means) into ``analysis/``."""
    import json

    from cellsim.analysis.pooling import pool_replicas
    from cellsim.core.files import BusyError, WriterLock

    reps = rd.replicas()
    results = [analyze(rd.root, replica=k, progress=progress, **kw) for k in reps]
    pooled = pool_replicas(results)
    formation: dict[str, dict[str, list[float | None]]] = {}
    for k, r in zip(reps, results, strict=True):
        assert r.out_dir is not None
        peaks = json.loads(AnalysisFiles(r.out_dir).peaks.read_text())
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
            *pooled.meta.notes,  # what pool_replicas cut or pooled, said there
        ],
    }
    # pool_replicas pooled the diagnostics of every replica (latest equilibration, worst checks)
    pooled.info["equilibration_ps"] = (
        pooled.diagnostics.summary.get("equilibration_ps") if pooled.diagnostics is not None else None
    )
    if pooled.diagnostics is not None and warns:
        pooled.info["notes"] = [*pooled.meta.notes, f"diagnostics of the replicas warned: {'; '.join(warns)}"]
    out_dir = Path(out) if out else rd.analysis_dir
    try:
        with WriterLock(out_dir.parent / f".{out_dir.name}.lock", str(out_dir)):
            pooled.save(out_dir)
    except BusyError as exc:
        raise CellsimError(str(exc)) from None
    return pooled


@dataclass
class _Targets:
    """What ``analyze`` was given: a run directory (its segments), trajectory files, or objects in memory."""

    files: list[TrajectorySource]
    poscars: list[Path]
    rd: RunDir | None = None
    default_out: Path | None = None
    replicas_only: bool = False

    def out_dir(self, out: PathLike | None) -> Path:
        if out:
            return Path(out)
        assert self.default_out is not None
        return self.default_out

    @classmethod
    def of(cls, target: Any, species: Sequence[str] | None, replica: int | None) -> _Targets:
        from cellsim.io.sources import MemorySource, python_trajectory

        given = python_trajectory(target)  # ASE / pymatgen objects, or None for paths
        mem = given if isinstance(given, MemorySource) else None
        if isinstance(given, list):  # an ase.io.Trajectory read from its file
            target = given
        targets = (
            [] if mem is not None else [Path(target)] if isinstance(target, str | Path) else [Path(t) for t in target]
        )
        if not targets and mem is None:
            raise CellsimError("analyze: no trajectory given")
        if mem is not None:
            if species:
                raise CellsimError("species: only for VASP 4 XDATCARs; Python objects name their atoms themselves")
            # objects have no folder of their own: they sit in the current one, so analysis/ goes there
            return cls([mem], [], None, default_analysis_dir(Path(mem.label)))
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
        if rd is not None:
            if replica is None and not rd.trajectory_files() and rd.replicas():
                return cls([], [], rd, rd.analysis_dir, replicas_only=True)
            segment_files = rd.trajectory_files(replica)
            if not segment_files:
                raise RunDirError(
                    f"{rd.md_root(replica)}: no segment with an XDATCAR, no trajectory found; run `cellsim run "
                    f"{rd.root}` (embedded engine) or the VASP segments first"
                )
            out = rd.replica_analysis_dir(replica) if replica is not None else rd.analysis_dir
            return cls(list(segment_files), [segment_files[0].parent / "POSCAR", rd.interface_poscar], rd, out)
        for t in targets:
            if t.is_dir():
                raise CellsimError(f"{t}: a folder among several trajectory files; give the files themselves")
            if not t.is_file():
                raise CellsimError(f"{t}: neither a run directory nor an XDATCAR or other trajectory file")
        return cls(list(targets), [targets[0].parent / "POSCAR"], None, default_analysis_dir(targets[0]))
