"""Submitting a run directory's workflow to FireWorks, and what a queue job runs (``cellsim fw-launch``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cellsim.errors import CellsimError
from cellsim.rundir import RunDir


def _quiet() -> None:
    for name in ("launchpad", "rocket.launcher", "custodian", "custodian.custodian"):
        logging.getLogger(name).setLevel(logging.WARNING)


def submit_run(
    run_dir: Path,
    engine: str = "vasp",
    launchpad: Path | None = None,
    queue: str = "local",
    qadapter: Path | None = None,
) -> dict[str, str]:
    """Add the run's workflow to the LaunchPad (once) and launch it here or through a queue; Firework states."""
    from cellsim import stages
    from cellsim.fw_launchpad import open_launchpad

    rd = RunDir(run_dir).require()
    if queue not in ("local", "slurm", "pbs"):
        raise CellsimError(f"--queue {queue!r}: expected local, slurm or pbs")
    if engine == "vasp" and not (rd.segment_dir(0) / "INCAR").is_file():
        stages.inputs(rd.root)
    lpad = open_launchpad(launchpad)
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import rapidfire

    from cellsim.fw import md_workflow

    _quiet()
    root = str(rd.root.resolve())
    existing = lpad.workflows.find_one({"metadata.run_dir": root, "metadata.engine": engine})
    if existing is None:
        lpad.add_wf(md_workflow(rd.root, engine))
    else:
        # a segment that died (walltime, node failure, VASP error custodian could not fix) is rerun: its task
        # continues from the last whole frame
        for fw_id in existing["nodes"]:
            if lpad.get_fw_dict_by_id(fw_id)["state"] in ("FIZZLED", "DEFUSED"):
                lpad.rerun_fw(fw_id)
    rd.launch_dir.mkdir(parents=True, exist_ok=True)
    if queue == "local":
        rapidfire(
            lpad, FWorker(name="cellsim-local"), nlaunches=0, sleep_time=0, strm_lvl="ERROR", m_dir=str(rd.launch_dir)
        )
    else:
        import shlex
        import sys

        from fireworks.queue.queue_launcher import launch_rocket_to_queue
        from fireworks.utilities.fw_serializers import load_object_from_file

        from cellsim.resources import shipped_dir

        qfile = qadapter or shipped_dir("templates") / f"my_qadapter_{queue}.yaml"
        qa: Any = load_object_from_file(str(qfile))
        if str(qa.get("rocket_launch", "")).strip() == "cellsim fw-launch":
            # batch scripts start login shells that reset PATH: call this very Python
            lp_opt = f" --launchpad {shlex.quote(str(launchpad.resolve()))}" if launchpad else ""
            qa["rocket_launch"] = (
                f"{shlex.quote(sys.executable)} -m cellsim.cli fw-launch{lp_opt} "
                f"--launch-dir {shlex.quote(str(rd.launch_dir.resolve()))}"
            )
        rd.queue_dir.mkdir(parents=True, exist_ok=True)
        launch_rocket_to_queue(
            lpad,
            FWorker(name=f"cellsim-{queue}"),
            qa,
            launcher_dir=str(rd.queue_dir.resolve()),
            create_launcher_dir=True,
        )
    return {
        fw["name"]: fw["state"] for fw in lpad.fireworks.find({"spec._tasks.run_dir": root}, {"name": 1, "state": 1})
    }


def launch_ready(launchpad: Path | None = None, launch_dir: Path | None = None) -> None:
    """Run every ready Firework (the command of a queue job)."""
    from cellsim.fw_launchpad import open_launchpad

    lpad = open_launchpad(launchpad)
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import rapidfire

    import cellsim.fw  # noqa: F401  (registers the FireTasks)

    _quiet()
    kw: dict[str, Any] = {}
    if launch_dir is not None:
        launch_dir.mkdir(parents=True, exist_ok=True)
        kw["m_dir"] = str(launch_dir)
    rapidfire(lpad, FWorker(name="cellsim-queue"), nlaunches=0, sleep_time=0, strm_lvl="ERROR", **kw)
