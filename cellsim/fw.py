"""FireWorks workflow: MD segments (VASP under custodian, or the embedded engine) then analysis.

The LaunchPad (MongoDB or the embedded store) is opened by :mod:`cellsim.fw_launchpad`, which must run
before this module is imported (FireWorks picks its database client at import time).

Workflow: one Firework per planned MD segment, chained; each runs "the next missing segment" (so a
Firework rerun after a walltime kill or node failure continues where the MD stopped) and, if the MD is
still short after the last planned one (a segment was cut short), adds one more segment as a detour
before the analysis Firework (analyze -> match -> report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from fireworks.core.firework import FiretaskBase, FWAction
from fireworks.utilities.fw_utilities import explicit_serialize


@explicit_serialize
class RunMDSegmentTask(FiretaskBase):
    """Run the next missing MD segment of ``run_dir`` with ``engine`` (vasp, chgnet or sevennet)."""

    required_params: ClassVar[list[str]] = ["run_dir"]
    optional_params: ClassVar[list[str]] = ["engine", "last"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        from fireworks import Firework

        from cellsim.rundir import RunDir

        run_dir = Path(self["run_dir"])
        engine = self.get("engine", "vasp")
        study = RunDir(run_dir).load_study()
        if engine == "vasp":
            from cellsim.md.engines.vasp import next_segment, run_segment

            seg = next_segment(run_dir, study)
            if seg is not None:
                info = run_segment(seg)
                stored = {"segment": seg.name, "corrections": len(info["corrections"])}
            else:
                stored = {"segment": None}
            more = self.get("last") and next_segment(run_dir, study) is not None
        else:
            from cellsim.md.engines.mlip import run_mlip

            summary = run_mlip(run_dir, study, engine=engine)
            stored = {"steps": summary.steps_total}
            more = False
        if more:
            nxt = Firework(
                [RunMDSegmentTask(run_dir=str(run_dir), engine=engine, last=True)],
                name=f"{study.name} md (continuation)",
            )
            return FWAction(stored_data=stored, detours=[nxt])
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


def md_workflow(run_dir: Path, engine: str = "vasp") -> Any:
    """The Workflow for ``run_dir``: MD segment Fireworks in a chain, then the analysis Firework."""
    from fireworks import Firework, Workflow

    from cellsim.rundir import RunDir

    run_dir = run_dir.resolve()
    rd = RunDir(run_dir)
    study = rd.load_study()
    n = rd.plan().n_segments if engine == "vasp" else 1
    fws = [
        Firework(
            [RunMDSegmentTask(run_dir=str(run_dir), engine=engine, last=(k == n - 1))],
            name=f"{study.name} md seg {k:03d}",
        )
        for k in range(n)
    ]
    links = {fws[k]: [fws[k + 1]] for k in range(n - 1)}
    analysis = Firework([AnalysisTask(run_dir=str(run_dir))], name=f"{study.name} analysis")
    links[fws[-1]] = [analysis]
    return Workflow(
        [*fws, analysis],
        links,
        name=f"cellsim {study.name} ({engine})",
        metadata={"run_dir": str(run_dir), "engine": engine},
    )
