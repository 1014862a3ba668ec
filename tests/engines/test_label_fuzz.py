"""Every label reader fuzzed as the trajectory readers are (tests/io/test_fuzz*.py): each damaged vasprun.xml, OUTCAR,
ML_AB, extxyz and ASE database is read with finite labels (never more frames than it holds) or refused with one
CellsimError line that names the file; never another exception, a hang or a NaN label."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from fuzzgen import Hang, time_limit
from label_files import emt_md, ml_ab_text, write_db, write_extxyz, write_vasprun

from cellsim.core.errors import CellsimError
from cellsim.engines import label_sources as ls

ASE_OUTCAR = Path(__import__("ase").__path__[0]) / "test" / "testdata" / "vasp" / "OUTCAR_example_1"
NAMES = {"vasprun": "vasprun.xml", "outcar": "OUTCAR", "ml_ab": "ML_AB", "extxyz": "data.extxyz", "ase-db": "set.db"}
FRAMES = {"vasprun": 6, "outcar": 1, "ml_ab": 6, "extxyz": 6, "ase-db": 6}
N_CASES, LIMIT_S = 40, 20


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """One valid file per format (6 frames of 4-atom EMT Cu; ASE's real one-step OUTCAR), as bytes."""
    root = tmp_path_factory.mktemp("bases")
    md = emt_md(6)
    ml_ab = root / "ML_AB"
    ml_ab.write_text(ml_ab_text(md))
    files = {
        "vasprun": write_vasprun(root / "vasprun.xml", md),
        "outcar": Path(shutil.copy(ASE_OUTCAR, root / "OUTCAR")),
        "ml_ab": ml_ab,
        "extxyz": write_extxyz(root / "data.extxyz", md, functional="PBE"),
        "ase-db": write_db(root / "set.db", md, functional="PBE"),
    }
    return {fmt: f.read_bytes() for fmt, f in files.items()}


def mutations(data: bytes, rng: np.random.Generator, n: int) -> list[tuple[str, bytes]]:
    """``n`` damaged copies: truncations, byte flips, a number replaced, a line deleted, a line duplicated."""
    out = []
    for k in range(n):
        kind = k % 5
        b = bytearray(data)
        if kind == 0:
            cut = int(rng.integers(0, len(b)))
            out.append((f"cut@{cut}", bytes(b[:cut])))
        elif kind == 1:
            at = [int(rng.integers(0, len(b))) for _ in range(int(rng.integers(1, 6)))]
            for i in at:
                b[i] = int(rng.integers(0, 256))
            out.append((f"flip@{at[0]}", bytes(b)))
        elif kind == 2:
            text = b.decode("latin-1")
            i = text.find(".", int(rng.integers(0, len(text))))
            bad = ["nan", "inf", "1e400", "*******", "-", "1.2.3"][int(rng.integers(0, 6))]
            out.append((f"number@{i}={bad}", (text[: max(i - 1, 0)] + bad + text[i + 3 :]).encode("latin-1")))
        elif kind == 3:
            lines = bytes(b).split(b"\n")
            j = int(rng.integers(0, len(lines)))
            del lines[j]
            out.append((f"deleted-line{j}", b"\n".join(lines)))
        else:
            lines = bytes(b).split(b"\n")
            j = int(rng.integers(0, len(lines)))
            out.append((f"duplicated-line{j}", b"\n".join([*lines[:j], lines[j], *lines[j:]])))
    return out


def outcome(path: Path, n_frames: int) -> str:
    """'read' (every label finite, no more than the file's frames) or 'refused' (one line naming the file)."""
    try:
        with time_limit(LIMIT_S), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels, records = ls.load_sources([path], ls.Selection(max_frames=None))
    except CellsimError as exc:
        msg = str(exc)
        assert path.name in msg, msg
        assert msg.strip() and "\n" not in msg.strip(), msg
        return "refused"
    assert 1 <= len(labels) <= n_frames and records[0].frames_read <= n_frames
    for lab in labels:
        assert np.isfinite(lab.energy_eV) and np.all(np.isfinite(lab.forces)), lab.name
        assert np.all(np.isfinite(lab.atoms.positions)) and np.all(np.isfinite(lab.atoms.cell.array)), lab.name
        assert lab.forces.shape == (len(lab.atoms), 3)
    return "read"


@pytest.mark.parametrize("fmt", list(NAMES))
def test_damaged_label_files_are_read_or_refused_by_name(fmt: str, bases: dict[str, bytes], tmp_path: Path) -> None:
    base = tmp_path / "base" / NAMES[fmt]
    base.parent.mkdir()
    base.write_bytes(bases[fmt])
    assert outcome(base, FRAMES[fmt]) == "read"
    seen = {"read": 0, "refused": 0}
    seed = 38 + list(NAMES).index(fmt)
    for k, (name, data) in enumerate(mutations(bases[fmt], np.random.default_rng(seed), N_CASES)):
        f = tmp_path / f"m{k}" / NAMES[fmt]
        f.parent.mkdir()
        f.write_bytes(data)
        try:
            seen[outcome(f, FRAMES[fmt])] += 1
        except (AssertionError, Hang) as exc:
            raise AssertionError(f"{fmt} {name}: {exc}") from exc
    assert seen["refused"] >= 1  # the damage is seen


@pytest.mark.parametrize("fmt", list(NAMES))
@pytest.mark.parametrize(
    "content", [b"", b"\x00" * 4096, bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8))]
)
def test_empty_and_garbage_label_files_are_refused_by_name(fmt: str, content: bytes, tmp_path: Path) -> None:
    f = tmp_path / NAMES[fmt]
    f.write_bytes(content)
    assert outcome(f, FRAMES[fmt]) == "refused"


def _nan_force(fmt: str, data: bytes) -> bytes:
    """The file with one force component of its middle frame made NaN."""
    text = data.decode("latin-1")
    if fmt == "vasprun":
        k = text.find('<varray name="forces"', text.find("<calculation>", text.find("<calculation>") + 1))
    elif fmt == "outcar":
        k = text.find("TOTAL-FORCE")
        k = text.find("\n", text.find("\n", k) + 1)
        line_end = text.find("\n", k + 1)
        parts = text[k + 1 : line_end].split()
        parts[3] = "nan"
        return (text[: k + 1] + "   ".join(parts) + text[line_end:]).encode("latin-1")
    elif fmt == "ml_ab":
        k = text.find("Forces (eV ang.^-1)", text.find("Configuration num.      3"))
    else:
        raise ValueError(fmt)
    k = text.find("\n", text.find("\n", k) + 1) + 1  # the first row of numbers after the header
    end = text.find("\n", k)
    row = text[k:end].replace("<v>", " ").replace("</v>", " ").split()
    indent = text[k : k + len(text[k:end]) - len(text[k:end].lstrip())]
    new = f"{indent}<v> nan {row[1]} {row[2]} </v>" if fmt == "vasprun" else f"{indent}nan {row[1]} {row[2]}"
    return (text[:k] + new + text[end:]).encode("latin-1")


@pytest.mark.parametrize("fmt", ["vasprun", "outcar", "ml_ab"])
def test_a_nan_force_is_refused_by_name(fmt: str, bases: dict[str, bytes], tmp_path: Path) -> None:
    f = tmp_path / NAMES[fmt]
    f.write_bytes(_nan_force(fmt, bases[fmt]))
    with pytest.raises(CellsimError, match=rf"{NAMES[fmt]}.*(non-finite|NaN|nan)"):
        ls.load_sources([f])


def test_a_nan_force_in_extxyz_and_a_database_is_refused_by_name(tmp_path: Path) -> None:
    from label_files import Frame

    md = emt_md(4)
    bad = [*md[:2], Frame(md[2].atoms, md[2].energy, np.where(np.arange(12).reshape(4, 3) == 5, np.nan, 0.0)), md[3]]
    with pytest.raises(CellsimError, match=r"data.extxyz: frame 2: non-finite forces"):
        ls.load_sources([write_extxyz(tmp_path / "data.extxyz", bad)])
    with pytest.raises(CellsimError, match=r"set.db: frame 2: non-finite forces"):
        ls.load_sources([write_db(tmp_path / "set.db", bad)])
