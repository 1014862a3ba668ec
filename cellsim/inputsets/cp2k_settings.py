"""CP2K settings (templates/cp2k/pbe.yaml + overrides), the executable, its data files and the kinds (basis +
pseudopotential per element)."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.core.errors import CellsimError

if TYPE_CHECKING:
    pass


# Hartree -> eV, Bohr -> Angstrom, GPa -> eV/A^3 (CODATA 2018, as in ase.units)
_HARTREE_EV = 27.211386245988
_BOHR_A = 0.529177210903
_GPA_EV_A3 = 1.0 / 160.21766208

INSTALL_HINT = (
    "install it with `apt-get install cp2k` (Debian/Ubuntu, as root; `make system-deps` does it) or "
    "`conda install -c conda-forge cp2k`, or point the CP2K setting `command` at your binary"
)


class Cp2kError(CellsimError):
    """CP2K is missing, misconfigured, or a job ended without a usable result."""


class Cp2kNotFoundError(Cp2kError):
    """The CP2K executable is not on PATH."""


# --------------------------------------------------------------------------- settings


def default_settings_path() -> Path:
    """The shipped default settings file (``templates/cp2k/pbe.yaml``)."""
    from cellsim.core.resources import shipped_dir

    return shipped_dir("templates") / "cp2k" / "pbe.yaml"


def _merge(base: dict[str, Any], over: Mapping[str, Any], where: str, strict: bool) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if strict and key not in base:
            raise Cp2kError(f"{where}: unknown CP2K setting '{key}' (expected one of: {', '.join(sorted(base))})")
        old = base.get(key)
        # free-form mappings (raw input, per-element valence) merge without a key check
        free = key in ("input", "valence") or not strict
        if isinstance(old, dict) and isinstance(value, Mapping):
            out[key] = _merge(old, value, f"{where}.{key}", strict=strict and not free)
        elif isinstance(old, dict) and old and value is not None and not isinstance(value, Mapping):
            raise Cp2kError(f"{where}.{key}: expected a mapping, got {value!r}")
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_settings(*overrides: Mapping[str, Any] | str | os.PathLike[str] | None) -> dict[str, Any]:
    """The shipped defaults overridden, in order, by each mapping or YAML file given.

    Parameters
    ----------
    *overrides
        Mappings or paths of YAML files; later ones win. ``None`` entries are skipped.

    Returns
    -------
    dict
        The complete settings (every key present).

    Raises
    ------
    Cp2kError
        An unknown key, or a file that is not a YAML mapping (the message names the file and key).
    """
    import yaml

    path = default_settings_path()
    settings: dict[str, Any] = yaml.safe_load(path.read_text())
    for over in overrides:
        if over is None:
            continue
        where = "CP2K settings"
        if not isinstance(over, Mapping):
            where = str(over)
            try:
                loaded = yaml.safe_load(Path(over).read_text())
            except (OSError, yaml.YAMLError) as exc:
                raise Cp2kError(f"{over}: cannot read CP2K settings ({exc})") from None
            if not isinstance(loaded, Mapping):
                raise Cp2kError(f"{over}: expected a mapping of CP2K settings, got {type(loaded).__name__}")
            over = loaded
        settings = _merge(settings, over, where, strict=True)
    return settings


# --------------------------------------------------------------------------- locating CP2K and its data


def find_cp2k(command: str = "cp2k.psmp") -> Path:
    """The CP2K executable's path, or :class:`Cp2kNotFoundError` saying how to install it."""
    found = shutil.which(command)
    if found is None:
        raise Cp2kNotFoundError(f"CP2K executable '{command}' not found on PATH: {INSTALL_HINT}")
    return Path(found)


def data_dir(settings: Mapping[str, Any]) -> Path:
    """The folder holding CP2K's basis-set and pseudopotential files."""
    candidates: list[Path] = []
    if settings.get("data_dir"):
        candidates.append(Path(settings["data_dir"]))
    elif os.environ.get("CP2K_DATA_DIR"):
        candidates.append(Path(os.environ["CP2K_DATA_DIR"]))
    else:
        exe = find_cp2k(settings["command"]).resolve()
        candidates += [exe.parent.parent / "share" / "cp2k", exe.parent.parent / "share" / "cp2k" / "data"]
        candidates.append(Path("/usr/share/cp2k"))
    for cand in candidates:
        if (cand / settings["potential_file"]).is_file():
            return cand
    raise Cp2kError(
        f"CP2K data files ({settings['potential_file']}) not found in {', '.join(map(str, candidates))}: "
        f"set the CP2K setting data_dir or $CP2K_DATA_DIR"
    )


def _headers(path: Path) -> dict[str, list[list[str]]]:
    """Element -> the name lists of the entries of a CP2K basis/potential file."""
    out: dict[str, list[list[str]]] = {}
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split("#")[0].split()
        if len(parts) >= 2 and parts[0].isalpha() and len(parts[0]) <= 3 and parts[1][:1].isalpha():
            out.setdefault(parts[0], []).append(parts[1:])
    return out


def _q(names: list[str]) -> int | None:
    for name in names:
        m = re.search(r"-q(\d+)$", name)
        if m:
            return int(m.group(1))
    return None


def kinds(elements: list[str], settings: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Per element, the explicit (basis set, pseudopotential) names, valences matched.

    Raises
    ------
    Cp2kError
        When the data files have no such entry for an element (naming the file and what was looked for).
    """
    folder = data_dir(settings)
    pot_file, basis_file = folder / settings["potential_file"], folder / settings["basis_set_file"]
    pots, bases = _headers(pot_file), _headers(basis_file)
    family, basis = settings["pseudopotential"], settings["basis_set"]
    out: dict[str, tuple[str, str]] = {}
    for el in elements:
        want_q = (settings.get("valence") or {}).get(el)
        name = f"{family}-q{want_q}" if want_q else family

        el_bases = bases.get(el, [])

        def has_basis(q: int, el_bases: list[list[str]] = el_bases) -> bool:
            return any(_q(ns) == q and (basis in ns or f"{basis}-q{q}" in ns) for ns in el_bases)

        # an exact name (GTH_POTENTIALS marks each element's default valence with the bare family name);
        # else the family's -qN entries (POTENTIAL_UZH), kept only where the basis has that valence
        entries = [ns for ns in pots.get(el, []) if name in ns and _q(ns) is not None]
        if not entries:
            entries = [ns for ns in pots.get(el, []) if any(re.fullmatch(rf"{re.escape(name)}-q\d+", n) for n in ns)]
            entries = [ns for ns in entries if has_basis(_q(ns) or -1)] or entries
        if not entries:
            raise Cp2kError(f"{pot_file}: no pseudopotential '{name}' (with a -qN name) for {el}")
        valences = sorted({_q(ns) or 0 for ns in entries})
        if len(valences) > 1:
            raise Cp2kError(
                f"{pot_file}: '{name}' exists for {el} with {valences} valence electrons: choose one with the "
                f"CP2K setting valence: {{{el}: N}}"
            )
        q = valences[0]
        if not has_basis(q):
            raise Cp2kError(f"{basis_file}: no basis set '{basis}' for {el} with {q} valence electrons (-q{q})")
        out[el] = (f"{basis}-q{q}", f"{family}-q{q}")
    return out


def cp2k_version(command: str = "cp2k.psmp") -> str:
    """CP2K's version string (``CP2K version 2023.1``), from ``command --version``."""
    exe = find_cp2k(command)
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60, check=False)
    m = re.search(r"CP2K version (\S+)", proc.stdout)
    return f"CP2K version {m.group(1)}" if m else proc.stdout.strip().splitlines()[0] if proc.stdout else "unknown"
