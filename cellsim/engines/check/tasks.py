"""The check of one engine on a study's phases: inputs, cached tasks, and the rows with verdicts."""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.config.rundir import RunDir
from cellsim.core.errors import CellsimError
from cellsim.core.files import atomic_write_json

if TYPE_CHECKING:
    from ase import Atoms
    from ase.calculators.calculator import Calculator
    from pymatgen.core import Structure

    from cellsim.config.study import Study
    from cellsim.engines.registry import ModelInfo
from cellsim.engines.check.compute import (
    _key_hash,
    _safe,
    cache_dir,
    electrolyte_md,
    metal_md,
    metal_timestep,
    relax,
    speed,
    speed_cell,
    structure_digest,
    unit_centres,
)
from cellsim.engines.check.reactions import balance, pick_reactions, reaction_energy, reaction_label
from cellsim.engines.check.references import DEBYE_K, DEFAULT_UNIT_BONDS, MP_NOTE
from cellsim.engines.check.settings import (
    CHECK_VERSION,
    CalculatorFactory,
    CheckSettings,
    EngineReport,
    Phase,
    Progress,
    Row,
)
from cellsim.engines.check.verdicts import (
    LINDEMANN_TOL,
    ca_verdict,
    debye_rms,
    intact_verdict,
    lattice_verdict,
    lindemann_verdict,
    relative_error,
    rms_verdict,
    sign_verdict,
    volume_verdict,
)

# --------------------------------------------------------------------------- the check


@dataclass
class CheckInput:
    """What the check needs from a study (and, optionally, its run directory)."""

    study: Study
    metal: Phase
    electrolyte: Phase
    library: dict[str, Phase]
    interface: Atoms | None = None  # the run directory's interface, when there is one

    @property
    def temperature(self) -> float:
        return float(self.study.md.temperature)


def _phase(spec: str, base_dir: Path | None, field_name: str) -> Phase:
    from cellsim.references.library import get_phase, resolve_phase

    label, structure = resolve_phase(spec, base_dir, field_name)
    lib = get_phase(spec)
    note = ""
    if lib is not None and lib.origin == "constructed" and "Cell+positions relaxed with CHGNet" in lib.source:
        note = "reference cell is itself a CHGNet 0.3.0 relaxation (PBE-like): agreement for chgnet is circular"
    elif lib is not None:
        note = f"reference: library cell ({lib.origin})"
    return Phase(label, structure, structure_digest(structure), note)


def prepare(study: Study, base_dir: Path | None = None, run_dir: Path | None = None) -> CheckInput:
    """Resolve the study's metal and electrolyte phases and the library phases reactions may use."""
    from cellsim.references.library import library

    metal = _phase(study.interface.metal.phase, base_dir, "interface.metal.phase")
    electrolyte = _phase(study.interface.electrolyte.phase, base_dir, "interface.electrolyte.phase")
    lib = {}
    for name, p in library().items():
        s = p.structure()
        lib[name] = Phase(name, s, structure_digest(s))
    interface = None
    poscar = RunDir(run_dir).interface_poscar if run_dir is not None else None
    if poscar is not None and poscar.is_file():
        from cellsim.io.poscar import read_poscar_atoms

        interface = read_poscar_atoms(poscar)
    return CheckInput(study, metal, electrolyte, lib, interface)


class _LoadError(CellsimError):
    """The model of an engine does not load."""


class _Tasks:
    """Cached computations for one engine; the model is loaded only when something is not cached."""

    def __init__(
        self,
        model: ModelInfo,
        factory: CalculatorFactory,
        settings: CheckSettings,
        use_cache: bool,
        progress: Progress | None,
    ) -> None:
        self.model = model
        self.identity = model.identity()
        self.factory = factory
        self.settings = settings
        self.use_cache = use_cache
        self.progress = progress
        self.calc: Calculator | None = None

    def calculator(self) -> Calculator:
        if self.calc is None:
            try:
                self.calc = self.factory(self.model)
            except Exception as exc:  # any load failure (missing weights, torch, bad file) ends this engine
                raise _LoadError(f"{type(exc).__name__}: {exc}") from exc
        return self.calc

    @property
    def relax_params(self) -> dict[str, Any]:
        """The relaxation settings a cached relaxation is keyed by."""
        s = self.settings
        return {"fmax": s.relax_fmax, "stress": s.relax_stress_gpa, "steps": s.relax_steps}

    def _entry(self, task: str, label: str, params: dict[str, Any]) -> tuple[dict[str, Any], Path]:
        """A task's cache key and the file it is stored in."""
        key = {"version": CHECK_VERSION, "task": task, "model": self.identity, **params}
        return key, cache_dir() / _safe(self.model.key) / f"{task}-{_safe(label)}-{_key_hash(key)}.json"

    def cached(self, task: str, label: str, params: dict[str, Any]) -> Any:
        """The cached result of a task, or None (never computes)."""
        key, path = self._entry(task, label, params)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data["result"] if data.get("key") == key else None

    def run(self, task: str, label: str, params: dict[str, Any], fn: Callable[[Calculator], dict[str, Any]]) -> Any:
        key, path = self._entry(task, label, params)
        if self.use_cache and path.is_file():
            try:
                data = json.loads(path.read_text())
                if data.get("key") == key:
                    if self.progress:
                        self.progress(self.model.key, f"{task} {label}", 0.0, True)
                    return data["result"]
            except (OSError, ValueError):
                pass  # a damaged cache entry is recomputed
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            # CHGNet's calculator converts the atoms to pymatgen each call, which warns about FixCom/FixSymmetry
            warnings.filterwarnings("ignore", message="Only FixAtoms and FixCartesian", category=UserWarning)
            result = fn(self.calculator())
        dt = time.perf_counter() - t0
        atomic_write_json(path, {"key": key, "result": result, "seconds": dt, "engine": self.model.key})
        if self.progress:
            self.progress(self.model.key, f"{task} {label}", dt, False)
        return result

    def relaxed(self, label: str, structure: Structure, digest: str | None = None) -> dict[str, Any]:
        """The engine's relaxation of ``structure`` (cached under its digest and :attr:`relax_params`)."""
        params = {"phase": digest or structure_digest(structure), **self.relax_params}
        res: dict[str, Any] = self.run("relax", label, params, lambda c: relax(c, structure, self.settings))
        return res

    def relaxed_energy(self, label: str, structure: Structure) -> float:
        """Energy per atom (eV) of the engine's relaxed ``structure``."""
        return float(self.relaxed(label, structure)["energy_per_atom"])


def _lattice_rows(engine: str, phase: Phase, res: dict[str, Any]) -> list[Row]:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    ref = phase.structure
    sga = SpacegroupAnalyzer(ref, symprec=0.1)
    system = sga.get_crystal_system()
    centring = sga.get_space_group_symbol()[0]
    cell = np.array(res["cell"])
    got = np.linalg.norm(cell, axis=1)
    want = np.array(ref.lattice.abc)
    axes = {"cubic": [0], "tetragonal": [0, 2], "hexagonal": [0, 2], "trigonal": [0, 2]}.get(system, [0, 1, 2])
    unconverged = "" if res.get("converged", True) else f"not converged in {res['steps']} steps"
    note = "; ".join(x for x in (unconverged, phase.note) if x)
    rows = []
    for i in axes:
        verdict = lattice_verdict(got[i], want[i])
        why = "; ".join(x for x in (f"{100 * relative_error(got[i], want[i]):+.1f} %", note) if x)
        rows.append(Row(engine, phase.label, "abc"[i], float(got[i]), float(want[i]), verdict, "A", why))
    if system in ("tetragonal", "hexagonal", "trigonal"):
        ca, ca_ref = float(got[2] / got[0]), float(want[2] / want[0])
        verdict, why = ca_verdict(ca, ca_ref, centring if system == "tetragonal" else "P")
        rows.append(Row(engine, phase.label, "c/a", ca, ca_ref, verdict, "", why))
    v, v_ref = float(res["volume_per_atom"]), float(ref.volume / len(ref))
    why = "; ".join(x for x in (f"{100 * relative_error(v, v_ref):+.1f} %", note) if x)
    rows.append(Row(engine, phase.label, "V/atom", v, v_ref, volume_verdict(v, v_ref), "A^3", why))
    return rows


def expected_rms(structure: Structure, temperature: float) -> float | None:
    """Debye-model RMS displacement of an elemental metal below its melting point; None otherwise."""
    from ase.data import atomic_masses, atomic_numbers

    elements = [str(e) for e in structure.composition.elements]
    if len(elements) != 1 or elements[0] not in DEBYE_K:
        return None
    theta, t_melt = DEBYE_K[elements[0]]
    if temperature >= t_melt:
        return None
    return debye_rms(float(atomic_masses[atomic_numbers[elements[0]]]), theta, temperature)


def _nn_distance(structure: Structure) -> float:
    return float(min(n.nn_distance for site in structure for n in structure.get_neighbors(site, 6.0)))


def _metal_rows(
    engine: str, phase: Phase, res: dict[str, Any], temperature: float, own_volume: float | None = None
) -> list[Row]:
    """The RMS and Lindemann rows of a metal MD; with ``own_volume`` (A^3/atom), the RMS row of the MD at the
    engine's own relaxed lattice alone."""
    s = phase.structure
    rms = float(res["rms"])
    lind = rms / _nn_distance(s)
    elements = [str(e) for e in s.composition.elements]
    what = f"RMS displacement {temperature:g} K" + (" (own lattice)" if own_volume else "")
    where = f"the engine's relaxed lattice ({own_volume:.2f} A^3/atom)" if own_volume else "the reference lattice"
    run = f"last 40 % of {res['steps']} x {res['dt_fs']:g} fs Langevin NVT, {res['natoms']} atoms at {where}" + (
        ", started from Debye-sized displacements" if res.get("start_rms") else ""
    )
    drift = ""
    if res.get("rms_early") and rms > 1.15 * float(res["rms_early"]):
        drift = f"; still rising ({res['rms_early']:.2f} -> {rms:.2f} A within the run)"
    if len(elements) == 1 and elements[0] in DEBYE_K:
        theta, t_melt = DEBYE_K[elements[0]]
        if temperature >= t_melt:
            rows = [Row(engine, phase.label, what, rms, None, "n/a", "A", f"T is above the melting point ({t_melt} K)")]
            return [*rows, Row(engine, phase.label, "Lindemann ratio", lind, None, "n/a", "", "liquid expected")]
        expected = expected_rms(s, temperature)
        assert expected is not None
        rows = [
            Row(
                engine,
                phase.label,
                what,
                rms,
                expected,
                rms_verdict(rms, expected),
                "A",
                f"Debye model, Theta_D {theta:g} K; {run}{drift}",
            ),
        ]
        if own_volume:
            return rows
        lind_ref: float | None = expected / _nn_distance(s)
    else:
        rows = [Row(engine, phase.label, what, rms, None, "n/a", "A", f"no Debye temperature for {s.formula}; {run}")]
        lind_ref = None
    rows.append(
        Row(
            engine,
            phase.label,
            "Lindemann ratio",
            lind,
            lind_ref,
            lindemann_verdict(lind),
            "",
            f"RMS / nearest-neighbour distance; crystals melt near {LINDEMANN_TOL[0]}-{LINDEMANN_TOL[1]}",
        )
    )
    return rows


class _EngineCheck:
    """One engine's checks on a study in progress: its cached tasks, the study's input, the report's rows."""

    def __init__(self, tasks: _Tasks, inp: CheckInput, report: EngineReport) -> None:
        self.tasks = tasks
        self.inp = inp
        self.report = report
        self.name = report.engine
        self.rows = report.rows
        self.settings = tasks.settings
        self.temperature = inp.temperature
        self.study_dt = float(inp.study.md.timestep_fs)

    def guarded(self, what: str, phase: str, fn: Callable[[], None]) -> None:
        """Run one check; an exception other than the model not loading becomes a ``fail`` row of that check."""
        try:
            fn()
        except _LoadError:
            raise  # the model itself does not load: no point in trying the other checks
        except Exception as exc:  # an engine that crashes on a structure fails that check, not the whole run
            self.rows.append(Row(self.name, phase, what, None, None, "fail", "", f"{type(exc).__name__}: {exc}"[:200]))

    def relaxed(self, phase: Phase) -> dict[str, Any]:
        return self.tasks.relaxed(phase.label, phase.structure, phase.digest)


def _check_lattices(chk: _EngineCheck) -> None:
    """1. Lattices of the study's reactants."""
    for ph in (chk.inp.metal, chk.inp.electrolyte):

        def lattice(ph: Phase = ph) -> None:
            chk.rows.extend(_lattice_rows(chk.name, ph, chk.relaxed(ph)))

        chk.guarded("lattice", ph.label, lattice)


def _metal_md_rows(chk: _EngineCheck) -> None:
    """Bulk metal MD at the study temperature, at the reference lattice and at the engine's own."""
    metal, temperature, settings = chk.inp.metal, chk.temperature, chk.settings
    symbols = [str(e) for e in metal.structure.composition.elements]
    dt = metal_timestep(symbols, chk.study_dt)
    start = expected_rms(metal.structure, temperature)
    params = {
        "start_rms": start,
        "phase": metal.digest,
        "T": temperature,
        "dt": dt,
        "ps": settings.metal_md_ps,
        "min_atoms": settings.metal_min_atoms,
        "friction": settings.friction_per_fs,
        "seed": settings.seed,
    }
    res = chk.tasks.run(
        "md-metal", metal.label, params, lambda c: metal_md(c, metal.structure, temperature, dt, settings, start)
    )
    chk.rows.extend(_metal_rows(chk.name, metal, res, temperature))
    # the same MD at the engine's own relaxed lattice: a PBE-like model is compressed at the experimental one
    # (the bundled fit: 27.24 vs 26.17 A^3/atom; 2 ps, 96 atoms: RMS 0.262 A there, 0.286 A at its own,
    # Debye 0.313 A), and a thermal amplitude is a property of the model at its own zero pressure
    rel = chk.relaxed(metal)
    if rel.get("converged") and rel.get("cell"):
        from pymatgen.core import Lattice, Structure

        st = metal.structure
        own = Structure(Lattice(rel["cell"]), st.species, st.frac_coords)
        own_params = {**params, "cell": np.round(np.asarray(rel["cell"]), 5).tolist()}
        res_own = chk.tasks.run(
            "md-metal-own", metal.label, own_params, lambda c: metal_md(c, own, temperature, dt, settings, start)
        )
        chk.rows.extend(_metal_rows(chk.name, metal, res_own, temperature, own_volume=float(rel["volume_per_atom"])))


def _check_metal(chk: _EngineCheck) -> None:
    """2. Bulk metal at the study temperature."""
    chk.guarded(f"RMS displacement {chk.temperature:g} K", chk.inp.metal.label, lambda: _metal_md_rows(chk))


def _electrolyte_rows(chk: _EngineCheck, units: list[tuple[str, str, float]]) -> None:
    """Electrolyte MD at the study temperature and time step: the fraction of each kind of anion unit intact."""
    el, temperature, study_dt, settings = chk.inp.electrolyte, chk.temperature, chk.study_dt, chk.settings
    params = {
        "phase": el.digest,
        "T": temperature,
        "dt": study_dt,
        "ps": settings.electrolyte_md_ps,
        "min_atoms": settings.electrolyte_min_atoms,
        "friction": settings.friction_per_fs,
        "seed": settings.seed,
        "units": [list(u) for u in units],
    }
    res = chk.tasks.run(
        "md-electrolyte",
        el.label,
        params,
        lambda c: electrolyte_md(c, el.structure, temperature, study_dt, units, settings),
    )
    for u in res["units"]:
        unit = f"{u['centre']}{u['ligand']}{u['coordination']}"
        chk.rows.append(
            Row(
                chk.name,
                el.label,
                f"{unit} intact {temperature:g} K",
                u["intact_mean"],
                1.0,
                intact_verdict(u["intact_mean"]),
                "fraction",
                f"{u['n_units']} {unit} units, {u['centre']}-{u['ligand']} <= {u['cutoff']:g} A; "
                f"{res['natoms']} atoms, {res['steps']} x {res['dt_fs']:g} fs NVT (study time step); "
                f"final frame {u['intact_final']:.2f}",
            )
        )


def _check_electrolyte(chk: _EngineCheck) -> None:
    """3. Electrolyte anion units at the study temperature (when the electrolyte has any)."""
    el = chk.inp.electrolyte
    bonds = chk.inp.study.interface.intact_bonds or DEFAULT_UNIT_BONDS
    units = unit_centres(el.structure, bonds)
    if units:
        chk.guarded("anion units intact", el.label, lambda: _electrolyte_rows(chk, units))


def _reaction_row(
    chk: _EngineCheck,
    reac: tuple[str, ...],
    prod: tuple[str, ...],
    coeffs: tuple[list[int], list[int]],
    label: str,
    sign: str | None,
    why: str,
) -> None:
    """The engine's energy of one balanced reaction among library phases, against its sign where one is known."""
    # library phases by name: the study's own metal/electrolyte hit the same cache entries
    energies = {n: float(chk.relaxed(chk.inp.library[n])["energy_per_atom"]) for n in (*reac, *prod)}
    de = reaction_energy(reac, prod, coeffs, energies)
    ref = f"{sign} 0" if sign else None
    note = why if sign else f"{why}; {MP_NOTE}"
    chk.rows.append(Row(chk.name, label, "reaction energy", de, ref, sign_verdict(de, sign), "eV/atom", note))


def _check_reactions(chk: _EngineCheck, elements: set[str]) -> None:
    """4. Reaction energies among library phases of the study's elements."""
    for reac, prod, sign, why in pick_reactions(elements, set(chk.inp.library), chk.settings.max_reactions):
        coeffs = balance(reac, prod)
        label = reaction_label(reac, prod, coeffs)
        chk.guarded("reaction energy", label, partial(_reaction_row, chk, reac, prod, coeffs, label, sign, why))


def _check_pbe(chk: _EngineCheck, elements: set[str]) -> None:
    """4b. Formation and reaction energies against the stored PBE phase diagram (cellsim.references.pbe)."""

    def pbe_rows() -> None:
        from cellsim.engines.check.formation import formation_rows

        el, metal = chk.inp.electrolyte, chk.inp.metal
        pair = (el.structure.composition.reduced_formula, metal.structure.composition.reduced_formula)
        chk.rows.extend(formation_rows(chk.name, chk.tasks.relaxed_energy, elements, pair))

    chk.guarded("formation energy vs PBE", "PBE phases", pbe_rows)


def _check_contacts(chk: _EngineCheck) -> None:
    """4c. Interfacial energetics: the stored PBE energies of an anion moved onto the metal (and the metal to it)
    against this engine's (:mod:`cellsim.engines.contacts`), where a set of this metal and electrolyte is stored."""
    from cellsim.engines.contacts import contact_rows, engine_deltas, matching_sets, structures

    metal = chk.inp.metal.structure.composition
    electrolyte = chk.inp.electrolyte.structure.composition.reduced_formula
    if len(metal.elements) != 1:
        return  # the stored sets move atoms of an elemental metal

    def energies(frames: dict[str, Any], calc: Calculator) -> dict[str, Any]:
        def energy(atoms: Any) -> float:
            work = atoms.copy()
            work.calc = calc
            return float(work.get_potential_energy())

        return engine_deltas(energy, frames)

    def rows() -> None:
        # inside the guard: a damaged stored set is a fail row of this check, not the end of the engine's check
        for cset, folder in matching_sets(str(metal.elements[0]), electrolyte):
            frames = structures(cset, folder)
            jobs = [cset.snapshot_job, *sorted(c["job"] for c in cset.configs)]
            deltas = chk.tasks.run("contacts", folder.name, {"jobs": jobs}, partial(energies, frames))
            chk.rows.extend(contact_rows(chk.name, cset, deltas))

    chk.guarded("contact energy vs PBE", "interface contacts", rows)


def _speed_rows(chk: _EngineCheck) -> None:
    """Seconds per MD step on a cell of interface size (or the electrolyte's supercell), scaled to the interface."""
    inp, settings, study_dt, report = chk.inp, chk.settings, chk.study_dt, chk.report
    if inp.interface is not None:
        cell, what = inp.interface, "study's interface"
        n_target = len(inp.interface)
    else:
        el = inp.electrolyte
        cell, what = speed_cell(el.structure, settings.speed_max_atoms), f"{el.label} supercell"
        n_target = (inp.study.interface.min_atoms + inp.study.interface.max_atoms) // 2
    digest = hashlib.sha256(
        np.round(cell.get_positions(), 4).tobytes() + np.round(cell.cell.array, 4).tobytes()
    ).hexdigest()[:16]
    res = chk.tasks.run(
        "speed",
        f"{len(cell)}atoms",
        {"cell": digest, "steps": settings.speed_steps},
        lambda c: speed(c, cell, chk.temperature, study_dt, settings),
    )
    measured = float(res["s_per_step"])
    est = measured * n_target / res["natoms"]  # message passing on a fixed cutoff: cost ~ number of atoms
    report.s_per_step = est
    report.ps_per_day = 86400.0 / est * study_dt / 1000.0
    chk.rows.append(Row(chk.name, f"{what} ({res['natoms']} atoms)", "time per MD step", measured, None, "n/a", "s"))
    scaled = "" if n_target == res["natoms"] else f"scaled linearly from {res['natoms']} atoms; "
    chk.rows.append(
        Row(
            chk.name,
            f"interface ({n_target} atoms)",
            "MD speed",
            report.ps_per_day,
            None,
            "n/a",
            "ps/day",
            f"{scaled}{est:.3g} s/step at {study_dt:g} fs, 1 thread",
        )
    )


def _engine_rows(
    model: ModelInfo,
    inp: CheckInput,
    settings: CheckSettings,
    factory: CalculatorFactory,
    use_cache: bool,
    progress: Progress | None,
) -> EngineReport:
    """Every check of one engine, in the report's order; a check that crashes is a ``fail`` row of its own."""
    report = EngineReport(engine=model.key, model=model.description, loaded=True)
    chk = _EngineCheck(_Tasks(model, factory, settings, use_cache, progress), inp, report)
    _check_lattices(chk)
    _check_metal(chk)
    _check_electrolyte(chk)
    elements = {str(e) for p in (inp.metal, inp.electrolyte) for e in p.structure.composition.elements}
    _check_reactions(chk, elements)
    _check_pbe(chk, elements)
    _check_contacts(chk)
    # 5. speed at the size of the study's interface
    chk.guarded("time per MD step", "speed", lambda: _speed_rows(chk))
    return report
