"""Machine settings (not science): VASP commands, custodian polling, queue defaults.

Read from the environment first, then from a YAML file (``$CELLSIM_CONFIG`` or
``~/.config/cellsim/config.yaml``), like atomate2's VASP_CMD settings:

| setting | environment | default |
|---|---|---|
| vasp_cmd | CELLSIM_VASP_CMD | ``vasp_std`` |
| vasp_gamma_cmd | CELLSIM_VASP_GAMMA_CMD | ``vasp_gam`` (used for a Gamma-only 1x1x1 KPOINTS) |
| custodian_polling_s | CELLSIM_CUSTODIAN_POLLING_S | 10 |
| walltime_s | CELLSIM_WALLTIME_S | unset (custodian's WalltimeHandler reads PBS/SLURM variables itself) |
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from cellsim.errors import CellsimError


@dataclass(frozen=True)
class Settings:
    vasp_cmd: tuple[str, ...] = ("vasp_std",)
    vasp_gamma_cmd: tuple[str, ...] = ("vasp_gam",)
    custodian_polling_s: float = 10.0
    walltime_s: float | None = None


def config_path() -> Path:
    return Path(os.environ.get("CELLSIM_CONFIG") or Path.home() / ".config" / "cellsim" / "config.yaml")


def load_settings() -> Settings:
    file: dict[str, object] = {}
    path = config_path()
    if path.is_file():
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise CellsimError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise CellsimError(f"{path}: expected a mapping of settings")
        file = loaded

    def get(key: str, env: str, default: object) -> object:
        return os.environ.get(env) or file.get(key) or default

    def cmd(value: object) -> tuple[str, ...]:
        return tuple(shlex.split(value)) if isinstance(value, str) else tuple(str(v) for v in value)  # type: ignore[attr-defined]

    wall = get("walltime_s", "CELLSIM_WALLTIME_S", None)
    return Settings(
        vasp_cmd=cmd(get("vasp_cmd", "CELLSIM_VASP_CMD", "vasp_std")),
        vasp_gamma_cmd=cmd(get("vasp_gamma_cmd", "CELLSIM_VASP_GAMMA_CMD", "vasp_gam")),
        custodian_polling_s=float(get("custodian_polling_s", "CELLSIM_CUSTODIAN_POLLING_S", 10.0)),  # type: ignore[arg-type]
        walltime_s=float(wall) if wall else None,  # type: ignore[arg-type]
    )
