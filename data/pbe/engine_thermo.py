"""Each offline engine's thermodynamics against the stored PBE phase diagram (``phases_pw``), written as data.

Run from the repository root: ``.venv/bin/python data/pbe/engine_thermo.py``. For CHGNet 0.3.0, SevenNet-0
and the bundled fit (workflows/fits/chgnet-in-pbe, the li6ps5cl_in_fitted study's model): the formation
energy of every stored PBE phase with the engine's own relaxed crystal (cached as ``cellsim engines check``'s
relaxations) against PBE's, the worst phase, and the metal + electrolyte reaction of each bundled study with
the engine's energies beside PBE's (closed, and at the Li-In alloy's Li potential). Writes
``phases_pw/engines.json`` (every row) and prints the table.
"""

from __future__ import annotations

import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent / "phases_pw"
ELEMENTS = {"Li", "P", "S", "Cl", "In"}
PAIRS = (("Li6PS5Cl", "In"), ("Li6PS5Cl", "LiIn"), ("Li6PS5Cl", "Li"), ("Li3PS4", "In"))


def main() -> None:
    from cellsim.config.study import load_study
    from cellsim.core.files import atomic_write_json
    from cellsim.core.resources import bundled_workflows
    from cellsim.engines.check.reactants import model_rows
    from cellsim.engines.registry import select

    study = load_study(bundled_workflows()["li6ps5cl_in_fitted"])
    out = {}
    for model in select(["chgnet", "sevennet", "study"], study):
        rows = model_rows(model, ELEMENTS, PAIRS[0])
        for pair in PAIRS[1:]:
            rows += [
                r for r in model_rows(model, ELEMENTS, pair)
                if r.quantity in ("interface reaction", "reaction at the Li-In potential")
            ]
        out[model.key] = {"model": model.description, "rows": [r.as_dict() for r in rows]}
        for r in rows:
            print(
                f"{model.key:28s} {r.phase:22s} {r.quantity:32s} {r.value!s:>9s} {r.reference!s:>9s} {r.verdict:5s} "
                f"{r.note}",
                flush=True,
            )
    atomic_write_json(HERE / "engines.json", out)


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main()
