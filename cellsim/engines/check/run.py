"""Checking several engines, the JSON rows, the recommendation, and relaxed structures for the builder."""

from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.core.files import atomic_write_json

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from cellsim.engines.parity import ParityResult
    from cellsim.engines.registry import ModelInfo
from cellsim.engines.check.compute import _key_hash, _safe, cache_dir, relax, structure_digest
from cellsim.engines.check.settings import CalculatorFactory, CheckSettings, EngineReport, Progress, Row
from cellsim.engines.check.tasks import CheckInput, _engine_rows, _LoadError


def check_engines(
    inp: CheckInput,
    models: Sequence[ModelInfo],
    settings: CheckSettings | None = None,
    factory: CalculatorFactory | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> list[EngineReport]:
    """Run every check for every model.

    Parameters
    ----------
    inp
        The study's phases (see :func:`prepare`).
    models
        Models to check (:func:`cellsim.engines.registry.select`).
    settings
        Check sizes; default :class:`CheckSettings`.
    factory
        Builds a model's calculator (default: :func:`~cellsim.engines.registry.load_calculator`);
        called at most once per model, and not at all when every result is cached.
    use_cache
        Read cached results (they are always written).
    progress
        Called after each task with (engine, task, seconds, from cache).
    """
    from cellsim.engines.registry import load_calculator

    settings = settings or CheckSettings()
    make = factory or load_calculator
    reports = []
    for model in models:
        t0 = time.perf_counter()
        try:
            report = _engine_rows(model, inp, settings, make, use_cache, progress)
        except _LoadError as exc:  # the model did not load: one failing row, and the next engine
            msg = f"{type(exc).__name__}: {exc}"[:300]
            report = EngineReport(model.key, model.description, loaded=False, error=msg)
            report.rows.append(Row(model.key, "-", "model loads", None, None, "fail", "", msg))
        report.seconds = time.perf_counter() - t0
        reports.append(report)
    return reports


def rows_json(reports: Sequence[EngineReport]) -> list[dict[str, Any]]:
    """Every row of every engine as plain dicts (engine, phase, quantity, value, reference, verdict, unit, note)."""
    return [r.as_dict() for rep in reports for r in rep.rows]


def write_json(path: str | os.PathLike[str], reports: Sequence[EngineReport]) -> Path:
    return atomic_write_json(path, rows_json(reports))


def recommend(reports: Sequence[EngineReport], parity: ParityResult | None = None) -> tuple[str | None, str]:
    """The engine with the fewest failures, then warnings, then (with ``parity``) the smallest force error
    against PBE on the interface, then the fastest; and why, in words.

    ``parity`` (:func:`cellsim.engines.parity.parity`): each engine's force-MAE verdict on the interface counts
    as one more row of its check.
    """
    usable = [r for r in reports if r.loaded]
    if not usable:
        return None, "no engine loaded"
    dft = {e.engine: e for e in parity.engines} if parity is not None else {}

    def counts(r: EngineReport) -> tuple[int, int]:
        v = dft[r.engine].verdicts.get("force_mae") if r.engine in dft else None
        return r.count("fail") + (v == "fail"), r.count("warn") + (v == "warn")

    def key(r: EngineReport) -> tuple[int, int, float, float]:
        mae = dft[r.engine].overall.get("mae") if r.engine in dft else None
        speed = r.s_per_step if r.s_per_step is not None else math.inf
        return (*counts(r), mae if mae is not None else math.inf, speed)

    ranked = sorted(usable, key=key)
    best = ranked[0]
    nf, nw = counts(best)
    words = [f"{best.engine}: {nf} fail, {nw} warn"]
    if best.engine in dft:
        e = dft[best.engine]
        words.append(f"forces vs PBE on the interface: MAE {e.overall['mae']:.2f} eV/A ({e.verdicts['force_mae']})")
    if len(ranked) > 1:
        tied = [r for r in ranked[1:] if key(r)[:2] == key(best)[:2]]
        if tied:
            others = ", ".join(r.engine for r in tied)
            speed_txt = f" ({best.s_per_step:.3g} s/step)" if best.s_per_step is not None else ""
            how = "closest to PBE's forces" if best.engine in dft else f"fastest of them{speed_txt}"
            words.append(f"tied with {others} on failures and warnings; {how}")
        else:
            words.append(f"the fewest failures and warnings of {len(ranked)} engines")
    bad = [f"{r.phase} {r.quantity} {r.verdict}" for r in best.rows if r.verdict in ("fail", "warn")]
    if bad:
        words.append("its weak points: " + "; ".join(bad[:4]) + ("; ..." if len(bad) > 4 else ""))
    shared = _shared_failures(usable)
    if shared:
        words.append("every engine fails " + ", ".join(shared) + ": treat those results with caution")
    return best.engine, ". ".join(words)


def _shared_failures(reports: Sequence[EngineReport]) -> list[str]:
    if len(reports) < 2:
        return []
    sets = [{(r.phase, r.quantity) for r in rep.rows if r.verdict == "fail"} for rep in reports]
    common = set.intersection(*sets)
    return [f"{p} {q}" for p, q in sorted(common)]


@functools.cache
def cached_speeds() -> dict[str, tuple[float, int]]:
    """Newest cached speed of each engine key: (s/step, atoms) (for ``cellsim engines``)."""
    out: dict[str, tuple[float, int, float]] = {}
    root = cache_dir()
    for f in root.glob("*/speed-*.json") if root.is_dir() else []:
        try:
            data = json.loads(f.read_text())
            res, mtime = data["result"], f.stat().st_mtime
        except (OSError, ValueError, KeyError):
            continue
        engine = str(data.get("engine", f.parent.name))
        if engine not in out or mtime > out[engine][2]:
            out[engine] = (float(res["s_per_step"]), int(res["natoms"]), mtime)
    return {k: (v[0], v[1]) for k, v in out.items()}


def relaxed_structure(structure: Structure, engine: str, settings: CheckSettings | None = None) -> Structure:
    """``structure`` with the lattice ``engine`` relaxes it to (positions relaxed too), cached on disk.

    The cell relaxation of the engine check (:func:`relax`), so a build at the engine's lattice and the
    check agree; the result is cached by engine, structure and settings.
    """
    from pymatgen.core import Lattice, Structure

    from cellsim.engines.registry import load_calculator, select

    settings = settings or CheckSettings()
    key = {
        "kind": "relaxed-structure",
        "engine": engine,
        "structure": structure_digest(structure),
        "fmax": settings.relax_fmax,
        "stress": settings.relax_stress_gpa,
        "steps": settings.relax_steps,
    }
    path = cache_dir() / f"relaxed-{_safe(engine)}-{_key_hash(key)}.json"
    if path.is_file():
        return Structure.from_dict(json.loads(path.read_text()))
    (model,) = select([engine])
    res = relax(load_calculator(model), structure, settings)
    # keep the input's fractional positions: symmetry is kept by the relaxation, the lattice is what changes
    out = Structure(Lattice(res["cell"]), structure.species, structure.frac_coords)
    atomic_write_json(path, out.as_dict())
    return out


def parity_trust(run_dir: str | os.PathLike[str], study_ref: str | None = None) -> list[str]:
    """The trust section's sentences on the DFT forces of a run's interface (``RUN/engine-parity.json``).

    One sentence per engine checked ("CHGNet 0.3.0 forces on this interface vs PBE (...): MAE 0.xx eV/A
    (In 0.xx, S 0.xx, ...)"), or one saying the numbers do not exist and the command that makes them.
    """
    from cellsim.engines.parity import PARITY_FILE, load, trust_lines

    result = load(Path(run_dir) / PARITY_FILE)
    lines = trust_lines(result, study_ref or str(run_dir))
    if result is None:
        # no check on this run's interface, but a fitted model carries its own held-out PBE errors: say them
        card = _model_card_line(Path(run_dir))
        if card:
            lines.append(f"The model's own check (held-out PBE labels, not this interface): {card}.")
    return lines


def _model_card_line(run_dir: Path) -> str | None:
    from cellsim.config.rundir import RunDir
    from cellsim.engines.fit import describe_model

    try:
        study = RunDir(run_dir).load_study()
    except Exception:  # not a run directory, or no readable study: nothing to add
        return None
    return describe_model(study.engine.model_path) if study.engine.model_path else None
