"""The match stage (candidate products of an analysis) and the report stage (figures, report.html)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.config.engines import mlip_for
from cellsim.config.rundir import RunDir, find_run_dir
from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
    from cellsim.analysis.analyze import AnalysisResult
    from cellsim.config.study import MatchSpec
    from cellsim.products.match import MatchResult
    from cellsim.references.reactants import Reactants

PathLike = str | Path


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
    from cellsim.core.files import BusyError, WriterLock
    from cellsim.products.match import match_analysis, named_candidates

    folder, rd = _analysis_folder(analysis)
    res = analysis if isinstance(analysis, AnalysisResult) else AnalysisResult.load(folder)
    spec = _match_spec(rd, res, use_mp)
    cands = None
    if candidates:
        cands = named_candidates(list(candidates), Path.cwd())
    react = _match_reactants(res, reactants)
    per_replica = []
    for sub in res.meta.replica_folders:
        per_replica.append(
            match(sub, candidates=candidates, use_mp=use_mp, reactants=reactants, thermo=False, reactant_md=reactant_md)
        )
    try:
        with WriterLock(folder.parent / f".{folder.name}.lock", str(folder)):
            thermo_fn, md_fn = _cross_checks(rd, res, thermo, reactant_md)
            result = match_analysis(
                res, spec, react, cands, base_dir=rd.root if rd else None, thermo=thermo_fn, reactant_md=md_fn
            )
            if per_replica:
                result.replicas = replica_support(per_replica)
            result.save(folder)
    except BusyError as exc:
        raise CellsimError(str(exc)) from None
    return result


def _match_spec(rd: RunDir | None, res: AnalysisResult, use_mp: bool | None) -> MatchSpec:
    """The run's ``match:`` settings (defaults for a trajectory from elsewhere), ``use_mp`` overriding its own."""
    from cellsim.config.study import MatchSpec

    if rd is not None and res.meta.run_dir is not None:
        spec = rd.load_study().match.model_copy()
    else:
        spec = MatchSpec()
    if use_mp is not None:
        spec.use_mp = use_mp
    return spec


def _match_reactants(res: AnalysisResult, reactants: str | Sequence[str] | None) -> Reactants:
    """The reactants given (``"Li6PS5Cl,In"`` or a list), else those the analysis recorded."""
    from cellsim.references.reactants import Reactants, given_reactants

    if reactants:
        names = [x.strip() for x in (reactants.split(",") if isinstance(reactants, str) else reactants) if x.strip()]
        return given_reactants(names, res.element_counts)
    return Reactants.from_dict(res.meta.reactants)


def _cross_checks(
    rd: RunDir | None, res: AnalysisResult, thermo: bool | None, reactant_md: bool | None
) -> tuple[Any, Any]:
    """The phase-diagram cross-check and the reactant-NVT baseline of :func:`match` (None where turned off)."""
    study_engine = rd.load_study().engine.name if rd is not None and rd.study_file.is_file() else "chgnet"
    # DFT runs and trajectories from elsewhere are cross-checked with the default offline model
    engine = mlip_for(study_engine)
    thermo_fn = None
    if thermo is not False:
        from cellsim.products.thermo import engine_energies_check

        thermo_fn = engine_energies_check(engine, bool(thermo))
    md_fn = None
    if reactant_md is not False:
        md_fn = _reactant_md_fn(engine, res.temperature_K, res.settings.dt_fs, bool(reactant_md))
    return thermo_fn, md_fn


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
