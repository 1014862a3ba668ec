"""The MD engines as one interface, and their one registry: every engine name a study accepts has a runner.

An :class:`EngineRunner` says what it is called, whether it can run on this machine (and why not), checks a
run directory before any work (:meth:`~EngineRunner.prepare`), and runs the MD: the whole MD in this process
(:meth:`~EngineRunner.run`, what ``cellsim run`` does) for an embedded engine, one segment under custodian
(:meth:`~EngineRunner.run_segment`, a cluster job) for a DFT code's own MD.

* every offline model (:data:`cellsim.config.engines.MODELS`): embedded, :func:`cellsim.engines.mlip.run_mlip`;
* ``cp2k``: embedded through ASE's cp2k_shell (:mod:`cellsim.engines.cp2k_md`), and segment by segment under
  custodian on the inputs of ``cellsim inputs --code cp2k`` (:mod:`cellsim.engines.cp2k.segment`);
* ``vasp``: segments under custodian only (:mod:`cellsim.engines.vasp`); ``cellsim run`` runs its stand-in model.

:func:`runners` is the registry, :func:`runner_for` looks a name up and :func:`md_runner` is the runner of
``cellsim run`` (the stage :func:`cellsim.stages.md.run`). Nothing heavy is imported until a runner is used.
"""

from __future__ import annotations

import functools
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.config.engines import ENGINE_NAMES, MODELS, ModelInfo
from cellsim.engines import mlip
from cellsim.engines.mlip import ENGINES, EngineError

if TYPE_CHECKING:
    from cellsim.config.study import Study
    from cellsim.engines.mlip import RunSummary


def _not_embedded(name: str) -> EngineError:
    return EngineError(f"engine '{name}' is not an embedded engine (choose one of: {', '.join(ENGINES)})")


class EngineRunner(ABC):
    """One MD engine as cellsim runs it.

    Attributes
    ----------
    name
        The engine's name (``engine.name`` in a study, ``--engine`` on the command line).
    embedded
        The MD runs in this process (:meth:`run`); otherwise only segment by segment (:meth:`run_segment`).
    """

    name: str
    embedded: bool = True

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """Whether the engine can run on this machine, and why not (``""`` when it can); loads no model."""

    def prepare(self, run_dir: Path, study: Study) -> None:
        """Refuse a run directory this engine cannot run (before any model or program starts); writes nothing."""
        mlip.check_run(run_dir, study, self.name)

    def run(
        self,
        run_dir: Path,
        study: Study,
        total_steps: int | None = None,
        threads: int | None = None,
        progress: Callable[[int, int, float], None] | None = None,
        replica: int | None = None,
        device: str | None = None,
    ) -> RunSummary:
        """The MD in this process until ``total_steps`` steps exist (see :func:`cellsim.engines.mlip.run_mlip`)."""
        # looked up on the module at call time: a test may stand in for the MD
        return mlip.run_mlip(run_dir, study, self.name, total_steps, threads, progress, replica=replica, device=device)

    def run_segment(self, seg: Path) -> dict[str, Any]:
        """Run (or continue) one MD segment folder under custodian; its record."""
        raise EngineError(f"engine '{self.name}' runs inside cellsim (`cellsim run`), not segment by segment")


class ModelRunner(EngineRunner):
    """An offline machine-learned potential (the embedded engine)."""

    def __init__(self, model: ModelInfo) -> None:
        self.model = model
        self.name = model.name

    def available(self) -> tuple[bool, str]:
        if importlib.util.find_spec(self.model.package) is None:
            return False, f"{self.name}: the Python package {self.model.package!r} is not installed"
        if self.model.weights_file() is None:
            where = f"{self.model.package}/{self.model.weights}"
            return False, f"{self.name}: weights not found ({where}); cellsim does not download models"
        return True, ""


class Cp2kRunner(EngineRunner):
    """CP2K: PBE forces per step through ASE's cp2k_shell here, or its own MD under custodian on a cluster."""

    name = "cp2k"

    def available(self) -> tuple[bool, str]:
        from cellsim.engines.cp2k import Cp2kError, find_cp2k, resolve_settings

        try:
            find_cp2k(resolve_settings()["command"])
        except Cp2kError as exc:
            return False, str(exc)
        return True, ""

    def run_segment(self, seg: Path) -> dict[str, Any]:
        from cellsim.engines.cp2k.segment import run_cp2k_segment

        return run_cp2k_segment(seg)


class VaspRunner(EngineRunner):
    """VASP: segments under custodian on a cluster; ``cellsim run`` runs the study's stand-in model instead."""

    name = "vasp"
    embedded = False

    def available(self) -> tuple[bool, str]:
        from cellsim.engines.vasp import VaspRunError, check_vasp_command

        try:
            check_vasp_command()
        except VaspRunError as exc:
            return False, str(exc)
        return True, ""

    def prepare(self, run_dir: Path, study: Study) -> None:
        from cellsim.config.rundir import RunDir
        from cellsim.core.errors import RunDirError

        first = RunDir(run_dir).segment_dir(0)
        if not (first / "INCAR").is_file():
            raise RunDirError(f"{first}: no VASP inputs; run `cellsim inputs {run_dir}` first")

    def run(self, *args: Any, **kwargs: Any) -> RunSummary:
        raise _not_embedded(self.name)

    def run_segment(self, seg: Path) -> dict[str, Any]:
        from cellsim.engines.vasp import run_segment

        return run_segment(seg)


@functools.cache
def runners() -> dict[str, EngineRunner]:
    """The registry: one runner per engine name a study accepts (:data:`cellsim.config.engines.ENGINE_NAMES`)."""
    codes: dict[str, EngineRunner] = {"vasp": VaspRunner(), "cp2k": Cp2kRunner()}
    models = {m.name: ModelRunner(m) for m in MODELS}
    # in the names' order; a name without a runner fails here, on first use, not in a user's run
    return {name: models.get(name) or codes[name] for name in ENGINE_NAMES}


def runner_for(name: str) -> EngineRunner:
    """The runner of engine ``name``; EngineError listing the names when there is none."""
    found = runners().get(name)
    if found is None:
        raise EngineError(f"engine '{name}' is not an engine (choose one of: {', '.join(ENGINE_NAMES)})")
    return found


def md_runner(study: Study, engine: str | None = None) -> EngineRunner:
    """The runner of ``cellsim run``: ``engine``, else the study's (its stand-in model for ``vasp``); embedded only."""
    name = mlip.md_engine_name(study, engine)
    found = runners().get(name)
    if found is None or not found.embedded:
        raise _not_embedded(name)
    return found
