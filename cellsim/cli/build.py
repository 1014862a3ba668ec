"""Commands of the build stage: build, inputs, study-schema and the reference library (refs)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from cellsim import stages
from cellsim.cli._app import app, console, fail, refs_app
from cellsim.core.errors import CellsimError


def _thickness(side: dict[str, Any]) -> str:
    """Layers and the thickness the ``min_thickness`` floor was checked against (older reports: atoms' span)."""
    n = side["layers"]
    if "layer_thickness" not in side or "atom_extent" not in side:
        return f"{n} layer{'s' if n != 1 else ''}, {side['thickness']:.1f} A"
    floor = f" >= {side['min_thickness']:g} A" if side.get("min_thickness") is not None else ""
    return (
        f"{n} layer{'s' if n != 1 else ''} x {side['layer_thickness']:.2f} A = {side['thickness']:.2f} A{floor} "
        f"(atoms span {side['atom_extent']:.2f} A)"
    )


def _print_build(report: dict[str, Any], run_dir: Path, seconds: float) -> None:
    e, m = report["electrolyte"], report["metal"]
    from rich.table import Table

    t = Table(title=f"interface: {report['formula']} ({report['n_atoms']} atoms)", show_header=False)
    t.add_row(
        "cell",
        f"{report['cell']['a']:.3f} x {report['cell']['b']:.3f} x {report['cell']['c']:.3f} A, "
        f"gamma {report['cell']['gamma_deg']:.2f} deg, area {report['area']:.1f} A^2",
    )
    for label, side in (("electrolyte", e), ("metal", m)):
        st = report["strain"][label]
        t.add_row(
            label,
            f"{side['phase']}{tuple(side['miller'])}: {_thickness(side)}, {side['atoms']} atoms; "
            f"faces interface with {side['termination']['facing_interface']}; "
            f"strain {100 * st['max_abs']:.2f} % (area {100 * st['area']:+.2f} %)",
        )
    t.add_row("gap / vacuum", f"{report['gap']} A / {report['vacuum']} A")
    lat = report.get("lattice")
    if lat:
        for side in ("metal", "electrolyte"):
            d = lat[side]
            t.add_row(
                f"{side} lattice",
                f"{lat['engine']}'s own: abc {' '.join(f'{x:.3f}' for x in d['engine_abc'])} A, "
                f"{' '.join(f'{100 * x:+.2f}' for x in d['engine_vs_reference'])} % vs {d['reference']}",
            )
    cp = report["closest_pair"]
    t.add_row("closest pair", f"{cp['species'][0]}-{cp['species'][1]} {cp['distance']:.3f} A")
    ci = report.get("closest_interface_pair")
    if ci:
        t.add_row("closest across", f"{ci['species'][0]}-{ci['species'][1]} {ci['distance']:.3f} A")
    if report.get("ps4"):
        ps4 = report["ps4"]
        t.add_row(
            "PS4 units",
            f"{ps4['count']} of {ps4['p_atoms']} P whole" + ("" if ps4["intact"] else " (BROKEN)"),
        )
    st = report["electrolyte_stoichiometry"]
    t.add_row(
        "electrolyte",
        f"{st['formula']} = {st['formula_units']:g} x {st['bulk_formula']}"
        + ("" if st["stoichiometric"] else f", off by {st['deviation_atoms']}"),
    )
    console.print(t)
    console.print(f"wrote {run_dir}/interface/{{POSCAR, interface.cif, interface.json}} in {seconds:.1f} s")


@app.command()
def build(
    study: Annotated[str, typer.Argument(help="study YAML file, or the name of a bundled study")],
    out: Annotated[Path, typer.Option("-o", "--out", help="run directory")] = Path("runs/study"),
    force: Annotated[bool, typer.Option(help="rebuild and replace an existing interface/study")] = False,
) -> None:
    """Build the slab interface: RUN_DIR/interface/{POSCAR, interface.cif, interface.json}."""
    t0 = time.perf_counter()
    try:
        with console.status("building the interface"):
            outcome = stages.build(study, out, force=force)
    except CellsimError as exc:
        fail(exc)
    if outcome.reused:
        console.print(f"[dim]interface already built: {outcome.run_dir.interface_json} (use --force to rebuild)[/]")
    _print_build(outcome.report, out, time.perf_counter() - t0)


@app.command()
def inputs(
    run_dir: Annotated[Path, typer.Argument(help="run directory made by `cellsim build`")],
    force: Annotated[bool, typer.Option(help="rewrite inputs of a segment that already has output")] = False,
    code: Annotated[str, typer.Option(help="vasp, or cp2k (PBE from templates/cp2k/pbe.yaml + engine.cp2k)")] = "vasp",
) -> None:
    """AIMD inputs: VASP's (PBE-PAW, NVT Nose, 500 eV, 2 fs, Gamma point, 300 K by default) for the first
    segment, or with ``--code cp2k`` CP2K's (NVT Nose chain, the study's T and dt) for every segment, each
    later one restarting from the previous one's restart file."""
    from cellsim.stages.building import cp2k_inputs

    try:
        if code not in ("vasp", "cp2k"):
            raise CellsimError(f"--code {code!r}: expected vasp or cp2k")
        if code == "cp2k":
            print_cp2k_inputs(cp2k_inputs(run_dir, force))
            return
        rep = stages.inputs(run_dir, force)
    except CellsimError as exc:
        fail(exc)
    print_inputs(rep)


def print_cp2k_inputs(rep: Any) -> None:
    s = rep.settings
    console.print(
        f"wrote cp2k.inp in {len(rep.segment_dirs)} segment(s): {', '.join(d.name for d in rep.segment_dirs)}"
    )
    console.print(
        f"CP2K: PBE, {s['basis_set']}, {s['pseudopotential']}, {s['cutoff']}/{s['rel_cutoff']} Ry, Gamma; NVT "
        f"Nose chain (time constant {rep.md['timecon_fs']:g} fs); STEPS {', '.join(map(str, rep.steps))}; run each "
        "with `cp2k.psmp -i cp2k.inp -o cp2k.out` in its folder, in order"
    )


def print_inputs(rep: Any) -> None:
    tags = ", ".join(f"{k}={rep.incar[k]}" for k in ("IBRION", "MDALGO", "SMASS", "POTIM", "TEBEG", "NSW", "ENCUT"))
    console.print(
        f"wrote {rep.segment_dir}/{{INCAR, KPOINTS, POSCAR, {'POTCAR.spec' if rep.potcar_spec else 'POTCAR'}}}"
    )
    console.print(f"INCAR: {tags}; {len(rep.segments)} segment(s) of NSW {rep.segments[0]} planned (md/plan.json)")
    if rep.potcar_spec:
        console.print(
            "[yellow]notice:[/] PMG_VASP_PSP_DIR is not set, so POTCAR.spec lists the PBE symbols "
            f"({' '.join(rep.potcar_symbols)}); set it to write the licensed POTCAR itself."
        )


@refs_app.command("list")
def refs_list() -> None:
    """List the phases of the offline reference library."""
    from rich.table import Table

    from cellsim.references.library import library

    t = Table(title="cellsim reference library (offline)")
    for col in ("name", "space group", "origin", "MP id", "file"):
        t.add_column(col)
    for p in library().values():
        t.add_row(p.name, f"{p.spacegroup} ({p.spacegroup_number})", p.origin, p.mp_id or "-", p.file)
    console.print(t)
    from cellsim.references import mp

    cached = mp.cached()
    if cached:
        _print_mp_table(f"Materials Project cache ({mp.cache_dir()})", cached)


def _print_mp_table(title: str, phases: list[Any]) -> None:
    from rich.table import Table

    t = Table(title=title)
    for col in ("MP id", "formula", "space group", "E_hull (eV/atom)"):
        t.add_column(col)
    for p in phases:
        t.add_row(p.material_id, p.formula, p.spacegroup, f"{p.energy_above_hull:.3f}")
    console.print(t)


@refs_app.command("fetch")
def refs_fetch(
    query: Annotated[str, typer.Argument(help="formula (In2S3) or chemical system (In-S-Cl)")],
    e_hull: Annotated[float, typer.Option(help="max energy above hull, eV/atom")] = 0.05,
) -> None:
    """Fetch phases from the Materials Project (needs MP_API_KEY and network) into the local cache."""
    from cellsim.references import mp

    try:
        phases = mp.fetch(query, e_hull)
    except mp.MPUnavailable as exc:
        fail(CellsimError(f"Materials Project not reachable: {exc}; the bundled library stays available offline"))
        return
    except CellsimError as exc:
        fail(exc)
        return
    _print_mp_table(f"Materials Project: {query} (E_hull <= {e_hull} eV/atom), cached in {mp.cache_dir()}", phases)


@refs_app.command("show")
def refs_show(name: Annotated[str, typer.Argument(help="library name, e.g. In2S3")]) -> None:
    """Formula, space group, lattice, source and first-shell distances of one library phase."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from cellsim.core.errors import PhaseNotFoundError
    from cellsim.references.library import get_phase, library

    phase = get_phase(name)
    if phase is None:
        fail(PhaseNotFoundError(f"unknown phase '{name}'; known: {', '.join(library())}"))
        return
    s = phase.structure()
    with warnings.catch_warnings():
        # spglib (>= 2.5) deprecates the old error handling that pymatgen's SpacegroupAnalyzer switches on;
        # harmless (the space group found is the same)
        warnings.filterwarnings("ignore", message="Set OLD_ERROR_HANDLING to false", category=DeprecationWarning)
        sga = SpacegroupAnalyzer(s, symprec=0.1)
    lat = s.lattice
    from rich.table import Table

    t = Table(title=f"{phase.name} ({phase.file})", show_header=False)
    t.add_row("formula", f"{s.composition.reduced_formula} (cell: {s.composition.formula}, {len(s)} atoms)")
    t.add_row(
        "space group",
        f"{sga.get_space_group_symbol()} ({sga.get_space_group_number()}), checked from the CIF",
    )
    t.add_row(
        "lattice",
        f"a={lat.a:.4f} b={lat.b:.4f} c={lat.c:.4f} A; "
        f"alpha={lat.alpha:.2f} beta={lat.beta:.2f} gamma={lat.gamma:.2f} deg",
    )
    t.add_row("density", f"{s.density:.3f} g/cm3")
    t.add_row("first shell", "; ".join(f"{k} {v} A" for k, v in phase.first_shell.items()))
    t.add_row("origin", phase.origin)
    t.add_row("source", phase.source)
    t.add_row("MP id", phase.mp_id_note)
    console.print(t)


@app.command("study-schema")
def study_schema() -> None:
    """Print every study field with its default (a complete study file to start from)."""
    from cellsim.config.study import Study

    console.print(Study(name="my_study").to_yaml(), highlight=False, markup=False)


# the bundled studies' reactant pairs (electrolyte, metal): what `refs pbe` answers when given none
BUNDLED_PAIRS = (("Li6PS5Cl", "In"), ("Li6PS5Cl", "LiIn"), ("Li6PS5Cl", "Li"), ("Li3PS4", "In"))


@refs_app.command("pbe")
def refs_pbe(
    pair: Annotated[
        list[str] | None,
        typer.Argument(help="ELECTROLYTE,METAL pairs, e.g. Li6PS5Cl,In (default: the bundled studies' pairs)"),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the hull and the reactions as JSON")] = None,
    plot: Annotated[Path | None, typer.Option(help="write the reaction-energy curves as a PNG")] = None,
) -> None:
    """The PBE phase diagram computed by cellsim (data/pbe/phases_pw): each phase's formation energy and distance
    from the hull, and the metal + electrolyte reactions, closed and at the Li-In alloy's Li potential."""
    from rich.table import Table

    from cellsim.core.files import atomic_write_json
    from cellsim.references import pbe

    phases = pbe.stored_phases()
    if not phases:
        fail(CellsimError("no stored PBE phases in this install (data/pbe/phases_pw/index.json)"))
        return
    pairs: list[tuple[str, str]] = []
    for text in pair or [",".join(p) for p in BUNDLED_PAIRS]:
        parts = [x.strip() for x in text.split(",")]
        if len(parts) != 2 or not all(parts):
            fail(CellsimError(f"pair {text!r}: expected ELECTROLYTE,METAL, e.g. Li6PS5Cl,In"))
            return
        pairs.append((parts[0], parts[1]))
    rows = pbe.hull_table(phases)
    mp = {r["phase"]: r for r in pbe.hull_table(phases, mp2020=True)}
    t = Table(title=f"PBE phases: {pbe.SOURCE}")
    for col in (
        "phase",
        "atoms",
        "k-mesh",
        "E_f eV/atom",
        "E_hull meV/atom",
        "E_hull MP2020",
        "max |F| eV/A",
        "P GPa",
        "decomposes to",
    ):
        t.add_column(col)
    for r in rows:
        ph = phases[r["phase"]]
        t.add_row(
            r["phase"],
            str(ph.natoms),
            "x".join(map(str, ph.kpts)),
            f"{r['formation_eV_per_atom']:.3f}",
            f"{1000 * r['e_above_hull_eV_per_atom']:.0f}",
            f"{1000 * mp[r['phase']]['e_above_hull_eV_per_atom']:.0f}" if r["phase"] in mp else "-",
            f"{ph.max_force:.3f}",
            f"{ph.pressure_GPa:+.1f}",
            " + ".join(r["decomposes_to"]) or "-",
        )
    console.print(t)
    answers = {f"{m}|{e}": pbe.interface_thermo(e, m, phases=phases) for e, m in pairs}
    for key, ans in answers.items():
        if "skipped" in ans:
            console.print(f"{key}: {ans['skipped']}")
            continue
        console.print(f"{key}: {ans['sentence']}" + ("; MP2020 changes a sign" if ans["mp2020_changes_sign"] else ""))
    if json_out is not None:
        atomic_write_json(
            json_out, {"source": pbe.SOURCE, "hull": rows, "hull_mp2020": list(mp.values()), "interfaces": answers}
        )
        console.print(f"wrote {json_out}")
    if plot is not None:
        from cellsim.core.files import atomic_write_bytes
        from cellsim.reporting.figures import mixing_plot, to_png

        fig = mixing_plot({k: a for k, a in answers.items() if "closed" in a})
        atomic_write_bytes(plot, to_png(fig))
        console.print(f"wrote {plot}")
