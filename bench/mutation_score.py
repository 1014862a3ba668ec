"""Mutation score of a finished `mutmut run` (run in the folder that holds its mutants/; `make mutate` does).

Prints, per mutated file and per function, the killed, surviving and untested mutants and the score
(killed / all mutants: a mutant no selected test reaches counts against the score), then the surviving
mutants by name (`mutmut show NAME` prints the change).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py): a failed test (1, 3) or a timeout kills; 0 survived; 5, 33 no test ran
OUTCOME = {1: "killed", 3: "killed", 36: "killed", 24: "killed", -24: "killed", 152: "killed", 255: "killed"}
OUTCOME |= {0: "survived", 5: "no tests", 33: "no tests"}


def _function(key: str) -> str:
    name = key.rsplit(".", 1)[-1].split("__mutmut_")[0]
    return name.removeprefix("x_").replace("xǁ", "").replace("ǁ", ".")


def main(root: Path) -> int:
    rows: list[tuple[str, str, str]] = []  # (file, function, outcome)
    survivors: list[str] = []
    for meta in sorted((root / "mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        rel = meta.relative_to(root / "mutants").as_posix().removesuffix(".meta")
        for key, code in codes.items():
            outcome = OUTCOME.get(code, "not checked" if code is None else f"other ({code})")
            if outcome == "survived":
                survivors.append(key)
            rows.append((rel, _function(key), outcome))
    if not rows:
        print(f"no mutmut results under {root / 'mutants'}")
        return 1

    def line(label: str, c: Counter[str]) -> str:
        n = sum(c.values())
        return (
            f"{label:55s} {n:5d} {c['killed']:7d} {c['survived']:9d} {c['no tests']:9d} "
            f"{100.0 * c['killed'] / n:6.1f} %"
        )

    print(f"{'file / function':55s} {'all':>5s} {'killed':>7s} {'survived':>9s} {'no tests':>9s} {'score':>8s}")
    for f in sorted({r[0] for r in rows}):
        print(line(f, Counter(o for r, _, o in rows if r == f)))
        for fn in sorted({fn for r, fn, _ in rows if r == f}):
            print(line("  " + fn, Counter(o for r, g, o in rows if r == f and g == fn)))
    print(line("all", Counter(o for *_, o in rows)))
    print(f"\nsurviving mutants ({len(survivors)}):")
    for key in sorted(survivors):
        print(" ", key)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
