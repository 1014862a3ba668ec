"""The names a study may give as ``engine.name``, and the table of offline models behind them.

This is the one table of engine names: :mod:`cellsim.engines.registry` (which loads and probes the models)
re-exports it, the study's ``engine.name`` is validated against :data:`ENGINE_NAMES`, and the embedded
engine loads a model from its row. It lives at the config layer because the study validates names and the
layer contract lets the study import nothing above config; nothing here imports torch, ASE or pymatgen.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path


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
    load_name, modal
        What the family's loader is given: CHGNet's ``model_name`` or SevenNet's pretrained name, and the
        output head (modal) of a multi-fidelity SevenNet.
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
    load_name: str = ""
    modal: str | None = None

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
        load_name="0.3.0",
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
        load_name="0.2.0",
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
        load_name="r2scan",
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
        load_name="7net-0",
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
        load_name="7net-0_22May2024",
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
        load_name="7net-l3i5",
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
        load_name="7net-mf-0",
        modal="PBE",
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
        load_name="7net-mf-0",
        modal="R2SCAN",
    ),
)


@functools.cache
def _file_sha256(path: str) -> str:
    from cellsim.core.files import file_sha256

    return file_sha256(path)[:16]


MLIP_ENGINES: tuple[str, ...] = tuple(m.name for m in MODELS)
# DFT codes: cp2k also runs here as an embedded engine (ASE's cp2k_shell), vasp only on a cluster
DFT_ENGINES: tuple[str, ...] = ("vasp", "cp2k")
ENGINE_NAMES: tuple[str, ...] = (*MLIP_ENGINES, *DFT_ENGINES)
# the offline model that stands in for a DFT engine wherever a machine-learned potential is needed (the
# engine check, an engine-lattice build, the phase-diagram cross-check, the reactant MD of a VASP run)
STAND_IN = "chgnet"


def mlip_for(name: str) -> str:
    """The machine-learned potential used for engine ``name``: itself, or :data:`STAND_IN` for a DFT code."""
    return STAND_IN if name in DFT_ENGINES else name


def check_engine_name(name: str) -> str:
    """``name`` if it is an engine name, else ValueError listing them."""
    if name not in ENGINE_NAMES:
        raise ValueError(f"'{name}' is not an engine (choose one of: {', '.join(ENGINE_NAMES)})")
    return name
