"""FireWorks workflow: MD segments (VASP under custodian, or the embedded engine) then analysis.

The LaunchPad (a run's embedded store or MongoDB) is opened by :mod:`cellsim.workflow.store`, which must
run before this module is imported (FireWorks picks its database client at import time).

Workflow of a run: one Firework per planned MD segment, chained, then the analysis Firework (analyze ->
match -> report). Every Firework carries ``spec._run_id`` (the run's absolute path) and cellsim's workers
query it, so a job only ever runs its own run's work, also on a shared MongoDB.

Each MD Firework runs "the next unfinished piece" of the MD (:func:`cellsim.engines.vasp.next_segment`):
a segment stopped for the walltime ends its Firework with a detour that continues the same segment (the
next job picks it up), a Firework rerun after a kill continues where the MD stopped, and the last one
adds one more if the MD is still short. :func:`sync_workflow` reruns FIZZLED Fireworks and, when the
study's ``md.total_time_ps`` has grown after the workflow finished, appends the missing segment
Fireworks and a new analysis.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from fireworks.core.firework import FiretaskBase, FWAction
from fireworks.utilities.fw_utilities import explicit_serialize

if TYPE_CHECKING:
    from cellsim.config.rundir import RunDir
    from cellsim.workflow.store import WorkflowStore

MD_STATES_OPEN = ("READY", "WAITING", "RESERVED", "RUNNING", "PAUSED")


@explicit_serialize
class RunMDSegmentTask(FiretaskBase):
    """Run the next unfinished MD segment of ``run_dir`` with ``engine``: vasp (custodian), cp2k (custodian
    on the segments of ``cellsim inputs --code cp2k``, else the embedded cp2k_shell engine) or an offline model."""

    required_params: ClassVar[list[str]] = ["run_dir"]
    optional_params: ClassVar[list[str]] = ["engine", "last", "label"]

    def _again(self, fw_spec: dict[str, Any], study_name: str, suffix: str, last: bool) -> Any:
        from fireworks import Firework

        label = self.get("label", "md")
        spec = {"_run_id": fw_spec["_run_id"]} if "_run_id" in fw_spec else {}
        task = RunMDSegmentTask(run_dir=self["run_dir"], engine=self.get("engine", "vasp"), last=last, label=label)
        return Firework([task], name=f"{study_name} {label} ({suffix})", spec=spec)

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        from cellsim.config.rundir import RunDir

        run_dir = Path(self["run_dir"])
        engine = self.get("engine", "vasp")
        study = RunDir(run_dir).load_study()
        if engine == "vasp":
            from cellsim.engines.runners import runner_for
            from cellsim.engines.vasp import (
                VaspRunError,
                done_steps,
                next_segment,
                segment_frames,
                total_steps,
            )

            seg = next_segment(run_dir, study)
            stored: dict[str, Any] = {"segment": None}
            if seg is not None:
                before = segment_frames(seg)
                info = runner_for("vasp").run_segment(seg)
                stored = {
                    "segment": seg.name,
                    "frames": info["frames"],
                    "nsw": info["nsw"],
                    "corrections": len(info["corrections"]),
                    "walltime_stop": info["walltime_stop"],
                }
                if info["nsw"] is not None and info["frames"] < info["nsw"]:
                    if info["frames"] <= before:
                        raise VaspRunError(f"{seg}: VASP stopped without making an MD step; see {seg / 'vasp.out'}")
                    # stopped short (walltime): the same segment goes on, in the next job if this one ends
                    again = self._again(fw_spec, study.name, "continued", bool(self.get("last")))
                    return FWAction(stored_data=stored, detours=[again])
            more = bool(self.get("last")) and done_steps(run_dir) < total_steps(study)
        elif engine == "cp2k" and cp2k_cluster_inputs(RunDir(run_dir)):
            from cellsim.engines.runners import runner_for

            # the next segment without a complete record; the segments of `cellsim inputs --code cp2k` run in order
            seg = next_cp2k_segment(RunDir(run_dir))
            stored = {"segment": None} if seg is None else {"segment": seg.name, **runner_for("cp2k").run_segment(seg)}
            more = False
        else:
            from cellsim import stages

            # the stage, so the Firework holds the run's writer lock as `cellsim run` does
            summary = stages.run(run_dir, engine=engine)
            stored = {"steps": summary.steps_total}
            more = False
        if more:
            return FWAction(stored_data=stored, detours=[self._again(fw_spec, study.name, "continuation", True)])
        return FWAction(stored_data=stored)


@explicit_serialize
class AnalysisTask(FiretaskBase):
    """analyze -> match -> report of ``run_dir``."""

    required_params: ClassVar[list[str]] = ["run_dir"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        from cellsim import stages

        run_dir = Path(self["run_dir"])
        stages.analyze(run_dir)
        stages.match(run_dir)
        paths = stages.report(run_dir)
        return FWAction(stored_data={"report": str(paths["html"])})


def md_workflow(run_dir: Path, engine: str = "vasp", n_segments: int | None = None, first: int = 0) -> Any:
    """The Workflow for ``run_dir``: MD segment Fireworks in a chain, then the analysis Firework.

    ``n_segments`` Fireworks (default: the plan's) named from segment ``first`` on.
    """
    from fireworks import Firework, Workflow

    from cellsim.config.rundir import RunDir
    from cellsim.workflow.store import run_id

    run_dir = run_dir.resolve()
    rd = RunDir(run_dir)
    study = rd.load_study()
    rid = run_id(rd)
    per_segment = engine == "vasp" or (engine == "cp2k" and cp2k_cluster_inputs(rd))
    n = (n_segments if n_segments is not None else rd.plan().n_segments) if per_segment else 1
    n = max(1, n)
    labels = [f"md seg {first + k:03d}" if per_segment else "md" for k in range(n)]
    fws = [
        Firework(
            [RunMDSegmentTask(run_dir=str(run_dir), engine=engine, last=(k == n - 1), label=labels[k])],
            name=f"{study.name} {labels[k]}",
            spec={"_run_id": rid},
        )
        for k in range(n)
    ]
    links = {fws[k]: [fws[k + 1]] for k in range(n - 1)}
    analysis = Firework([AnalysisTask(run_dir=str(run_dir))], name=f"{study.name} analysis", spec={"_run_id": rid})
    links[fws[-1]] = [analysis]
    return Workflow(
        [*fws, analysis],
        links,
        name=f"cellsim {study.name} ({engine})",
        metadata={"run_dir": str(run_dir), "run_id": rid, "engine": engine},
    )


def find_workflow(store: WorkflowStore, rd: RunDir, engine: str) -> dict[str, Any] | None:
    from cellsim.workflow.store import run_id

    rid = run_id(rd)
    wf: dict[str, Any] | None = store.lpad.workflows.find_one({"metadata.run_id": rid, "metadata.engine": engine})
    if wf is None:  # made before Fireworks were tagged
        wf = store.lpad.workflows.find_one({"metadata.run_dir": rid, "metadata.engine": engine})
    return wf


def cp2k_cluster_inputs(rd: RunDir) -> bool:
    """The run has CP2K segment inputs (``cellsim inputs --code cp2k``): engine cp2k then runs them under
    custodian, one Firework per segment, instead of the embedded cp2k_shell engine."""
    from cellsim.inputsets.cp2k import INPUT_NAME

    return (rd.segment_dir(0) / INPUT_NAME).is_file()


def next_cp2k_segment(rd: RunDir) -> Path | None:
    """The first CP2K segment whose ``segment.json`` does not say complete, or None when all are."""
    import json

    from cellsim.inputsets.cp2k import INPUT_NAME

    for seg in rd.segments():
        rec = seg / "segment.json"
        if (seg / INPUT_NAME).is_file() and not (
            rec.is_file() and json.loads(rec.read_text()).get("status") == "complete"
        ):
            return seg
    return None


def missing_md(rd: RunDir, engine: str) -> tuple[int, int]:
    """(MD Fireworks to add, index of the first one's segment) for the steps the study still lacks."""
    study = rd.load_study()
    if engine != "vasp":
        from cellsim.engines.vasp import done_steps

        return (1 if done_steps(rd.root) < rd.plan().total_steps else 0), 0
    from cellsim.engines.vasp import done_steps, planned_nsw, segment_frames, total_steps

    target, done = total_steps(study), done_steps(rd.root)
    if done >= target:
        return 0, 0
    segs = rd.segments()
    per = rd.plan().steps_per_segment
    short = 0
    first = len(segs)
    if segs:
        nsw = planned_nsw(segs[-1])
        frames = segment_frames(segs[-1])
        if nsw is not None and frames < nsw:  # the last segment was cut short: its Firework continues it
            short, first = min(nsw - frames, target - done), len(segs) - 1
    rest = target - done - short
    return (1 if short else 0) + math.ceil(max(0, rest) / per), first


def sync_workflow(store: WorkflowStore, rd: RunDir, engine: str = "vasp", rerun_fizzled: bool = False) -> list[str]:
    """Make the store's workflow of ``rd`` match the run: add it, rerun FIZZLED Fireworks, extend it.

    FIZZLED Fireworks are rerun only when asked (``cellsim submit``): a job chain stops at one, so the
    user sees it. Returns one note per change made (empty when none was needed).
    """
    lpad = store.lpad
    wf = find_workflow(store, rd, engine)
    if wf is None:
        lpad.add_wf(md_workflow(rd.root, engine))
        return ["workflow added"]
    notes = []
    states = {
        d["fw_id"]: d["state"] for d in lpad.fireworks.find({"fw_id": {"$in": wf["nodes"]}}, {"fw_id": 1, "state": 1})
    }
    for fw_id, state in sorted(states.items()):
        if state == "FIZZLED" and rerun_fizzled:
            lpad.rerun_fw(fw_id)
            notes.append(f"Firework {fw_id} (FIZZLED) rerun")
    if notes or any(s in (*MD_STATES_OPEN, "FIZZLED") for s in states.values()):
        return notes
    n_new, first = missing_md(rd, engine)
    if n_new:
        parents = {int(k) for k, v in wf.get("links", {}).items() if v}
        leaves = [fw_id for fw_id in wf["nodes"] if fw_id not in parents]
        lpad.append_wf(md_workflow(rd.root, engine, n_new, first), leaves)
        notes.append(f"workflow extended by {n_new} MD Firework(s) and an analysis")
    return notes
