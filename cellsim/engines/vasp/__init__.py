"""VASP segments under custodian: run one, continue it or the next from CONTCAR, report state, stitch.

Segments are jobs: the first one holds the inputs of ``cellsim inputs``; each later segment starts from
the previous CONTCAR (positions and velocities; VASP also keeps its predictor-corrector block there) with
NSW = min(segment length, steps still missing). Exact continuation assumes NBLOCK = 1 (VASP updates
CONTCAR every step, XDATCAR every NBLOCK steps).

No step is lost or made twice:

* **Restarts inside a segment.** custodian's corrections (EDDDAV/ZHEGV, frozen job, ...) copy CONTCAR
  to POSCAR and start VASP again, which overwrites XDATCAR and OSZICAR. :class:`MDVaspJob` runs before
  every start of VASP: it cuts the partial XDATCAR/OSZICAR to the last whole frame that matches CONTCAR,
  moves them to ``XDATCAR.part-N`` / ``OSZICAR.part-N``, continues from that CONTCAR and sets NSW to the
  steps the segment still lacks. A segment is its parts then its XDATCAR (``RunDir.trajectory_files``).
* **A segment cut short** (walltime STOPCAR, ``scancel``, node failure) is continued in place the same
  way by the next job: its whole frames become a part and VASP makes only the missing steps.
* **Walltime.** custodian's WalltimeHandler reads only SBATCH_TIMELIMIT / PBS_WALLTIME, which a SLURM
  batch job lacks; cellsim gives it the job's real end time (:func:`cellsim.config.settings.job_end_time`), so
  VASP stops cleanly (STOPCAR, LSTOP) ``walltime_margin_s`` before the scheduler would kill it.

cellsim's record of a segment (``segment.json``) holds its planned NSW, its parts and the corrections of
every custodian run in it (each run replaces custodian.json).

custodian handlers (MD-safe, ../shared/DESIGN.md): VaspErrorHandler, MeshSymmetryErrorHandler,
PositiveEnergyErrorHandler, FrozenJobErrorHandler, StdErrHandler, LargeSigmaHandler,
IncorrectSmearingHandler, WalltimeHandler. Never UnconvergedErrorHandler (it would turn MD into a
relaxation), nor the POTIM/drift handlers.

The package: :mod:`.frames` (record, parts, frames kept after a kill), :mod:`.segment` (handlers, the
custodian job, one segment) and :mod:`.continuation` (next segment, state, stitch); every public name is
importable from ``cellsim.engines.vasp``.
"""

from __future__ import annotations

from cellsim.engines.vasp.continuation import (
    done_steps,
    next_segment,
    run_md,
    segments,
    status,
    stitch,
    total_steps,
)
from cellsim.engines.vasp.frames import (
    INPUT_FILES,
    PART_OUTPUTS,
    WALLTIME_ERROR,
    keep_partial,
    parts_frames,
    planned_nsw,
    read_record,
    reconcile,
    segment_frames,
)
from cellsim.engines.vasp.segment import (
    JobEndWalltimeHandler,
    MDVaspJob,
    VaspRunError,
    check_vasp_command,
    md_handlers,
    run_segment,
    segment_corrections,
)

__all__ = [
    "INPUT_FILES",
    "PART_OUTPUTS",
    "WALLTIME_ERROR",
    "JobEndWalltimeHandler",
    "MDVaspJob",
    "VaspRunError",
    "check_vasp_command",
    "done_steps",
    "keep_partial",
    "md_handlers",
    "next_segment",
    "parts_frames",
    "planned_nsw",
    "read_record",
    "reconcile",
    "run_md",
    "run_segment",
    "segment_corrections",
    "segment_frames",
    "segments",
    "status",
    "stitch",
    "total_steps",
]
