"""Every other input that reaches the analysis (issue 16): vasprun.xml, extxyz, and the INCAR/OSZICAR beside a
trajectory, mutated; each is read with finite outputs or refused with a one-line CellsimError."""

from __future__ import annotations

import signal
import warnings
from pathlib import Path

import numpy as np
import pytest

import cellsim
from cellsim.core.errors import CellsimError
from cellsim.testing import write_vasprun, write_xdatcar

SYMBOLS, COUNTS = ["In", "S", "Cl"], [4, 4, 4]
CELL = np.diag([9.0, 9.0, 9.0])


def _frames(n: int = 12) -> np.ndarray:
    rng = np.random.default_rng(3)
    base = rng.random((12, 3))
    return np.array([(base + rng.normal(0, 0.005, base.shape)) % 1.0 for _ in range(n)])


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout


def _check(target: Path, out: Path, **kw: object) -> str:
    """'read' or 'refused'; anything else fails the test."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(20)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = cellsim.analyze(target, out=out, pairs="In-S,In-Cl", window_ps=0.004, **kw)  # type: ignore[arg-type]
    except CellsimError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg.strip(), msg
        return "refused"
    except _Timeout:
        pytest.fail(f"{target}: no answer in 20 s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    for p in res.settings.pairs:
        assert np.all(np.isfinite(res.g[p])) and np.all(res.bonds[p] >= 0)
    assert res.n_frames >= 1 and np.isfinite(res.settings.dt_fs)
    return "read"


def _mutations(data: bytes, rng: np.random.Generator, n: int) -> list[bytes]:
    out = []
    for k in range(n):
        kind = k % 5
        b = bytearray(data)
        if kind == 0:  # truncation
            out.append(bytes(b[: int(rng.integers(0, len(b)))]))
        elif kind == 1:  # byte flips
            for _ in range(int(rng.integers(1, 6))):
                b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
            out.append(bytes(b))
        elif kind == 2:  # a number replaced
            text = b.decode("latin-1")
            i = text.find(".", int(rng.integers(0, len(text))))
            bad = ["nan", "inf", "1e400", "*******", "-", "1.2.3"][int(rng.integers(0, 6))]
            out.append((text[: max(i - 1, 0)] + bad + text[i + 3 :]).encode("latin-1") if i > 0 else bytes(b))
        elif kind == 3:  # a line deleted
            lines = bytes(b).split(b"\n")
            del lines[int(rng.integers(0, len(lines)))]
            out.append(b"\n".join(lines))
        else:  # a line duplicated
            lines = bytes(b).split(b"\n")
            j = int(rng.integers(0, len(lines)))
            out.append(b"\n".join([*lines[:j], lines[j], *lines[j:]]))
    return out


def test_mutated_vasprun(tmp_path: Path) -> None:
    src = write_vasprun(tmp_path / "base.xml", SYMBOLS, COUNTS, CELL, _frames())
    assert _check(src, tmp_path / "o") == "read"
    rng = np.random.default_rng(11)
    seen = {"read": 0, "refused": 0}
    for k, data in enumerate(_mutations(src.read_bytes(), rng, 60)):
        f = tmp_path / f"m{k}" / "vasprun.xml"
        f.parent.mkdir()
        f.write_bytes(data)
        seen[_check(f, tmp_path / f"o{k}")] += 1
    assert seen["read"] and seen["refused"]


def test_mutated_extxyz(tmp_path: Path) -> None:
    from ase import Atoms
    from ase.io import write

    species = [s for s, c in zip(SYMBOLS, COUNTS, strict=True) for _ in range(c)]
    src = tmp_path / "base.extxyz"
    write(src, [Atoms(species, scaled_positions=f, cell=CELL, pbc=True) for f in _frames()], format="extxyz")
    rng = np.random.default_rng(12)
    for k, data in enumerate(_mutations(src.read_bytes(), rng, 40)):
        f = tmp_path / f"m{k}.extxyz"
        f.write_bytes(data)
        _check(f, tmp_path / f"o{k}", dt_fs=2.0)


@pytest.mark.parametrize(
    "incar",
    [
        "POTIM = abc\n",
        "POTIM = 0\n",
        "POTIM = -1\n",
        "POTIM = 2\nNBLOCK = x\n",
        "POTIM = 2\nTEBEG = inf\n",
        "POTIM = nan\n",
        "\x00\x01\x02 binary",
        "POTIM = 1e400\n",
        "POTIM",
    ],
)
def test_bad_incar_beside(tmp_path: Path, incar: str) -> None:
    xd = write_xdatcar(tmp_path / "XDATCAR", SYMBOLS, COUNTS, CELL, _frames())
    (tmp_path / "INCAR").write_text(incar, encoding="latin-1")
    _check(xd, tmp_path / "o")


@pytest.mark.parametrize(
    "oszicar",
    [
        "   1 T=   300. E= -.1E+03 F= -.1E+03 E0= -.1E+03  EK= 0.1E+01 SP= 0.0E+00 SK= 0.0E+00\n" * 3 + "   4 T= nan\n",
        "garbage\n\x00\x00\n",
        "   1 T=   ******  E= -.1E+03\n",
        "",
    ],
)
def test_bad_oszicar_beside(tmp_path: Path, oszicar: str) -> None:
    xd = write_xdatcar(tmp_path / "XDATCAR", SYMBOLS, COUNTS, CELL, _frames())
    (tmp_path / "INCAR").write_text("POTIM = 2\n")
    (tmp_path / "OSZICAR").write_text(oszicar, encoding="latin-1")
    assert _check(xd, tmp_path / "o") == "read"
