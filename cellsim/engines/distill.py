"""The distillation recipe for a built run directory: teacher-labelled frames, then a student (issue 37).

Kept apart from :mod:`cellsim.engines.student`, which the embedded engine imports: this module loads the teacher
through the engine and builds the reduced interface, so it sits above both (nothing in cellsim imports it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

__all__ = ["distill", "student_run_frames"]


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
