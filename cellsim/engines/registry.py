"""The machine-learned potentials cellsim can run offline: what each is, and whether it loads here.

Only models whose weights ship inside an installed wheel are listed (CHGNet's and SevenNet's pretrained
checkpoints). Potentials that fetch their weights at run time (MACE, MatterSim, ORB, ...) are left out on
purpose: cellsim must not download anything while it runs. A study's ``engine.model_path`` adds one more
entry (a model file of the CHGNet or SevenNet family).

Nothing heavy is imported at module level; :func:`probe` loads a model once per process and remembers the
answer, so listing the models twice costs one load.
"""

from __future__ import annotations

import contextlib
import functools
import io
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

# the table itself lives with the study's names (cellsim.config.engines); re-exported here
from cellsim.config.engines import MLIP_ENGINES, MODELS, ModelInfo, mlip_for
from cellsim.core.errors import CellsimError

__all__ = [
    "MLIP_ENGINES",
    "MODELS",
    "ModelInfo",
    "load_calculator",
    "mlip_for",
    "models",
    "probe",
    "select",
    "study_model",
]

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator

    from cellsim.config.study import Study


def _by_name() -> dict[str, ModelInfo]:
    return {m.name: m for m in MODELS}


def study_model(study: Study) -> ModelInfo | None:
    """The model file a study names in ``engine.model_path`` (family from ``engine.name``), if any."""
    path = study.engine.model_path
    if not path:
        return None
    base = mlip_for(study.engine.name)
    template = _by_name().get(base)
    if template is None:
        raise CellsimError(f"engine.model_path: engine '{base}' has no model family cellsim knows")
    return replace(
        template,
        version="file",
        trained_on="(study's model file)",
        description=f"{template.family} model file from the study's engine.model_path",
        loader=f"{template.loader} on {path}",
        default=True,
        model_path=str(Path(path).expanduser()),
    )


def models(study: Study | None = None) -> list[ModelInfo]:
    """Every offline model, plus the study's own model file when it names one."""
    out = list(MODELS)
    extra = study_model(study) if study is not None else None
    if extra is not None:
        out.append(extra)
    return out


def select(names: list[str] | None, study: Study | None = None) -> list[ModelInfo]:
    """Models for ``--engine`` names: none = the default set (+ the study's file), ``all`` = every model.

    Raises
    ------
    CellsimError
        On a name that is not an offline model (the message lists the names).
    """
    pool = models(study)
    if not names:
        return [m for m in pool if m.default]
    if any(n == "all" for n in names):
        return pool
    by_key = {m.key: m for m in pool}
    extra = study_model(study) if study is not None else None
    out: list[ModelInfo] = []
    for n in names:
        m = by_key.get(n) or (extra if n == "study" else None)
        if m is None:
            known = ", ".join([*by_key, "all"] + (["study"] if extra else []))
            raise CellsimError(f"--engine {n}: not an offline model (choose from: {known})")
        if m not in out:
            out.append(m)
    return out


@functools.cache
def _load(name: str, model_path: str | None) -> Calculator:
    from cellsim.engines.mlip import make_calculator

    # CHGNet prints its parameter count on load: keep tables and JSON on stdout clean
    with contextlib.redirect_stdout(io.StringIO()):
        calc, _ = make_calculator(name, model_path)
    return calc


def load_calculator(model: ModelInfo) -> Calculator:
    """The model's ASE calculator, loaded once per process (never downloads: missing weights raise)."""
    if model.weights_file() is None:
        where = model.model_path or f"{model.package}/{model.weights}"
        raise CellsimError(f"{model.key}: weights not found ({where}); cellsim does not download models")
    return _load(model.name, model.model_path)


@functools.cache
def _probe(model: ModelInfo) -> tuple[bool, str]:
    try:
        load_calculator(model)
    except Exception as exc:  # any failure (missing package, bad file, torch error) means "does not load"
        return False, f"{type(exc).__name__}: {exc}"[:200]
    return True, ""


def probe(model: ModelInfo) -> tuple[bool, str]:
    """Whether the model loads here, and why not (tried once per process)."""
    return _probe(model)
