"""Force parity of CHGNet 0.3.0 and SevenNet-0 against CP2K PBE on a reduced Li6PS5Cl/In interface.

Run from the repository root (niced, one core): ``.venv/bin/python data/pbe/li6ps5cl_in_parity.py
[--budget-min 20] [-k 3]``. The reduced interface is the study's own builder at a smaller size
(:func:`cellsim.engines.parity.plan_snapshots`), the snapshots come from a short CHGNet NVT and are stored
in ``li6ps5cl_in_parity/snapshots/``; each CP2K job is kept under ``li6ps5cl_in_parity/jobs/``, so rerunning
skips finished snapshots. ``li6ps5cl_in_parity/parity.json`` holds the table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cellsim.config.study import load_study
from cellsim.engines.cp2k import resolve_settings
from cellsim.engines.parity import PARITY_SETTINGS, parity, table_rows, trust_lines
from cellsim.engines.registry import select
from cellsim.engines.snapshots import plan_snapshots

HERE = Path(__file__).resolve().parent / "li6ps5cl_in_parity"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--budget-min", type=float, default=40.0)
    ap.add_argument("-k", type=int, default=3)
    ap.add_argument("--engines", nargs="*", default=["chgnet", "sevennet"])
    ap.add_argument("--first", type=int, default=None, help="label only the first N of the K snapshots")
    args = ap.parse_args()
    study = load_study("li6ps5cl_in")
    models = select(args.engines, study)
    settings = resolve_settings(PARITY_SETTINGS)
    t0 = time.time()
    plan = plan_snapshots(
        study, models[0], settings, args.k, args.budget_min * 60, reduced=True, snapshot_cache=HERE / "snapshots"
    )
    if args.first is not None:
        plan.frames = plan.frames[: args.first]
        plan.notes.append(f"the first {args.first} of {args.k} planned snapshots labelled (time budget)")
    print(f"{plan.source}: {len(plan.frames)} snapshots, estimate {plan.estimate_s / 60:.1f} min", flush=True)

    def progress(what: str, i: int, n: int, info: object) -> None:
        if what == "cp2k-start":
            print(f"  snapshot {i + 1}/{n}: CP2K, ~{float(info) / 60:.1f} min", flush=True)  # type: ignore[arg-type]
        elif what == "cp2k-done":
            print(f"  snapshot {i + 1}/{n}: done ({info.data.get('wall_s')} s)", flush=True)  # type: ignore[attr-defined]

    res = parity(plan, models, settings, HERE / "jobs", progress=progress)
    res.save(HERE / "parity.json")
    for row in table_rows(res):
        print(json.dumps(row))
    print("\n".join(trust_lines(res)))
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
