"""Materials Project references through the official client (``mp-api``), cached on disk.

Used only when the user asks for it: ``cellsim refs fetch FORMULA|CHEMSYS`` or ``match.use_mp`` with
``MP_API_KEY`` set. Offline (no key, no network) the bundled library is used and this is said once.
The API key is read from the environment and never written to a log, a report or a file; error
messages from the client are scrubbed of it.

Cache: ``$CELLSIM_CACHE/mp`` (default ``~/.cache/cellsim/mp``), one JSON file per query with each
phase's MP id, formula, space group, energy above hull and structure (pymatgen dict).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.core.errors import CellsimError
from cellsim.core.files import atomic_write_json
from cellsim.core.resources import cache_root

if TYPE_CHECKING:
    from pymatgen.core import Structure

FIELDS = ["material_id", "formula_pretty", "symmetry", "energy_above_hull", "structure"]


class MPUnavailable(CellsimError):
    """No key, no network, or the server refused: the caller falls back to the bundled library."""


@dataclass(frozen=True)
class MPPhase:
    material_id: str
    formula: str
    spacegroup: str
    energy_above_hull: float
    structure_dict: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.formula} ({self.material_id})"

    def structure(self) -> Structure:
        from pymatgen.core import Structure

        return Structure.from_dict(self.structure_dict)


def cache_dir() -> Path:
    return cache_root() / "mp"


def _query_kind(query: str) -> tuple[str, str]:
    """'In-S' -> ('chemsys', 'In-S'); 'In2S3' -> ('formula', 'In2S3')."""
    q = query.strip()
    if not re.fullmatch(r"[A-Z][a-z]?(-[A-Z][a-z]?)*|[A-Z][a-z]?\d*([A-Z][a-z]?\d*)*", q):
        raise CellsimError(f"'{query}': expected a formula (In2S3) or a chemical system (In-S-Cl)")
    if "-" in q:
        return "chemsys", "-".join(sorted(q.split("-")))
    return "formula", q


def _scrub(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text


def fetch(query: str, energy_above_hull: float = 0.05, endpoint: str | None = None) -> list[MPPhase]:
    """Query MP for a formula or chemical system and cache the phases within ``energy_above_hull``.

    Parameters
    ----------
    query
        ``In2S3`` (formula) or ``In-S`` (chemical system: every phase made of those elements only).
    energy_above_hull
        Keep phases up to this far above the convex hull, eV/atom.
    endpoint
        API endpoint (default: ``$MP_API_ENDPOINT`` or the client's own); tests point it at a local double.
    """
    key = os.environ.get("MP_API_KEY")
    if not key:
        raise MPUnavailable("MP_API_KEY is not set")
    kind, value = _query_kind(query)
    endpoint = endpoint or os.environ.get("MP_API_ENDPOINT")
    try:
        from mp_api.client import MPRester

        with MPRester(
            api_key=key, endpoint=endpoint, use_document_model=False, mute_progress_bars=True, include_user_agent=True
        ) as mpr:
            docs = mpr.materials.summary.search(
                **{kind: value}, energy_above_hull=(0.0, energy_above_hull), fields=FIELDS
            )
    except Exception as exc:  # requests/mp-api raise many types; all mean "not available now"
        raise MPUnavailable(_scrub(f"{type(exc).__name__}: {exc}", key)[:300]) from None
    phases = [_phase(d) for d in docs]
    atomic_write_json(
        cache_dir() / f"{kind}_{value}.json",
        {
            "query": {kind: value, "energy_above_hull_max": energy_above_hull},
            "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "phases": [p.__dict__ for p in phases],
        },
    )
    return phases


def _phase(doc: dict[str, Any]) -> MPPhase:
    sym = doc.get("symmetry") or {}
    return MPPhase(
        material_id=str(doc["material_id"]),
        formula=str(doc.get("formula_pretty", "")),
        spacegroup=str(sym.get("symbol", "")),
        energy_above_hull=float(doc.get("energy_above_hull") or 0.0),
        structure_dict=doc["structure"] if isinstance(doc["structure"], dict) else doc["structure"].as_dict(),
    )


def cached() -> list[MPPhase]:
    """Every phase in the on-disk cache (unique by MP id)."""
    out: dict[str, MPPhase] = {}
    d = cache_dir()
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            for p in json.loads(f.read_text())["phases"]:
                out.setdefault(p["material_id"], MPPhase(**p))
        except (ValueError, KeyError, TypeError):
            continue  # a damaged cache file is ignored, not fatal
    return list(out.values())
