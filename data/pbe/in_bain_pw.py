"""In along the Bain path with plane-wave PBE (GPAW): 1-atom bct cells at 27.3 A^3/atom.

Run from the repository root: ``.venv/bin/python data/pbe/in_bain_pw.py [--kpts 14 14 14] [--ecut 450]
[--ca 1.414 ...]``. Each point is one cached job under ``data/pbe/in_bain_pw/jobs/`` (rerunning skips
finished points); ``summary.csv`` and ``summary.json`` beside it are rewritten from every stored job.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cellsim.core.files import atomic_write_json, atomic_write_text
from cellsim.engines.cp2k import BAIN_CA, BAIN_VOLUME, load_result, parabola_minimum
from cellsim.engines.planewave import find_gpaw_python, primitive_bct_cell, resolve_settings, single_point

HERE = Path(__file__).resolve().parent / "in_bain_pw"
VOLUME = BAIN_VOLUME["In"]


def summarise() -> None:
    groups: dict[str, list[dict]] = {}
    for res_file in sorted((HERE / "jobs").glob("*/result.json")):
        res = load_result(res_file.parent)
        assert res is not None
        s = res.data["settings"]
        smear = s["smearing"]
        name = f"{'x'.join(map(str, s['kpts']))} {s['ecut_eV']:g} eV {smear['name']} {smear['width']:g} eV"
        groups.setdefault(name, []).append(
            {
                "c_a": res.data["meta"]["c_a"],
                "variant": name,
                "e_eV_atom": res.energy / res.data["natoms"],
                "e0_eV_atom": res.data["energy_sigma0_eV"] / res.data["natoms"],
                "wall_s": res.data["wall_s"],
                "irreducible_kpoints": res.data.get("irreducible_kpoints"),
                "job": res_file.parent.name,
            }
        )
    out, fits = [], {}
    for name, rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["c_a"])
        fcc = [r for r in rs if abs(r["c_a"] - 1.414) < 1e-9]
        for r in rs:
            r["de_meV_atom"] = 1000 * (r["e_eV_atom"] - fcc[0]["e_eV_atom"]) if fcc else None
            r["de0_meV_atom"] = 1000 * (r["e0_eV_atom"] - fcc[0]["e0_eV_atom"]) if fcc else None
            out.append(r)
        x = [r["c_a"] for r in rs]
        f_min, f_in = parabola_minimum(x, [r["e_eV_atom"] for r in rs])
        e_min, e_in = parabola_minimum(x, [r["e0_eV_atom"] for r in rs])
        fits[name] = {
            "c_a": x,
            "free_energy": {"c_a_min": f_min, "bracketed": f_in},
            "energy_sigma0": {"c_a_min": e_min, "bracketed": e_in},
        }
    cols = ["c_a", "variant", "e_eV_atom", "de_meV_atom", "de0_meV_atom", "irreducible_kpoints", "wall_s", "job"]
    lines = [",".join(cols)] + [
        ",".join(f"{r[c]:.6f}" if isinstance(r[c], float) else str(r[c]) for c in cols) for r in out
    ]
    atomic_write_text(HERE / "summary.csv", "\n".join(lines) + "\n")
    atomic_write_json(HERE / "summary.json", {"volume_A3_atom": VOLUME, "points": out, "parabola_minimum": fits})
    print(json.dumps(fits, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kpts", type=int, nargs=3, default=None)
    ap.add_argument("--ecut", type=float, default=None)
    ap.add_argument("--ca", type=float, nargs="*", default=[*BAIN_CA, 1.56])
    args = ap.parse_args()
    over = {k: v for k, v in {"kpts": args.kpts, "ecut_eV": args.ecut}.items() if v is not None}
    settings = resolve_settings(over)
    python, version = find_gpaw_python()
    for ca in sorted(args.ca):
        res = single_point(
            primitive_bct_cell("In", ca, VOLUME),
            HERE / "jobs",
            settings,
            stress=True,
            label=f"In bct c/a={ca}",
            meta={"c_a": ca, "volume_A3_atom": VOLUME, "gpaw": version, "python": python},
        )
        print(f"c/a {ca}: E {res.energy:.6f} eV/atom, {res.data['wall_s']} s, cached {res.cached}", flush=True)
        summarise()


if __name__ == "__main__":
    main()
