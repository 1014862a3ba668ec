"""``cellsim inputs --code cp2k``: CP2K NVT inputs per segment; real CP2K runs two segments of H2 (seconds),
the second restarting from the first, and the converted XDATCAR/OSZICAR are read by ``cellsim analyze``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cp2k_helpers import h2_run as make_h2_run

from cellsim.config.study import parse_study
from cellsim.inputsets import cp2k as ic

HAVE = shutil.which("cp2k.psmp") is not None

STUDY = """
name: h2box
md: {temperature: 300, timestep_fs: 0.5, segment_time_ps: 0.0015, total_time_ps: 0.003, nblock: 1}
engine:
  name: cp2k
  seed: 4
  cp2k:
    basis_set: SZV-MOLOPT-SR-GTH
    cutoff: 120
    rel_cutoff: 30
    ngrids: 3
    eps_default: 1.0e-10
    scf: {eps_scf: 1.0e-6, max_scf: 40, smearing: null, added_mos: 0.0}
"""


def h2_run(tmp_path: Path) -> Path:
    return make_h2_run(tmp_path / "run", STUDY)


def test_inputs_per_segment_follow_the_study(tmp_path: Path) -> None:
    if not HAVE:
        pytest.skip("cp2k.psmp not installed (its data files name the basis sets)")
    run = h2_run(tmp_path)
    rep = ic.write_inputs(run, parse_study(STUDY))
    assert [d.name for d in rep.segment_dirs] == ["seg-000", "seg-001"] and rep.steps == [3, 3]
    first, second = ((d / ic.INPUT_NAME).read_text() for d in rep.segment_dirs)
    for text in (first, second):
        assert "RUN_TYPE MD" in text and "ENSEMBLE NVT" in text and "TYPE NOSE" in text
        assert "TIMESTEP 0.5" in text and "TEMPERATURE 300" in text and "STEPS 3" in text
        assert "TIMECON 20.0" in text  # 40 steps of 0.5 fs, VASP's SMASS = 0
        assert "SZV-MOLOPT-SR-GTH" in text and "CUTOFF 120" in text and "KPOINTS" not in text
    assert "EXT_RESTART" not in first
    assert "RESTART_FILE_NAME ../seg-000/cellsim-1.restart" in second and "RESTART_COUNTERS .FALSE." in second
    with pytest.raises(Exception, match="no interface"):
        ic.write_inputs(tmp_path / "nothing", parse_study(STUDY))


@pytest.mark.skipif(not HAVE, reason="cp2k.psmp not installed")
def test_real_cp2k_runs_the_segments_in_a_chain(tmp_path: Path) -> None:
    from ase.io import read

    from cellsim import stages

    run = h2_run(tmp_path)
    study = parse_study(STUDY)
    rep = ic.write_inputs(run, study)
    atoms = read(run / "interface" / "POSCAR", format="vasp")
    for seg in rep.segment_dirs:
        proc = subprocess.run(
            ["cp2k.psmp", "-i", ic.INPUT_NAME, "-o", "cp2k.out"], cwd=seg, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, (seg / "cp2k.out").read_text()[-2000:]
        assert ic.to_vasp_files(seg, atoms) == 3
    # the second segment starts where the first ended: its step 0 is the first one's last frame
    a = read(rep.segment_dirs[0] / ic.TRAJECTORY_NAME, index=-1)
    b = read(rep.segment_dirs[1] / ic.TRAJECTORY_NAME, index=0)
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-6)
    osz = (rep.segment_dirs[1] / "OSZICAR").read_text().splitlines()
    assert [int(line.split()[0]) for line in osz] == [1, 2, 3]
    with pytest.raises(ic.Cp2kInputsError, match="has CP2K run"):
        ic.to_vasp_files(tmp_path, atoms)
    with pytest.raises(Exception, match="already has CP2K output"):
        ic.write_inputs(run, study)
    res = stages.analyze(run, pairs=["H-H"], window_ps=0.001, out=tmp_path / "ana")
    assert res.n_frames == 6


@pytest.mark.skipif(not HAVE, reason="cp2k.psmp not installed")
def test_custodian_runs_the_cp2k_segments(tmp_path: Path) -> None:
    """The cluster path's runner: custodian + CP2K per segment, in order, each converted and recorded."""
    import json

    from cellsim.engines.cp2k.segment import Cp2kSegmentError, run_cp2k_segment

    run = h2_run(tmp_path)
    rep = ic.write_inputs(run, parse_study(STUDY))
    for seg in rep.segment_dirs:
        rec = run_cp2k_segment(seg, polling_s=0.2)
        assert rec["frames"] == 3 and rec["corrections"] == [] and rec["status"] == "complete"
        assert json.loads((seg / "segment.json").read_text())["frames"] == 3
        assert "PROGRAM ENDED AT" in (seg / "cp2k.out").read_text()
    assert len((rep.segment_dirs[1] / "XDATCAR").read_text().split("Direct configuration")) == 4
    with pytest.raises(Cp2kSegmentError, match=r"no cp2k\.inp"):
        run_cp2k_segment(tmp_path)
