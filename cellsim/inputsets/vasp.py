"""Stage 2: VASP inputs for NVT AIMD of the interface, through pymatgen's input-set machinery.

Override chain (as atomate2's ``user_incar_settings``): ``templates/vasp_md_incar.yaml`` (base defaults)
-> the study's ``md`` section (TEBEG = TEEND = temperature, POTIM, NSW per segment, NBLOCK, SMASS) -> the
study's ``md.incar`` overrides. Overrides that contradict an NVT study are errors naming the tag.

The first segment folder gets INCAR, KPOINTS (Gamma 1x1x1), POSCAR (the interface) and POTCAR when
``PMG_VASP_PSP_DIR`` is configured, else POTCAR.spec (the PBE symbols) with a notice. ``md/plan.json``
records the segments: later segments are written by the workflow from the previous CONTCAR.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from cellsim.config.rundir import RunDir
from cellsim.core.errors import CellsimError, RunDirError
from cellsim.core.files import atomic_write_json
from cellsim.core.resources import shipped_dir

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from cellsim.config.study import Study


class InputsError(CellsimError):
    """An INCAR override contradicts the study, or the inputs cannot be written."""


def base_incar() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((shipped_dir("templates") / "vasp_md_incar.yaml").read_text())
    return data


def plan_segments(study: Study) -> list[int]:
    """NSW of each segment: total time / segment time, the last one shorter if needed (see RunDir)."""
    from cellsim.config.rundir import SegmentPlan

    return SegmentPlan.from_study(study).nsw


def incar_settings(study: Study) -> dict[str, Any]:
    """The INCAR tags of a segment after the whole override chain, validated."""
    md = study.md
    if md.nblock != 1:
        # VASP writes XDATCAR every NBLOCK steps but CONTCAR every step: a segment's frames are its steps only at
        # NBLOCK = 1, and the continuation (cut to the frame matching CONTCAR, NSW = steps still missing) and
        # the segment's state count frames as steps; at NBLOCK = k a finished segment would look cut short
        raise InputsError(
            f"md.nblock = {md.nblock}: VASP segments are continued and counted frame by frame (XDATCAR frame = MD "
            "step), which needs NBLOCK = 1; set md.nblock: 1 for VASP (the embedded engine takes any md.nblock)"
        )
    incar = base_incar()
    incar.update(
        {
            "TEBEG": md.temperature,
            "TEEND": md.temperature,
            "POTIM": md.timestep_fs,
            "NSW": plan_segments(study)[0],
            "NBLOCK": md.nblock,
            "SMASS": md.smass,
            "MDALGO": 2,
        }
    )
    user = {k.upper(): v for k, v in md.incar.items()}
    _check_overrides(user, study)
    incar.update(user)
    return incar


def _check_overrides(user: dict[str, Any], study: Study) -> None:
    def bad(tag: str, why: str) -> InputsError:
        return InputsError(f"md.incar.{tag} = {user[tag]!r}: {why}")

    if "IBRION" in user and user["IBRION"] != 0:
        raise bad("IBRION", "molecular dynamics needs IBRION = 0 (other values relax or compute phonons)")
    if "ISIF" in user and user["ISIF"] not in (0, 1, 2):
        raise bad("ISIF", "ISIF >= 3 lets the cell change; this is an NVT study (use ISIF 0-2)")
    for tag in ("TEBEG", "TEEND"):
        if tag in user and (user[tag] is None or float(user[tag]) != study.md.temperature):
            raise bad(tag, f"set the temperature with md.temperature (now {study.md.temperature} K), not in md.incar")
    if "POTIM" in user and float(user["POTIM"]) != study.md.timestep_fs:
        raise bad("POTIM", "set the time step with md.timestep_fs")
    if "MDALGO" in user and user["MDALGO"] != 2:
        raise bad("MDALGO", "the study's thermostat is Nose-Hoover (MDALGO = 2)")
    if "NSW" in user:
        raise bad("NSW", "NSW follows md.total_time_ps / md.segment_time_ps")
    if user.get("EDIFF_PER_ATOM") is not None:
        raise bad("EDIFF_PER_ATOM", "use an absolute EDIFF (per-atom scaling gives ~3e-3 eV for 300 atoms)")


@dataclass
class InputsReport:
    segment_dir: Path
    incar: dict[str, Any]
    potcar_symbols: list[str]
    potcar_spec: bool
    segments: list[int] = field(default_factory=list)


def make_input_set(structure: Structure, study: Study) -> Any:
    """A pymatgen VaspInputSet with cellsim's MD config (Gamma-point KPOINTS, PBE POTCAR symbols)."""
    from pymatgen.io.vasp.inputs import Kpoints
    from pymatgen.io.vasp.sets import VaspInputSet

    config = {
        "INCAR": incar_settings(study),
        "KPOINTS": {"reciprocal_density": 1},
        "POTCAR_FUNCTIONAL": "PBE",
        "POTCAR": dict(study.md.potcar),
    }
    missing = sorted({el.symbol for el in structure.composition} - set(study.md.potcar))
    if missing:
        raise InputsError(f"md.potcar: no POTCAR symbol for {', '.join(missing)} (e.g. add {missing[0]}: {missing[0]})")
    return VaspInputSet(
        structure=structure,
        config_dict=config,
        user_kpoints_settings=Kpoints.gamma_automatic((1, 1, 1)),  # type: ignore[arg-type]  # accepts Kpoints
        sort_structure=False,
        validate_magmom=False,
    )


def write_inputs(run_dir: Path, study: Study, force: bool = False) -> InputsReport:
    """Write the first segment's inputs and the segment plan; refuses to overwrite a segment that has started."""
    from cellsim.io.poscar import read_poscar_structure, rewrite_poscar

    rd = RunDir(run_dir)
    poscar = rd.interface_poscar
    if not poscar.is_file():
        raise RunDirError(f"{poscar}: no interface yet; run `cellsim build STUDY -o {run_dir}` first")
    seg = rd.segment_dir(0)
    if (seg / "XDATCAR").exists() and not force:
        raise RunDirError(f"{seg}: this segment already has MD output; use --force to rewrite its inputs")
    structure = read_poscar_structure(poscar)
    vis = make_input_set(structure, study)
    spec = not os.environ.get("PMG_VASP_PSP_DIR")
    seg.mkdir(parents=True, exist_ok=True)
    try:
        vis.write_input(str(seg), potcar_spec=spec)
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputsError(f"{seg}: pymatgen could not write the VASP inputs: {exc}") from exc
    # keep selective dynamics of the interface POSCAR (fixed bottom metal planes)
    rewrite_poscar(poscar, seg / "POSCAR")
    segments = plan_segments(study)
    atomic_write_json(
        rd.plan_file,
        {
            "engine": "vasp",
            "segments": len(segments),
            "nsw": segments,
            "timestep_fs": study.md.timestep_fs,
            "total_time_ps": study.md.total_time_ps,
            "potcar_spec": spec,
        },
    )
    symbols = [study.md.potcar[el.symbol] for el in structure.composition]
    return InputsReport(
        seg, vis.incar.as_dict() if hasattr(vis.incar, "as_dict") else dict(vis.incar), symbols, spec, segments
    )
