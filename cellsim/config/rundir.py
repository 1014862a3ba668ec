"""The run directory: the one module that knows its layout.

::

    RUN_DIR/
      study.yaml                  resolved study (every default written out)
      interface/                  POSCAR, interface.cif, interface.json (cellsim build)
      md/plan.json                segment plan (cellsim inputs)
      md/relax/                   pre-relaxation of the embedded engine
      md/seg-NNN/                 one MD segment: INCAR ... XDATCAR OSZICAR CONTCAR (VASP or embedded)
      md/replica-NN/seg-NNN/      replicas of the embedded MD (cellsim run --seeds N)
      analysis/                   rdf.csv rdf.npz bonds.csv peaks.json ... (cellsim analyze, match)
      report/                     report.html report.md *.png (cellsim report)
      workflow/                   FireWorks launch folders, queue scripts, embedded store
        fw_store.json               this run's embedded FireWorks store (its own lock: fw_store.json.lock)
        jobs.json                   queue jobs submitted for this run (ids, successors), submit.json
        queue/job.sh                the rendered batch script (resubmitted by each job for the next one)
        launches/                   FireWorks launch folders (launcher_*)

A VASP segment that custodian restarted inside (a correction that continues from CONTCAR) keeps the
frames made before the restart as ``XDATCAR.part-1``, ``OSZICAR.part-1``, ... beside its final
``XDATCAR``; the segment's trajectory is its parts, then its XDATCAR (:meth:`RunDir.trajectory_files`).

Every other module asks a :class:`RunDir` for a path; none spells one. The segment plan (total time ->
steps -> segments) is computed here once, for VASP inputs, the embedded engine and the workflow.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cellsim.core.errors import RunDirError, StudyError
from cellsim.core.files import atomic_write_text

if TYPE_CHECKING:
    from cellsim.config.study import Study

SEGMENT_RE = re.compile(r"^seg-(\d{3,})$")
STUDY_FILE = "study.yaml"
REPLICA_RE = re.compile(r"^replica-(\d{2,})$")
TRAJECTORY_NAMES = ("XDATCAR", "XDATCAR.gz", "XDATCAR.bz2", "XDATCAR.xz")
ENERGY_NAMES = tuple(n.replace("XDATCAR", "OSZICAR", 1) for n in TRAJECTORY_NAMES)
PART_RE = re.compile(r"^XDATCAR\.part-(\d+)$")

# the files of an analysis folder (cellsim analyze, then cellsim match) and of a report folder (cellsim report):
# spelled here only, used through :class:`AnalysisFiles` or these names
ANALYSIS_FILE = "analysis.json"  # the manifest
RDF_CSV = "rdf.csv"
RDF_NPZ = "rdf.npz"
BONDS_CSV = "bonds.csv"
PEAKS_FILE = "peaks.json"
DIAGNOSTICS_FILE = "diagnostics.json"
MATCH_FILE = "match.json"
PRODUCTS_CSV = "products.csv"
REF_RDF_NPZ = "ref_rdf.npz"
REPORT_DIR = "report"
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
REPLICA_PREFIX = "replica-"  # a replica's own analysis inside the pooled one (replica_name)


def segment_name(k: int) -> str:
    """Folder name of segment ``k`` (``seg-000``)."""
    return f"seg-{k:03d}"


def replica_name(k: int) -> str:
    """Folder name of replica ``k`` (``replica-00``)."""
    return f"{REPLICA_PREFIX}{k:02d}"


def frame_file(name: str) -> str:
    """The analysis folder's POSCAR of its ``name`` ("first", "last") frame: ``first_frame.vasp``."""
    return f"{name}_frame.vasp"


@dataclass(frozen=True)
class AnalysisFiles:
    """The paths of one analysis folder's files (``RUN/analysis``, ``RUN/analysis/replica-NN`` or an ``-o`` folder).

    Parameters
    ----------
    folder
        The analysis folder.
    """

    folder: Path

    @property
    def manifest(self) -> Path:
        return self.folder / ANALYSIS_FILE

    @property
    def rdf_csv(self) -> Path:
        return self.folder / RDF_CSV

    @property
    def rdf_npz(self) -> Path:
        return self.folder / RDF_NPZ

    @property
    def bonds_csv(self) -> Path:
        return self.folder / BONDS_CSV

    @property
    def peaks(self) -> Path:
        return self.folder / PEAKS_FILE

    @property
    def diagnostics(self) -> Path:
        return self.folder / DIAGNOSTICS_FILE

    @property
    def match(self) -> Path:
        return self.folder / MATCH_FILE

    @property
    def products_csv(self) -> Path:
        return self.folder / PRODUCTS_CSV

    @property
    def ref_rdf(self) -> Path:
        return self.folder / REF_RDF_NPZ

    def frame(self, name: str) -> Path:
        """The POSCAR of the ``name`` ("first", "last") frame."""
        return self.folder / frame_file(name)

    @property
    def report_dir(self) -> Path:
        """Where ``cellsim report`` writes for an analysis folder outside a run directory."""
        return self.folder / REPORT_DIR


def report_html(report_dir: Path) -> Path:
    """The self-contained report page of a report folder."""
    return report_dir / REPORT_HTML


def report_md(report_dir: Path) -> Path:
    """The Markdown report of a report folder (its figures beside it)."""
    return report_dir / REPORT_MD


@dataclass(frozen=True)
class SegmentPlan:
    """How a study's MD time is cut into steps and segments (the same for VASP and the embedded engine)."""

    timestep_fs: float
    total_steps: int
    steps_per_segment: int

    @classmethod
    def from_study(cls, study: Study, total_steps: int | None = None) -> SegmentPlan:
        md = study.md
        total = total_steps if total_steps is not None else steps_for(md.total_time_ps, md.timestep_fs)
        per = max(1, steps_for(md.segment_time_ps, md.timestep_fs))
        return cls(md.timestep_fs, total, per)

    @property
    def nsw(self) -> list[int]:
        """NSW of each segment; the last one is shorter when the total is not a multiple."""
        n = math.ceil(self.total_steps / self.steps_per_segment)
        return [min(self.steps_per_segment, self.total_steps - k * self.steps_per_segment) for k in range(n)]

    @property
    def n_segments(self) -> int:
        return len(self.nsw)

    @property
    def total_ps(self) -> float:
        return self.total_steps * self.timestep_fs / 1000.0


def steps_for(time_ps: float, timestep_fs: float) -> int:
    """MD steps in ``time_ps`` at ``timestep_fs`` (rounded to the nearest step)."""
    return round(time_ps * 1000.0 / timestep_fs)


class RunDir:
    """Paths and listings of one run directory (or of one replica's MD inside it).

    Parameters
    ----------
    root
        The run directory (``cellsim build STUDY -o ROOT``).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    # -- study and interface
    @property
    def study_file(self) -> Path:
        return self.root / STUDY_FILE

    @property
    def is_run(self) -> bool:
        """True when the folder holds a resolved study (a built run directory)."""
        return self.study_file.is_file()

    def require(self) -> RunDir:
        """This run directory, or an error that says how to make one."""
        if not self.is_run:
            raise RunDirError(f"{self.study_file}: not a run directory; run `cellsim build STUDY -o {self.root}` first")
        return self

    def load_study(self) -> Study:
        """The resolved study of this run directory."""
        from cellsim.config.study import load_study

        return load_study(self.require().study_file)

    @property
    def interface_dir(self) -> Path:
        return self.root / "interface"

    @property
    def interface_poscar(self) -> Path:
        return self.interface_dir / "POSCAR"

    @property
    def interface_json(self) -> Path:
        return self.interface_dir / "interface.json"

    @property
    def interface_cif(self) -> Path:
        return self.interface_dir / "interface.cif"

    def engine_phase_file(self, side: str) -> Path:
        """The ``side`` ("metal", "electrolyte") bulk crystal relaxed by the study's engine (lattice: engine)."""
        return self.interface_dir / f"{side}_engine_relaxed.cif"

    # -- MD
    @property
    def md_dir(self) -> Path:
        return self.root / "md"

    @property
    def plan_file(self) -> Path:
        return self.md_dir / "plan.json"

    @property
    def relax_dir(self) -> Path:
        return self.md_dir / "relax"

    @property
    def stitched_xdatcar(self) -> Path:
        return self.md_dir / "XDATCAR"

    def segment_dir(self, k: int, replica: int | None = None) -> Path:
        """Folder of segment ``k`` (of replica ``replica`` when given)."""
        return self.md_root(replica) / segment_name(k)

    def md_root(self, replica: int | None = None) -> Path:
        """The folder holding the segments: ``md/`` or ``md/replica-NN/``."""
        return self.md_dir if replica is None else self.md_dir / replica_name(replica)

    def segments(self, replica: int | None = None) -> list[Path]:
        """Segment folders in order (``seg-000``, ``seg-001``, ...)."""
        base = self.md_root(replica)
        if not base.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in base.iterdir() if p.is_dir() and (m := SEGMENT_RE.match(p.name))]
        return [p for _, p in sorted(found)]

    def next_segment_dir(self, replica: int | None = None) -> Path:
        """The folder the next new segment goes to."""
        return self.segment_dir(len(self.segments(replica)), replica)

    def replicas(self) -> list[int]:
        """Replica numbers present under ``md/`` (empty for a single run)."""
        if not self.md_dir.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.md_dir.iterdir() if p.is_dir() and (m := REPLICA_RE.match(p.name)))

    def trajectory_files(self, replica: int | None = None) -> list[Path]:
        """Each segment's trajectory files in order: its parts (``XDATCAR.part-N``), then its XDATCAR (or
        compressed XDATCAR); segments without any are skipped."""
        files: list[Path] = []
        for seg in self.segments(replica):
            files.extend(segment_parts(seg))
            found = [seg / n for n in TRAJECTORY_NAMES if (seg / n).is_file()]
            if found:
                files.append(found[0])
        return files

    def energy_files(self, replica: int | None = None) -> list[Path]:
        """Each segment's OSZICAR parts (``OSZICAR.part-N``) then its OSZICAR (plain, else gzip/bzip2/xz), in the
        order of :meth:`trajectory_files`; segments without an OSZICAR are skipped."""
        files: list[Path] = []
        for seg in self.segments(replica):
            for xd in segment_parts(seg):
                osz = seg / xd.name.replace("XDATCAR", "OSZICAR", 1)
                if osz.is_file():
                    files.append(osz)
            # the final OSZICAR, or the compressed one beside a compressed XDATCAR (an archived segment)
            final = next((seg / n for n in ENERGY_NAMES if (seg / n).is_file()), None)
            if final is not None:
                files.append(final)
        return files

    def plan(self, total_steps: int | None = None) -> SegmentPlan:
        return SegmentPlan.from_study(self.load_study(), total_steps)

    # -- analysis and report
    @property
    def analysis_dir(self) -> Path:
        return self.root / "analysis"

    def replica_analysis_dir(self, replica: int) -> Path:
        return self.analysis_dir / replica_name(replica)

    @property
    def analysis_files(self) -> AnalysisFiles:
        """The files of the run's (pooled) analysis folder."""
        return AnalysisFiles(self.analysis_dir)

    @property
    def report_dir(self) -> Path:
        return self.root / REPORT_DIR

    @property
    def engine_check_file(self) -> Path:
        """The engine check of the study's own phases for the engine that ran the MD (rows as JSON)."""
        return self.root / "engine-check.json"

    # -- workflow (FireWorks, queue)
    @property
    def workflow_dir(self) -> Path:
        return self.root / "workflow"

    @property
    def launch_dir(self) -> Path:
        """Where FireWorks launch folders (``launcher_*``) go: never the current directory."""
        return self.workflow_dir / "launches"

    @property
    def queue_dir(self) -> Path:
        return self.workflow_dir / "queue"

    @property
    def fw_store_file(self) -> Path:
        """This run's embedded FireWorks store (mongomock JSON), used when no MongoDB launchpad is given."""
        return self.workflow_dir / "fw_store.json"

    @property
    def fw_store_lock(self) -> Path:
        return self.workflow_dir / "fw_store.json.lock"

    @property
    def jobs_file(self) -> Path:
        """Queue jobs of this run: ids, scheduler, successors (``cellsim status`` and the job chain read it)."""
        return self.workflow_dir / "jobs.json"

    @property
    def submit_file(self) -> Path:
        """How the run was submitted (launchpad, queue, engine, campaign): later commands reuse it."""
        return self.workflow_dir / "submit.json"

    @property
    def job_script(self) -> Path:
        """The rendered batch script; each job resubmits it for the next one."""
        return self.queue_dir / "job.sh"

    @property
    def lock_file(self) -> Path:
        """Held by a stage that writes into the run directory (one writer at a time)."""
        return self.root / ".cellsim.lock"


def default_analysis_dir(trajectory: Path) -> Path:
    """Where the analysis of a trajectory file goes by default: ``analysis/`` beside it."""
    return trajectory.parent / "analysis"


def segment_parts(seg: Path) -> list[Path]:
    """The ``XDATCAR.part-N`` files of a segment folder, in order (empty when VASP was never restarted)."""
    if not seg.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in seg.iterdir() if p.is_file() and (m := PART_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def part_file(seg: Path, name: str, k: int) -> Path:
    """Part ``k`` of output ``name`` (``XDATCAR``, ``OSZICAR``) of a segment: ``seg/NAME.part-K``."""
    return seg / f"{name}.part-{k}"


def segment_record(seg: Path) -> Path:
    """cellsim's record of a VASP segment: planned NSW, parts, custodian runs, walltime stops."""
    return seg / "segment.json"


def campaign_file(runs: list[Path]) -> Path:
    """State file of a campaign of several runs submitted together (beside their common parent)."""
    import hashlib
    import os

    roots = sorted(str(r.resolve()) for r in runs)
    common = Path(os.path.commonpath(roots)) if len(roots) > 1 else Path(roots[0]).parent
    tag = hashlib.sha256("\n".join(roots).encode()).hexdigest()[:10]
    return common / f".cellsim-campaign-{tag}.json"


def find_run_dir(path: Path) -> RunDir | None:
    """The run directory that ``path`` (a run directory or its ``analysis/`` folder) belongs to, if any."""
    for cand in (path, path.parent):
        rd = RunDir(cand)
        if rd.is_run and (cand == path or path == rd.analysis_dir or path.parent == rd.analysis_dir):
            return rd
    return None


def save_resolved(study: Study, run_dir: Path, force: bool = False) -> Path:
    """Write ``run_dir/study.yaml``; refuse to replace a different study unless ``force``."""
    from cellsim.config.study import parse_study

    target = RunDir(run_dir).study_file
    text = study.to_yaml()
    if target.exists() and not force:
        existing = target.read_text(encoding="utf-8")
        # compared as studies, not as text: a field added by a newer cellsim (with its default) is no change
        try:
            same = existing == text or parse_study(existing, str(target)) == study
        except StudyError:
            same = False
        if not same:
            raise StudyError(
                f"{target}: this run directory already holds a different study; "
                "use another -o directory, or --force to replace it (later stages will be redone)"
            )
        return target
    return atomic_write_text(target, text)
