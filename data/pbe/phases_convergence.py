"""How converged the PBE phase energies are: metal-exchange reaction energies at each setting of the convergence set.

Run from the repository root after ``phases_pw.py --convergence``: ``.venv/bin/python data/pbe/phases_convergence.py``.
Total energies move by tenths of an eV per atom with the cutoff (PAW's core regions); what the phase diagram uses
are differences between phases, so convergence is shown on reactions among the convergence set's phases that
exchange a metal between anions, the kind of step the interface reactions are made of:

    2 Li + InS -> Li2S + In,   Li + InCl -> LiCl + In,   3 Li + InP -> Li3P + In,   Li + In -> LiIn (per atom)

each in meV per atom of reactants, at 350 / 450 (the production setting) / 550 eV, with 1.5x the k-point density,
with 0.57x (the density a coarse mesh would give), and with 0.05 eV instead of 0.1 eV smearing on the metals.
A setting whose phase is missing (not labelled yet) is left out. Writes ``phases_pw/convergence.csv``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent / "phases_pw"
# reaction: (reactants, products) as {phase: formula units}; every phase is in phases_pw.CONVERGENCE
REACTIONS = {
    "2 Li + InS -> Li2S + In": ({"Li": 2, "InS": 1}, {"Li2S": 1, "In": 1}),
    "Li + InCl -> LiCl + In": ({"Li": 1, "InCl": 1}, {"LiCl": 1, "In": 1}),
    "3 Li + InP -> Li3P + In": ({"Li": 3, "InP": 1}, {"Li3P": 1, "In": 1}),
    "Li + In -> LiIn": ({"Li": 1, "In": 1}, {"LiIn": 1}),
}
ATOMS = {"Li": 1, "In": 1, "InS": 2, "Li2S": 3, "InCl": 2, "LiCl": 2, "InP": 2, "Li3P": 4, "LiIn": 2}


def _per_atom(root: Path, name_of: dict[str, str]) -> dict[str, float]:
    out = {}
    for label, folder in name_of.items():
        res = root / "jobs" / folder / "result.json"
        if res.is_file():
            d = json.loads(res.read_text())
            out[label] = d["energy_eV"] / d["natoms"]
    return out


def energies() -> dict[str, dict[str, float]]:
    """setting -> phase -> energy per atom (eV); 'production' is the main set."""
    main = _per_atom(HERE, json.loads((HERE / "index.json").read_text()))
    conv_index = HERE / "convergence" / "index.json"
    conv = _per_atom(HERE / "convergence", json.loads(conv_index.read_text())) if conv_index.is_file() else {}
    by: dict[str, dict[str, float]] = {"production": {k: v for k, v in main.items() if k in ATOMS}}
    for label, e in conv.items():
        phase, setting = label.rsplit("-", 1)
        by.setdefault(setting, {})[phase] = e
    for setting, table in by.items():  # smearing is not varied on the insulators: their production energy stands
        if setting.startswith("mv"):
            for phase, e in by["production"].items():
                if phase not in ("Li", "In", "LiIn"):
                    table.setdefault(phase, e)
    return by


def reaction_meV(table: dict[str, float], left: dict[str, int], right: dict[str, int]) -> float | None:
    need = {**left, **right}
    if not all(p in table for p in need):
        return None
    e = sum(n * ATOMS[p] * table[p] for p, n in right.items()) - sum(n * ATOMS[p] * table[p] for p, n in left.items())
    return 1000 * e / sum(n * ATOMS[p] for p, n in left.items())


def main() -> None:
    by = energies()
    rows = []
    for name, (left, right) in REACTIONS.items():
        base = reaction_meV(by["production"], left, right)
        for setting in sorted(by):
            val = reaction_meV(by[setting], left, right)
            if val is None or base is None:
                continue
            rows.append(
                {
                    "reaction": name,
                    "setting": setting,
                    "meV_per_atom": round(val, 2),
                    "minus_production": round(val - base, 2),
                }
            )
            print(f"{name:28s} {setting:12s} {val:9.2f} meV/atom  ({val - base:+.2f})")
    with open(HERE / "convergence.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["reaction", "setting", "meV_per_atom", "minus_production"])
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
