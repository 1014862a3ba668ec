"""The labelling loop of the stored PBE label sets (``data/pbe/*``): named configurations, one DFT job at a
time, whichever code runs them (:func:`cellsim.engines.planewave.label_set` for GPAW,
:func:`cellsim.engines.cp2k.label_set` for CP2K)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms

# (name, atoms, settings overrides, meta), in labelling order
Config = tuple[str, "Atoms", Mapping[str, Any], Mapping[str, Any]]


class Job(Protocol):
    """What a code's single point returns (:class:`cellsim.engines.cp2k.Cp2kResult` and its GPAW twin)."""

    @property
    def job_dir(self) -> Path: ...
    @property
    def energy(self) -> float: ...
    @property
    def forces(self) -> np.ndarray: ...
    @property
    def cached(self) -> bool: ...


def label_set(
    configs: Sequence[Config],
    root: str | os.PathLike[str],
    folder_of: Callable[[Path, Atoms, Mapping[str, Any]], Path],
    run: Callable[[Path, str, Atoms, Mapping[str, Any], Mapping[str, Any]], Job],
    *,
    max_new: int | None = None,
    list_only: bool = False,
) -> dict[str, str]:
    """Label ``configs`` one at a time into ``root/jobs``; returns the index (name -> job folder).

    ``folder_of(jobs, atoms, overrides)`` is a configuration's job folder, ``run(jobs, name, atoms, overrides,
    meta)`` its single point (a finished job is reused, so a killed run continues). ``root/index.json`` is
    rewritten after every job. With ``list_only`` nothing runs: each configuration is printed with whether it
    is labelled. ``max_new`` stops after that many new jobs.
    """
    from cellsim.core.files import atomic_write_json

    jobs = Path(root) / "jobs"

    def done(atoms: Atoms, over: Mapping[str, Any]) -> bool:
        # both codes' job folders keep a finished job's result in result.json (cellsim.engines.cp2k.jobs)
        return (folder_of(jobs, atoms, over) / "result.json").is_file()

    if list_only:
        for name, atoms, over, _ in configs:
            print(f"{name:32s} {len(atoms)} atoms  {'done' if done(atoms, over) else '-'}")
        return {}
    import json

    # entries of configurations still in the set are kept (a second worker, or a run cut short, wrote them)
    path = Path(root) / "index.json"
    names = {c[0] for c in configs}
    try:
        index = {
            k: v for k, v in json.loads(path.read_text()).items() if k in names and (jobs / v / "result.json").is_file()
        }
    except (OSError, ValueError):
        index = {}
    new = 0
    for name, atoms, over, meta in configs:
        if not done(atoms, over):
            if max_new is not None and new >= max_new:
                break
            new += 1
        t0 = time.time()
        res = run(jobs, name, atoms, over, meta)
        index[name] = res.job_dir.name
        try:  # merge what another worker wrote since
            on_disk = json.loads(path.read_text())
            index = {**{k: v for k, v in on_disk.items() if k in names and k not in index}, **index}
        except (OSError, ValueError):
            pass
        atomic_write_json(path, dict(sorted(index.items())))
        how = "cached" if res.cached else f"{time.time() - t0:.0f} s"
        print(
            f"{name}: E {res.energy / len(atoms):.5f} eV/atom, max |F| {np.abs(res.forces).max():.3f}, {how}",
            flush=True,
        )
    return index
