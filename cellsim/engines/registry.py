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
import hashlib
import importlib.util
import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator

    from cellsim.config.study import Study


@dataclass(frozen=True)
class ModelInfo:
    """One offline model.

    Attributes
    ----------
    name
        Engine name accepted by :func:`cellsim.engines.mlip.make_calculator` and ``engine.name``.
    family, version
        Model family (``CHGNet``, ``SevenNet``) and the version or checkpoint of the weights.
    trained_on
        Training data as its authors describe it (short).
    description
        One line for the table.
    loader
        How the weights are loaded (the call cellsim makes).
    package, weights
        Python package holding the weights and the file's path inside it.
    default
        Part of the default set of ``cellsim engines check`` (one entry per distinct network; an older
        checkpoint or second head of a default model, or a model too slow for the check's budget, is not).
    model_path
        A model file given by a study (``engine.model_path``) instead of the bundled weights.
    """

    name: str
    family: str
    version: str
    trained_on: str
    description: str
    loader: str
    package: str
    weights: str
    default: bool = True
    model_path: str | None = None

    @property
    def key(self) -> str:
        """Unique label: the engine name, plus the file name for a study's own model file."""
        return f"{self.name}:{Path(self.model_path).name}" if self.model_path else self.name

    def weights_file(self) -> Path | None:
        """The checkpoint this model loads, if it is on disk (found without importing the package)."""
        if self.model_path:
            p = Path(self.model_path).expanduser()
            return p if p.is_file() else None
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        p = Path(next(iter(spec.submodule_search_locations))) / self.weights
        return p if p.is_file() else None

    def identity(self) -> str:
        """A string that changes when the weights change (cache keys of the engine checks)."""
        f = self.weights_file()
        if f is None:
            return f"{self.key}:missing"
        if self.model_path:
            return f"{self.key}:{_file_sha256(str(f))}"
        from importlib.metadata import PackageNotFoundError, version

        try:
            pkg_version = version(self.package)
        except PackageNotFoundError:
            pkg_version = "?"
        st = f.stat()
        return f"{self.key}:{self.package}-{pkg_version}:{st.st_size}"


_CHGNET_LOAD = "CHGNet.load(model_name={!r}) + CHGNetCalculator"
_SEVENNET_LOAD = "SevenNetCalculator({!r}{})"

MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        "chgnet",
        "CHGNet",
        "0.3.0",
        "MPtrj (PBE/PBE+U)",
        "CHGNet 0.3.0 (Oct 2023), 6 A graph cutoff; cellsim's default engine",
        _CHGNET_LOAD.format("0.3.0"),
        "chgnet",
        "pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar",
    ),
    ModelInfo(
        "chgnet-0.2.0",
        "CHGNet",
        "0.2.0",
        "MPtrj (PBE/PBE+U)",
        "CHGNet 0.2.0 (Feb 2023), the weights of the CHGNet paper (5 A cutoff)",
        _CHGNET_LOAD.format("0.2.0"),
        "chgnet",
        "pretrained/0.2.0/chgnet_0.2.0_e30f77s348m32.pth.tar",
    ),
    ModelInfo(
        "chgnet-r2scan",
        "CHGNet",
        "r2scan",
        "MP-r2SCAN (fine-tuned from 0.3.0)",
        "CHGNet 0.3.0 transferred to r2SCAN energies and forces",
        _CHGNET_LOAD.format("r2scan"),
        "chgnet",
        "pretrained/r2scan/chgnet_r2scan_transfer_learning_e15f36s161m23.pth.tar",
    ),
    ModelInfo(
        "sevennet",
        "SevenNet",
        "0 (11 Jul 2024)",
        "MPtrj (PBE/PBE+U)",
        "SevenNet-0, equivariant (NequIP-type) message passing, 5 A cutoff",
        _SEVENNET_LOAD.format("7net-0", ""),
        "sevenn",
        "pretrained_potentials/SevenNet_0__11Jul2024/checkpoint_sevennet_0.pth",
    ),
    ModelInfo(
        "sevennet-0-22may2024",
        "SevenNet",
        "0 (22 May 2024)",
        "MPtrj (PBE/PBE+U)",
        "SevenNet-0, the earlier (22 May 2024) checkpoint",
        _SEVENNET_LOAD.format("7net-0_22May2024", ""),
        "sevenn",
        "pretrained_potentials/SevenNet_0__22May2024/checkpoint_sevennet_0.pth",
        default=False,
    ),
    ModelInfo(
        "sevennet-l3i5",
        "SevenNet",
        "l3i5",
        "MPtrj (PBE/PBE+U)",
        "SevenNet with l_max 3 and 5 layers: more accurate, ~3x slower than SevenNet-0",
        _SEVENNET_LOAD.format("7net-l3i5", ""),
        "sevenn",
        "pretrained_potentials/SevenNet_l3i5/checkpoint_l3i5.pth",
        default=False,
    ),
    ModelInfo(
        "sevennet-mf-0",
        "SevenNet",
        "MF-0 (PBE head)",
        "MPtrj + MP-r2SCAN (multi-fidelity)",
        "SevenNet multi-fidelity model, PBE(+U) output head",
        _SEVENNET_LOAD.format("7net-mf-0", ", modal='PBE'"),
        "sevenn",
        "pretrained_potentials/SevenNet_MF_0/checkpoint_sevennet_mf_0.pth",
    ),
    ModelInfo(
        "sevennet-mf-0-r2scan",
        "SevenNet",
        "MF-0 (r2SCAN head)",
        "MPtrj + MP-r2SCAN (multi-fidelity)",
        "SevenNet multi-fidelity model, r2SCAN output head",
        _SEVENNET_LOAD.format("7net-mf-0", ", modal='R2SCAN'"),
        "sevenn",
        "pretrained_potentials/SevenNet_MF_0/checkpoint_sevennet_mf_0.pth",
        default=False,
    ),
)


def _by_name() -> dict[str, ModelInfo]:
    return {m.name: m for m in MODELS}


@functools.cache
def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def study_model(study: Study) -> ModelInfo | None:
    """The model file a study names in ``engine.model_path`` (family from ``engine.name``), if any."""
    path = study.engine.model_path
    if not path:
        return None
    base = study.engine.name if study.engine.name != "vasp" else "chgnet"
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
