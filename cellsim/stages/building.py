"""The build and inputs stages: the interface model and the VASP input set of a run directory."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.config.engines import mlip_for
from cellsim.config.rundir import RunDir
from cellsim.core.errors import RunDirError

if TYPE_CHECKING:
    from cellsim.config.study import Study
    from cellsim.inputsets.cp2k import Cp2kInputsReport
    from cellsim.inputsets.vasp import InputsReport

PathLike = str | Path


@dataclass
class BuildOutcome:
    report: dict[str, Any]
    reused: bool
    run_dir: RunDir


def build(study_ref: PathLike | Study, run_dir: PathLike, force: bool = False) -> BuildOutcome:
    """Load a study, write ``RUN_DIR/study.yaml`` and build ``RUN_DIR/interface/``.

    ``study_ref`` is a study file, a bundled study's name, or a :class:`~cellsim.config.study.Study` (a run of
    a study matrix; its relative paths are taken from the current folder).
    A finished interface of the same study is reused unless ``force``; one of a different study is an error.
    A build that fails leaves no ``study.yaml`` behind, so a corrected study can use the same folder.
    """
    import json

    from cellsim.build import build_interface, write_interface
    from cellsim.config.rundir import save_resolved
    from cellsim.config.study import Study, load_study, resolve_study_paths

    rd = RunDir(run_dir)
    if isinstance(study_ref, Study):
        study, base_dir = study_ref.model_copy(deep=True), None
    else:
        study = load_study(study_ref)
        src = Path(study_ref)
        base_dir = src.parent.resolve() if src.is_file() else None
    # structure files by absolute path, so the resolved study works from any folder
    resolve_study_paths(study, base_dir)
    if rd.interface_json.exists() and not force:
        save_resolved(study, rd.root)  # raises if the run directory holds another study
        return BuildOutcome(json.loads(rd.interface_json.read_text()), True, rd)
    if rd.interface_dir.exists() and not force:
        raise RunDirError(f"{rd.interface_dir}: exists without interface.json; use --force to rebuild")
    had_study = rd.study_file.exists()
    save_resolved(study, rd.root, force=force)
    try:
        spec, lattice_report = _engine_lattice_spec(study, rd, base_dir)
        model = build_interface(spec, base_dir)
    except BaseException:
        if not had_study:
            rd.study_file.unlink(missing_ok=True)
        raise
    if lattice_report:
        model.report["lattice"] = lattice_report
    write_interface(model, rd.root, title=f"cellsim {study.name}")
    return BuildOutcome(model.report, False, rd)


def _engine_lattice_spec(study: Study, rd: RunDir, base_dir: Path | None) -> tuple[Any, dict[str, Any]]:
    """The interface spec to build: as the study says, or (``interface.lattice: engine``) with both bulk
    crystals at the study engine's relaxed lattice, and how far each is from the reference."""
    if study.interface.lattice == "reference":
        return study.interface, {}
    import numpy as np
    from pymatgen.io.cif import CifWriter

    from cellsim.engines.check import relaxed_structure
    from cellsim.references.library import resolve_phase

    engine = mlip_for(study.engine.name)
    spec = study.interface.model_copy(deep=True)
    report: dict[str, Any] = {"source": "engine", "engine": engine}
    for side_name in ("metal", "electrolyte"):
        side = getattr(spec, side_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, ref = resolve_phase(side.phase, base_dir, f"interface.{side_name}.phase")
        relaxed = relaxed_structure(ref, engine)
        path = rd.engine_phase_file(side_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        CifWriter(relaxed).write_file(str(path))
        a0, a1 = np.array(ref.lattice.abc), np.array(relaxed.lattice.abc)
        report[side_name] = {
            "reference": side.phase,
            "reference_abc": [round(float(x), 4) for x in a0],
            "engine_abc": [round(float(x), 4) for x in a1],
            "engine_vs_reference": [round(float(x), 5) for x in a1 / a0 - 1.0],
            "file": str(path),
        }
        side.phase = str(path.resolve())
    return spec, report


def inputs(run_dir: PathLike, force: bool = False) -> InputsReport:
    """VASP NVT inputs of the first segment and the segment plan (``md/plan.json``)."""
    from cellsim.inputsets.vasp import write_inputs

    rd = RunDir(run_dir)
    return write_inputs(rd.root, rd.load_study(), force=force)


def cp2k_inputs(run_dir: PathLike, force: bool = False) -> Cp2kInputsReport:
    """CP2K NVT inputs of every segment and the segment plan (:mod:`cellsim.inputsets.cp2k`)."""
    from cellsim.inputsets.cp2k import write_inputs

    rd = RunDir(run_dir)
    return write_inputs(rd.root, rd.load_study(), force=force)
