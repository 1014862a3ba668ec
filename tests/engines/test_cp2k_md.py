"""``engine: cp2k`` for ``cellsim run``: real CP2K (through its shell) on H2 in a box, seconds.

Segments, VASP-format outputs read back by ``cellsim analyze``, and a kill + rerun that continues exactly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cp2k_helpers import h2_run as make_h2_run

from cellsim.config.study import parse_study
from cellsim.engines.mlip import run_mlip

pytestmark = pytest.mark.skipif(shutil.which("cp2k.psmp") is None, reason="cp2k.psmp not installed")

# seconds, not physics: minimal basis, coarse grid, Gamma only, no smearing; every step's SCF starts from
# the same (atomic) guess, so a resumed run is bit-for-bit the uninterrupted one
STUDY = """
name: h2box
md: {temperature: 300, timestep_fs: 0.5, segment_time_ps: 0.002, total_time_ps: 0.003, relax_steps: 0}
engine:
  name: cp2k
  checkpoint_every: 1
  seed: 3
  cp2k:
    basis_set: SZV-MOLOPT-SR-GTH
    cutoff: 120
    rel_cutoff: 30
    ngrids: 3
    eps_default: 1.0e-10
    scf: {eps_scf: 1.0e-7, max_scf: 40, smearing: null, added_mos: 0.0}
    kpoints: {kspacing: null}
    input: {FORCE_EVAL: {DFT: {QS: {EXTRAPOLATION: USE_GUESS}}}}
"""


def h2_run(tmp_path: Path, name: str) -> Path:
    return make_h2_run(tmp_path / name, STUDY)


def test_cp2k_segments_kill_resume_and_analyze(tmp_path: Path) -> None:
    from cellsim.io.xdatcar import read_trajectory

    study = parse_study(STUDY)
    ref = h2_run(tmp_path, "ref")
    summary = run_mlip(ref, study)  # 6 steps: segments of 4 + 2
    assert summary.engine == "cp2k" and summary.steps_total == 6 and summary.segments == ["seg-000", "seg-001"]
    seg0 = ref / "md" / "seg-000"
    info = json.loads((seg0 / "engine.json").read_text())
    assert info["engine"] == "cp2k" and info["status"] == "complete" and "PBE" in info["model"]
    assert "EXTRAPOLATION USE_GUESS" in (ref / "md" / "cp2k" / "cp2k.inp").read_text()
    hdr, frac, _ = read_trajectory(seg0 / "XDATCAR")
    assert hdr.symbols == ["H"] and frac.shape == (4, 2, 3)
    osz = [line for line in (seg0 / "OSZICAR").read_text().splitlines() if "F=" in line]
    e_pot = [float(line.split("E0=")[1].split()[0]) for line in osz]
    # H2 at 0.8 A with a minimal basis: about -31 eV, and the bond vibrates (energies change every step)
    assert -35 < e_pot[0] < -25 and len(set(np.round(e_pot, 6))) == len(e_pot)
    assert (seg0 / "CONTCAR").is_file() and (ref / "md" / "seg-001" / "CONTCAR").is_file()

    killed = h2_run(tmp_path, "killed")
    with pytest.raises(KeyboardInterrupt, match=r"stopped after 3 steps \(test hook\)"):
        run_mlip(killed, study, stop_after=3)
    assert json.loads((killed / "md" / "seg-000" / "engine.json").read_text())["status"] == "running"
    again = run_mlip(killed, study)
    assert again.steps_run == 3 and again.steps_total == 6
    for seg in ("seg-000", "seg-001"):
        for f in ("XDATCAR", "OSZICAR"):
            a, b = (ref / "md" / seg / f).read_text(), (killed / "md" / seg / f).read_text()
            assert a == b, f"{seg}/{f} differs after kill + resume"

    # cellsim analyze reads the frames of both segments
    from cellsim import stages

    res = stages.analyze(ref, pairs=["H-H"], window_ps=0.001, out=tmp_path / "ana")
    assert res.n_frames == 6 and res.settings.dt_fs == 0.5
