"""MD energies of VASP segments: OSZICAR MD lines or vasprun.xml ionic steps (streamed), one series over segments.

Used by the diagnostics (:mod:`cellsim.analysis.diagnostics`): temperature, potential-energy drift, conserved
energy and the equilibration time.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cellsim.io.xdatcar import open_maybe_compressed

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

KB_EV = 8.617333262e-5


@dataclass
class EnergySeries:
    """Per-MD-step energies of one or several segments in order.

    ``step`` is cumulative over segments (1-based); ``total_eV`` is the conserved quantity VASP prints
    as ``E=`` (F + EK + thermostat terms); ``thermostat_eV`` the thermostat's share (SP + SK, or
    nosepot + nosekinetic), zeros when the file has none.
    """

    step: np.ndarray
    temperature_K: np.ndarray
    potential_eV: np.ndarray
    total_eV: np.ndarray
    kinetic_eV: np.ndarray
    thermostat_eV: np.ndarray
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.step)


_FLOAT = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_MD_LINE = re.compile(
    rf"^\s*(\d+)\s+T=\s*{_FLOAT}\s+E=\s*{_FLOAT}\s+F=\s*{_FLOAT}\s+E0=\s*{_FLOAT}\s+EK=\s*{_FLOAT}"
    rf"(?:\s+SP=\s*{_FLOAT}\s+SK=\s*{_FLOAT})?"
)


def parse_oszicar(path: str | Path) -> np.ndarray:
    """MD lines of an OSZICAR as rows (step, T, E, F, E0, EK, SP + SK).

    Electronic-step lines (``DAV:``, ``RMM:``, ``N  E  dE ...``) are skipped, so are lines with overflowed
    fields (``*****``). A last line without its newline is a write cut short and is ignored.
    """
    rows: list[list[float]] = []
    with open_maybe_compressed(Path(path)) as fh:
        for raw in fh:
            if not raw.endswith(b"\n") or b"T=" not in raw:
                continue
            m = _MD_LINE.match(raw.decode(errors="replace"))
            if m is None:
                continue
            g = [x if x is not None else "0" for x in m.groups()]
            rows.append([float(v) for v in g[:6]] + [float(g[6]) + float(g[7])])
    return np.array(rows, dtype=float).reshape(-1, 7)


def parse_vasprun(path: str | Path) -> np.ndarray:
    """Ionic steps of a vasprun.xml, streamed, as rows (step, T, E_total, F, E0, EK, thermostat).

    Reads each ``<calculation>``'s own ``<energy>`` block (not the electronic steps') and frees it, so
    memory does not grow with the file. ``kinetic`` gives T = 2 EK / (kB (3N - 3)) (VASP's count of
    degrees of freedom without constraints); steps without ``kinetic`` (a relaxation) get T = EK = 0.
    A file cut off mid-write yields the whole steps before the cut.
    """
    import xml.etree.ElementTree as ET  # here: the analysis of an XDATCAR run with an OSZICAR never needs it

    rows: list[list[float]] = []
    natoms = 0
    stack: list[str] = []
    current: dict[str, float] = {}
    try:
        with open_maybe_compressed(Path(path)) as fh:
            context = ET.iterparse(fh, events=("start", "end"))
            root: ET.Element | None = None
            for event, elem in context:
                if event == "start":
                    if root is None:
                        root = elem
                    stack.append(elem.tag)
                    continue
                stack.pop()
                parent = stack[-1] if stack else ""
                grand = stack[-2] if len(stack) > 1 else ""
                if elem.tag == "atoms" and parent == "atominfo":
                    natoms = int((elem.text or "0").strip() or 0)
                elif elem.tag == "i" and parent == "energy" and grand == "calculation":
                    try:
                        current[elem.get("name", "").strip()] = float((elem.text or "").strip())
                    except ValueError:
                        pass
                elif elem.tag == "calculation":
                    if "e_fr_energy" in current:
                        rows.append(_vasprun_row(len(rows) + 1, current, natoms))
                    current = {}
                    elem.clear()
                    if root is not None:
                        root.clear()  # drop the finished steps the root still holds
    except (ET.ParseError, EOFError) as exc:
        # a run still going or killed mid-write (EOFError: a compressed file cut short): the whole steps count
        from cellsim.io.xdatcar import TruncatedTrajectoryWarning

        where = f" at line {exc.position[0]}" if isinstance(exc, ET.ParseError) else ""
        warnings.warn(
            f"{path}: XML ends or breaks{where}: kept the energies of {len(rows)} whole ionic steps "
            "(a step cut off is dropped)",
            TruncatedTrajectoryWarning,
            stacklevel=2,
        )
    return np.array(rows, dtype=float).reshape(-1, 7)


def _vasprun_row(step: int, e: dict[str, float], natoms: int) -> list[float]:
    f = e["e_fr_energy"]
    e0 = e.get("e_0_energy", e.get("e_wo_entrp", f))
    ek = e.get("kinetic", 0.0)
    thermo = e.get("nosepot", 0.0) + e.get("nosekinetic", 0.0)
    total = e.get("total", f + ek + thermo)
    ndof = max(3 * natoms - 3, 1)
    temp = 2.0 * ek / (KB_EV * ndof) if natoms else 0.0
    return [float(step), temp, total, f, e0, ek, thermo]


def _energy_file(item: Path) -> tuple[Path, str] | None:
    """The energy file of a segment folder (OSZICAR first) or of a file path, and its kind."""
    if item.is_dir():
        for name, kind in (
            ("OSZICAR", "oszicar"),
            ("OSZICAR.gz", "oszicar"),
            ("vasprun.xml", "vasprun"),
            ("vasprun.xml.gz", "vasprun"),
        ):
            if (item / name).is_file():
                return item / name, kind
        return None
    if not item.is_file():
        return None
    return item, "vasprun" if "vasprun" in item.name or item.suffix == ".xml" else "oszicar"


def read_energies(segment_dirs_or_files: str | Path | Sequence[str | Path]) -> EnergySeries | None:
    """Energies of one or several MD segments, in order, as one series.

    Parameters
    ----------
    segment_dirs_or_files
        Segment folders (their OSZICAR, else vasprun.xml) or the files themselves. Each segment's steps
        restart at 1; they are numbered on from the previous segment's last step.

    Returns
    -------
    The series, or None when no segment has an MD line. A segment without an energy file makes the time
    axis ambiguous: the series is then None too, with a warning naming it.
    """
    items = (
        [Path(segment_dirs_or_files)]
        if isinstance(segment_dirs_or_files, str | Path)
        else [Path(p) for p in segment_dirs_or_files]
    )
    parts: list[np.ndarray] = []
    sources: list[str] = []
    offset = 0.0
    for item in items:
        found = _energy_file(item)
        if found is None:
            warnings.warn(f"{item}: no OSZICAR or vasprun.xml; energies are left out", stacklevel=2)
            return None
        path, kind = found
        rows = parse_oszicar(path) if kind == "oszicar" else parse_vasprun(path)
        if kind == "oszicar" and len(rows) == 0 and (path.parent / "vasprun.xml").is_file():
            path, rows = path.parent / "vasprun.xml", parse_vasprun(path.parent / "vasprun.xml")
        if len(rows):
            rows[:, 0] += offset
            offset = rows[-1, 0]
            parts.append(rows)
        sources.append(str(path))
    if not parts:
        return None
    a = np.concatenate(parts)
    return EnergySeries(
        step=a[:, 0].astype(np.int64),
        temperature_K=a[:, 1],
        potential_eV=a[:, 3],
        total_eV=a[:, 2],
        kinetic_eV=a[:, 5],
        thermostat_eV=a[:, 6],
        sources=sources,
    )
