"""Labels from anywhere: DFT energies and forces read from the files a group already has, frames chosen, checked.

One reader per format, all behind :func:`read_label_source` (the format from the name, else the first bytes):

============  ======================================================================================  =========
format        read with                                                                               frames
============  ======================================================================================  =========
``vasprun``   pymatgen's ``Vasprun`` (every ionic step with forces: AIMD, relaxations, single points;  steps
              a file cut mid-write is read to its last whole step)
``outcar``    ASE's ``vasp-out`` reader                                                               steps
``ml_ab``     this module (VASP's machine-learning training set, ``ML_AB``/``ML_ABN``; no reader in   configs
              pymatgen or ASE)
``extxyz``    ASE's ``extxyz`` reader (energy and forces from the calculator columns, or REF_/DFT_     frames
              keys)
``ase-db``    ASE's database (``.db``; rows with energy and forces)                                   rows
``jobs``      cellsim's DFT job folders (``*/result.json`` + ``structure.json``: CP2K, GPAW), as      jobs
              :func:`cellsim.engines.fit.load_labels`
============  ======================================================================================  =========

Why pymatgen for vasprun.xml: cut at every third byte over the last two ionic steps of a 6-step file (1638
cuts, measured here), pymatgen's ``Vasprun(exception_on_bad_xml=False)`` returned exactly the whole steps every
time; ASE's ``read_vasp_xml`` raised on 32 cuts (AttributeError, TypeError) and returned a partial last step on
112 more. It also read a 300-step, 32-atom file in 0.16 s against ASE's 0.23 s.

Each :class:`~cellsim.engines.fit.Label` records its source file, its frame (ionic step) in it, the code and
the functional where the file says it: vasprun.xml and OUTCAR from the GGA, METAGGA, IVDW, LUSE_VDW, LHFCALC
and LDAU tags and the POTCAR titles (:func:`vasp_functional`); an ML_AB from an INCAR and POTCAR beside it;
extxyz and database frames from their ``functional``/``xc`` keys; else ``"unknown"``.

**Frames chosen, not dumped** (:func:`choose_frames`, the rule in docs/labels.md): the frames of one source that
share one species order are a time series; its stride is the larger of ``min_gap`` and the force
autocorrelation time (:func:`decorrelation_steps`); of the frames one stride apart, at most ``max_frames`` are
kept by farthest-point sampling on per-frame distance histograms (:func:`frame_descriptors`).

**Checks** (:func:`check_elements`, :func:`check_functional`, :func:`check_split`): each refuses with a
:class:`~cellsim.core.errors.CellsimError` or warns with a :class:`LabelWarning`, naming the file.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.core.errors import CellsimError
from cellsim.core.files import file_sha256
from cellsim.engines.fit import BASE_FUNCTIONAL, Label, load_labels

if TYPE_CHECKING:
    from ase import Atoms

LABEL_FORMATS = ("vasprun", "outcar", "ml_ab", "extxyz", "ase-db", "jobs")
COMPRESSED = (".gz", ".bz2", ".xz")
MIN_DISTANCE_A = 0.5  # two atoms closer than this: a damaged frame, not chemistry
MAX_FORCE_EV_A = 1.0e3  # a larger force component is an unconverged or damaged step
DESCRIPTOR_RMAX_A, DESCRIPTOR_DR_A = 5.0, 0.2


class LabelSourceError(CellsimError):
    """A label file is missing, of no known format, damaged, or holds no usable frame (the message names it)."""


class LabelWarning(UserWarning):
    """Labels that are used, but with a caveat the user should read (truncated file, unknown functional, ...)."""


@dataclass(frozen=True)
class Selection:
    """How frames are chosen from a source (see :func:`choose_frames`).

    Attributes
    ----------
    min_gap
        The smallest gap, in frames (ionic steps), between two frames taken from one time series; the stride
        is the larger of this and the series' force autocorrelation time.
    max_frames
        At most this many frames per source (farthest-point sampling); None: every decorrelated frame.
    """

    min_gap: int = 1
    max_frames: int | None = 200


@dataclass
class SourceRecord:
    """What was read from one source and what was taken: a row of the fit card's ``sources``."""

    file: str
    format: str
    sha256: str
    code: str
    functional: str
    frames_read: int
    frames_taken: list[int] = field(default_factory=list)
    decorrelation_steps: int | None = None
    stride: int | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return asdict(self)


# --------------------------------------------------------------------------- formats and file helpers


def _plain_name(path: Path) -> str:
    name = path.name.lower()
    for suffix in COMPRESSED:
        name = name.removesuffix(suffix)
    return name


def _open(path: Path) -> Any:
    from cellsim.io.compressed import open_maybe_compressed

    return open_maybe_compressed(path)


def _head(path: Path, n: int = 512) -> bytes:
    try:
        with _open(path) as fh:
            return bytes(fh.read(n))
    except (OSError, EOFError, ValueError) as exc:
        raise LabelSourceError(f"{path}: unreadable ({exc})") from None


def _find_in_folder(folder: Path) -> Path | None:
    """The label file in a run folder that holds no DFT job folder: vasprun.xml first, then OUTCAR, ML_AB(N)."""
    for pattern in ("vasprun*.xml*", "OUTCAR*", "ML_AB", "ML_ABN", "*.extxyz"):
        found = sorted(p for p in folder.glob(pattern) if p.is_file())
        if found:
            return found[0]
    return None


def detect_label_format(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """The file to read and its format (one of :data:`LABEL_FORMATS`).

    A folder is ``jobs`` when it holds ``*/result.json``; otherwise its vasprun.xml, OUTCAR, ML_AB or extxyz
    is read. A file is recognised by its name (compression suffixes ignored), else by its first bytes.

    Raises
    ------
    LabelSourceError
        The path does not exist, is empty, or is of no known format.
    """
    p = Path(path)
    if p.is_dir():
        if next(iter(p.rglob("result.json")), None) is not None:
            return p, "jobs"
        found = _find_in_folder(p)
        if found is None:
            raise LabelSourceError(
                f"--labels {p}: no finished DFT job (no */result.json) and no vasprun.xml, OUTCAR, ML_AB or "
                "*.extxyz in it"
            )
        p = found
    if not p.is_file():
        raise LabelSourceError(f"--labels {p}: not a folder, and no such file")
    if p.stat().st_size == 0:
        raise LabelSourceError(f"{p}: empty file")
    name = _plain_name(p)
    if name.startswith("vasprun") or name.endswith(".xml"):
        return p, "vasprun"
    if name.startswith("outcar"):
        return p, "outcar"
    if name.startswith("ml_ab"):
        return p, "ml_ab"
    if name.endswith((".extxyz", ".xyz")):
        return p, "extxyz"
    if name.endswith((".db", ".sqlite")):
        return p, "ase-db"
    head = _head(p)
    first = head.split(b"\n", 1)[0].strip()
    if head.startswith(b"SQLite format 3"):
        return p, "ase-db"
    if head.lstrip().startswith(b"<?xml") or b"<modeling>" in head:
        return p, "vasprun"
    if first.endswith(b"Version"):
        return p, "ml_ab"
    if first.startswith(b"vasp.") or b" vasp." in head[:200]:
        return p, "outcar"
    if first.isdigit():
        return p, "extxyz"
    raise LabelSourceError(
        f"{p}: not a label file cellsim knows (vasprun.xml, OUTCAR, ML_AB, extxyz, ASE .db, or a folder of DFT "
        "job folders)"
    )


# --------------------------------------------------------------------------- the functional


VASP_GGA = {
    "PE": "PBE",
    "RP": "RPBE",
    "PS": "PBEsol",
    "RE": "revPBE",
    "91": "PW91",
    "AM": "AM05",
    "CA": "LDA",
    "PZ": "LDA",
    "B3": "B3LYP",
    "BO": "optB88",
    "MK": "optB86b",
    "OR": "optPBE",
    "BF": "BEEF",
    "ML": "vdW-DF2",
    "CX": "vdW-DF-cx",
}
# IVDW: VASP's dispersion corrections (0: none)
VASP_IVDW = {
    "1": "D2",
    "10": "D2",
    "11": "D3",
    "12": "D3(BJ)",
    "13": "D4",
    "2": "TS",
    "20": "TS",
    "21": "TS-H",
    "202": "MBD",
    "263": "MBD@rsSCS",
    "4": "dDsC",
}
VASP_METAGGA = {"SCAN": "SCAN", "R2SCAN": "r2SCAN", "RSCAN": "rSCAN", "TPSS": "TPSS", "RTPSS": "revTPSS"}
# first word of a POTCAR title -> the functional VASP takes from it when GGA is not set ("--")
POTCAR_FAMILY = {"PAW_PBE": "PBE", "PAW_GGA": "PW91", "PAW": "LDA", "PAW_LDA": "LDA", "US": "LDA"}
_NAMES = {
    "PBE": "PBE",
    "GGA_X_PBE+GGA_C_PBE": "PBE",
    "RPBE": "RPBE",
    "PBESOL": "PBEsol",
    "REVPBE": "revPBE",
    "PW91": "PW91",
    "LDA": "LDA",
    "SCAN": "SCAN",
    "R2SCAN": "r2SCAN",
    "HSE06": "HSE06",
    "PBE0": "PBE0",
}


def normalise_functional(name: str | None) -> str:
    """A functional's name as cellsim writes it (``pbe`` -> ``PBE``, ``pbesol`` -> ``PBEsol``); ``unknown`` for
    none; names it does not know are kept as written."""
    if name is None or not str(name).strip():
        return "unknown"
    text = str(name).strip()
    return _NAMES.get(text.upper(), text)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().strip(".").upper()[:1] in ("T", "1") if value is not None else False


def vasp_functional(tags: Mapping[str, Any], potcars: Sequence[str] = ()) -> str:
    """The functional a VASP run used, from its tags (upper-case names) and POTCAR titles; ``unknown`` when they
    do not say.

    Hybrid (LHFCALC) -> HSE06/HSE03/PBE0/hybrid; else METAGGA's functional; else GGA's (``--`` or absent: the
    POTCAR family's, ``PAW_PBE`` -> PBE); then ``+vdW-DF`` (LUSE_VDW), ``+D3`` etc. (IVDW) and ``+U`` (LDAU).
    """
    t = {str(k).upper(): v for k, v in tags.items()}
    if _flag(t.get("LHFCALC")):
        try:
            screen = float(t.get("HFSCREEN", 0.0) or 0.0)
            aexx = float(t.get("AEXX", 0.25) or 0.25)
        except (TypeError, ValueError):
            screen, aexx = -1.0, -1.0
        base = (
            "HSE06"
            if 0.19 <= screen <= 0.21
            else "HSE03"
            if 0.29 <= screen <= 0.31
            else "PBE0"
            if screen == 0.0 and abs(aexx - 0.25) < 1e-6
            else "hybrid"
        )
    else:
        meta = str(t.get("METAGGA") or "").strip().upper()
        gga = str(t.get("GGA") or "").strip().upper()
        if meta and meta not in ("--", "NONE", "F", "FALSE", ".FALSE."):
            base = VASP_METAGGA.get(meta, meta)
        elif gga and gga != "--":
            base = VASP_GGA.get(gga, f"GGA={gga}")
        else:
            families = {POTCAR_FAMILY.get(p.split()[0]) if p.split() else None for p in potcars}
            only = next(iter(families)) if len(families) == 1 else None
            base = only or "unknown"
    if base == "unknown":
        return base
    if _flag(t.get("LUSE_VDW")):
        base += "+vdW-DF"
    ivdw = str(t.get("IVDW") or "0").strip()
    if ivdw not in ("0", ""):
        base += "+" + VASP_IVDW.get(ivdw, f"IVDW={ivdw}")
    if _flag(t.get("LDAU")):
        base += "+U"
    return base


# --------------------------------------------------------------------------- frames -> labels


def _check_frame(path: Path, k: int, atoms: Atoms, energy: float, forces: np.ndarray) -> None:
    """Refuse a frame that cannot be a label: no cell, non-finite numbers, absurd forces."""
    what = f"{path}: frame {k}"
    if len(atoms) == 0:
        raise LabelSourceError(f"{what}: no atoms")
    if forces.shape != (len(atoms), 3):
        raise LabelSourceError(f"{what}: forces of shape {forces.shape} for {len(atoms)} atoms")
    if not math.isfinite(energy):
        raise LabelSourceError(f"{what}: energy is {energy}")
    if not np.all(np.isfinite(forces)):
        raise LabelSourceError(f"{what}: non-finite forces (NaN or inf)")
    if np.abs(forces).max() > MAX_FORCE_EV_A:
        raise LabelSourceError(f"{what}: a force component of {np.abs(forces).max():.3g} eV/A (unconverged or damaged)")
    cell = np.asarray(atoms.cell)
    pos = atoms.positions
    if not (np.all(np.isfinite(cell)) and np.all(np.isfinite(pos))):
        raise LabelSourceError(f"{what}: non-finite cell or positions")
    volume = abs(float(np.linalg.det(cell)))
    if not volume > 1e-3 * len(atoms):
        raise LabelSourceError(f"{what}: no periodic cell (volume {volume:.3g} A^3); a label needs one")
    if abs(energy) / len(atoms) > 1e5:
        raise LabelSourceError(f"{what}: energy {energy:.6g} eV is not a total energy per cell")


def _label(
    path: Path, sha: str, fmt: str, k: int, atoms: Atoms, energy: float, forces: np.ndarray, code: str, functional: str
) -> Label:
    """A validated label of frame ``k`` of ``path``; its job name (file, content hash, frame) is unique and stable."""
    forces = np.asarray(forces, dtype=float)
    _check_frame(path, k, atoms, float(energy), forces)
    atoms = atoms.copy()
    atoms.calc = None
    atoms.pbc = True
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", path.name)
    return Label(
        f"{path.name} frame {k}",
        f"{stem}-{sha[:10]}-{k:06d}",
        atoms,
        float(energy),
        forces,
        code,
        functional=functional,
        source=str(path),
        fmt=fmt,
        frame=k,
    )


def _as_series(labels: list[Label]) -> list[Label]:
    """Mark the frames of one source that share one species order as steps of one time series."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(tuple(lab.atoms.get_chemical_symbols()), []).append(i)
    out = list(labels)
    for g, idx in enumerate(groups.values()):
        if len(idx) < 2:
            continue
        sid = f"{labels[idx[0]].job.rsplit('-', 1)[0]}#{g}"
        for i in idx:
            out[i] = replace(labels[i], trajectory=sid)
    return out


def _vasprun_closed_steps(path: Path) -> int:
    """How many ``</calculation>`` the file holds (streamed): more than the parser returned means damage
    before the end of the file, not a truncation."""
    tag, n, tail = b"</calculation>", 0, b""
    with _open(path) as fh:
        while chunk := fh.read(4 << 20):
            buf = tail + chunk
            n += buf.count(tag)
            tail = buf[-(len(tag) - 1) :]
            n -= tail.count(tag)
    return n


def read_vasprun(path: str | os.PathLike[str]) -> list[Label]:
    """Every ionic step with forces of a vasprun.xml (pymatgen's ``Vasprun``); a truncated file to its last whole
    step (:class:`LabelWarning`). The energy is the force-consistent free energy (``e_fr_energy``), less the
    PSTRESS * V term VASP adds to it.

    In a run with VASP's on-the-fly force field only the ab initio steps are ``<calculation>`` blocks: only they
    are read.

    Raises
    ------
    LabelSourceError
        Not a vasprun.xml, damaged before its last step, no step with forces, or a step that is no label.
    """
    from pymatgen.io.vasp.outputs import Vasprun

    p = Path(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = Vasprun(
                str(p),
                parse_dos=False,
                parse_eigen=False,
                parse_projected_eigen=False,
                parse_potcar_file=False,
                exception_on_bad_xml=False,
            )
            steps = list(run.ionic_steps)
            params = {**{str(k).upper(): v for k, v in dict(run.parameters).items()}}
            params.update({str(k).upper(): v for k, v in dict(run.incar).items()})
            potcars = [str(x) for x in (run.potcar_symbols or [])]
    except Exception as exc:  # pymatgen's parser raises many kinds on damaged XML; one line names the file
        raise LabelSourceError(f"{p}: not a readable vasprun.xml ({type(exc).__name__}: {exc})") from None
    truncated = any("malformed" in str(w.message).lower() for w in caught)
    if truncated:
        closed = _vasprun_closed_steps(p)
        if closed > len(steps):
            raise LabelSourceError(
                f"{p}: damaged XML after ionic step {len(steps)} of {closed} (not a truncation at the end of the file)"
            )
    sha = file_sha256(p)
    functional = vasp_functional(params, potcars)
    try:
        pstress = float(params.get("PSTRESS") or 0.0)
    except (TypeError, ValueError):
        pstress = 0.0
    out: list[Label] = []
    for k, step in enumerate(steps):
        if step.get("forces") is None or step.get("structure") is None:
            continue
        s = step["structure"]
        try:
            from ase import Atoms

            atoms = Atoms(
                symbols=[sp.symbol for sp in s.species],
                cell=np.asarray(s.lattice.matrix),
                positions=np.asarray(s.cart_coords),  # not scaled: ASE asserts on a degenerate cell
                pbc=True,
            )
            energy = float(step["e_fr_energy"]) - pstress * 0.1 * atoms.get_volume() / 160.21766208
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LabelSourceError(f"{p}: ionic step {k}: {type(exc).__name__}: {exc}") from None
        out.append(
            _label(p, sha, "vasprun", k, atoms, energy, np.asarray(step["forces"], dtype=float), "vasp", functional)
        )
    if not out:
        raise LabelSourceError(f"{p}: no ionic step with forces")
    if truncated:
        warnings.warn(f"{p}: truncated; read its {len(out)} whole ionic steps", LabelWarning, stacklevel=2)
    return _as_series(out)


_OUTCAR_TAG = re.compile(r"^\s*(GGA|METAGGA|IVDW|LUSE_VDW|LHFCALC|HFSCREEN|AEXX|LDAU|ML_LMLFF|ML_MODE)\s*=\s*(\S+)")


def _outcar_tags(path: Path) -> tuple[dict[str, str], list[str]]:
    """The functional's tags and the POTCAR titles of an OUTCAR (its header, before the first ionic step)."""
    tags: dict[str, str] = {}
    potcars: list[str] = []
    with _open(path) as fh:
        for n, raw in enumerate(fh):
            line = raw.decode("latin-1")
            if ("POSITION" in line and "TOTAL-FORCE" in line) or n > 200_000:
                break
            m = _OUTCAR_TAG.match(line)
            if m and m.group(1) not in tags:
                tags[m.group(1)] = m.group(2).rstrip(";")
            if line.lstrip().startswith("POTCAR:"):
                potcars.append(line.split(":", 1)[1].strip())
    return tags, potcars


def read_outcar(path: str | os.PathLike[str]) -> list[Label]:
    """Every ionic step of a VASP OUTCAR (ASE's ``vasp-out`` reader); energy: the free energy TOTEN.

    Raises
    ------
    LabelSourceError
        Not an OUTCAR ASE reads, no step with forces, an OUTCAR of an on-the-fly machine-learning run (its
        steps mix force-field and DFT forces: read its vasprun.xml or ML_AB), or a step that is no label.
    """
    from ase.io import read

    p = Path(path)
    try:
        tags, potcars = _outcar_tags(p)
    except (OSError, EOFError, ValueError) as exc:
        raise LabelSourceError(f"{p}: unreadable ({exc})") from None
    if _flag(tags.get("ML_LMLFF")) or tags.get("ML_MODE", "").lower().startswith(("train", "run", "refit")):
        raise LabelSourceError(
            f"{p}: an OUTCAR of a run with VASP's machine-learned force field mixes its force-field steps with "
            "the DFT ones; give that run's vasprun.xml or ML_AB instead"
        )
    try:
        frames = read(str(p), index=":", format="vasp-out")
    except Exception as exc:  # ASE's OUTCAR parser raises many kinds on damaged text
        raise LabelSourceError(f"{p}: not a readable OUTCAR ({type(exc).__name__}: {exc})") from None
    frames = frames if isinstance(frames, list) else [frames]
    sha = file_sha256(p)
    functional = vasp_functional(tags, potcars)
    out: list[Label] = []
    for k, atoms in enumerate(frames):
        calc = atoms.calc
        if calc is None or "forces" not in calc.results:
            continue
        res = calc.results
        energy = res.get("free_energy", res.get("energy"))
        if energy is None:
            continue
        out.append(_label(p, sha, "outcar", k, atoms, float(energy), np.asarray(res["forces"]), "vasp", functional))
    if not out:
        raise LabelSourceError(f"{p}: no ionic step with energy and forces")
    return _as_series(out)


# ML_AB: VASP's text format for its machine-learning training set. Neither pymatgen nor ASE reads it (checked in
# pymatgen 2026.10 and ASE 3.29: no ML_AB reader in either), so it is parsed here: sections are a title line
# between a "*****" or "=====" line and a "-----" line, then their body up to the next "*****" or "=====" line.
_SEP = re.compile(r"^\s*([*=-])\1{9,}\s*$")


def _ml_ab_sections(lines: list[str]) -> list[tuple[str, list[str], int]]:
    """(title, body lines, line number of the title) of each section, in file order."""
    out: list[tuple[str, list[str], int]] = []
    i, n = 0, len(lines)
    while i < n:
        m = _SEP.match(lines[i])
        if m and m.group(1) in "*=" and i + 1 < n and not _SEP.match(lines[i + 1]):
            title = lines[i + 1].strip()
            if title.startswith("Configuration num."):
                out.append((title, [], i + 2))
                i += 2
                continue
            if i + 2 < n and (d := _SEP.match(lines[i + 2])) and d.group(1) == "-":
                j = i + 3
                body: list[str] = []
                while j < n:
                    s = _SEP.match(lines[j])
                    if s and s.group(1) in "*=":
                        break
                    if not s:
                        body.append(lines[j])
                    j += 1
                out.append((title, body, i + 2))
                i = j
                continue
        i += 1
    return out


def _numbers(rows: list[str], what: str) -> np.ndarray:
    try:
        vals = [float(x) for r in rows for x in r.split()]
    except ValueError:
        raise ValueError(f"{what}: expected numbers") from None
    arr = np.array(vals, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: non-finite number")
    return arr


class _Incomplete(ValueError):
    """A section missing, or shorter than it should be: what a file cut inside it looks like."""


def _section(sec: Mapping[str, list[str]], title: str, count: int, what: str) -> np.ndarray:
    """The ``count`` numbers of section ``title`` (:class:`_Incomplete` when missing or short)."""
    if title not in sec:
        raise _Incomplete(f"no '{title}' section")
    arr = _numbers(sec[title], what)
    if arr.size < count:
        raise _Incomplete(f"{what}: {arr.size} numbers, expected {count}")
    if arr.size > count:
        raise ValueError(f"{what}: {arr.size} numbers, expected {count}")
    return arr


def _beside(path: Path) -> tuple[dict[str, str], list[str]]:
    """INCAR tags and POTCAR titles in the folder of ``path`` (an ML_AB's run), empty when absent."""
    from cellsim.io.incar import read_incar_tags

    tags = read_incar_tags(path.parent / "INCAR")
    potcars: list[str] = []
    potcar = path.parent / "POTCAR"
    if potcar.is_file():
        for line in potcar.read_text(errors="replace").splitlines():
            if line.strip().startswith("TITEL"):
                potcars.append(line.split("=", 1)[1].strip())
    return tags, potcars


def _ml_ab_config(sec: Mapping[str, list[str]]) -> tuple[Atoms, float, np.ndarray]:
    """The structure, energy (eV) and forces (eV/A) of one ML_AB configuration's sections.

    Raises
    ------
    _Incomplete
        A section missing or short: what a file cut inside it looks like.
    ValueError
        A section that is wrong.
    """
    from ase import Atoms

    n_float = float(_section(sec, "The number of atoms", 1, "number of atoms")[0])
    if not (n_float.is_integer() and 0 < n_float < 100_000):
        raise ValueError(f"number of atoms: {n_float:g}")
    n = int(n_float)
    symbols: list[str] = []
    for row in sec.get("Atom types and atom numbers", []):
        parts = row.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise ValueError(f"atom types: expected 'element count', got {row.strip()!r}")
        symbols += [parts[0]] * int(parts[1])
    if len(symbols) < n:
        raise _Incomplete(f"{len(symbols)} atoms by type, {n} in all")
    if len(symbols) > n:
        raise ValueError(f"{len(symbols)} atoms by type, {n} in all")
    cell = _section(sec, "Primitive lattice vectors (ang.)", 9, "lattice").reshape(3, 3)
    pos = _section(sec, "Atomic positions (ang.)", 3 * n, "positions").reshape(n, 3)
    energy = float(_section(sec, "Total energy (eV)", 1, "total energy")[0])
    forces = _section(sec, "Forces (eV ang.^-1)", 3 * n, "forces").reshape(n, 3)
    if "Stress (kbar)" not in sec:  # written after the forces: without it, the forces may be cut short
        raise _Incomplete("no 'Stress (kbar)' section after the forces")
    return Atoms(symbols=symbols, positions=pos, cell=cell, pbc=True), energy, forces


def read_ml_ab(path: str | os.PathLike[str]) -> list[Label]:
    """Every configuration of a VASP ML_AB/ML_ABN file (positions Cartesian, A; energy eV; forces eV/A).

    The functional comes from an INCAR (and POTCAR) beside the file, when there is one; a file cut inside
    its last configuration is read to the configuration before (:class:`LabelWarning`).

    Raises
    ------
    LabelSourceError
        Not an ML_AB, a damaged configuration before the last, or no configuration.
    """
    p = Path(path)
    try:
        with _open(p) as fh:
            text = fh.read().decode("latin-1")
    except (OSError, EOFError, ValueError) as exc:
        raise LabelSourceError(f"{p}: unreadable ({exc})") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip().endswith("Version"):
        raise LabelSourceError(f"{p}: not an ML_AB file (its first line is not '<n> Version')")
    sections = _ml_ab_sections(lines)
    header = dict((t, b) for t, b, _ in sections[:20])
    configs: list[tuple[int, dict[str, list[str]]]] = []
    for title, body, at in sections:
        if title.startswith("Configuration num."):
            configs.append((at, {}))
        elif configs:
            configs[-1][1].setdefault(title, body)
    if not configs:
        raise LabelSourceError(f"{p}: no configuration ('Configuration num.') in this ML_AB")
    try:
        declared = int(_numbers(header.get("The number of configurations", ["-1"]), "number of configurations")[0])
    except (ValueError, IndexError):
        raise LabelSourceError(f"{p}: 'The number of configurations' is not a number") from None
    tags, potcars = _beside(p)
    functional = vasp_functional(tags, potcars) if tags or potcars else "unknown"
    sha = file_sha256(p)
    out: list[Label] = []
    dropped = None
    for k, (at, sec) in enumerate(configs):
        try:
            atoms, energy, forces = _ml_ab_config(sec)
        except _Incomplete as exc:
            if k == len(configs) - 1:  # the file ends inside its last configuration: a truncation
                dropped = str(exc)
                break
            raise LabelSourceError(f"{p}: configuration {k + 1} (line {at}): {exc}") from None
        except (ValueError, KeyError) as exc:
            raise LabelSourceError(f"{p}: configuration {k + 1} (line {at}): {exc}") from None
        out.append(_label(p, sha, "ml_ab", k, atoms, energy, forces, "vasp", functional))
    if not out:
        raise LabelSourceError(f"{p}: no whole configuration ({dropped})")
    if dropped is not None or 0 < len(out) < declared:
        warnings.warn(
            f"{p}: truncated; read {len(out)} whole configurations of the {declared} it declares",
            LabelWarning,
            stacklevel=2,
        )
    return _as_series(out)


_ENERGY_KEYS = ("free_energy", "energy", "REF_energy", "DFT_energy", "dft_energy", "energy_dft", "TotEnergy")
_FORCE_KEYS = ("forces", "force", "REF_forces", "DFT_forces", "dft_forces", "forces_dft")
_FUNCTIONAL_KEYS = ("functional", "xc", "xc_functional", "dft_functional", "level_of_theory")
_CODE_KEYS = ("code", "dft_code", "calculator", "program")


def _frame_values(atoms: Atoms, info: Mapping[str, Any]) -> tuple[float | None, np.ndarray | None]:
    """Energy and forces of an ASE frame: the calculator's results, else the first known info/array keys."""
    res = dict(atoms.calc.results) if atoms.calc is not None else {}
    energy = next((res[k] for k in ("free_energy", "energy") if res.get(k) is not None), None)
    forces = res.get("forces")
    if energy is None:
        energy = next((info[k] for k in _ENERGY_KEYS if k in info), None)
    if forces is None:
        forces = next((atoms.arrays[k] for k in _FORCE_KEYS if k in atoms.arrays), None)
    try:
        e = None if energy is None else float(energy)
    except (TypeError, ValueError):
        e = float("nan")
    return e, None if forces is None else np.asarray(forces, dtype=float)


def _info_text(info: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    for k in keys:
        v = info.get(k)
        if isinstance(v, str | bytes) and str(v).strip():
            return str(v).strip()
    return None


def _extxyz_whole_frames(path: Path) -> tuple[int, bool]:
    """(whole frames, whether the text after them is one incomplete frame): a cut file, not a damaged one."""
    with _open(path) as fh:
        lines = fh.read().decode("latin-1").splitlines()
    i, whole = 0, 0
    while i < len(lines):
        head = lines[i].strip()
        if not head:
            i += 1
            continue
        if not head.isdigit():
            return whole, False
        n = int(head)
        if i + 2 + n > len(lines):
            return whole, True
        i += 2 + n
        whole += 1
    return whole, False


def _last_byte(path: Path) -> bytes:
    last = b""
    with _open(path) as fh:
        while chunk := fh.read(4 << 20):
            last = bytes(chunk[-1:])
    return last


def read_extxyz(path: str | os.PathLike[str]) -> list[Label]:
    """Every frame with energy and forces of an extended-XYZ file (ASE's reader); code and functional from the
    ``code``/``functional`` (or ``xc``) keys of each frame's info line, else ``unknown``. A file cut inside its
    last frame is read to the frame before (:class:`LabelWarning`).

    Raises
    ------
    LabelSourceError
        Not readable as extxyz (damaged before its last frame), or no frame with energy and forces.
    """
    from ase.io import iread

    p = Path(path)
    frames: list[Atoms] = []
    try:
        for atoms in iread(str(p), index=":", format="extxyz"):
            frames.append(atoms)
    except Exception as exc:  # ASE's extxyz parser raises many kinds on damaged text
        whole, cut = _extxyz_whole_frames(p)
        if not (cut and whole == len(frames) and frames):
            raise LabelSourceError(f"{p}: not a readable extxyz file ({type(exc).__name__}: {exc})") from None
        warnings.warn(f"{p}: truncated; read its {len(frames)} whole frames", LabelWarning, stacklevel=2)
    else:
        if frames and _last_byte(p) != b"\n":  # the last number may be cut short and still parse: that frame is dropped
            frames.pop()
            warnings.warn(
                f"{p}: truncated (no newline at its end); read its {len(frames)} whole frames",
                LabelWarning,
                stacklevel=2,
            )
    sha = file_sha256(p)
    out: list[Label] = []
    for k, atoms in enumerate(frames):
        energy, forces = _frame_values(atoms, atoms.info)
        if energy is None or forces is None:
            continue
        code = _info_text(atoms.info, _CODE_KEYS) or "unknown"
        functional = normalise_functional(_info_text(atoms.info, _FUNCTIONAL_KEYS))
        out.append(_label(p, sha, "extxyz", k, atoms, energy, forces, code.lower(), functional))
    if not out:
        raise LabelSourceError(f"{p}: no frame with both an energy and forces (of {len(frames)} frames)")
    if len(out) < len(frames):
        warnings.warn(
            f"{p}: {len(frames) - len(out)} of {len(frames)} frames have no energy or forces; skipped",
            LabelWarning,
            stacklevel=2,
        )
    return _as_series(out)


def read_ase_db(path: str | os.PathLike[str]) -> list[Label]:
    """Every row with energy and forces of an ASE database (rows in id order); code from the row's calculator,
    functional from its ``functional``/``xc`` key or calculator parameters, else ``unknown``.

    Raises
    ------
    LabelSourceError
        Not an ASE database, or no row with energy and forces.
    """
    import sqlite3

    import ase.db

    p = Path(path)
    # ASE creates its tables in an SQLite file that lacks them: look first, read-only, so a user's file is never
    # written to
    try:
        con = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        try:
            has_systems = con.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'systems'").fetchone()[0]
        finally:
            con.close()
    except (sqlite3.Error, ValueError) as exc:  # a damaged page can also fail to decode (UnicodeDecodeError)
        raise LabelSourceError(f"{p}: not a readable ASE database ({type(exc).__name__}: {exc})") from None
    if not has_systems:
        raise LabelSourceError(f"{p}: an SQLite file, but not an ASE database (no 'systems' table)")
    sha = file_sha256(p)
    out: list[Label] = []
    n_rows = 0
    try:
        with ase.db.connect(str(p), type="db", create_indices=False, use_lock_file=False) as db:
            for row in db.select(sort="id"):
                n_rows += 1
                if row.get("energy") is None or row.get("forces") is None:
                    continue
                atoms = row.toatoms()
                kv = dict(row.key_value_pairs)
                params = dict(row.get("calculator_parameters") or {})
                calc = str(row.get("calculator") or "")
                code = _info_text(kv, _CODE_KEYS) or (calc if calc and calc != "unknown" else "unknown")
                functional = normalise_functional(
                    _info_text(kv, _FUNCTIONAL_KEYS) or _info_text(params, ("xc", "functional"))
                )
                energy = row.get("free_energy", row.energy)
                out.append(
                    _label(p, sha, "ase-db", n_rows - 1, atoms, float(energy), row.forces, code.lower(), functional)
                )
    except LabelSourceError:
        raise
    except Exception as exc:  # sqlite3 and ASE raise many kinds on a damaged database
        raise LabelSourceError(f"{p}: not a readable ASE database ({type(exc).__name__}: {exc})") from None
    if not out:
        raise LabelSourceError(f"{p}: no row with both an energy and forces (of {n_rows} rows)")
    if len(out) < n_rows:
        warnings.warn(
            f"{p}: {n_rows - len(out)} of {n_rows} rows have no energy or forces; skipped", LabelWarning, stacklevel=2
        )
    return _as_series(out)


def read_job_folders(path: str | os.PathLike[str]) -> list[Label]:
    """cellsim's DFT job folders under ``path`` (:func:`cellsim.engines.fit.load_labels`)."""
    return load_labels([path])


READERS: dict[str, Callable[[str | os.PathLike[str]], list[Label]]] = {
    "vasprun": read_vasprun,
    "outcar": read_outcar,
    "ml_ab": read_ml_ab,
    "extxyz": read_extxyz,
    "ase-db": read_ase_db,
    "jobs": read_job_folders,
}


def read_label_source(path: str | os.PathLike[str], fmt: str | None = None) -> list[Label]:
    """Every labelled frame of one source, validated: the registry's reader for its format.

    Parameters
    ----------
    path
        A file (vasprun.xml, OUTCAR, ML_AB, extxyz, ASE .db; gzip/bzip2/xz read too) or a folder (DFT job
        folders, or a run folder holding one of those files).
    fmt
        One of :data:`LABEL_FORMATS`; detected when None (:func:`detect_label_format`).

    Raises
    ------
    LabelSourceError
        The source is missing, of no known format, damaged, or has no usable frame (the message names it).
    """
    if fmt is not None and fmt not in READERS:
        raise LabelSourceError(f"{path}: unknown label format {fmt!r} (one of {', '.join(LABEL_FORMATS)})")
    target, found = detect_label_format(path) if fmt is None else (Path(path), fmt)
    if not target.exists():
        raise LabelSourceError(f"--labels {target}: not a folder, and no such file")
    return READERS[found](target)


# --------------------------------------------------------------------------- choosing frames


def decorrelation_steps(forces: np.ndarray) -> int:
    """Frames over which a series' forces stay correlated: the first lag at which the normalised force
    autocorrelation falls below 1/e (half the series when it never does); 1 for fewer than 8 frames.

    ``forces`` is (frames, atoms, 3). The autocorrelation is averaged over every atom and component (the mean of
    each over the series taken off), by FFT, in blocks of components (bounded memory).

    The first crossing, not the envelope: in a crystal the force autocorrelation oscillates with the phonons and
    its envelope decays over their lifetimes (8-atom EMT Cu at 900 K, 2 fs steps: first below 1/e at 15 steps,
    the envelope still above 1/e at 197), while frames a fifth of a vibration apart are already distinct
    configurations; the farthest-point sampling then drops the near-repeats a vibration later.
    """
    x = np.asarray(forces, dtype=float).reshape(len(forces), -1)
    n = len(x)
    if n < 8:
        return 1
    x = x - x.mean(axis=0)
    size = 1 << math.ceil(math.log2(2 * n))
    acov = np.zeros(n)
    for c0 in range(0, x.shape[1], 256):
        f = np.fft.rfft(x[:, c0 : c0 + 256], n=size, axis=0)
        acov += np.fft.irfft(f * f.conj(), n=size, axis=0)[:n].sum(axis=1)
    if acov[0] <= 0:
        return 1
    c = acov / (n - np.arange(n)) / (acov[0] / n)
    kmax = n // 2
    below = np.flatnonzero(c[1 : kmax + 1] < 1 / math.e)
    return kmax if below.size == 0 else int(below[0]) + 1


def frame_descriptors(labels: Sequence[Label]) -> np.ndarray:
    """Per frame: its element-pair distance histograms (0-5 A, 0.2 A bins) per atom, concatenated over the
    element pairs of all ``labels`` (the C pair-histogram kernel of the analysis).

    Raises
    ------
    LabelSourceError
        Two atoms of a frame closer than :data:`MIN_DISTANCE_A`, or a cell too thin to scan.
    """
    from cellsim.analysis.rdf import pair_histogram

    els = sorted({s for lab in labels for s in lab.atoms.get_chemical_symbols()})
    pairs = [(a, b) for i, a in enumerate(els) for b in els[i:]]
    nb = round(DESCRIPTOR_RMAX_A / DESCRIPTOR_DR_A)
    out = np.zeros((len(labels), len(pairs) * nb))
    for f, lab in enumerate(labels):
        sym = np.array(lab.atoms.get_chemical_symbols())
        frac = lab.atoms.get_scaled_positions(wrap=True)[None]
        cell = np.asarray(lab.atoms.cell, dtype=float)[None]
        for q, (a, b) in enumerate(pairs):
            ia, ib = np.flatnonzero(sym == a), np.flatnonzero(sym == b)
            if not len(ia) or not len(ib):
                continue
            hist = np.zeros(nb, dtype=np.int64)
            close = np.zeros(1, dtype=np.int64)
            try:
                pair_histogram(
                    frac, cell, ia, ib, a == b, DESCRIPTOR_RMAX_A, DESCRIPTOR_DR_A, MIN_DISTANCE_A, hist, close
                )
            except CellsimError as exc:
                raise LabelSourceError(f"{lab.source}: frame {lab.frame}: {exc}") from None
            if close[0]:
                raise LabelSourceError(
                    f"{lab.source}: frame {lab.frame}: two atoms ({a}-{b}) closer than {MIN_DISTANCE_A} A (damaged)"
                )
            out[f, q * nb : (q + 1) * nb] = hist / len(sym)
    return out


def farthest_points(x: np.ndarray, k: int) -> list[int]:
    """``k`` rows of ``x`` by farthest-point sampling (Euclidean), starting from row 0; sorted."""
    n = len(x)
    if k >= n:
        return list(range(n))
    chosen = [0]
    dist = np.linalg.norm(x - x[0], axis=1)
    while len(chosen) < k:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(x - x[nxt], axis=1))
    return sorted(chosen)


def choose_frames(labels: Sequence[Label], selection: Selection | None = None) -> tuple[list[Label], dict[str, Any]]:
    """The frames of one source taken as labels, and how (``stride``, ``decorrelation_steps``).

    Per time series (frames sharing one species order): ``tau`` = :func:`decorrelation_steps` of its forces,
    stride = max(``min_gap``, ``tau``); walking the frames in time, a frame is taken when it is at least one
    stride after the last one taken. Of all taken frames, at most ``max_frames`` are kept by
    :func:`farthest_points` on :func:`frame_descriptors` (spread in structure). Each label taken carries its
    series' ``tau`` (``corr_steps``), which :func:`check_split` uses.
    """
    sel = selection or Selection()
    if sel.min_gap < 1 or (sel.max_frames is not None and sel.max_frames < 1):
        raise CellsimError(f"frame selection: min_gap and max_frames must be >= 1 (got {sel})")
    series: dict[str | None, list[Label]] = {}
    for lab in labels:
        series.setdefault(lab.trajectory, []).append(lab)
    taken: list[Label] = []
    taus: list[int] = []
    strides: list[int] = []
    for sid, labs in series.items():
        if sid is None:
            taken += labs
            continue
        labs = sorted(labs, key=lambda lab: lab.frame if lab.frame is not None else 0)
        tau = decorrelation_steps(np.array([lab.forces for lab in labs]))
        stride = max(sel.min_gap, tau)
        taus.append(tau)
        strides.append(stride)
        last = None
        for lab in labs:
            k = lab.frame if lab.frame is not None else 0
            if last is None or k - last >= stride:
                taken.append(replace(lab, corr_steps=tau))
                last = k
    if sel.max_frames is not None and len(taken) > sel.max_frames:
        keep = farthest_points(frame_descriptors(taken), sel.max_frames)
        taken = [taken[i] for i in keep]
    else:
        frame_descriptors(taken)  # the same damage checks on every frame taken
    how = {"decorrelation_steps": max(taus) if taus else None, "stride": max(strides) if strides else None}
    return taken, how


def _joined(values: Iterable[str]) -> str:
    return ", ".join(sorted(set(values))) or "unknown"


def load_sources(
    paths: Sequence[str | os.PathLike[str]], selection: Selection | None = None
) -> tuple[list[Label], list[SourceRecord]]:
    """Read every source, choose its frames (job folders: every job, as before), and record what was taken.

    Raises
    ------
    LabelSourceError
        A source is missing, of no known format, damaged, or has no usable frame.
    """
    labels: list[Label] = []
    records: list[SourceRecord] = []
    for path in paths:
        target, fmt = detect_label_format(path)
        read = READERS[fmt](target)
        if fmt == "jobs":
            chosen, how = read, {"decorrelation_steps": None, "stride": None}
            sha = ""
        else:
            chosen, how = choose_frames(read, selection)
            sha = file_sha256(target)
        labels += chosen
        records.append(
            SourceRecord(
                file=str(target),
                format=fmt,
                sha256=sha,
                code=_joined(lab.code for lab in read),
                functional=_joined(lab.functional for lab in read),
                frames_read=len(read),
                frames_taken=sorted(lab.frame if lab.frame is not None else i for i, lab in enumerate(chosen)),
                decorrelation_steps=how["decorrelation_steps"],
                stride=how["stride"],
            )
        )
    return labels, records


# --------------------------------------------------------------------------- checks


def _by_source(labels: Iterable[Label]) -> dict[str, list[Label]]:
    out: dict[str, list[Label]] = {}
    for lab in labels:
        out.setdefault(lab.source or lab.job, []).append(lab)
    return out


def check_elements(labels: Sequence[Label], study_elements: Iterable[str], allow_other: bool = False) -> list[str]:
    """Refuse labels holding an element the study lacks (warn instead with ``allow_other``); warn when the labels
    together hold none of some of the study's elements. Returns the warnings given.

    Raises
    ------
    CellsimError
        A source holds an element the study lacks (the message names the file and the elements).
    """
    study = set(study_elements)
    said: list[str] = []
    for source, labs in _by_source(labels).items():
        extra = sorted({s for lab in labs for s in lab.atoms.get_chemical_symbols()} - study)
        if not extra:
            continue
        msg = f"{source}: holds {', '.join(extra)}, which the study ({', '.join(sorted(study))}) lacks"
        if not allow_other:
            raise CellsimError(f"{msg}; give labels of the study's elements, or --allow-other-elements")
        said.append(f"{msg}; trained on anyway (--allow-other-elements)")
    present = {s for lab in labels for s in lab.atoms.get_chemical_symbols()}
    missing = sorted(study - present)
    if missing and labels:
        said.append(
            f"the labels hold no {', '.join(missing)}: the fit learns nothing of "
            f"{'it' if len(missing) == 1 else 'them'} from DFT (the base model's knowledge stays, through the frozen "
            "layers)"
        )
    for msg in said:
        warnings.warn(msg, LabelWarning, stacklevel=2)
    return said


def check_functional(labels: Sequence[Label], base: str = BASE_FUNCTIONAL, allow_other: bool = False) -> list[str]:
    """Refuse labels of a functional other than the base model's (warn instead with ``allow_other``); warn for
    labels whose functional is unknown. Returns the warnings given.

    Raises
    ------
    CellsimError
        A source's functional is not ``base`` (the message names the file and its functional).
    """
    said: list[str] = []
    for source, labs in _by_source(labels).items():
        for func in sorted({lab.functional for lab in labs}):
            if func == base:
                continue
            if func == "unknown":
                said.append(
                    f"{source}: the functional is not stated (no tags or keys that name it); taken as {base}, the base "
                    "model's, with its own energy reference"
                )
                continue
            msg = f"{source}: functional {func}, not the base model's {base}"
            if not allow_other:
                raise CellsimError(
                    f"{msg}; its forces and energies would pull the fit off {base} (give {base} labels, or "
                    "--allow-other-functional)"
                )
            said.append(f"{msg}; trained on anyway (--allow-other-functional), with its own energy reference")
    for msg in said:
        warnings.warn(msg, LabelWarning, stacklevel=2)
    return said


def check_split(train: Sequence[Label], held: Sequence[Label]) -> None:
    """Refuse a split whose held-out frames lie within their trajectory's force autocorrelation time
    (``corr_steps``) of a training frame of the same trajectory: their errors would flatter the fit.

    Raises
    ------
    CellsimError
        Names the file, the held-out frames and the training frames next to them.
    """
    by_traj: dict[str, list[int]] = {}
    for lab in train:
        if lab.trajectory is not None and lab.frame is not None:
            by_traj.setdefault(lab.trajectory, []).append(lab.frame)
    bad: dict[str, list[tuple[int, int, int]]] = {}
    for lab in held:
        if lab.trajectory is None or lab.frame is None or lab.trajectory not in by_traj:
            continue
        frames = np.array(by_traj[lab.trajectory])
        near = int(frames[np.argmin(np.abs(frames - lab.frame))])
        if abs(near - lab.frame) < max(lab.corr_steps, 1) or near == lab.frame:
            bad.setdefault(lab.source, []).append((lab.frame, near, lab.corr_steps))
    if bad:
        source, rows = next(iter(bad.items()))
        shown = ", ".join(f"{h} (training frame {t})" for h, t, _ in rows[:5])
        raise CellsimError(
            f"{source}: held-out frames {shown}{' ...' if len(rows) > 5 else ''} lie within {rows[0][2]} steps (the "
            f"force autocorrelation time) of training frames: {sum(len(r) for r in bad.values())} held-out frames are "
            "adjacent in time to training ones, so their errors would flatter the fit; hold out whole time blocks "
            "(cellsim.engines.fit.split_labels)"
        )
