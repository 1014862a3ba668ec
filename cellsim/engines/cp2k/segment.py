"""One CP2K MD segment under custodian (the cluster path of ``engine: cp2k``).

The segment folder holds the ``cp2k.inp`` of ``cellsim inputs --code cp2k`` (:mod:`cellsim.inputsets.cp2k`);
custodian runs ``cp2k.psmp -i cp2k.inp`` there with CP2K's standard-error and frozen-job handlers, then the
segment's trajectory and energies are converted to XDATCAR/OSZICAR for the analysis, and a
``segment.json`` records what ran. Segments must run in order: each later one restarts from the previous
one's restart file.

custodian's own ``Cp2kJob.terminate`` runs ``killall cp2k.psmp``, which would end every CP2K process on the
node, including other users' and other segments'; :class:`Cp2kSegmentJob` ends only the process it started.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from pathlib import Path
from typing import Any

from custodian.cp2k.jobs import Cp2kJob

from cellsim.core.errors import CellsimError
from cellsim.core.files import atomic_write_json


class Cp2kSegmentError(CellsimError):
    """custodian could not finish a CP2K segment."""


class Cp2kSegmentJob(Cp2kJob):
    """custodian's Cp2kJob that terminates only its own CP2K process."""

    def run(self, directory: str = "./") -> Any:
        self._process = super().run(directory)
        return self._process

    def terminate(self, directory: str = "./") -> None:
        proc = getattr(self, "_process", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()


def md_handlers(timeout_s: float = 3600.0) -> list[Any]:
    """The handlers that are safe for MD: standard-error problems and a frozen CP2K (no output for a while)."""
    from custodian.cp2k.handlers import FrozenJobErrorHandler, StdErrHandler

    return [StdErrHandler(std_err="std_err.txt"), FrozenJobErrorHandler(timeout=int(timeout_s))]


def run_cp2k_segment(
    seg: Path,
    command: str = "cp2k.psmp",
    max_errors: int = 3,
    polling_s: float = 2.0,
    frozen_timeout_s: float = 3600.0,
) -> dict[str, Any]:
    """Run CP2K in ``seg`` under custodian and convert its output; returns the segment's record.

    ``command`` may carry an MPI launcher (``srun cp2k.psmp``); ``cp2k.inp`` and ``cp2k.out`` stay in ``seg``.
    """
    from custodian import Custodian
    from custodian.custodian import CustodianError

    from cellsim.config.rundir import RunDir
    from cellsim.inputsets.cp2k import INPUT_NAME, to_vasp_files
    from cellsim.io.poscar import read_poscar_atoms

    seg = Path(seg)
    if not (seg / INPUT_NAME).is_file():
        raise Cp2kSegmentError(f"{seg}: no {INPUT_NAME}; run `cellsim inputs RUN --code cp2k` first")
    # a segment folder lies below its run directory (replicas one level deeper): the nearest parent that is a run
    rd = next((RunDir(p) for p in seg.resolve().parents if RunDir(p).is_run), RunDir(seg.parent.parent))
    atoms = read_poscar_atoms(rd.interface_poscar)
    job = Cp2kSegmentJob(cp2k_cmd=shlex.split(command), input_file=INPUT_NAME, output_file="cp2k.out", final=True)
    c = Custodian(
        md_handlers(frozen_timeout_s),
        [job],
        max_errors=max_errors,
        polling_time_step=polling_s,
        monitor_freq=1,
        directory=str(seg),
    )
    t0 = time.time()
    try:
        # custodian's CP2K handlers open std_err.txt and cp2k.out relative to the working folder
        with contextlib.chdir(seg):
            log = c.run()
    except CustodianError as exc:
        raise Cp2kSegmentError(f"{seg}: custodian gave up: {exc}") from exc
    frames = to_vasp_files(seg, atoms, f"cellsim cp2k {seg.name}")
    record = {
        "engine": "cp2k",
        "segment": seg.name,
        "frames": frames,
        "wall_s": round(time.time() - t0, 2),
        "corrections": [
            {"errors": [str(e) for e in (c.get("errors") or [])], "handler": str(c.get("handler"))}
            for run in log
            for c in run.get("corrections", [])
        ],
        "status": "complete",
    }
    atomic_write_json(seg / "segment.json", record)
    return record
