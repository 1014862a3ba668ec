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
  :func:`~cellsim.io.stitching.iter_segments`, the same blocks as the analysis loop.

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
  distance) or when the RMSD still grows faster than :data:`RMSD_GROWTH_WARN` over the second half. A warning
  gives the last block's RMS of each atomic plane (three or more planes): when a contiguous block of planes
  stays below the limit and only outer ones exceed it, it says the disorder is in the outer plane(s) (an
  interface layer intermixing, a surface roughening), not through the slab; the verdict stays a warning.
* Layers: planes perpendicular to a x b found in the reference positions; the order parameter is the
  fraction of metal atoms within :data:`LAYER_TOLERANCE` of a plane, rescaled so that random heights give
  0 and perfect planes 1.
* Coordination: metal neighbours within 1.2 x the nearest-neighbour distance of the first block's mean
  positions (the Lindemann limit uses the same distance).
* Units (PS4 by default when P and S are present): fraction of centres with exactly ``n`` ligands within
  the cutoff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cellsim.analysis.checks import (  # noqa: F401  (the rules, importable from here as documented)
    CONSERVED_DRIFT_WARN,
    DRIFT_NOISE_FACTOR,
    LINDEMANN_FRACTION,
    MIN_FRAMES,
    PS4,
    RMSD_BLOCKS,
    RMSD_GROWTH_WARN,
    UNIT_LOSS_MIN_UNITS,
    UNIT_LOSS_WARN,
    Check,
    Diagnostics,
    UnitDef,
    drifting_check,
    equilibration_check,
    temperature_check,
)
from cellsim.analysis.metal import layer_planes, metal_series  # noqa: F401
from cellsim.analysis.neighbours import nearest_distance, neighbour_counts  # noqa: F401
from cellsim.analysis.series import bin_mean, equilibration_time, linear_drift, running_mean  # noqa: F401
from cellsim.core import _native
from cellsim.io.energies import EnergySeries, parse_oszicar, parse_vasprun, read_energies  # noqa: F401
from cellsim.io.stitching import iter_segments
from cellsim.io.xdatcar import FrameBlock


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
    expected_frames
        A lower bound of the frames to come (the readers' index): the thinning starts on its final stride, so
        the frames it would drop later are never counted (:func:`cellsim.analysis.timestep.start_stride`).
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
        expected_frames: int | None = None,
    ) -> None:
        from cellsim.analysis.defaults import metal_candidates
        from cellsim.analysis.timestep import StepDisplacements, start_stride

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
        steps = None if expected_frames is None else max(0, expected_frames - 1)
        self._steps = StepDisplacements(self.species.tolist(), expected_steps=steps)
        present = set(self.species.tolist())
        if units is None:
            units = [PS4] if {"P", "S"} <= present else []
        self.units = [u for u in units if u.centre in present and u.ligand in present]
        self._unit_idx = [
            (np.flatnonzero(self.species == u.centre), np.flatnonzero(self.species == u.ligand)) for u in self.units
        ]
        self.n_frames = 0
        self.stride = start_stride(expected_frames, self.max_frames)
        self._kept_index: list[int] = []
        self._kept_frac: list[np.ndarray] = []  # unwrapped fractional coordinates of the metal atoms
        self._kept_cell: list[np.ndarray] = []
        self._kept_units: list[np.ndarray] = []  # intact fraction per unit kind
        self._last_raw: np.ndarray | None = None
        self._last_unwrapped: np.ndarray | None = None
        self._ligand_kind: list[int] = []

    def unit_tables(self, elements: list[str]) -> list[np.ndarray]:
        """One element x element cutoff table per unit (only its centre-ligand entry set), for the analysis pass's
        shared neighbour search (:class:`cellsim.analysis.driver.SharedNeighbours`); ``elements`` in its order."""
        out = []
        for u in self.units:
            t = np.zeros((len(elements), len(elements)))
            t[elements.index(u.centre), elements.index(u.ligand)] = u.cutoff
            out.append(t)
        self._ligand_kind = [elements.index(u.ligand) for u in self.units]
        return out

    def wanted(self, n: int) -> np.ndarray:
        """Local indices of the next ``n`` frames whose units are counted (those on the current stride)."""
        return np.flatnonzero((self.n_frames + np.arange(n)) % self.stride == 0)

    def update(self, block: FrameBlock, unit_counts: Callable[[int, int], np.ndarray | None] | None = None) -> None:
        """Take the next frames (blocks must come in order, without gaps).

        ``unit_counts(k, j)``: per-atom neighbour counts by element of the block's frame k under unit j's table
        (:meth:`unit_tables`), when the analysis pass searched them already; else (None) they are counted here.
        """
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
        unwrapped = self._unwrap(block.frac)
        g = self.n_frames + np.arange(n)
        keep = np.flatnonzero(g % self.stride == 0)
        if len(keep):
            fractions = np.zeros((len(keep), len(self.units)))
            for k, (u, (ic, il)) in enumerate(zip(self.units, self._unit_idx, strict=True)):
                shared = [unit_counts(int(i), k) for i in keep] if unit_counts is not None else [None] * len(keep)
                todo = [j for j, c in enumerate(shared) if c is None]
                if todo:
                    fr, cl = block.frac[keep[todo]], block.cells[keep[todo]]
                    fractions[todo, k] = (neighbour_counts(fr, cl, ic, il, u.cutoff) == u.n).mean(axis=1)
                done = [j for j, c in enumerate(shared) if c is not None]
                if done:
                    rows = np.array([shared[j][ic, self._ligand_kind[k]] for j in done])  # type: ignore[index]
                    fractions[done, k] = (rows == u.n).mean(axis=1)
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
        """Continue each metal atom's path across the boundary: minimum-image steps between consecutive frames.

        ``frac`` (n, natoms, 3) holds every atom; the result (n, metal atoms, 3) the metal atoms' paths.
        """
        idx = self.metal_idx
        first = frac[0, idx]
        prev_raw = first if self._last_raw is None else self._last_raw
        prev_unw = first if self._last_unwrapped is None else self._last_unwrapped
        lib = _native.load()
        if lib is not None and len(idx):
            frac = np.ascontiguousarray(frac, dtype=np.float64)
            out = np.empty((len(frac), len(idx), 3))
            lib.unwrap_paths(
                frac.reshape(-1),
                len(frac),
                frac.shape[1],
                # the kernel takes indices in [0, natoms): negative ones counted back
                np.ascontiguousarray(np.arange(frac.shape[1])[idx], dtype=np.int64),
                len(idx),
                np.ascontiguousarray(prev_raw, dtype=np.float64),
                np.ascontiguousarray(prev_unw, dtype=np.float64),
                out,
                np.empty(3 * len(idx)),
            )
        else:
            steps = np.diff(np.concatenate([prev_raw[None], frac[:, idx]]), axis=0)
            steps -= np.rint(steps)
            out = prev_unw[None] + np.cumsum(steps, axis=0)
        self._last_raw, self._last_unwrapped = frac[-1, idx].copy(), out[-1].copy()
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
        metal = (
            metal_series(d, self.metal, self._kept_frac, self._kept_cell, self.coordination_cutoff)
            if len(self.metal_idx) and len(self._kept_index) >= MIN_FRAMES
            else None
        )
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
            d.checks.append(equilibration_check(t_eq, settled, eq_source, run_ps))
        if energies is not None and len(energies) >= 4:
            self._energy_checks(d, energies, t_eq, target_temperature, conserved)
            drift = d.check("potential energy drift")
            if drift is not None and drift.status != "ok" and eq_source == "potential energy":
                # block means can sit inside a band that the whole second half slides through: an energy still
                # drifting beyond its noise is not equilibrated, whatever the blocks say (a reaction releasing
                # energy must never be called "settled")
                d.summary["equilibrated"] = False
                d.checks = [
                    drifting_check(float(drift.value or 0.0), run_ps) if c.name == "equilibration" else c
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
        d.checks.append(temperature_check(d, t, e.temperature_K, post, target))
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
