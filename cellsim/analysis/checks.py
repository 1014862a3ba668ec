"""The diagnostics' results and rules: :class:`Check` (one line, ok or warn), :class:`Diagnostics` (checks,
summaries, the plotted series; JSON round trip), the thresholds with their reasons, and the checks that are
plain functions of a series (equilibration, temperature, metal order).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cellsim.analysis.series import EQUILIBRATION_SD, linear_drift, running_mean
from cellsim.core.files import atomic_write_json
from cellsim.core.numeric import median

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
RMSD_BLOCKS = 20
# the committee's force deviation (largest over a frame's atoms; DP-GEN's max_devi_f): DP-GEN's active learning
# labels frames between 0.05-0.15 (lower bound) and 0.15-0.35 eV/A (upper); above the upper bound a frame is
# outside what the labels pinned. The engine leaves its data when more than DEVIATION_FRACTION of the checked
# frames pass DEVIATION_WARN (one frame is a spike; a tenth is a region of the trajectory).
DEVIATION_WARN = 0.15  # eV/A
DEVIATION_FRACTION = 0.10
# a force disputed by more than this (eV/A) is no longer an error of degree: the engine has driven atoms where it
# cannot describe them (a student on its 10 ps run of the paper interface: 0.4-1.3 eV/A for 6.5 ps, then 37-159)
DEVIATION_BROKEN = 5.0
# pair distances evaluated for the coordination series (frames x atoms^2): a few seconds of numpy
COORDINATION_BUDGET = 5e7
MIN_FRAMES = 4
KB_EV = 8.617333262e-5


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
    "deviation_times_ps",
    "deviation_max_eV_A",
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
    deviation_times_ps: np.ndarray = field(default_factory=lambda: np.empty(0))
    deviation_max_eV_A: np.ndarray = field(default_factory=lambda: np.empty(0))
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


def equilibration_check(t_eq: float, settled: bool, source: str, run_ps: float) -> Check:
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


def drifting_check(slope: float, run_ps: float) -> Check:
    return Check(
        "equilibration",
        "warn",
        run_ps,
        "ps",
        f"equilibration: not equilibrated: the potential energy still drifts {slope:+.3g} eV/ps beyond its noise "
        f"over the second half of {run_ps:.3g} ps (reacting, melting or still relaxing); run longer before reading "
        "rates or amounts",
    )


def temperature_check(d: Diagnostics, t: np.ndarray, temp: np.ndarray, post: np.ndarray, target: float | None) -> Check:
    mean, sd = float(temp[post].mean()), float(temp[post].std())
    d.summary["temperature_mean_K"], d.summary["temperature_sd_K"] = mean, sd
    k_min = int(np.argmin(temp))
    d.summary["temperature_min_K"], d.summary["temperature_min_ps"] = float(temp[k_min]), float(t[k_min])
    if target is None or target <= 0:
        return Check("temperature", "ok", mean, "K", f"temperature: mean {mean:.0f} K (sd {sd:.0f} K); no target given")
    dt = median(np.diff(t)) if len(t) > 1 else 1.0
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


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def rmsd_check(d: Diagnostics, el: str, nn: float, by_plane: list[float] | None = None) -> Check:
    """The "metal order" check; ``by_plane``: the last block's RMS of each atomic plane, lowest first."""
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
    if (above or growing) and by_plane:
        # where the disorder is: interior planes near their sites with the outermost ones wandering (an
        # interface layer that intermixes, a surface that roughens) is not the same finding as a molten slab
        d.summary["rmsd_by_plane_A"] = by_plane
        ok = [x < limit for x in by_plane]
        k0 = ok.index(True) if any(ok) else len(ok)
        k1 = len(ok) - ok[::-1].index(True) if any(ok) else 0
        inner = by_plane[k0:k1]
        txt = ", ".join(f"{x:.2f}" for x in by_plane)
        # only when the solid block is at least half the slab is the rest 'outer planes' (2 of 6 is not)
        if inner and all(ok[k0:k1]) and (k0 > 0 or k1 < len(ok)) and 2 * len(inner) >= len(ok):
            tail = (
                f"; by plane (lowest to highest along c: {txt} A) the {len(inner)} planes from the "
                f"{_ordinal(k0 + 1)} to the {_ordinal(k1)} stay below the limit ({min(inner):.2f}-{max(inner):.2f} A) "
                f"and the outer {len(ok) - len(inner)} exceed it: the disorder is in the outer plane(s), not through "
                "the slab"
            )
        else:
            tail += f"; by plane (lowest to highest along c): {txt} A"
    return Check("metal order", "warn" if above or growing else "ok", end, "A", head + tail)


def deviation_check(
    times_ps: np.ndarray, max_dev: np.ndarray, elements: list[str], kind: str = "committee", members: int = 0
) -> Check:
    """ "engine deviation": warn when more than :data:`DEVIATION_FRACTION` of the checked frames have an atom whose
    force the committee (or the teacher) disputes by more than :data:`DEVIATION_WARN`."""
    n = len(max_dev)
    who = f"the committee of {members} models" if kind == "committee" and members else f"the {kind}"
    if n == 0:
        return Check("engine deviation", "ok", None, "eV/A", f"engine deviation: {who} checked no frame")
    above = max_dev > DEVIATION_WARN
    frac = float(above.mean())
    p95 = float(np.percentile(max_dev, 95))
    where = ""
    if above.any():
        els = [e for e, a in zip(elements, above, strict=True) if a]
        top = max(set(els), key=els.count)
        first = float(times_ps[int(np.argmax(above))])
        where = f"; first at {first:.3g} ps, mostly on {top} ({els.count(top)} of {len(els)})"
    fires = frac > DEVIATION_FRACTION
    broken = max_dev > DEVIATION_BROKEN
    if broken.any():
        t_broken = float(times_ps[int(np.argmax(broken))])
        before = max_dev[: int(np.argmax(broken))]
        where += (
            f"; from {t_broken:.3g} ps the engine fails outright (an atom's force off by more than "
            f"{DEVIATION_BROKEN:g} eV/A; {100 * float(broken.mean()):.0f} % of checked frames"
            + (f", up to {float(before.max()):.3g} eV/A before" if len(before) else "")
            + f"): the trajectory after {t_broken:.3g} ps is not physical, read only what came before"
        )
    msg = (
        f"engine deviation: {who} disputes forces by up to {float(max_dev.max()):.3g} eV/A (95th percentile of the "
        f"frames' largest atom {p95:.3g}); {100 * frac:.0f} % of {n} checked frames above {DEVIATION_WARN:g} eV/A"
        + where
        + (
            f": the engine is outside its data (more than {100 * DEVIATION_FRACTION:g} % of frames): its forces there "
            + (
                "are not its teacher's; distil the student again with this run's frames (docs/student.md) or run the "
                "teacher before trusting the products"
                if kind == "teacher"
                else "are extrapolated; label such frames (`cellsim engines learn`) before trusting the products"
            )
            if fires
            else f": within its data (limit {100 * DEVIATION_FRACTION:g} % of frames)"
        )
    )
    return Check("engine deviation", "warn" if fires else "ok", frac, "fraction", msg)
