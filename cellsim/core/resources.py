"""Locate files shipped with cellsim (bundled study files, ``workflows/``, and ``templates/``) and its cache folder.

In a source checkout they live at the top of the repository; a wheel carries them under
``cellsim/_shipped/`` (see ``pyproject.toml``). Both places are searched, package first.
"""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent.parent  # the cellsim package folder


def shipped_dir(name: str) -> Path:
    """Return the folder of shipped files called ``name`` (``"workflows"`` or ``"templates"``)."""
    for candidate in (_PKG / "_shipped" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cellsim's shipped folder '{name}' is missing from {_PKG} (broken install?)")


def bundled_workflows() -> dict[str, Path]:
    """Map bundled study names (file stem) to their paths."""
    return {p.stem: p for p in sorted(shipped_dir("workflows").glob("*.yaml"))}


def cache_root() -> Path:
    """cellsim's cache folder: ``$CELLSIM_CACHE``, default ``~/.cache/cellsim`` (each user of it adds a sub-folder)."""
    return Path(os.environ.get("CELLSIM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "cellsim"))
