"""The CP2K input of an energy + forces (+ stress) job: nested sections, k-point mesh, text."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms

from cellsim.inputsets.cp2k_settings import Cp2kError, data_dir, kinds

# --------------------------------------------------------------------------- input


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return ".TRUE." if value else ".FALSE."
    if isinstance(value, list | tuple):
        return " ".join(_value(v) for v in value)
    return str(value)


def _emit(name: str, body: Any, indent: int, lines: list[str]) -> None:
    """Write one CP2K section (``&NAME param`` ... ``&END NAME``); lists repeat a section."""
    if isinstance(body, list):
        for item in body:
            _emit(name, item, indent, lines)
        return
    pad = "  " * indent
    param = body.get("_", "")
    lines.append(f"{pad}&{name}{' ' + _value(param) if param != '' else ''}".rstrip())
    for line in body.get("_lines", []):
        lines.append(f"{pad}  {line}")
    for key, value in body.items():
        if key in ("_", "_lines"):
            continue
        if isinstance(value, dict) or (isinstance(value, list) and value and isinstance(value[0], dict)):
            _emit(key, value, indent + 1, lines)
        elif value is not None:
            lines.append(f"{pad}  {key} {_value(value)}")
    lines.append(f"{pad}&END {name}")


def _upper_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        k = key.upper() if key not in ("_", "_lines") else key
        if isinstance(value, Mapping) and isinstance(out.get(k), dict):
            out[k] = _upper_merge(out[k], value)
        else:
            out[k] = copy.deepcopy(value)
    return out


def kpoint_mesh(atoms: Atoms, settings: Mapping[str, Any]) -> tuple[int, int, int] | None:
    """The Monkhorst-Pack mesh for ``atoms``, or ``None`` for the Gamma point only."""
    kp = settings["kpoints"]
    if kp.get("mesh"):
        mesh = tuple(int(n) for n in kp["mesh"])
        if len(mesh) != 3 or min(mesh) < 1:
            raise Cp2kError(f"CP2K setting kpoints.mesh: expected three positive integers, got {kp['mesh']!r}")
    elif len(atoms) > int(kp["gamma_only_above_atoms"]) or not kp.get("kspacing"):
        return None
    else:
        recip = 2 * math.pi * np.linalg.inv(np.asarray(atoms.cell)).T
        mesh = tuple(max(1, math.ceil(float(np.linalg.norm(b)) / float(kp["kspacing"]) - 1e-9)) for b in recip)
    return None if mesh == (1, 1, 1) else (mesh[0], mesh[1], mesh[2])


def input_tree(atoms: Atoms, settings: Mapping[str, Any], stress: bool = False) -> dict[str, Any]:
    """The CP2K input as nested sections (``{"GLOBAL": {...}, "FORCE_EVAL": {...}}``)."""
    elements = sorted(set(atoms.get_chemical_symbols()))
    names = kinds(elements, settings)
    folder = data_dir(settings)
    scf_s = settings["scf"]
    # valence electrons from the -qN names: the empty-orbital count scales with the occupied ones
    n_el = sum(int(names[s][1].rsplit("-q", 1)[1]) for s in atoms.get_chemical_symbols())
    added = max(8, math.ceil(float(scf_s["added_mos"]) * n_el / 2))
    scf: dict[str, Any] = {
        "SCF_GUESS": scf_s["guess"],
        "EPS_SCF": scf_s["eps_scf"],
        "MAX_SCF": scf_s["max_scf"],
        "ADDED_MOS": added,
        "DIAGONALIZATION": {"_": True, "ALGORITHM": "STANDARD"},
        "MIXING": {
            "METHOD": scf_s["mixing"]["method"],
            "ALPHA": scf_s["mixing"]["alpha"],
            "NBROYDEN": scf_s["mixing"]["nbroyden"],
        },
        # no wavefunction restart files: they are large and the cache keeps results, not states
        "PRINT": {"RESTART": {"_": "OFF"}, "RESTART_HISTORY": {"_": "OFF"}},
    }
    if scf_s.get("smearing"):
        scf["SMEAR"] = {
            "_": "ON",
            "METHOD": scf_s["smearing"]["method"],
            "ELECTRONIC_TEMPERATURE": f"[K] {scf_s['smearing']['temperature']}",
        }
    dft: dict[str, Any] = {
        "BASIS_SET_FILE_NAME": str(folder / settings["basis_set_file"]),
        "POTENTIAL_FILE_NAME": str(folder / settings["potential_file"]),
        "MGRID": {"CUTOFF": settings["cutoff"], "REL_CUTOFF": settings["rel_cutoff"], "NGRIDS": settings["ngrids"]},
        "QS": {"EPS_DEFAULT": settings["eps_default"]},
        "SCF": scf,
        "XC": {"XC_FUNCTIONAL": {"_": settings["xc"]}},
    }
    mesh = kpoint_mesh(atoms, settings)
    if mesh is not None:
        # CP2K 2023 refuses symmetry-reduced meshes with diagonalisation; time reversal still halves the set
        dft["KPOINTS"] = {"SCHEME": ["MONKHORST-PACK", *mesh], "SYMMETRY": False, "FULL_GRID": False}
    cell = np.asarray(atoms.cell)
    subsys = {
        "CELL": {
            "A": [f"{x:.10f}" for x in cell[0]],
            "B": [f"{x:.10f}" for x in cell[1]],
            "C": [f"{x:.10f}" for x in cell[2]],
            "PERIODIC": "XYZ",
        },
        "COORD": {
            "_lines": [
                f"{s} {p[0]:.10f} {p[1]:.10f} {p[2]:.10f}"
                for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)
            ]
        },
        "KIND": [{"_": el, "BASIS_SET": names[el][0], "POTENTIAL": names[el][1]} for el in elements],
    }
    force_eval: dict[str, Any] = {"METHOD": "QS", "DFT": dft, "SUBSYS": subsys, "PRINT": {"FORCES": {"_": "ON"}}}
    if stress:
        force_eval["STRESS_TENSOR"] = "ANALYTICAL"
        force_eval["PRINT"]["STRESS_TENSOR"] = {"_": "ON"}
    tree = {
        "GLOBAL": {"PROJECT": "job", "RUN_TYPE": "ENERGY_FORCE", "PRINT_LEVEL": "LOW"},
        "FORCE_EVAL": force_eval,
    }
    return _upper_merge(tree, settings.get("input") or {})


def write_input(atoms: Atoms, settings: Mapping[str, Any], stress: bool = False) -> str:
    """The complete CP2K input text for an energy + forces (+ stress) job on ``atoms``."""
    if not all(atoms.pbc):
        raise Cp2kError("CP2K job: the structure must be periodic in all three directions (pbc = True)")
    return emit_tree(input_tree(atoms, settings, stress))


def emit_tree(tree: Mapping[str, Any]) -> str:
    """CP2K input text of nested sections (see :func:`input_tree`)."""
    lines: list[str] = []
    for name, body in tree.items():
        _emit(name, body, 0, lines)
    return "\n".join(lines) + "\n"
