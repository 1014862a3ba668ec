"""INCAR tags as raw strings: what the analysis needs (POTIM, NBLOCK, TEBEG) without pymatgen."""

from __future__ import annotations

import re
from pathlib import Path


def read_incar_tags(incar: Path) -> dict[str, str]:
    """INCAR tags as raw strings (upper-case names), {} when the file is missing.

    A few tags do not justify importing pymatgen.io.vasp (0.9 s measured here, python -X importtime).
    """
    tags: dict[str, str] = {}
    if not incar.is_file():
        return tags
    for raw in incar.read_text(errors="replace").splitlines():
        for part in re.split(r"[;]", re.split(r"[#!]", raw, maxsplit=1)[0]):
            if "=" in part:
                k, v = part.split("=", 1)
                tags[k.strip().upper()] = v.strip()
    return tags
