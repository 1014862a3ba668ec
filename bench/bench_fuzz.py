"""Fuzz the XDATCAR reader: thousands of damaged files in-process, and a sample through ``cellsim analyze``.

The corpus is tests/fuzzgen.py's (a seed other than the test suite's). In-process, each case goes through
``cellsim.io.xdatcar.read_trajectory`` under a time limit; a sample also goes through the real command,
``<python> -m cellsim.cli analyze FILE --dt 2 -o OUT``, with a 20 s limit. The table counts, per mutation
and in total: inputs tried, read, refused (one TrajectoryError line naming the file), traceback (any
other exception, or a command that printed one), hang (over the limit), silently wrong (read, but not as
the generator knows it must be: a file that must be refused accepted, frames that differ from the
original, fewer frames without a warning, non-finite output) and wrongly refused (a valid file refused,
or a refusal that is not one line naming the file).

Run: ``.venv/bin/python bench/bench_fuzz.py [--cases 3000] [--cli 200] [--seed 2026]``.
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import fuzzgen  # noqa: E402

COLUMNS = ("tried", "read", "refused", "traceback", "hang", "silently wrong", "wrongly refused")


class Hang(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise Hang


def column(case: fuzzgen.Case, out: fuzzgen.Outcome) -> str:
    if out.status != "wrong":
        return out.status
    if out.detail.startswith(("refused a readable file", "refusal not one line")):
        return "wrongly refused"
    return "silently wrong"


def in_process(
    cases: list[fuzzgen.Case], work: Path, limit_s: int
) -> tuple[dict[str, collections.Counter[str]], list[str]]:
    table: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    notes: list[str] = []
    signal.signal(signal.SIGALRM, _on_alarm)
    for i, case in enumerate(cases):
        # a hang inside the C parser would not see SIGALRM: faulthandler ends the run instead of hanging it
        faulthandler.dump_traceback_later(limit_s * 4, exit=True)
        signal.alarm(limit_s)
        try:
            out = fuzzgen.check(case, work / f"{i:05d}")
        except Hang:
            out = fuzzgen.Outcome("hang", f"over {limit_s} s")
        finally:
            signal.alarm(0)
            faulthandler.cancel_dump_traceback_later()
        col = column(case, out)
        for key in (case.kind, "TOTAL"):
            table[key]["tried"] += 1
            table[key][col] += 1
        if col not in ("read", "refused"):
            notes.append(f"{case.name} [{case.expect}] {col}: {out.detail[:200]}")
        shutil.rmtree(work / f"{i:05d}", ignore_errors=True)
    return table, notes


def through_cli(
    cases: list[fuzzgen.Case], work: Path, limit_s: int
) -> tuple[dict[str, collections.Counter[str]], list[str]]:
    """``cellsim analyze FILE --dt 2 -o OUT`` on each case, classified from its exit status and output."""
    table: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    notes: list[str] = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    for i, case in enumerate(cases):
        d = work / f"cli{i:05d}"
        path = fuzzgen.write_case(case, d)
        cmd = [sys.executable, "-m", "cellsim.cli", "analyze", str(path), "--dt", "2", "-o", str(d / "out")]
        if case.species:  # a VASP 4 file: the elements as a user gives them
            cmd += ["--species", ",".join(case.species)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s, env=env, cwd=d)
        except subprocess.TimeoutExpired:
            col, detail = "hang", f"over {limit_s} s"
        else:
            text = (proc.stderr + proc.stdout).strip()
            last = text.splitlines()[-1] if text else ""
            if "Traceback (most recent call last)" in text:
                col, detail = "traceback", last
            elif proc.returncode == 0:
                col, detail = "read", ""
                if case.expect == "refuse":
                    col, detail = "silently wrong", "exit 0 on a file that must be refused"
            elif case.expect in ("equal", "frames") and not (case.expect == "frames" and case.frames == 0):
                col, detail = "wrongly refused", last
            else:
                col, detail = "refused", last
        for key in (case.kind, "TOTAL"):
            table[key]["tried"] += 1
            table[key][col] += 1
        if col not in ("read", "refused"):
            notes.append(f"{case.name} [{case.expect}] {col}: {detail[:200]}")
        shutil.rmtree(d, ignore_errors=True)
    return table, notes


def print_table(title: str, table: dict[str, collections.Counter[str]]) -> None:
    print(f"\n{title}")
    width = max(len(k) for k in table)
    print(f"| {'mutation':<{width}} | " + " | ".join(COLUMNS) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * (len(c) + 2) for c in COLUMNS) + "|")
    for key in sorted(table, key=lambda k: (k == "TOTAL", k)):
        row = table[key]
        print(f"| {key:<{width}} | " + " | ".join(f"{row[c]:>{len(c)}}" for c in COLUMNS) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--cli", type=int, default=200, help="cases also run through `cellsim analyze` (0: none)")
    ap.add_argument("--limit", type=int, default=20, help="seconds per case")
    args = ap.parse_args()

    t0 = time.perf_counter()
    cases = fuzzgen.generate(args.seed, args.cases)
    print(
        f"{len(cases)} cases from seed {args.seed} ({len({c.kind for c in cases})} mutations), "
        f"generated in {time.perf_counter() - t0:.1f} s"
    )
    failed = 0
    with tempfile.TemporaryDirectory(prefix="cellsim-fuzz-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        table, notes = in_process(cases, work, args.limit)
        dt = time.perf_counter() - t0
        print_table(f"In-process reader (cellsim.io.xdatcar.read_trajectory), {dt:.1f} s:", table)
        for n in notes[:40]:
            print("  ", n)
        failed += len(notes)
        if args.cli:
            stride = max(1, len(cases) // args.cli)
            sample = cases[::stride][: args.cli]
            t0 = time.perf_counter()
            table, notes = through_cli(sample, work, args.limit)
            dt = time.perf_counter() - t0
            print_table(
                f"Through `{Path(sys.executable).name} -m cellsim.cli analyze FILE --dt 2 -o OUT`, {dt:.1f} s:", table
            )
            for n in notes[:40]:
                print("  ", n)
            failed += len(notes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
