"""One rule joins MD segments, for `cellsim stitch` and `cellsim analyze` alike: a next segment's first frame
that repeats the previous segment's last one (within a tight tolerance) is dropped, once; nothing else is."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cellsim.config.rundir import RunDir
from cellsim.io.sources import iter_trajectory
from cellsim.io.stitching import REPEAT_TOL_A, iter_segments
from cellsim.io.xdatcar import read_trajectory
from cellsim.testing import reaction_run, write_xdatcar

CELL = np.diag([10.0, 10.0, 10.0])


def _frames(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.random((6, 3))
    return (base[None] + np.cumsum(rng.normal(0.0, 0.004, (n, 6, 3)), axis=0)) % 1.0


def _segments(tmp_path: Path, parts: list[np.ndarray]) -> list[Path]:
    out = []
    for k, frames in enumerate(parts):
        out.append(write_xdatcar(tmp_path / f"XDATCAR-{k}", ["Li", "S"], [3, 3], CELL, frames))
    return out


def _stitched(paths: list[Path]) -> np.ndarray:
    return np.concatenate([b.frac for _, b in iter_segments(paths, block_frames=4)])


def _joined(paths: list[Path]) -> np.ndarray:
    return np.concatenate([b.frac for _, b in iter_trajectory(paths)])


def test_repeated_boundary_frame_is_dropped_once_by_both_stitchers(tmp_path: Path) -> None:
    f = _frames(20)
    # segment 2 starts with segment 1's last frame, twice (a repeat, then a frame that did not move)
    paths = _segments(tmp_path, [f[:10], np.concatenate([f[9:10], f[9:]])])
    for frames in (_stitched(paths), _joined(paths)):
        assert len(frames) == 21  # 10 + 11: one repeat dropped, the second copy kept
        np.testing.assert_allclose(frames[:20], np.concatenate([f[:10], f[9:19]]), atol=1e-7)
    blocks = [b for _, b in iter_segments(paths, block_frames=4)]
    assert [b.start for b in blocks] == list(np.cumsum([0] + [len(b) for b in blocks[:-1]]))


def test_only_a_repeat_within_the_tolerance_is_dropped(tmp_path: Path) -> None:
    f = _frames(20, seed=1)
    moved = f[9].copy()
    moved[0, 0] = (moved[0, 0] + 10 * REPEAT_TOL_A / 10.0) % 1.0  # 10x the tolerance (cell of 10 A)
    nearly = f[9].copy()
    nearly[0, 0] = (nearly[0, 0] + 0.1 * REPEAT_TOL_A / 10.0) % 1.0
    cases = {"moved": (moved, 20), "nearly": (nearly, 19), "continues": (f[10], 20)}
    for name, (first, n) in cases.items():
        second = np.concatenate([first[None], f[11:]]) if name != "continues" else f[10:]
        (tmp_path / name).mkdir()
        paths = _segments(tmp_path / name, [f[:10], second])
        assert len(_stitched(paths)) == len(_joined(paths)) == n, name
        np.testing.assert_allclose(_stitched(paths), _joined(paths), atol=0)


def test_analyze_and_stitch_give_the_same_frames(tmp_path: Path) -> None:
    """A run whose second segment repeats the first one's last frame: both CLI verbs see the same frames."""
    from cellsim.cli import app

    run = reaction_run(tmp_path / "run", n_frames=80, react_at=40)
    rd = RunDir(run)
    seg0 = rd.segment_dir(0)
    hdr, frac, _ = read_trajectory(seg0 / "XDATCAR")
    seg1 = rd.segment_dir(1)
    seg1.mkdir()
    (seg1 / "INCAR").write_text((seg0 / "INCAR").read_text())
    write_xdatcar(seg1 / "XDATCAR", hdr.symbols, hdr.counts, hdr.lattice, frac[49:])  # frame 50 again
    write_xdatcar(seg0 / "XDATCAR", hdr.symbols, hdr.counts, hdr.lattice, frac[:50])
    stitched = tmp_path / "all.xdatcar"
    r = CliRunner().invoke(app, ["stitch", str(run), "-o", str(stitched)])
    assert r.exit_code == 0, r.output
    assert "80 frames" in r.output
    r = CliRunner().invoke(app, ["analyze", str(run)])
    assert r.exit_code == 0, r.output
    by_run = run / "analysis"
    r = CliRunner().invoke(
        app,
        # the run's study cutoffs (workflows/li6ps5cl_in.yaml), so only the frames can differ
        [
            *("analyze", str(stitched), "--dt", "2", "--pairs", "In-S,In-Cl"),
            *("--cutoff", "In-S=3.0", "--cutoff", "In-Cl=3.3", "-o", str(tmp_path / "by-file")),
        ],
    )
    assert r.exit_code == 0, r.output
    by_file = tmp_path / "by-file"
    man_run, man_file = (json.loads((d / "analysis.json").read_text()) for d in (by_run, by_file))
    assert man_run["frames"] == man_file["frames"] == 80
    assert [s["dropped_first"] for s in man_run["segments"]] == [False, True]
    assert (by_run / "bonds.csv").read_text() == (by_file / "bonds.csv").read_text()
    _, frames_stitched, _ = read_trajectory(stitched)
    np.testing.assert_allclose(frames_stitched, frac, atol=1e-7)
    with np.load(by_run / "rdf.npz") as a, np.load(by_file / "rdf.npz") as b:
        for key in ("hist/In-S", "hist/In-Cl", "frame/last_frac"):
            np.testing.assert_array_equal(a[key], b[key])


@pytest.fixture(autouse=True)
def _quiet() -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield
