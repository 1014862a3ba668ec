"""In along the Bain path with CP2K PBE: 2-atom body-centred tetragonal cells at 27.3 A^3/atom.

Run from the repository root: ``.venv/bin/python data/pbe/in_bain.py [--mesh 20 20 14] [--ca 1.414 ...]
[--override YAML_MAPPING]`` (e.g. ``--override "{basis_set: TZV2P-MOLOPT-PBE-GTH, basis_set_file: BASIS_MOLOPT_UZH}"``).
Each point is one cached job under ``data/pbe/in_bain/jobs/`` (rerunning skips finished points); the
summary ``data/pbe/in_bain/summary.csv`` and ``summary.json`` are rewritten from every stored job.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml
from ase import Atoms

from cellsim.core.files import atomic_write_json, atomic_write_text
from cellsim.engines.cp2k import (
    BAIN_CA,
    BAIN_SETTINGS,
    BAIN_VOLUME,
    bain_cell,
    cp2k_version,
    load_result,
    parabola_minimum,
    refresh_result,
    resolve_settings,
    single_point,
)

HERE = Path(__file__).resolve().parent / "in_bain"
VOLUME = BAIN_VOLUME["In"]  # 27.3 A^3/atom, the GPAW reference's volume (audits/science-2.md)
CA = BAIN_CA


def bct(ca: float, volume: float = VOLUME) -> Atoms:
    """Conventional 2-atom bct In cell (c/a = sqrt(2) is fcc) of ``volume`` A^3/atom."""
    return bain_cell("In", ca, volume)


def variant(data: dict) -> str:
    """Short name of the settings a job used: k-mesh, basis, smearing temperature, cutoff."""
    s = data["settings"]
    smear = s["scf"]["smearing"]
    return (
        f"{'x'.join(map(str, data['kpoints']))} {s['basis_set']} "
        f"{smear['method'][:2] + ' ' + str(smear['temperature']) + ' K' if smear else 'no smearing'} "
        f"{s['cutoff']}/{s['rel_cutoff']} Ry"
    )


def summarise() -> None:
    rows = []
    for res_file in sorted((HERE / "jobs").glob("*/result.json")):
        res = load_result(res_file.parent)
        if res is not None and "energy_sigma0_eV" not in res.data:  # stored before the parser read -TS
            res = refresh_result(res_file.parent)
        assert res is not None
        m = res.data["meta"]
        rows.append(
            {
                "c_a": m["c_a"],
                "variant": variant(res.data),
                "e_eV_atom": res.energy / 2,
                "e0_eV_atom": res.data["energy_sigma0_eV"] / 2,
                "wall_s": res.data["wall_s"],
                "scf_steps": res.data["scf_steps"],
                "pressure_GPa": float(np.trace(res.data["stress_GPa_cp2k"]) / 3),
                "job": res_file.parent.name,
            }
        )
    by_mesh: dict[str, list[dict]] = {}
    for r in rows:
        by_mesh.setdefault(r["variant"], []).append(r)
    out = []
    for _, rs in sorted(by_mesh.items()):
        fcc = [r for r in rs if abs(r["c_a"] - 1.414) < 1e-9]
        for r in sorted(rs, key=lambda r: r["c_a"]):
            r["de_meV_atom"] = 1000 * (r["e_eV_atom"] - fcc[0]["e_eV_atom"]) if fcc else None
            r["de0_meV_atom"] = 1000 * (r["e0_eV_atom"] - fcc[0]["e0_eV_atom"]) if fcc else None
            out.append(r)
    fits = {}
    for name, rs in by_mesh.items():
        rs = sorted(rs, key=lambda r: r["c_a"])
        x = [r["c_a"] for r in rs]
        f_min, f_in = parabola_minimum(x, [r["e_eV_atom"] for r in rs])
        e_min, e_in = parabola_minimum(x, [r["e0_eV_atom"] for r in rs])
        fits[name] = {
            "c_a": x,
            "free_energy": {"c_a_min": f_min, "bracketed": f_in},
            "energy_sigma0": {"c_a_min": e_min, "bracketed": e_in},
        }
    cols = ["c_a", "variant", "e_eV_atom", "de_meV_atom", "de0_meV_atom", "pressure_GPa", "scf_steps", "wall_s", "job"]
    lines = [",".join(cols)] + [
        ",".join(f"{r[c]:.6f}" if isinstance(r[c], float) else str(r[c]) for c in cols) for r in out
    ]
    atomic_write_text(HERE / "summary.csv", "\n".join(lines) + "\n")
    atomic_write_json(HERE / "summary.json", {"volume_A3_atom": VOLUME, "points": out, "parabola_minimum": fits})
    print(json.dumps(fits, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mesh", type=int, nargs=3, default=BAIN_SETTINGS["kpoints"]["mesh"])
    ap.add_argument("--ca", type=float, nargs="*", default=list(CA))
    ap.add_argument("--override", default="{}", help="YAML mapping of CP2K settings (cellsim.engines.cp2k)")
    args = ap.parse_args()
    settings = resolve_settings({"kpoints": {"mesh": args.mesh}}, yaml.safe_load(args.override))
    version = cp2k_version(settings["command"])
    for ca in args.ca:
        res = single_point(
            bct(ca),
            HERE / "jobs",
            settings,
            stress=True,
            label=f"In bct c/a={ca}",
            meta={"c_a": ca, "volume_A3_atom": VOLUME, "cp2k": version},
        )
        print(f"c/a {ca}: E {res.energy / 2:.6f} eV/atom, {res.data['wall_s']} s, cached {res.cached}", flush=True)
        summarise()


if __name__ == "__main__":
    main()
