"""Versioned JSON records between stages (``analysis.json``, ``match.json``): one check of a document's format
tag and version, with the upgrades of older known versions in one place per format.

A document of the current version is read as it is; one of an older version that the format knows how to
upgrade is brought forward one version at a time (``upgrades[v]`` turns version ``v`` into ``v + 1``); any other
(newer, unknown, missing where no default is given, not a number) is refused with a message that names the
file, the version found and the version this cellsim reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cellsim.core.errors import CellsimError

Upgrade = Callable[[dict[str, Any]], dict[str, Any]]


def read_versioned(
    path: Path,
    doc: Any,
    *,
    tag: str,
    current: int,
    rerun: str,
    upgrades: Mapping[int, Upgrade] | None = None,
    missing: int | None = None,
    error: type[CellsimError] = CellsimError,
) -> dict[str, Any]:
    """``doc`` (the parsed JSON of ``path``) at version ``current``, upgraded if older and known, else refused.

    ``tag`` is the document's ``format`` field (``cellsim-<what>``, the format named by ``<what>`` in messages);
    ``rerun`` says what to do about a refused file; ``missing`` is the version of documents written before the
    field existed (None: a document without ``version`` is refused); ``error`` is the exception raised.
    """
    from cellsim.core.version import __version__

    what = tag.removeprefix("cellsim-")
    if not isinstance(doc, dict) or doc.get("format") != tag:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise error(f"{path}: not a cellsim {what} file (format {found!r}, expected {tag!r}); {rerun}")
    upgrades = upgrades or {}
    version = doc.get("version", missing)
    if isinstance(version, int) and not isinstance(version, bool) and version == current:
        return doc
    if (
        isinstance(version, int)
        and not isinstance(version, bool)
        and version < current
        and all(v in upgrades for v in range(version, current))
    ):
        out = dict(doc)
        for v in range(version, current):
            out = upgrades[v](out)
        out["version"] = current
        return out
    found = "(none)" if "version" not in doc else repr(doc["version"])
    known = sorted({current, *upgrades})
    reads = f"format {current}" if len(known) == 1 else f"formats {', '.join(map(str, known))} (current {current})"
    by = doc.get("cellsim_version")
    raise error(
        f"{path}: written by cellsim {by or '(unknown)'} in {what} format {found}; this cellsim ({__version__}) "
        f"reads {reads}; {rerun}"
    )
