"""The embedded MD engine with the real CHGNet model: VASP-format outputs, checkpoints, kill and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cellsim.config.study import parse_study
from cellsim.engines.mlip import EngineError, parse_time_ps, run_mlip
from cellsim.io.xdatcar import read_trajectory

STUDY = """
name: tiny
md: {temperature: 300, timestep_fs: 2.0, segment_time_ps: 0.012, total_time_ps: 0.02, relax_steps: 3}
engine: {name: chgnet, checkpoint_every: 2, seed: 7}
"""


def tiny_run(tmp_path: Path, name: str = "run") -> Path:
    """A 16-atom In/S run directory (In slab with S above), enough for the engine's mechanics."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.vasp import Poscar

    lat = Lattice.from_parameters(6.6, 6.6, 14.0, 90, 90, 90)
    species = ["S"] * 4 + ["In"] * 12
    coords = [[0.25, 0.25, 0.62], [0.75, 0.25, 0.62], [0.25, 0.75, 0.62], [0.75, 0.75, 0.62]]
    for z in (0.2, 0.37):
        coords += [[0.0, 0.0, z], [0.5, 0.0, z], [0.0, 0.5, z], [0.5, 0.5, z]]
    coords += [[0.25, 0.25, 0.285], [0.75, 0.25, 0.285], [0.25, 0.75, 0.285], [0.75, 0.75, 0.285]]
    run = tmp_path / name
    (run / "interface").mkdir(parents=True)
    (run / "interface" / "POSCAR").write_text(Poscar(Structure(lat, species, coords)).get_str())
    (run / "study.yaml").write_text(STUDY)
    return run


@pytest.mark.slow
def test_chgnet_md_writes_vasp_files(tmp_path: Path) -> None:
    from ase.io import read as ase_read
    from pymatgen.io.vasp import Oszicar, Xdatcar

    run = tiny_run(tmp_path)
    study = parse_study(STUDY)
    summary = run_mlip(run, study, total_steps=6)
    assert summary.steps_total == 6 and summary.segments == ["seg-000"]
    seg = run / "md" / "seg-000"
    hdr, frac, _ = read_trajectory(seg / "XDATCAR")
    assert hdr.symbols == ["S", "In"] and hdr.counts == [4, 12] and frac.shape == (6, 16, 3)
    pmg = Xdatcar(str(seg / "XDATCAR"))
    assert len(pmg.structures) == 6 and pmg.structures[0].composition.reduced_formula == "In3S"
    assert [s.symbol for s in pmg.structures[0].species[:5]] == ["S"] * 4 + ["In"]
    np.testing.assert_allclose(pmg.structures[-1].lattice.matrix, np.diag([6.6, 6.6, 14.0]), atol=1e-5)
    frames = ase_read(seg / "XDATCAR", index=":", format="vasp-xdatcar")
    assert len(frames) == 6 and frames[0].get_chemical_symbols()[:5] == ["S"] * 4 + ["In"]
    energies = [float(line.split("F=")[1].split()[0]) for line in (seg / "OSZICAR").read_text().splitlines()]
    assert len(energies) == 6 and np.all(np.isfinite(energies))
    assert Oszicar(str(seg / "OSZICAR")).ionic_steps[-1]["F"] == pytest.approx(energies[-1])
    contcar = ase_read(seg / "CONTCAR", format="vasp")
    assert np.abs(contcar.get_velocities()).max() > 0  # velocity block present
    info = json.loads((seg / "engine.json").read_text())
    assert info["status"] == "complete" and info["steps_done"] == 6 and info["timestep_fs"] == 2.0
    assert (run / "md" / "relax" / "CONTCAR").is_file()


@pytest.mark.slow
def test_kill_and_resume_gives_the_same_trajectory(tmp_path: Path) -> None:
    study = parse_study(STUDY)
    ref = tiny_run(tmp_path, "ref")
    run_mlip(ref, study, total_steps=10)  # two segments: 6 + 4 steps
    run = tiny_run(tmp_path, "killed")
    with pytest.raises(KeyboardInterrupt, match=r"stopped after 5 steps \(test hook\)"):
        run_mlip(run, study, total_steps=10, stop_after=5)  # killed after step 5; last checkpoint at 4
    seg0 = run / "md" / "seg-000"
    assert json.loads((seg0 / "engine.json").read_text())["status"] == "running"
    summary = run_mlip(run, study, total_steps=10)
    assert summary.steps_run == 6 and summary.segments == ["seg-000", "seg-001"]
    for seg in ("seg-000", "seg-001"):
        _, a, _ = read_trajectory(ref / "md" / seg / "XDATCAR")
        _, b, _ = read_trajectory(run / "md" / seg / "XDATCAR")
        assert len(a) == len(b) == (6 if seg == "seg-000" else 4)
        np.testing.assert_allclose(a, b, atol=1e-7)
        lines = (run / "md" / seg / "OSZICAR").read_text().splitlines()
        assert [int(line.split()[0]) for line in lines] == list(range(1, len(a) + 1))
    # asking again for the same time runs nothing; asking for more extends the last segment
    assert run_mlip(run, study, total_steps=10).steps_run == 0
    more = run_mlip(run, study, total_steps=12)
    assert more.steps_run == 2
    _, c, _ = read_trajectory(run / "md" / "seg-001" / "XDATCAR")
    assert len(c) == 6


def test_time_parsing_and_errors(tmp_path: Path) -> None:
    assert parse_time_ps("2ps") == 2.0 and parse_time_ps("500 fs") == 0.5 and parse_time_ps("0.25") == 0.25
    with pytest.raises(EngineError, match=r"--time 'soon': expected a duration"):
        parse_time_ps("soon")
    study = parse_study(STUDY)
    with pytest.raises(EngineError, match=r"engine 'vasp' is not an embedded engine"):
        run_mlip(tmp_path, study, engine="vasp")
    from cellsim.core.errors import RunDirError

    with pytest.raises(RunDirError, match=r"no interface yet"):
        run_mlip(tmp_path, study)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tmp_path: Path) -> None:
    """A real process killed with SIGKILL mid-segment, right after its 10th checkpoint (step 20 of 150),
    continues with no lost or doubled frame."""
    import os
    import subprocess
    import sys

    from stop_helpers import kill, stopped_at

    ref = tiny_run(tmp_path, "ref")
    run = tiny_run(tmp_path, "killed")
    study = parse_study(STUDY)
    assert study.engine.checkpoint_every == 2 and study.md.nblock == 1  # checkpoint k holds step 2k, frame 2k
    steps = 150
    for r in (ref, run):
        (r / "study.yaml").write_text(STUDY.replace("segment_time_ps: 0.012", "segment_time_ps: 1.0"))
    args = ("run", str(run), "--steps", str(steps))
    p = stopped_at("after:checkpoint.npz", *args, env=os.environ, log=tmp_path / "child.log", nth=10)
    # where the kill lands: the 10th checkpoint just written, the segment still running, 20 frames on disk
    seg = run / "md" / "seg-000"
    assert int(np.load(seg / "checkpoint.npz")["steps_done"]) == 20
    assert json.loads((seg / "engine.json").read_text())["status"] == "running"
    _, partial, _ = read_trajectory(seg / "XDATCAR")
    assert len(partial) == 20
    kill(p)
    done = subprocess.run([sys.executable, "-m", "cellsim.cli", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    run_mlip(ref, parse_study((ref / "study.yaml").read_text()), total_steps=steps)
    _, a, _ = read_trajectory(ref / "md" / "seg-000" / "XDATCAR")
    _, b, _ = read_trajectory(seg / "XDATCAR")
    assert len(a) == len(b) == steps
    np.testing.assert_allclose(a, b, atol=1e-7)
    np.testing.assert_allclose(b[:20], partial, atol=1e-12)  # the kept frames are the resumed run's first 20


@pytest.mark.slow
def test_cli_run_on_paper_interface(paper_run: Path, tmp_path: Path) -> None:
    import shutil

    from ase.io import read as ase_read
    from ase.neighborlist import neighbor_list
    from pymatgen.io.vasp import Xdatcar
    from typer.testing import CliRunner

    from cellsim.cli import app

    run = tmp_path / "paper"
    shutil.copytree(paper_run, run)
    r = CliRunner().invoke(app, ["run", str(run), "--steps", "20", "--relax-steps", "5"])
    assert r.exit_code == 0, r.output
    xd = run / "md" / "seg-000" / "XDATCAR"
    poscar = ase_read(run / "interface" / "POSCAR", format="vasp")
    frames = ase_read(xd, index=":", format="vasp-xdatcar")
    pmg = Xdatcar(str(xd)).structures
    assert len(frames) == len(pmg) == 20
    assert frames[-1].get_chemical_symbols() == poscar.get_chemical_symbols()
    np.testing.assert_allclose(frames[-1].cell.array, poscar.cell.array, atol=1e-5)
    np.testing.assert_allclose(pmg[-1].lattice.matrix, poscar.cell.array, atol=1e-5)
    energies = [float(line.split("F=")[1].split()[0]) for line in (xd.parent / "OSZICAR").read_text().splitlines()]
    assert len(energies) == 20 and np.all(np.isfinite(energies))
    for atoms in frames:
        _, _, d = neighbor_list("ijd", atoms, 1.5)
        assert len(d) == 0
    # the analysis reads the engine's segments (time step from engine.json)
    r = CliRunner().invoke(app, ["analyze", str(run)])
    assert r.exit_code == 0, r.output
    assert (run / "analysis" / "peaks.json").is_file()


def test_embedded_run_refuses_a_segment_holding_vasp_output(tmp_path: Path) -> None:
    """VASP's XDATCAR/OSZICAR in a segment folder are never overwritten by the embedded engine."""
    run = tiny_run(tmp_path)
    seg = run / "md" / "seg-000"
    seg.mkdir(parents=True)
    vasp_files = {"INCAR": "NSW = 6\n", "XDATCAR": "vasp frames\n", "OSZICAR": "   1 T=   300. E= -1.0\n"}
    for name, text in vasp_files.items():
        (seg / name).write_text(text)
    with pytest.raises(EngineError, match=rf"{seg}: holds VASP output \(XDATCAR, OSZICAR\)"):
        run_mlip(run, parse_study(STUDY), total_steps=6)
    assert {name: (seg / name).read_text() for name in vasp_files} == vasp_files
    assert not (seg / "engine.json").exists() and not (run / "md" / "relax").exists()
    # another embedded engine's unfinished segment is refused too
    (seg / "engine.json").write_text(json.dumps({"engine": "sevennet", "status": "running"}))
    with pytest.raises(EngineError, match=rf"{seg}: holds output of engine 'sevennet'"):
        run_mlip(run, parse_study(STUDY), total_steps=6)
    assert (seg / "XDATCAR").read_text() == vasp_files["XDATCAR"]


_FW_LOCK_SCRIPT = """
import sys
from pathlib import Path

import cellsim.engines.mlip as mlip
from cellsim.core.files import BusyError, WriterLock
from cellsim.config.rundir import RunDir

rd = RunDir(Path(sys.argv[1]))
seen = []


def fake_run_mlip(run_dir, study, engine=None, *args, **kwargs):
    try:
        with WriterLock(rd.lock_file, "probe"):
            seen.append("unlocked")
    except BusyError:
        seen.append("locked")
    return mlip.RunSummary(engine, 6, 6, 0.012, 0.0, ["seg-000"])


mlip.run_mlip = fake_run_mlip
from cellsim.workflow.tasks import RunMDSegmentTask

task = RunMDSegmentTask(run_dir=str(rd.root), engine="chgnet")
task.run_task({})
print("alone:", seen)
seen.clear()
with WriterLock(rd.lock_file, "another writer"):
    try:
        task.run_task({})
    except Exception as exc:
        print("busy:", type(exc).__name__, exc)
print("busy ran:", seen)
"""


def test_fireworks_embedded_segment_takes_the_writer_lock(tmp_path: Path) -> None:
    """RunMDSegmentTask runs the embedded MD under the run's writer lock, as `cellsim run` does.

    In a subprocess: FireWorks picks its database client when first imported (see test_fireworks.py).
    """
    import subprocess
    import sys

    run = tiny_run(tmp_path)
    r = subprocess.run([sys.executable, "-c", _FW_LOCK_SCRIPT, str(run)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "alone: ['locked']" in lines  # the MD ran holding the lock
    assert any(line.startswith("busy: CellsimError") and "another cellsim process" in line for line in lines)
    assert "busy ran: []" in lines  # a second writer is refused before any MD step
