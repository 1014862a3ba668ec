"""Stage 6: figures and a report a scientist can put on the screen in a group meeting.

``make_report(run_dir)`` reads only the artefacts of earlier stages (:func:`~cellsim.reporting.data.load_report_data`)
and writes ``report/``: ``rdf_<pair>.png`` (RDF heat map, time x r), ``match_<pair>.png`` (RDF curves at
chosen times stacked over the candidates' reference curves), ``first_last_<pair>.png``, ``bonds.png`` (bond
counts vs time, first formation marked), ``environment_<centre>.png``, ``diagnostics.png``,
``structure.png`` (side view before and after MD with the new bonds drawn), ``report.html`` (one
self-contained file, images embedded) and ``report.md`` (same content, images beside it). The figures are
functions of arrays (:mod:`cellsim.reporting.figures`), the tables functions of the report data
(:mod:`cellsim.reporting.tables`); this module puts them together.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.config.rundir import AnalysisFiles, report_html, report_md
from cellsim.core.files import atomic_write_bytes, atomic_write_text
from cellsim.products.result import PairRecord
from cellsim.reporting.data import ReportData, Section, load_report_data
from cellsim.reporting.figures import (
    bond_plot,
    diagnostics_plot,
    environment_plot,
    first_last_plot,
    interface_views,
    rdf_heatmap,
    stacked_curves,
    to_png,
)
from cellsim.reporting.tables import sections

if TYPE_CHECKING:
    from cellsim.config.rundir import RunDir


def _atoms(species: list[str], frame: tuple[np.ndarray, np.ndarray]) -> Any:
    from ase import Atoms

    frac, cell = frame
    return Atoms(symbols=species, scaled_positions=frac, cell=cell, pbc=True)


Figures = dict[str, tuple[str, bytes]]  # file -> (caption, png)


def make_report(folder: Path, run: RunDir | None = None) -> dict[str, Path]:
    """Write the figures, report.html and report.md of an analysis folder into ``RUN/report`` or ``folder/report``."""
    d = load_report_data(folder, run)
    res = d.analysis
    out = (
        run.report_dir
        if (run is not None and res.meta.run_dir and res.meta.replica is None)
        else AnalysisFiles(folder).report_dir
    )
    figs: Figures = {}
    r = res.r
    reactant_g = _reactant_shapes(d, r, float(r[1] - r[0]))
    for pair in res.settings.pairs:
        figs.update(_pair_figures(d, pair, reactant_g.get(pair, [])))
    figs.update(_bond_figure(d))
    figs.update(_state_figures(d))
    figs.update(_structure_figure(d, run))
    _write_report(d, out, figs)
    paths = {"html": report_html(out), "md": report_md(out)}
    paths.update({name: out / name for name in figs})
    return paths


def _pair_figures(d: ReportData, pair: str, reactant_g: list[tuple[str, np.ndarray]]) -> Figures:
    """One pair's RDF heat map, its neighbour density over the best candidates', and its first and last window
    over the reactant (``reactant_g``: :func:`_reactant_shapes` of the pair) and candidate shapes."""
    res, m = d.analysis, d.match
    r = res.r
    dr = float(r[1] - r[0])
    cutoffs = res.cutoffs
    key = pair.replace("-", "")
    figs: Figures = {}
    t_edges = (float(res.t_start[0]), float(res.t_end[-1]))
    figs[f"rdf_{key}.png"] = (
        f"{pair} partial RDF per {res.settings.window_ps:g} ps window (heat map, time x r).",
        to_png(rdf_heatmap(r, t_edges, res.g[pair], pair, cutoffs.get(pair), norm=res.settings.normalisation)),
    )
    n = res.n_per_atom[pair] / dr
    nw = len(n)
    picks = sorted({0, nw // 2, nw - 1})
    curves = [(f"{res.t_start[w]:.2f}-{res.t_end[w]:.2f} ps", n[w]) for w in picks]
    refs: list[tuple[str, np.ndarray]] = []
    md_peak = None
    if m is not None:
        ranked = [x.candidate for x in m.rows if x.pair == pair][:3]
        refs = [(c, m.references[c][pair] / dr) for c in ranked if pair in m.references.get(c, {})]
        md_peak = PairRecord.from_dict(pair, m.pairs.get(pair) or {}).md_peak_r
    figs[f"match_{key}.png"] = (
        f"{pair}: neighbour density at the start, middle and end of the MD, over the broadened reference "
        "densities of the best candidates.",
        to_png(stacked_curves(r, curves, refs, pair, md_peak)),
    )
    both = [("reactant", name, g) for name, g in reactant_g]
    if m is not None:
        best = [x.candidate for x in m.rows if x.pair == pair and x.score > 0][:2]
        both += [
            ("candidate", c, _ref_g(m.references[c][pair], r, dr)) for c in best if pair in m.references.get(c, {})
        ]
    figs[f"first_last_{key}.png"] = (
        f"{pair}: g(r) of the first and the last window with their running coordination n(r), over the "
        "reactant and candidate crystals' g(r) shapes (broadened to the run's temperature).",
        to_png(
            first_last_plot(
                r,
                (f"{res.t_start[0]:.2f}-{res.t_end[0]:.2f} ps", res.g[pair][0], res.cn[pair][0]),
                (f"{res.t_start[-1]:.2f}-{res.t_end[-1]:.2f} ps", res.g[pair][-1], res.cn[pair][-1]),
                both,
                pair,
                cutoffs.get(pair),
            )
        ),
    )
    return figs


def _bond_figure(d: ReportData) -> Figures:
    """Bond counts per frame, marked where they left their starting noise."""
    res, m = d.analysis, d.match
    times = res.frame_times
    bonds = {p: (times, res.bonds[p]) for p in res.settings.pairs}

    def event(p: str, key: str) -> float | None:
        # with a match, a marker only where the answer's rule (bond_event) says formed / broken, so the figure
        # never shows a formation the answer does not; without one, the analysis' departure times
        if m is not None:
            rec = PairRecord.from_dict(p, m.pairs.get(p) or {})
            wanted, t = {
                "formation_ps": ("formed", rec.bonds.formation_ps),
                "break_ps": ("broken", rec.bonds.break_ps),
            }[key]
            return t if rec.event == wanted else None
        ev: dict[str, Any] = (d.peaks or {}).get("pairs", {}).get(p, {}).get("bonds", {})
        return ev.get(key)

    form = {p: event(p, "formation_ps") for p in bonds}
    broke = {p: event(p, "break_ps") for p in bonds}
    return {
        "bonds.png": (
            "Bond counts per frame; dashed lines: when the count rose out of its starting noise (bonds formed), "
            "dotted: when it fell out of it (bonds broke).",
            to_png(bond_plot(bonds, form, res.cutoffs, res.replica_bonds or None, broke)),
        )
    }


def _state_figures(d: ReportData) -> Figures:
    """The local environments of each analysed centre and the physical diagnostics over time."""
    figs: Figures = {}
    env = (d.peaks or {}).get("environments") or {}
    for centre, summ in env.items():
        if summ:
            figs[f"environment_{centre}.png"] = (
                f"Local environment of {centre}: neighbours within the bond cutoffs early and late in the run, "
                f"and the late environments of the {centre} atoms that changed.",
                to_png(environment_plot(summ, centre)),
            )
    if d.diagnostics is not None:
        fig = diagnostics_plot(d.diagnostics)
        if fig is not None:
            figs["diagnostics.png"] = ("Temperature, energy and order of the metal over time.", to_png(fig))
    return figs


def _structure_figure(d: ReportData, run: RunDir | None) -> Figures:
    """Side views before (as built, where the run directory has it) and after the MD, with the new bonds."""
    res, m = d.analysis, d.match
    if res.first_frame is None or res.last_frame is None or not res.species:
        return {}
    new = [p for p, v in (m.pair_records.items() if m else []) if v.has_new]
    shown = {
        p: float(res.cutoffs.get(p, 3.0)) for p in (new or [p for p in res.settings.pairs if not p.startswith("P-")])
    }
    before = _atoms(res.species, res.first_frame)
    titles = ("first frame", "last frame")
    if run is not None and res.meta.run_dir and run.interface_poscar.is_file():
        from cellsim.io.poscar import read_poscar_atoms

        built = read_poscar_atoms(run.interface_poscar)
        if built.get_chemical_symbols() == res.species:
            before, titles = built, ("as built", "after MD")
    return {
        "structure.png": (
            f"Side view (x-z), {titles[0]} and {titles[1]}; coloured lines: bonds of the pairs that gained "
            "neighbours (or the analysed metal pairs).",
            to_png(interface_views(before, _atoms(res.species, res.last_frame), shown, titles)),
        )
    }


def _write_report(d: ReportData, out: Path, figs: Figures) -> None:
    """The figures, report.html and report.md into ``out``, staged and swapped in: a kill leaves the previous
    report or the new one."""
    from cellsim.core.files import recover_dir, replace_dir, staging_dir

    recover_dir(out)
    stage = staging_dir(out)
    try:
        for name, (_, png) in figs.items():
            atomic_write_bytes(stage / name, png)
        tables = sections(d)
        atomic_write_text(report_html(stage), _html(d, tables, figs))
        atomic_write_text(report_md(stage), _markdown(d, tables, figs))
        replace_dir(stage, out)
    except BaseException:
        import shutil

        shutil.rmtree(stage, ignore_errors=True)
        raise


def _ref_g(n: np.ndarray, r: np.ndarray, dr: float) -> np.ndarray:
    """A neighbour density per bin as a g(r) shape (divided by the shell volume; only the shape is drawn)."""
    shell = 4.0 * np.pi * np.maximum(r, dr) ** 2 * dr
    return n / shell


def _reactant_shapes(d: ReportData, r: np.ndarray, dr: float) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Per analysed pair, the g(r) shapes of the reactant crystals that hold it (broadened to T)."""
    import math
    import warnings

    from cellsim.products.scores import reference_density
    from cellsim.references.reactants import Reactants, reactant_structures

    res = d.analysis
    react = Reactants.from_dict(res.meta.reactants)
    if not react.phases:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structs = reactant_structures(react)
    except Exception:  # a reactant file gone since the analysis: the figure goes without it
        return {}
    sigma = 0.08 * math.sqrt(res.temperature_K / 300.0)
    rmax = float(r[-1] + dr / 2)
    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    for pair in res.settings.pairs:
        for name, s in structs.items():
            n = reference_density(s, pair, rmax, dr, sigma)
            if n.max() > 0:
                out.setdefault(pair, []).append((name, _ref_g(n, r, dr)))
    return out


_CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}th{background:#f3f3f3}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
.note{font-size:.85em;color:#555}"""


def _html(d: ReportData, sections: list[Section], figs: dict[str, tuple[str, bytes]]) -> str:
    footer = f"Made by cellsim from the analysis in {d.folder}" + (
        f" of run directory {d.run.root}" if d.run is not None else ""
    )
    return page_html(f"cellsim report: {d.name}", d.study.get("description", ""), sections, figs, footer + ".")


def page_html(
    title: str, intro: str, sections: list[Section], figs: dict[str, tuple[str, bytes]], footer: str = ""
) -> str:
    """One self-contained HTML page: the title, a paragraph, the tables in order, the figures embedded as PNG.

    Parameters
    ----------
    title, intro, footer
        Plain text (escaped here).
    sections
        ``(title, header, rows, note)`` per table; an empty header draws none.
    figs
        File name -> (caption, PNG bytes), in order.
    """
    e = html.escape
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{e(intro)}</p>",
    ]
    for name, header, rows, note in sections:
        parts.append(f"<h2>{e(name)}</h2><table>")
        if any(header):
            parts.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>")
        parts.append("</table>")
        if note:
            parts.append(f"<p class='note'>{e(note)}</p>")
    parts.append("<h2>Figures</h2>")
    for fname, (caption, png) in figs.items():
        b64 = base64.b64encode(png).decode()
        parts.append(
            f"<figure><img alt='{e(fname)}' src='data:image/png;base64,{b64}'>"
            f"<figcaption>{e(caption)}</figcaption></figure>"
        )
    parts.append((f"<p class='note'>{e(footer)}</p>" if footer else "") + "</body></html>")
    return "\n".join(parts)


def _markdown(d: ReportData, sections: list[Section], figs: dict[str, tuple[str, bytes]]) -> str:
    return page_markdown(f"cellsim report: {d.name}", d.study.get("description", ""), sections, figs)


def page_markdown(title: str, intro: str, sections: list[Section], figs: dict[str, tuple[str, bytes]]) -> str:
    """The Markdown twin of :func:`page_html`: the same tables, the figures as files beside it."""
    lines = [f"# {title}", "", intro, ""]
    for name, header, rows, note in sections:
        lines += [f"## {name}", ""]
        head = header if any(header) else ["", ""]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for row in rows:
            lines.append("| " + " | ".join(str(c).replace("|", "/") for c in row) + " |")
        if note:
            lines += ["", note]
        lines.append("")
    lines += ["## Figures", ""]
    for fname, (caption, _) in figs.items():
        lines += [f"![{caption}]({fname})", "", f"*{caption}*", ""]
    return "\n".join(lines)
