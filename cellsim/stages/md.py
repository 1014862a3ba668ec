"""The run stage (embedded-engine MD) and the engine check on a run directory's own phases."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.config.engines import mlip_for
from cellsim.config.rundir import RunDir
from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
    from cellsim.engines.mlip import RunSummary

PathLike = str | Path


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
    """The embedded-engine MD on a built run directory (resumes where it stopped), by the engine's runner.

    ``time`` is a duration (``"2ps"``, ``"500fs"``; a number means ps) or ``steps`` a step count, not both.
    """
    from cellsim.config.rundir import steps_for
    from cellsim.engines.mlip import EngineError, parse_time_ps
    from cellsim.engines.runners import md_runner

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
            runner = md_runner(study, engine)  # the embedded engines of the registry (cellsim.engines.runners)
            return runner.run(rd.root, study, total, threads, progress=progress, replica=replica, device=device)
    except BusyError as exc:
        raise CellsimError(str(exc)) from None


def engine_check(run_dir: PathLike, engines: Sequence[str] | None = None, quick: bool = False) -> list[Any]:
    """``cellsim engines check`` on a run directory's own phases; the rows go to ``RUN/engine-check.json``.

    Default: the study's engine only, its ``engine.model_path`` file when it names one (results are cached,
    so a repeated demo does not pay again).
    """
    from cellsim.engines.check import CheckSettings, check_engines, prepare, write_json
    from cellsim.engines.registry import select

    rd = RunDir(run_dir)
    study = rd.load_study()
    names: list[str] = (
        list(engines) if engines else ["study" if study.engine.model_path else mlip_for(study.engine.name)]
    )
    inp = prepare(study, rd.root.resolve(), rd.root)
    reports = check_engines(inp, select(names, study), CheckSettings.quick() if quick else CheckSettings())
    write_json(rd.engine_check_file, reports)
    return reports
