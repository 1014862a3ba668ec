"""A run directory holding H2 in a 5 A box: the smallest system real CP2K runs in seconds (CP2K tests)."""

from __future__ import annotations

from pathlib import Path

H2_POSCAR = "H2 in a box\n1.0\n5 0 0\n0 5 0\n0 0 5\nH\n2\nCartesian\n2.5 2.5 2.1\n2.5 2.5 2.9\n"


def h2_run(run: Path, study: str) -> Path:
    """``run`` with ``interface/POSCAR`` (H2 in a box) and ``study.yaml`` (``study``, its engine: cp2k)."""
    (run / "interface").mkdir(parents=True)
    (run / "interface" / "POSCAR").write_text(H2_POSCAR)
    (run / "study.yaml").write_text(study)
    return run
