"""Physical diagnostics of an MD trajectory: is it at temperature, equilibrated, is the metal still solid,
is the electrolyte still intact?

An interface study reads reaction products off partial RDFs; those only mean something when the run is
thermalised and the metal behaves as the metal. A universal potential that melts indium at room
temperature (measured with CHGNet, see DESIGN.md) produces In-S contacts that a real solid would not.
This module turns such failures into plain-language checks (``ok`` / ``warn``) and keeps the series a
report plots.

Inputs
------
* Energies: :func:`read_energies` parses OSZICAR MD lines (or streams vasprun.xml) of one or several
  segments into an :class:`EnergySeries`.
* Frames: :class:`DiagnosticsAccumulator` is fed the :class:`~cellsim.io.xdatcar.FrameBlock` s of
  :func:`~cellsim.io.xdatcar.iter_segments`, the same blocks as the analysis loop.

Memory
------
The accumulator keeps at most ``max_frames`` (default 2000) frames, evenly strided over the run: when the
store is full every other kept frame is dropped and the stride doubles, so the length of the run need not
be known in advance. Only the metal atoms' positions are kept, unwrapped frame by frame with the
minimum-image displacement (computed on every frame, kept or not, so an atom that crosses the boundary
between two kept frames does not jump by a cell vector). Unit counts (e.g. intact PS4) are evaluated on
the kept frames as they arrive.

Rules
-----
* Equilibration time (:func:`equilibration_time`): the series (potential energy; without energies the
  metal-metal coordination) is cut into 20 equal blocks; the run is equilibrated from the end of the last
  block whose mean lies more than 2 sd (per-sample sd of the second half) from the second-half mean. It
  "never settled" when that time falls in the second half.
* Metal order: metal positions with the metal's centre of mass removed; the reference site of each atom is
  its mean position over the first of 20 time blocks; per block, the RMS displacement from the reference.
  Warn when the last block exceeds the Lindemann limit (:data:`LINDEMANN_FRACTION` x nearest-neighbour
  distance) or when the RMSD still grows faster than :data:`RMSD_GROWTH_WARN` over the second half.
* Layers: planes perpendicular to a x b found in the reference positions; the order parameter is the
  fraction of metal atoms within :data:`LAYER_TOLERANCE` of a plane, rescaled so that random heights give
  0 and perfect planes 1.
* Coordination: metal neighbours within 1.2 x the nearest-neighbour distance of the first block's mean
  positions (the Lindemann limit uses the same distance).
* Units (PS4 by default when P and S are present): fraction of centres with exactly ``n`` ligands within
  the cutoff.
"""

from __future__ import annotations

import json
import math
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cellsim.analysis.rdf import block_images
from cellsim.core.files import atomic_write_json
from cellsim.io.xdatcar import FrameBlock, iter_segments, open_maybe_compressed

# --------------------------------------------------------------------------- thresholds (with the reason)

# Lindemann: a solid melts when its RMS vibration reaches ~0.1-0.15 of the nearest-neighbour distance; the
# upper end leaves room for thermal noise (In: NN 3.25 A -> 0.49 A; solid In at 300 K sits near 0.3 A)
LINDEMANN_FRACTION = 0.15
# a thermalised solid's RMSD is flat; liquid In (D ~ 0.2-0.5 A^2/ps) grows ~0.2-1 A/ps over 1-10 ps
RMSD_GROWTH_WARN = 0.1  # A/ps
# below this rise over the second half, block-to-block noise of a short run decides the fitted slope
RMSD_MIN_RISE = 0.05  # A
# a metal atom vibrating in its layer stays within ~2.5 sd (0.2 A per axis) of the plane
LAYER_TOLERANCE = 0.5  # A
# reference heights closer than this belong to one plane (time-averaged sites of a solid spread < 0.2 A)
LAYER_SPLIT = 0.6  # A
# planes closer than 3 tolerances cannot be told from random heights
LAYER_MIN_SPACING = 3 * LAYER_TOLERANCE
# order 0.5: half-way between perfect planes and random heights
LAYER_ORDER_WARN = 0.5
# melting or reaction changes the first-shell count by more than thermal noise (~3 % in a solid)
COORDINATION_CHANGE_WARN = 0.10
# default neighbour cutoff = factor x first-shell distance: between first and second shell of close packing
COORDINATION_CUTOFF_FACTOR = 1.2
# the thermostat holds the mean within a few % in a system of ~100 atoms; 10 % is a wrong temperature
TEMPERATURE_MEAN_WARN = 0.10
# after equilibration the 0.1 ps running mean of T should not fall below 70 % of the target
TEMPERATURE_DIP_WARN = 0.70
TEMPERATURE_SMOOTH_PS = 0.1
# a potential energy moving more than its own sd over the second half is still relaxing or reacting
DRIFT_NOISE_FACTOR = 1.0
# 1 meV/ps/atom of leaking energy heats by ~4 K/ps (3 kB per atom of potential + kinetic energy)
CONSERVED_DRIFT_WARN = 1e-3  # eV/ps/atom
# losing more than 5 % of the units (PS4) is decomposition, not a bond flickering past the cutoff
UNIT_LOSS_WARN = 0.05
UNIT_LOSS_MIN_UNITS = 1.0
EQUILIBRATION_BLOCKS = 20
EQUILIBRATION_SD = 2.0
RMSD_BLOCKS = 20
MAX_PLOT_POINTS = 2000
# pair distances evaluated for the coordination series (frames x atoms^2): a few seconds of numpy
COORDINATION_BUDGET = 5e7
MIN_FRAMES = 4
KB_EV = 8.617333262e-5


# --------------------------------------------------------------------------- energies


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


# --------------------------------------------------------------------------- small numerical helpers


def equilibration_time(t: np.ndarray, x: np.ndarray, n_blocks: int = EQUILIBRATION_BLOCKS) -> tuple[float, bool]:
    """When ``x(t)`` settles, and whether it settles in the first half of the run.

    The series is cut into ``n_blocks`` equal blocks (fewer when short: at least 5 samples each); the
    equilibration time is the end of the last block whose mean lies more than ``EQUILIBRATION_SD``
    per-sample sd from the mean of the second half (0 when no block does). The run has settled when that
    time lies in the first half.
    """
    n = len(x)
    if n < 4:
        return float(t[0]) if n else 0.0, False
    nb = max(2, min(n_blocks, n // 5))
    ref = x[n // 2 :]
    mu, sd = float(np.mean(ref)), float(np.std(ref))
    tol = EQUILIBRATION_SD * max(sd, 1e-12 * max(1.0, abs(mu)))
    edges = np.linspace(0, n, nb + 1).astype(int)
    means = np.array([x[edges[b] : edges[b + 1]].mean() for b in range(nb)])
    outside = np.flatnonzero(np.abs(means - mu) > tol)
    if len(outside) == 0:
        return 0.0, True
    end = edges[outside[-1] + 1]
    t_eq = float(t[end]) if end < n else float(t[-1])
    return t_eq, bool(end <= n // 2)


def linear_drift(t: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of ``x(t)`` and the sd of the residuals about the line."""
    if len(t) < 3 or np.ptp(t) == 0:
        return 0.0, float(np.std(x)) if len(x) else 0.0
    slope, icpt = np.polyfit(t, x, 1)
    return float(slope), float(np.std(x - (slope * t + icpt)))


def running_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Mean over a sliding window of ``width`` samples (only the full windows)."""
    width = max(1, min(width, len(x)))
    c = np.cumsum(np.concatenate([[0.0], x]))
    return (c[width:] - c[:-width]) / width


def bin_mean(t: np.ndarray, x: np.ndarray, n_max: int = MAX_PLOT_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n_max`` points: means over consecutive equal bins (for plotting a long series)."""
    if len(x) <= n_max:
        return t.copy(), x.copy()
    edges = np.linspace(0, len(x), n_max + 1).astype(int)
    counts = np.diff(edges)
    return np.add.reduceat(t, edges[:-1]) / counts, np.add.reduceat(x, edges[:-1]) / counts


def neighbour_counts(
    frac: np.ndarray, cells: np.ndarray, centres: np.ndarray, ligands: np.ndarray, cutoff: float
) -> np.ndarray:
    """Ligands within ``cutoff`` of each centre, per frame: (n_frames, n_centres) integers.

    ``frac`` (n, N, 3) fractional coordinates (any range), ``cells`` (n, 3, 3). Every periodic image
    within the cutoff counts (small cells); an atom is never its own neighbour at zero shift.
    """
    n, nc, nl = len(frac), len(centres), len(ligands)
    out = np.zeros((n, nc), dtype=np.int64)
    if n == 0 or nc == 0 or nl == 0:
        return out
    m = block_images(cells, cutoff)
    shifts = np.array(
        [(i, j, k) for i in range(-m[0], m[0] + 1) for j in range(-m[1], m[1] + 1) for k in range(-m[2], m[2] + 1)],
        dtype=float,
    )
    self_pair = centres[:, None] == ligands[None, :]
    chunk = max(1, int(4_000_000 // max(nc * nl * 3, 1)))
    cut2 = cutoff * cutoff
    for f0 in range(0, n, chunk):
        fr, cl = frac[f0 : f0 + chunk], cells[f0 : f0 + chunk]
        d = fr[:, None, ligands, :] - fr[:, centres, None, :]
        d -= np.rint(d)
        same_cell = bool(np.all(cl == cl[0]))
        for s in shifts:
            # one cell for the chunk (NVT): a plain matrix product, several times faster than per-frame cells
            v = (d + s) @ cl[0] if same_cell else np.matmul(d + s, cl[:, None])
            near = np.einsum("fijk,fijk->fij", v, v) < cut2
            if not s.any():
                near &= ~self_pair
            out[f0 : f0 + chunk] += near.sum(axis=2)
    return out


def nearest_distance(frac: np.ndarray, cell: np.ndarray, idx: np.ndarray, rmax: float = 6.0) -> float:
    """Median over atoms ``idx`` of the distance to their nearest neighbour among ``idx`` (one frame)."""
    if len(idx) == 0:
        return math.nan
    m = block_images(cell[None], rmax)
    shifts = [
        np.array((i, j, k), dtype=float)
        for i in range(-m[0], m[0] + 1)
        for j in range(-m[1], m[1] + 1)
        for k in range(-m[2], m[2] + 1)
    ]
    x = frac[idx]
    best = np.full(len(idx), np.inf)
    for c0 in range(0, len(idx), 256):
        d = x[None, :, :] - x[c0 : c0 + 256, None, :]
        d -= np.rint(d)
        for s in shifts:
            r = np.linalg.norm((d + s) @ cell, axis=2)
            if not s.any():
                r[np.arange(len(r)), np.arange(c0, c0 + len(r))] = np.inf
            best[c0 : c0 + 256] = np.minimum(best[c0 : c0 + 256], r.min(axis=1))
    finite = best[np.isfinite(best)]
    return float(np.median(finite)) if len(finite) else math.nan


def guess_metal(symbols: Iterable[str], frac: np.ndarray | None = None, cell: np.ndarray | None = None) -> str | None:
    """The metal electrode's element by metallic character, never by atom count; None when unclear.

    Rule (:func:`cellsim.analysis.defaults.guess_metal`): the one element with pymatgen ``is_metal`` that is
    not an alkali metal next to anions (Pt of Pt + H2O, In of In | Li6PS5Cl); a single-element system is its
    own metal (bulk Li, bulk In). Several candidates are told apart with a frame (``frac``, ``cell``: the
    electrode's atoms have no anion neighbours); without one, or still several, None. A Li or Na electrode
    next to a Li/Na electrolyte cannot be told from the symbols: pass the metal (and its atom indices).
    """
    from cellsim.analysis.defaults import guess_metal as by_character

    return by_character(list(symbols), frac, cell)


# --------------------------------------------------------------------------- results


@dataclass
class Check:
    """One diagnostic in plain words: ``status`` is ``ok`` or ``warn``."""

    name: str
    status: Literal["ok", "warn"]
    value: float | None
    unit: str
    message: str


@dataclass
class UnitDef:
    """A structural unit of the electrolyte: ``centre`` with exactly ``n`` ``ligand`` atoms within ``cutoff``."""

    centre: str
    ligand: str
    cutoff: float
    n: int
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.centre}{self.ligand}{self.n}"


# P-S in PS4 tetrahedra is 2.03-2.07 A; 2.3 A keeps thermal stretching in and the 3.3 A+ S-S / P-P out
PS4 = UnitDef("P", "S", 2.3, 4, "PS4")

_ARRAYS = (
    "energy_times_ps",
    "temperature_K",
    "potential_eV",
    "frame_times_ps",
    "coordination_times_ps",
    "metal_coordination",
    "block_times_ps",
    "rmsd_A",
    "layer_order",
)


@dataclass
class Diagnostics:
    """Checks, scalar summaries and the series a report plots.

    Series: ``energy_times_ps`` with ``temperature_K`` and ``potential_eV`` (bin means, at most
    :data:`MAX_PLOT_POINTS`); ``frame_times_ps`` (kept frames) with ``unit_fractions[label]``;
    ``coordination_times_ps`` with ``metal_coordination`` (mean metal neighbours); ``block_times_ps`` (block
    midpoints) with ``rmsd_A`` and ``layer_order`` (NaN where layers are not resolved).
    """

    checks: list[Check] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    energy_times_ps: np.ndarray = field(default_factory=lambda: np.empty(0))
    temperature_K: np.ndarray = field(default_factory=lambda: np.empty(0))
    potential_eV: np.ndarray = field(default_factory=lambda: np.empty(0))
    frame_times_ps: np.ndarray = field(default_factory=lambda: np.empty(0))
    coordination_times_ps: np.ndarray = field(default_factory=lambda: np.empty(0))
    metal_coordination: np.ndarray = field(default_factory=lambda: np.empty(0))
    block_times_ps: np.ndarray = field(default_factory=lambda: np.empty(0))
    rmsd_A: np.ndarray = field(default_factory=lambda: np.empty(0))
    layer_order: np.ndarray = field(default_factory=lambda: np.empty(0))
    unit_fractions: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warn"]

    def check(self, name: str) -> Check | None:
        """The check called ``name``, or None when it was not made."""
        return next((c for c in self.checks if c.name == name), None)

    def summary_lines(self) -> list[str]:
        """One line per check: ``[ok] ...`` or ``[WARN] ...``."""
        return [f"[{'ok' if c.status == 'ok' else 'WARN'}] {c.message}" for c in self.checks]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "checks": [c.__dict__.copy() for c in self.checks],
            "summary": {k: _json_scalar(v) for k, v in self.summary.items()},
        }
        out["checks"] = [{**c, "value": _json_scalar(c["value"])} for c in out["checks"]]
        out["series"] = {k: _json_list(getattr(self, k)) for k in _ARRAYS}
        out["series"]["unit_fractions"] = {k: _json_list(v) for k, v in self.unit_fractions.items()}
        return out

    def to_json(self, path: str | Path) -> Path:
        """Write the diagnostics as JSON, atomically (NaN as null)."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnostics:
        series = data.get("series", {})
        arrays = {k: np.array(series.get(k, []), dtype=float) for k in _ARRAYS}
        return cls(
            checks=[Check(**c) for c in data.get("checks", [])],
            summary=dict(data.get("summary", {})),
            unit_fractions={k: np.array(v, dtype=float) for k, v in series.get("unit_fractions", {}).items()},
            **arrays,
        )

    @classmethod
    def from_json(cls, path: str | Path) -> Diagnostics:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _json_scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _json_list(a: np.ndarray) -> list[float | None]:
    return [float(x) if math.isfinite(x) else None for x in np.asarray(a, dtype=float).ravel()]


# --------------------------------------------------------------------------- the accumulator


class DiagnosticsAccumulator:
    """Collects what the diagnostics need while the trajectory streams past.

    Parameters
    ----------
    species
        Per-atom element symbols (``header.species``).
    dt_fs
        Time between stored frames (POTIM x NBLOCK), fs.
    metal
        The metal electrode's element; default :func:`guess_metal`. None there: no metal checks.
    metal_indices
        The metal atoms explicitly (e.g. a Li electrode next to a Li electrolyte); overrides ``metal``.
    units
        Electrolyte units to count; default PS4 when P and S are present.
    timestep_fs
        MD time step for the energies' time axis; default: the energies span the frames' time.
    max_frames
        Most frames kept (evenly strided over the run).
    coordination_cutoff
        Metal-metal neighbour cutoff (A); default 1.2 x the nearest-neighbour distance of the first
        block's mean positions.
    dt_assumed
        The time between frames was assumed, not read or given: the "time step" check says so (and it is
        made either way, :mod:`cellsim.analysis.timestep`).
    """

    def __init__(
        self,
        species: Sequence[str],
        *,
        dt_fs: float,
        metal: str | None = None,
        metal_indices: Sequence[int] | None = None,
        units: Sequence[UnitDef] | None = None,
        timestep_fs: float | None = None,
        max_frames: int = 2000,
        coordination_cutoff: float | None = None,
        dt_assumed: bool = False,
    ) -> None:
        from cellsim.analysis.defaults import metal_candidates
        from cellsim.analysis.timestep import StepDisplacements

        if dt_fs <= 0:
            raise ValueError(f"dt_fs must be positive, got {dt_fs}")
        self.species = np.array(list(species))
        self.dt_fs = float(dt_fs)
        self.timestep_fs = timestep_fs
        self.max_frames = max(4, int(max_frames))
        self.coordination_cutoff = coordination_cutoff
        self.metal: str | None
        if metal_indices is not None:
            self.metal_idx = np.asarray(metal_indices, dtype=np.int64)
            self.metal = metal or "/".join(sorted(set(self.species[self.metal_idx].tolist())))
        else:
            self.metal = metal if metal is not None else guess_metal(self.species.tolist())
            self.metal_idx = np.flatnonzero(self.species == self.metal) if self.metal else np.empty(0, dtype=np.int64)
        # several candidate metals (Pt next to LLZO's La and Zr): the first frame tells the electrode apart
        self._guess_on_first_frame = (
            metal is None
            and metal_indices is None
            and self.metal is None
            and len(metal_candidates(self.species.tolist())) > 1
        )
        self.dt_assumed = dt_assumed
        self._steps = StepDisplacements(self.species.tolist())
        present = set(self.species.tolist())
        if units is None:
            units = [PS4] if {"P", "S"} <= present else []
        self.units = [u for u in units if u.centre in present and u.ligand in present]
        self._unit_idx = [
            (np.flatnonzero(self.species == u.centre), np.flatnonzero(self.species == u.ligand)) for u in self.units
        ]
        self.n_frames = 0
        self.stride = 1
        self._kept_index: list[int] = []
        self._kept_frac: list[np.ndarray] = []  # unwrapped fractional coordinates of the metal atoms
        self._kept_cell: list[np.ndarray] = []
        self._kept_units: list[np.ndarray] = []  # intact fraction per unit kind
        self._last_raw: np.ndarray | None = None
        self._last_unwrapped: np.ndarray | None = None

    def update(self, block: FrameBlock) -> None:
        """Take the next frames (blocks must come in order, without gaps)."""
        n = len(block)
        if n == 0:
            return
        if block.frac.shape[1] != len(self.species):
            raise ValueError(f"frames hold {block.frac.shape[1]} atoms, species {len(self.species)}")
        if self._guess_on_first_frame and self.n_frames == 0:
            self._guess_on_first_frame = False
            self.metal = guess_metal(self.species.tolist(), block.frac[0], block.cells[0])
            if self.metal is not None:
                self.metal_idx = np.flatnonzero(self.species == self.metal)
        self._steps.update(block.frac, block.cells)
        unwrapped = self._unwrap(block.frac[:, self.metal_idx])
        g = self.n_frames + np.arange(n)
        keep = np.flatnonzero(g % self.stride == 0)
        if len(keep):
            fr, cl = block.frac[keep], block.cells[keep]
            fractions = np.zeros((len(keep), len(self.units)))
            for k, (u, (ic, il)) in enumerate(zip(self.units, self._unit_idx, strict=True)):
                fractions[:, k] = (neighbour_counts(fr, cl, ic, il, u.cutoff) == u.n).mean(axis=1)
            for j, i in enumerate(keep):
                if g[i] % self.stride:
                    continue  # the stride doubled within this block
                self._kept_index.append(int(g[i]))
                self._kept_frac.append(unwrapped[i].copy())
                self._kept_cell.append(block.cells[i].copy())
                self._kept_units.append(fractions[j])
                if len(self._kept_index) > self.max_frames:
                    self._decimate()
        self.n_frames += n

    def _unwrap(self, frac: np.ndarray) -> np.ndarray:
        """Continue each atom's path across the boundary: minimum-image steps between consecutive frames."""
        prev_raw = frac[0] if self._last_raw is None else self._last_raw
        prev_unw = frac[0] if self._last_unwrapped is None else self._last_unwrapped
        steps = np.diff(np.concatenate([prev_raw[None], frac]), axis=0)
        steps -= np.rint(steps)
        out = prev_unw[None] + np.cumsum(steps, axis=0)
        self._last_raw, self._last_unwrapped = frac[-1].copy(), out[-1].copy()
        return out

    def _decimate(self) -> None:
        """Keep the frames on the doubled stride (every other kept frame, the first one included)."""
        self.stride *= 2
        sel = [k for k, g in enumerate(self._kept_index) if g % self.stride == 0]
        self._kept_index = [self._kept_index[k] for k in sel]
        self._kept_frac = [self._kept_frac[k] for k in sel]
        self._kept_cell = [self._kept_cell[k] for k in sel]
        self._kept_units = [self._kept_units[k] for k in sel]

    # ---------------------------------------------------------------- finish

    def finish(
        self,
        energies: EnergySeries | None = None,
        target_temperature: float | None = None,
        conserved: bool | None = None,
    ) -> Diagnostics:
        """All checks and series.

        Parameters
        ----------
        energies
            From :func:`read_energies`; without them only the structural checks are made.
        target_temperature
            The thermostat's temperature (K).
        conserved
            Whether ``E=`` is a conserved quantity (judge its drift). Default: when the file carries
            thermostat terms (Nose SP/SK non-zero); the embedded engine writes F + EK only (SP = SK = 0),
            which is not conserved under a thermostat.
        """
        d = Diagnostics()
        d.summary["frames"] = self.n_frames
        d.summary["frames_kept"] = len(self._kept_index)
        d.summary["dt_frame_fs"] = self.dt_fs
        d.summary["metal"] = self.metal
        d.summary["metal_atoms"] = len(self.metal_idx)
        frame_t = (np.array(self._kept_index, dtype=float) + 1.0) * self.dt_fs / 1000.0
        d.frame_times_ps = frame_t
        run_ps = self.n_frames * self.dt_fs / 1000.0
        d.summary["run_ps"] = run_ps
        if self.n_frames and len(self._kept_index) < MIN_FRAMES:
            d.checks.append(
                Check(
                    "trajectory",
                    "warn",
                    float(self.n_frames),
                    "frames",
                    f"trajectory: only {self.n_frames} frames; too short for the structural checks",
                )
            )
        metal = self._metal_series(d) if len(self.metal_idx) and len(self._kept_index) >= MIN_FRAMES else None
        t_eq, settled, eq_source = 0.0, True, ""
        if energies is not None and len(energies) >= 4:
            t_e = self._energy_times(energies)
            t_eq, settled = equilibration_time(t_e, energies.potential_eV)
            eq_source = "potential energy"
        elif metal is not None and len(d.metal_coordination) >= 4:
            t_eq, settled = equilibration_time(d.coordination_times_ps, d.metal_coordination)
            eq_source = f"{self.metal}-{self.metal} coordination"
        d.summary["equilibration_ps"] = t_eq
        d.summary["equilibrated"] = settled
        if eq_source:
            d.checks.append(_equilibration_check(t_eq, settled, eq_source, run_ps))
        if energies is not None and len(energies) >= 4:
            self._energy_checks(d, energies, t_eq, target_temperature, conserved)
            drift = d.check("potential energy drift")
            if drift is not None and drift.status != "ok" and eq_source == "potential energy":
                # block means can sit inside a band that the whole second half slides through: an energy still
                # drifting beyond its noise is not equilibrated, whatever the blocks say (a reaction releasing
                # energy must never be called "settled")
                d.summary["equilibrated"] = False
                d.checks = [
                    _drifting_check(float(drift.value or 0.0), run_ps) if c.name == "equilibration" else c
                    for c in d.checks
                ]
        if metal is not None:
            d.checks.extend(metal)
        self._unit_checks(d)
        self._time_step_check(d, energies, target_temperature)
        return d

    def _time_step_check(self, d: Diagnostics, energies: EnergySeries | None, target: float | None) -> None:
        """The "time step" check: per-frame displacements against thermal speeds (cellsim.analysis.timestep).

        The speeds are taken at the hotter of the target and the measured mean temperature, so a run that
        heated up is not blamed on its time step.
        """
        from cellsim.analysis.timestep import message

        t = float(target) if target else 300.0
        if energies is not None and len(energies) and np.isfinite(energies.temperature_K).any():
            t = max(t, float(np.nanmean(energies.temperature_K)))
        record = self._steps.judge(self.dt_fs, t, self.dt_assumed)
        if record is None:
            return
        d.summary["dt_check"] = record
        lo = record["implied_dt_fs"][0]
        d.checks.append(
            Check("time step", "ok" if record["status"] == "ok" else "warn", float(lo), "fs", message(record))
        )

    def _energy_times(self, e: EnergySeries) -> np.ndarray:
        """ps of each energy line: step x time step (given, or the frames' span over the steps)."""
        dt = self.timestep_fs
        if dt is None:
            dt = self.n_frames * self.dt_fs / e.step[-1] if self.n_frames and e.step[-1] else self.dt_fs
        return e.step.astype(float) * dt / 1000.0

    def _energy_checks(
        self, d: Diagnostics, e: EnergySeries, t_eq: float, target: float | None, conserved: bool | None
    ) -> None:
        t = self._energy_times(e)
        d.energy_times_ps, d.temperature_K = bin_mean(t, e.temperature_K)
        d.potential_eV = bin_mean(t, e.potential_eV)[1]
        natoms = len(self.species)
        post = t >= t_eq
        if post.sum() < 4:
            post = t >= t[len(t) // 2]
        d.checks.append(_temperature_check(d, t, e.temperature_K, post, target))
        half = t >= t[len(t) // 2]
        slope, noise = linear_drift(t[half], e.potential_eV[half])
        span = float(np.ptp(t[half]))
        d.summary["potential_drift_eV_per_ps"] = slope
        d.summary["potential_noise_eV"] = noise
        moving = abs(slope) * span > DRIFT_NOISE_FACTOR * noise
        d.checks.append(
            Check(
                "potential energy drift",
                "warn" if moving else "ok",
                slope,
                "eV/ps",
                f"potential energy drift: {slope:+.3g} eV/ps over the second half ({slope * span:+.3g} eV "
                f"against fluctuations of sd {noise:.3g} eV): "
                + (
                    "still changing; reaction, melting or heating in progress, not yet a steady state"
                    if moving
                    else "steady within its noise"
                ),
            )
        )
        c_slope = linear_drift(t[post], e.total_eV[post])[0] / max(natoms, 1)
        d.summary["conserved_drift_eV_per_ps_atom"] = c_slope
        judged = conserved if conserved is not None else bool(np.any(e.thermostat_eV != 0.0))
        if not judged:
            status: Literal["ok", "warn"] = "ok"
            msg = (
                f"conserved energy: E= drifts {c_slope * 1000:+.3g} meV/ps per atom; not judged: it carries no "
                "thermostat energy (SP = SK = 0), so under a thermostat it is not conserved"
            )
        else:
            bad = abs(c_slope) > CONSERVED_DRIFT_WARN
            status = "warn" if bad else "ok"
            msg = f"conserved energy: drifts {c_slope * 1000:+.3g} meV/ps per atom after equilibration" + (
                f", above {CONSERVED_DRIFT_WARN * 1000:g}: time step too long or forces not conservative"
                if bad
                else f" (limit {CONSERVED_DRIFT_WARN * 1000:g})"
            )
        d.checks.append(Check("conserved energy drift", status, c_slope, "eV/ps/atom", msg))

    def _metal_series(self, d: Diagnostics) -> list[Check]:
        """RMSD, layers and coordination of the metal from the kept frames."""
        el = self.metal or "metal"
        frac = np.array(self._kept_frac)  # (n, m, 3) unwrapped
        cells = np.array(self._kept_cell)
        cart = np.einsum("fij,fjk->fik", frac, cells)
        centred = cart - cart.mean(axis=1, keepdims=True)  # drift of the whole slab is not disorder
        n = len(cart)
        nb = max(2, min(RMSD_BLOCKS, n // 2))
        edges = np.linspace(0, n, nb + 1).astype(int)
        ref = centred[edges[0] : edges[1]].mean(axis=0)
        disp2 = ((centred - ref) ** 2).sum(axis=2).mean(axis=1)  # per frame, over atoms
        t = d.frame_times_ps
        d.block_times_ps = np.array([t[edges[b] : edges[b + 1]].mean() for b in range(nb)])
        d.rmsd_A = np.sqrt([disp2[edges[b] : edges[b + 1]].mean() for b in range(nb)])
        # first-shell distance of the first block's mean positions: one thermal snapshot shortens it
        ref_frac = frac[edges[0] : edges[1]].mean(axis=0)
        nn = nearest_distance(ref_frac - np.floor(ref_frac), cells[0], np.arange(frac.shape[1]))
        d.summary["metal_nn_A"] = nn
        checks = [_rmsd_check(d, el, nn)]
        layer = self._layers(d, centred, ref, cells[0], edges)
        if layer is not None:
            checks.append(layer)
        coord = self._coordination(d, frac, cells, nn, el)
        if coord is not None:
            checks.append(coord)
        return checks

    def _layers(
        self, d: Diagnostics, centred: np.ndarray, ref: np.ndarray, cell: np.ndarray, edges: np.ndarray
    ) -> Check | None:
        el = self.metal or "metal"
        normal = np.cross(cell[0], cell[1])
        normal /= np.linalg.norm(normal)
        period = abs(float(cell[2] @ normal))
        planes = layer_planes(ref @ normal, period)
        nb = len(edges) - 1
        d.layer_order = np.full(nb, np.nan)
        if len(planes) < 2:
            return None
        gaps = np.diff(np.concatenate([planes, [planes[0] + period]]))
        spacing = float(np.median(gaps))
        d.summary["layer_spacing_A"] = spacing
        d.summary["layer_planes"] = len(planes)
        if spacing < LAYER_MIN_SPACING:
            return None
        dz = (centred @ normal)[:, :, None] - planes[None, None, :]
        dz -= period * np.rint(dz / period)
        within = (np.abs(dz).min(axis=2) <= LAYER_TOLERANCE).mean(axis=1)  # per frame
        f_rand = min(1.0, 2 * LAYER_TOLERANCE / spacing)
        frac_in = np.array([within[edges[b] : edges[b + 1]].mean() for b in range(nb)])
        d.layer_order = (frac_in - f_rand) / (1.0 - f_rand) if f_rand < 1 else np.ones(nb)
        start, end = float(d.layer_order[0]), float(d.layer_order[-1])
        d.summary["layer_order_start"], d.summary["layer_order_end"] = start, end
        bad = end < LAYER_ORDER_WARN
        return Check(
            "metal layers",
            "warn" if bad else "ok",
            end,
            "",
            f"metal layers: {frac_in[-1]:.0%} of {el} atoms within {LAYER_TOLERANCE} A of their initial planes "
            f"at the end ({frac_in[0]:.0%} at the start, {f_rand:.0%} if random; {len(planes)} planes "
            f"{spacing:.2f} A apart); order {start:.2f} -> {end:.2f} "
            + "(1 sharp planes, 0 random heights)"
            + (": the layers have washed out" if bad else ""),
        )

    def _coordination(self, d: Diagnostics, frac: np.ndarray, cells: np.ndarray, nn: float, el: str) -> Check | None:
        cutoff = self.coordination_cutoff or (COORDINATION_CUTOFF_FACTOR * nn if math.isfinite(nn) else None)
        if cutoff is None:
            return None
        n, m = frac.shape[:2]
        step = max(1, math.ceil(n * m * m / COORDINATION_BUDGET))
        sel = np.arange(0, n, step)
        idx = np.arange(m)
        cn = neighbour_counts(frac[sel], cells[sel], idx, idx, cutoff).mean(axis=1)
        d.coordination_times_ps = d.frame_times_ps[sel]
        d.metal_coordination = cn.astype(float)
        k = max(1, len(cn) // RMSD_BLOCKS)
        start, end = float(cn[:k].mean()), float(cn[-k:].mean())
        change = (end - start) / start if start > 0 else 0.0
        d.summary["coordination_cutoff_A"] = cutoff
        d.summary["coordination_start"], d.summary["coordination_end"] = start, end
        bad = abs(change) > COORDINATION_CHANGE_WARN
        return Check(
            "metal coordination",
            "warn" if bad else "ok",
            end,
            "neighbours",
            f"metal coordination: {el}-{el} neighbours within {cutoff:.2f} A {start:.1f} -> {end:.1f} "
            f"({change:+.0%})" + (": the metal's first shell is changing (melting or reaction)" if bad else ""),
        )

    def _unit_checks(self, d: Diagnostics) -> None:
        if not self.units or not self._kept_units:
            return
        arr = np.array(self._kept_units)
        k = max(1, len(arr) // RMSD_BLOCKS)
        for j, u in enumerate(self.units):
            series = arr[:, j]
            d.unit_fractions[u.label] = series
            start, end = float(series[:k].mean()), float(series[-k:].mean())
            d.summary[f"{u.label}_intact_start"], d.summary[f"{u.label}_intact_end"] = start, end
            n_units = len(self._unit_idx[j][0])
            d.summary[f"{u.label}_units"] = n_units
            # more than 5 % and at least one whole unit on average: a bond of 16 PS4 flickering past the
            # cutoff in some of the last frames is not decomposition
            lost = start - end
            bad = lost > UNIT_LOSS_WARN and lost * n_units >= UNIT_LOSS_MIN_UNITS - 1e-9
            d.checks.append(
                Check(
                    f"{u.label} integrity",
                    "warn" if bad else "ok",
                    end,
                    "fraction",
                    f"{u.label} integrity: {end:.0%} of {u.centre} have exactly {u.n} {u.ligand} within "
                    f"{u.cutoff} A at the end ({start:.0%} at the start)"
                    + (f": {u.label} units are breaking up (electrolyte decomposing)" if bad else ""),
                )
            )


def layer_planes(heights: np.ndarray, period: float, split: float = LAYER_SPLIT) -> np.ndarray:
    """Plane heights (sorted, in [0, period)) of atoms at ``heights`` along a periodic axis.

    Heights closer than ``split`` in sorted order form one plane; the cut starts after the widest gap so
    that a plane split by the periodic boundary stays one plane.
    """
    if len(heights) == 0:
        return np.empty(0)
    z = np.sort(np.mod(heights, period))
    gaps = np.diff(np.concatenate([z, [z[0] + period]]))
    k = int(np.argmax(gaps))
    z = np.concatenate([z[k + 1 :], z[: k + 1] + period])
    groups = np.split(z, np.flatnonzero(np.diff(z) > split) + 1)
    return np.sort(np.mod([g.mean() for g in groups], period))


def _equilibration_check(t_eq: float, settled: bool, source: str, run_ps: float) -> Check:
    if settled:
        msg = (
            f"equilibration: the {source} settles after {t_eq:.3g} ps of {run_ps:.3g} ps (its block means stay "
            f"within {EQUILIBRATION_SD:g} sd of the second-half mean from then on)"
        )
    else:
        msg = (
            f"equilibration: the {source} has not settled; its block means leave the second-half band until "
            f"{t_eq:.3g} ps of {run_ps:.3g} ps: run longer before reading products"
        )
    return Check("equilibration", "ok" if settled else "warn", t_eq, "ps", msg)


def _drifting_check(slope: float, run_ps: float) -> Check:
    return Check(
        "equilibration",
        "warn",
        run_ps,
        "ps",
        f"equilibration: not equilibrated: the potential energy still drifts {slope:+.3g} eV/ps beyond its noise "
        f"over the second half of {run_ps:.3g} ps (reacting, melting or still relaxing); run longer before reading "
        "rates or amounts",
    )


def _temperature_check(
    d: Diagnostics, t: np.ndarray, temp: np.ndarray, post: np.ndarray, target: float | None
) -> Check:
    mean, sd = float(temp[post].mean()), float(temp[post].std())
    d.summary["temperature_mean_K"], d.summary["temperature_sd_K"] = mean, sd
    k_min = int(np.argmin(temp))
    d.summary["temperature_min_K"], d.summary["temperature_min_ps"] = float(temp[k_min]), float(t[k_min])
    if target is None or target <= 0:
        return Check("temperature", "ok", mean, "K", f"temperature: mean {mean:.0f} K (sd {sd:.0f} K); no target given")
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    width = max(1, round(TEMPERATURE_SMOOTH_PS / dt)) if dt > 0 else 1
    smooth = running_mean(temp[post], width)
    dip = float(smooth.min()) / target if len(smooth) else 1.0
    dev = (mean - target) / target
    d.summary["temperature_target_K"] = target
    d.summary["temperature_deviation"] = dev
    d.summary["temperature_dip_fraction"] = dip
    problems = []
    if abs(dev) > TEMPERATURE_MEAN_WARN:
        problems.append(f"the mean is {dev:+.0%} off the target: the thermostat does not hold it")
    if dip < TEMPERATURE_DIP_WARN:
        problems.append(
            f"its {TEMPERATURE_SMOOTH_PS:g} ps running mean falls to {dip:.0%} of the target after equilibration"
        )
    # starting from a relaxed structure, half the initial kinetic energy flows into the potential at once:
    # a dip to ~50 % before equilibration is expected and is reported, not judged
    early = f"; lowest {temp[k_min]:.0f} K at {t[k_min]:.3g} ps" + (
        " (before equilibration)" if t[k_min] < t[post][0] else ""
    )
    msg = f"temperature: mean {mean:.0f} K (sd {sd:.0f} K) after equilibration, target {target:.0f} K ({dev:+.1%})"
    msg += early + ("; " + "; ".join(problems) if problems else "")
    return Check("temperature", "warn" if problems else "ok", mean, "K", msg)


def _rmsd_check(d: Diagnostics, el: str, nn: float) -> Check:
    rmsd, tb = d.rmsd_A, d.block_times_ps
    half = slice(len(rmsd) // 2, None)
    growth, _ = linear_drift(tb[half], rmsd[half])
    rise = growth * float(np.ptp(tb[half]))
    end = float(rmsd[-1])
    limit = LINDEMANN_FRACTION * nn if math.isfinite(nn) else math.inf
    above = end > limit
    growing = growth > RMSD_GROWTH_WARN and rise > RMSD_MIN_RISE
    d.summary["rmsd_end_A"] = end
    d.summary["rmsd_growth_A_per_ps"] = growth
    d.summary["lindemann_limit_A"] = limit if math.isfinite(limit) else None
    d.summary["metal_disordered"] = above or growing
    head = (
        f"metal order: {el} RMS displacement {end:.2f} A at the end (Lindemann limit {limit:.2f} A = "
        f"{LINDEMANN_FRACTION} x NN {nn:.2f} A), growing {growth:+.2f} A/ps over the second half"
    )
    if above:
        tail = f": the {el} is melting/disordering; a solid plateaus below the limit"
    elif growing:
        tail = (
            f": the {el} atoms keep leaving their sites (creep or diffusion; a solid's RMSD is flat once "
            "thermalised); not a stable solid over this run"
        )
    else:
        tail = ": solid-like"
    return Check("metal order", "warn" if above or growing else "ok", end, "A", head + tail)


# --------------------------------------------------------------------------- convenience


def diagnose(
    xdatcars: Sequence[str | Path],
    *,
    dt_fs: float,
    target_temperature: float | None = None,
    energies: EnergySeries | Literal["auto"] | None = "auto",
    species: list[str] | None = None,
    **kwargs: Any,
) -> Diagnostics:
    """Stream segment XDATCARs through a :class:`DiagnosticsAccumulator` and finish it.

    ``energies="auto"`` reads the OSZICAR/vasprun.xml next to each XDATCAR. Other keyword arguments go to
    the accumulator.
    """
    paths = [Path(p) for p in xdatcars]
    acc: DiagnosticsAccumulator | None = None
    for hdr, block in iter_segments(paths, species=species):
        if acc is None:
            acc = DiagnosticsAccumulator(hdr.species, dt_fs=dt_fs, **kwargs)
        acc.update(block)
    if acc is None:
        raise ValueError(f"no frames in {', '.join(map(str, paths))}")
    if energies == "auto":
        energies = read_energies([p.parent for p in paths])
    return acc.finish(energies, target_temperature)
