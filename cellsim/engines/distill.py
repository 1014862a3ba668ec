"""The distillation recipe for a built run directory: teacher-labelled frames, then a student (issue 37).

Kept apart from :mod:`cellsim.engines.student`, which the embedded engine imports: this module loads the teacher
through the engine and builds the reduced interface, so it sits above both (nothing in cellsim imports it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.engines.student import (
    DataSettings,
    StudentError,
    StudentResult,
    StudentSettings,
    make_frames,
    train_student,
    write_card,
)

if TYPE_CHECKING:
    from ase import Atoms
    from ase.calculators.calculator import Calculator

__all__ = ["LATTICE_AGREEMENT", "distill", "lattice_against_teacher", "metal_frames", "student_run_frames"]


def distill(
    run_dir: str | os.PathLike[str],
    root: str | os.PathLike[str] = "cellsim-students",
    data: DataSettings | None = None,
    settings: StudentSettings | None = None,
    *,
    dft_sets: Sequence[str] | None = None,
    extra_atoms: Sequence[Atoms] = (),
    extra_source: str = "",
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> StudentResult:
    """A student of a built run directory's study: its teacher is the study's ``engine.model_path``.

    The frames come from the run's interface (``RUN/interface/POSCAR``), the study's 46-atom reduced interface
    (:func:`cellsim.engines.snapshots.reduced_interfaces`; the smallest when none has 46 atoms) and the stored DFT
    label sets of its elements (``dft_sets``: only the sets of these names, e.g. those a card's ``data.source``
    lists, to redo a student after new label sets were stored); each step is cached, so the same call reuses both
    folders. ``extra_atoms`` (described by ``extra_source`` in the card) are labelled and trained on too: frames
    of a run the student drove (:func:`student_run_frames`), one round of learning where the teacher disagreed.

    Raises
    ------
    StudentError
        The study names no teacher file (``engine.model_path``).
    """
    from pymatgen.io.ase import AseAtomsAdaptor

    from cellsim.config.engines import mlip_for
    from cellsim.config.rundir import RunDir
    from cellsim.engines.fit import load_labels, training_sets
    from cellsim.engines.mlip import make_calculator
    from cellsim.engines.snapshots import reduced_interfaces
    from cellsim.io.poscar import read_poscar_atoms

    rd = RunDir(Path(run_dir))
    study = rd.load_study()
    teacher = study.engine.model_path
    if not teacher:
        raise StudentError(f"{rd.study_file}: engine.model_path names no teacher model file to distil")
    full = read_poscar_atoms(rd.interface_poscar)
    reds = reduced_interfaces(study, None)
    reduced = None
    if reds:
        picked = next((s for r, s in reds if r["natoms"] == 46), reds[-1][1])
        reduced = AseAtomsAdaptor.get_atoms(picked)
    d = data or DataSettings()
    metal = study.interface.metal.phase
    if metal and (d.metal_strains or d.metal_volumes):
        extra_atoms = [*metal_frames(metal, d), *extra_atoms]
    sets = training_sets(set(full.get_chemical_symbols())) if d.dft_sets else []
    if dft_sets is not None:
        sets = [j for j in sets if j.parent.name in set(dft_sets)]
    per_set = {j.parent.name: [lab.atoms for lab in load_labels([j])] for j in sets}
    dft = [a for atoms in per_set.values() for a in atoms]
    calc, _ = make_calculator(mlip_for(study.engine.name), teacher, device, forces_only=True)
    frames, key = make_frames(
        teacher, calc, full, reduced, d, root, dft_atoms=dft, extra_atoms=extra_atoms, progress=progress
    )
    result = train_student(teacher, frames, key, settings, root, data=d, progress=progress)
    source: dict[str, Any] = {"study": study.name, "run_dir": str(rd.root), "interface_atoms": len(full)}
    if reduced is not None:
        source["reduced_atoms"] = len(reduced)
    source["dft_sets"] = {name: len(atoms) for name, atoms in per_set.items()}
    if extra_atoms:
        source["extra"] = {"frames": len(extra_atoms), "from": extra_source}
    if result.card["data"].get("source") != source:
        result.card["data"]["source"] = source
        write_card(result.folder, result.card)
    return result


def metal_frames(phase: str, data: DataSettings, min_atoms: int = 16, rattle: float = 0.03) -> list[Atoms]:
    """Bulk cells of the metal ``phase`` (library name or file) for the teacher to label: strained along c at constant
    volume by each of ``data.metal_strains``, then scaled in volume by each of ``data.metal_volumes``; supercells of
    at least ``min_atoms`` atoms, rattled by ``rattle`` A (seeded). ``info['group']`` is ``bulk-metal``."""
    from pymatgen.io.ase import AseAtomsAdaptor

    from cellsim.references.library import resolve_phase

    _, structure = resolve_phase(phase, None, "interface.metal.phase")
    base = AseAtomsAdaptor.get_atoms(structure.get_primitive_structure())
    reps = max(1, int(np.ceil((min_atoms / len(base)) ** (1 / 3))))
    rng = np.random.default_rng(7)
    out = []
    cells = [(eps, 1.0) for eps in data.metal_strains] + [(0.0, v) for v in data.metal_volumes]
    for eps, vol in cells:
        work = base.copy()
        # c stretched by (1 + eps), a and b by 1/sqrt(1 + eps): volume kept, then scaled by vol
        lat = np.diag([(1 + eps) ** -0.5, (1 + eps) ** -0.5, 1 + eps]) * vol ** (1 / 3)
        work.set_cell(work.cell.array @ lat, scale_atoms=True)
        work = work.repeat((reps, reps, reps))
        work.positions += rng.normal(0.0, rattle, work.positions.shape)
        work.info.update({"group": "bulk-metal", "c_strain": eps, "volume_scale": vol})
        out.append(work)
    return out


def student_run_frames(run_dir: str | os.PathLike[str], n: int = 12) -> list[Atoms]:
    """Structures of a run the student drove: its relaxed interface and ``n`` frames spread over its trajectory.

    Labelled by the teacher (``distill(..., extra_atoms=...)``), they teach the student the structures its own
    relaxation and MD reach, where a student trained only on teacher MD can sit in a minimum of its own (seen here:
    four surface Cl moved 1.7 A by the student's relaxation, the teacher pushing them back with 3.3 eV/A).
    """
    from ase.io import read

    from cellsim.config.rundir import RunDir
    from cellsim.io.poscar import read_poscar_atoms

    rd = RunDir(Path(run_dir))
    out: list[Atoms] = []
    relaxed = rd.relax_dir / "CONTCAR"
    if relaxed.is_file():
        a = read_poscar_atoms(relaxed)
        a.info["group"] = "student-run"
        out.append(a)
    frames: list[Atoms] = []
    for f in rd.trajectory_files():
        if "XDATCAR" in f.name and f.suffix not in (".xz", ".gz", ".bz2"):
            got = read(f, index=":", format="vasp-xdatcar")
            frames.extend(got if isinstance(got, list) else [got])
    if frames and n > 0:
        picks = sorted({round(k * (len(frames) - 1) / max(1, n - 1)) for k in range(n)})
        for i in picks:
            frames[i].info["group"] = "student-run"
            out.append(frames[i])
    return out


# the student's lattices must follow its teacher's: In c/a and the electrolyte's cell edge within this (absolute for
# c/a, relative for a lattice constant); the MD runs at the study's cell, so a student that moves these moves strain
LATTICE_AGREEMENT = 0.01


def lattice_against_teacher(
    student: Calculator, teacher: Calculator, phases: Sequence[str] = ("In", "Li6PS5Cl")
) -> list[dict[str, Any]]:
    """Each library phase relaxed (cell + positions, space group kept) by the student and by the teacher: c/a for
    tetragonal and hexagonal cells, else the cubic edge a; the difference and whether it is within
    :data:`LATTICE_AGREEMENT`."""
    from cellsim.engines.check.compute import relax
    from cellsim.engines.check.settings import CheckSettings
    from cellsim.references.library import resolve_phase

    settings = CheckSettings()
    rows = []
    for name in phases:
        _, structure = resolve_phase(name, None, "phase")
        got = {}
        for who, calc in (("student", student), ("teacher", teacher)):
            cell = np.asarray(relax(calc, structure, settings)["cell"])
            a, _, c = np.linalg.norm(cell, axis=1)
            got[who] = (c / a, "c/a") if abs(c - a) > 1e-3 * a else (a, "a (A)")
        (s, what), (t, _) = got["student"], got["teacher"]
        diff = s - t if what == "c/a" else (s - t) / t
        rows.append(
            {
                "phase": name,
                "quantity": what,
                "student": round(float(s), 4),
                "teacher": round(float(t), 4),
                "difference": round(float(diff), 4),
                "relative": what != "c/a",
                "ok": bool(abs(diff) <= LATTICE_AGREEMENT),
            }
        )
    return rows
