"""Benchmark: building the paper's Li6PS5Cl(001)/In(001) interface.

Side by side, in one run:
  * ``cellsim build`` as a user runs it (whole process, imports included);
  * ``cellsim.build.build_interface`` in-process;
  * pymatgen's ``CoherentInterfaceBuilder`` (the tool a user would otherwise pick) on the same planes,
    strain limit and thicknesses chosen to land near the same size; for each of its terminations we report
    the atom count and how many PS4 units are whole (it does not protect P-S bonds).

Run: ``make bench`` or ``.venv/bin/python bench/bench_build.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def ps4_whole(structure) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    sym = np.array([s.specie.symbol for s in structure])
    i, j, _, _ = structure.get_neighbor_list(2.3)
    sel = (sym[i] == "P") & (sym[j] == "S")
    cn = np.bincount(i[sel], minlength=len(structure))[sym == "P"]
    return int(np.sum(cn == 4)), len(cn)


def main() -> None:
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(sys.executable).with_name("cellsim")
        t0 = time.perf_counter()
        subprocess.run(
            [str(exe), "build", str(REPO / "workflows" / "li6ps5cl_in.yaml"), "-o", f"{tmp}/run"],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "120"},
        )
        rows.append(("cellsim build (whole process)", time.perf_counter() - t0, "see below"))

    from cellsim.build import build_interface
    from cellsim.config.study import load_study

    spec = load_study("li6ps5cl_in").interface
    t0 = time.perf_counter()
    model = build_interface(spec)
    dt = time.perf_counter() - t0
    whole, total = ps4_whole(model.structure)
    rows.append(
        (
            "cellsim build_interface (in process)",
            dt,
            f"{len(model.structure)} atoms, PS4 whole {whole}/{total}, metal strain "
            f"{100 * model.report['strain']['metal']['max_abs']:.2f} %",
        )
    )

    from pymatgen.analysis.interfaces.coherent_interfaces import CoherentInterfaceBuilder
    from pymatgen.analysis.interfaces.zsl import ZSLGenerator
    from pymatgen.core import Structure

    from cellsim.references.library import get_phase

    e_phase, m_phase = get_phase("Li6PS5Cl"), get_phase("In")
    assert e_phase is not None and m_phase is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e_bulk = Structure.from_file(e_phase.path)
        m_bulk = Structure.from_file(m_phase.path)
        t0 = time.perf_counter()
        cib = CoherentInterfaceBuilder(
            substrate_structure=e_bulk,
            film_structure=m_bulk,
            film_miller=(0, 0, 1),
            substrate_miller=(0, 0, 1),
            zslgen=ZSLGenerator(max_area=250, max_length_tol=0.03, max_angle_tol=0.03),
        )
        for term in cib.terminations:
            iface = next(
                iter(
                    cib.get_interfaces(
                        term, gap=2.5, vacuum_over_film=15, film_thickness=3, substrate_thickness=2, in_layers=True
                    )
                )
            )
            whole, total = ps4_whole(iface)
            rows.append(
                (
                    f"pymatgen CoherentInterfaceBuilder {term[1]}",
                    time.perf_counter() - t0,
                    f"{len(iface)} atoms, PS4 whole {whole}/{total}, a x b = "
                    f"{iface.lattice.a:.2f} x {iface.lattice.b:.2f} A (no atom-count target)",
                )
            )
            t0 = time.perf_counter()

    width = max(len(r[0]) for r in rows)
    print(f"{'tool':<{width}}  {'seconds':>8}  result")
    for name, sec, res in rows:
        print(f"{name:<{width}}  {sec:8.2f}  {res}")


if __name__ == "__main__":
    main()
