"""Stage 6: figures and a report a scientist can put on the screen in a group meeting.

``make_report(run_dir)`` reads only the artefacts of earlier stages and writes ``report/``:
``rdf_<pair>.png`` (RDF heat map, time x r, like the upper panel of Fig. 5b of Luo et al. 2021),
``match_<pair>.png`` (RDF curves at chosen times stacked over the candidates' reference curves, like its
lower panel), ``bonds.png`` (bond counts vs time, first formation marked), ``interface.png`` (side view
before and after MD with the new bonds drawn, like Fig. 5a), ``report.html`` (one self-contained file,
images embedded) and ``report.md`` (same content, images beside it). Plotting functions take arrays and
return figures; the data loading lives in :func:`load_run`.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.errors import RunDirError
from cellsim.fileio import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PAIR_COLOURS = ["#d62728", "#2ca02c", "#1f77b4", "#9467bd", "#ff7f0e", "#8c564b"]


@dataclass
class RunData:
    """Everything the report shows, read from a run directory."""

    run_dir: Path
    study: dict[str, Any]
    interface: dict[str, Any] | None
    rdf: dict[str, Any] | None
    peaks: dict[str, Any] | None
    bonds: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    products: list[dict[str, str]] = field(default_factory=list)
    match: dict[str, Any] | None = None
    refs: dict[str, np.ndarray] = field(default_factory=dict)
    engine: list[dict[str, Any]] = field(default_factory=list)


def load_run(run_dir: Path) -> RunData:
    """Read the artefacts of every finished stage (missing later stages are simply absent)."""
    import yaml

    from cellsim.analysis.analyze import load_rdf

    if not (run_dir / "study.yaml").is_file():
        raise RunDirError(f"{run_dir}/study.yaml: not a run directory")
    a = run_dir / "analysis"
    if not (a / "rdf.npz").is_file():
        raise RunDirError(f"{a / 'rdf.npz'}: no analysis yet; run `cellsim analyze {run_dir}` first")
    data = RunData(
        run_dir=run_dir,
        study=yaml.safe_load((run_dir / "study.yaml").read_text()),
        interface=_json(run_dir / "interface" / "interface.json"),
        rdf=load_rdf(a / "rdf.npz"),
        peaks=_json(a / "peaks.json"),
        match=_json(a / "match.json"),
    )
    if (a / "bonds.csv").is_file():
        rows = [ln for ln in (a / "bonds.csv").read_text().splitlines() if not ln.startswith("#")]
        per: dict[str, list[tuple[float, int]]] = {}
        for row in csv.DictReader(rows):
            per.setdefault(row["pair"], []).append((float(row["time_ps"]), int(row["count"])))
        data.bonds = {p: (np.array([t for t, _ in v]), np.array([c for _, c in v])) for p, v in per.items()}
    if (a / "products.csv").is_file():
        data.products = list(csv.DictReader((a / "products.csv").read_text().splitlines()))
    if (a / "ref_rdf.npz").is_file():
        with np.load(a / "ref_rdf.npz") as z:
            data.refs = {k: z[k] for k in z.files}
    for seg in sorted((run_dir / "md").glob("seg-*")):
        info = _json(seg / "engine.json")
        if info:
            data.engine.append(info)
    return data


def _json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


# --------------------------------------------------------------------------- figures (arrays in, figure out)


def rdf_heatmap(
    r: np.ndarray,
    t_edges: tuple[float, float],
    g: np.ndarray,
    pair: str,
    cutoff: float | None,
    r_range: tuple[float, float] = (1.5, 6.0),
    norm: str = "cell",
) -> Figure:
    """g(r) per window as a time x r map; the bond cutoff as a dashed line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    sel = (r >= r_range[0]) & (r <= r_range[1])
    extent = (t_edges[0], t_edges[1], float(r[sel][0]), float(r[sel][-1]))
    im = ax.imshow(g[:, sel].T, origin="lower", aspect="auto", extent=extent, cmap="viridis", interpolation="nearest")
    if cutoff:
        ax.axhline(cutoff, color="w", ls="--", lw=1, label=f"bond cutoff {cutoff:g} A")
        ax.legend(loc="upper right", fontsize=8, framealpha=0.5)
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("r (A)")
    ax.set_title(f"{pair} partial RDF over time")
    fig.colorbar(im, ax=ax, label=f"g(r) ({norm} volume)")
    return fig


def stacked_curves(
    r: np.ndarray,
    curves: list[tuple[str, np.ndarray]],
    refs: list[tuple[str, np.ndarray]],
    pair: str,
    md_peak: float | None,
    r_range: tuple[float, float] = (1.5, 4.2),
) -> Figure:
    """MD neighbour densities at chosen times (top) stacked over reference densities (bottom).

    Each curve is scaled to its own maximum in the plotted range: an interface has far fewer A-B
    neighbours per A atom than a bulk product, and the comparison is of peak positions and shapes.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 5.2), layout="constrained")
    ax = fig.add_subplot()
    sel = (r >= r_range[0]) & (r <= r_range[1])

    def unit(c: np.ndarray) -> np.ndarray:
        top = float(c[sel].max())
        return c[sel] / top if top > 0 else c[sel]

    step = 1.25
    offset = 0.0
    for label, c in reversed(refs):
        ax.plot(r[sel], unit(c) + offset, color="0.35", lw=1.5)
        ax.text(r_range[0] + 0.05, offset + 1.02, f"{label} (reference)", fontsize=8, color="0.25", va="bottom")
        offset += step
    cmap = ["#440154", "#31688e", "#35b779", "#fde725"]
    for k, (label, c) in enumerate(curves):
        ax.plot(r[sel], unit(c) + offset, color=cmap[k % len(cmap)], lw=1.8)
        ax.text(r_range[0] + 0.05, offset + 1.02, f"MD {label}", fontsize=8, va="bottom")
        offset += step
    if md_peak is not None:
        ax.axvline(md_peak, color="#d62728", ls=":", lw=1.2, label=f"new MD peak {md_peak:.2f} A")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks([])
    ax.set_xlabel("r (A)")
    ax.set_ylabel("neighbour density, each curve scaled to its maximum (offset)")
    ax.set_title(f"{pair}: first shells, MD at chosen times over candidate products")
    return fig


def bond_plot(
    bonds: dict[str, tuple[np.ndarray, np.ndarray]], first: dict[str, float | None], cutoffs: dict[str, float]
) -> Figure:
    """Bond counts per frame, with the first formation of each bond type marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for k, (pair, (t, c)) in enumerate(bonds.items()):
        col = PAIR_COLOURS[k % len(PAIR_COLOURS)]
        ax.plot(t, c, color=col, lw=1.2, label=f"{pair} (< {cutoffs.get(pair, float('nan')):g} A)")
        if first.get(pair) is not None:
            ax.axvline(float(first[pair]), color=col, ls="--", lw=1)  # type: ignore[arg-type]
            ax.annotate(
                f"first {pair}\n{first[pair]:.3f} ps", (first[pair], ax.get_ylim()[1] * 0.9), fontsize=7, color=col
            )
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("bonds")
    ax.set_title("bond counts over time")
    ax.legend(fontsize=8)
    return fig


def interface_views(before: Any, after: Any, new_pairs: dict[str, float]) -> Figure:
    """Side views (x-z) of two ASE Atoms with the bonds of ``new_pairs`` ({pair: cutoff}) drawn."""
    from ase.data import atomic_numbers, covalent_radii
    from ase.data.colors import jmol_colors
    from ase.neighborlist import neighbor_list
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 5.0), layout="constrained")
    for k, (atoms, title) in enumerate(((before, "as built"), (after, "after MD"))):
        ax = fig.add_subplot(1, 2, k + 1)
        pos = atoms.get_positions()
        sym = np.array(atoms.get_chemical_symbols())
        order = np.argsort(pos[:, 1])  # draw back to front
        z = np.array([atomic_numbers[s] for s in sym])
        ax.scatter(
            pos[order, 0],
            pos[order, 2],
            s=40 * covalent_radii[z[order]] ** 2,
            c=jmol_colors[z[order]],
            edgecolors="k",
            linewidths=0.3,
            zorder=2,
        )
        counts = []
        for m, (pair, cut) in enumerate(new_pairs.items()):
            a, b = pair.split("-")
            i, j, D = neighbor_list("ijD", atoms, cut)
            sel = (sym[i] == a) & (sym[j] == b)
            counts.append(f"{pair}: {int(sel.sum())}")
            for ii, dd in zip(i[sel], D[sel], strict=True):
                p0 = pos[ii]
                ax.plot(
                    [p0[0], p0[0] + dd[0]],
                    [p0[2], p0[2] + dd[2]],
                    color=PAIR_COLOURS[m % len(PAIR_COLOURS)],
                    lw=2.2,
                    zorder=3,
                )
        ax.set_aspect("equal")
        ax.set_title(f"{title}  ({', '.join(counts)} bonds)", fontsize=10)
        ax.set_xlabel("x (A)")
        if k == 0:
            ax.set_ylabel("z (A)")
    handles = []
    from matplotlib.lines import Line2D

    for s in sorted(set(before.get_chemical_symbols()), key=lambda s: atomic_numbers[s]):
        handles.append(Line2D([], [], marker="o", ls="", color=jmol_colors[atomic_numbers[s]], mec="k", label=s))
    for m, pair in enumerate(new_pairs):
        handles.append(Line2D([], [], color=PAIR_COLOURS[m % len(PAIR_COLOURS)], lw=2.2, label=f"{pair} bond"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    return fig


# --------------------------------------------------------------------------- the report


def _png(fig: Figure) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def _frames(run_dir: Path) -> tuple[Any, Any] | None:
    """First and last MD configurations as ASE Atoms (interface POSCAR if there is no MD)."""
    from ase.io import read

    from cellsim.trajectory import iter_segments, read_header

    segs = sorted(p for p in (run_dir / "md").glob("seg-*/XDATCAR"))
    poscar = run_dir / "interface" / "POSCAR"
    if not poscar.is_file():
        return None
    start = read(poscar, format="vasp")
    assert not isinstance(start, list)
    if not segs:
        return start, start
    last = None
    for _, block in iter_segments(segs):
        last = block
    if last is None:
        return start, start
    hdr = read_header(segs[0])
    after = start.copy()
    after.set_chemical_symbols(hdr.species)
    after.set_cell(last.cells[-1])
    after.set_scaled_positions(last.frac[-1])
    return start, after


def make_report(run_dir: Path) -> dict[str, Path]:
    """Write the figures, report.html and report.md of ``run_dir`` into ``run_dir/report``."""
    import matplotlib

    matplotlib.use("Agg")
    d = load_run(run_dir)
    assert d.rdf is not None
    out = run_dir / "report"
    figs: dict[str, tuple[str, bytes]] = {}  # file -> (caption, png)
    r = d.rdf["r"]
    t_edges = (float(d.rdf["t_start_ps"][0]), float(d.rdf["t_end_ps"][-1]))
    cutoffs = (d.study.get("analysis") or {}).get("bond_cutoffs", {})
    norm = (d.peaks or {}).get("normalisation", "cell")
    ranked = _ranked_products(d.products)
    dr = float(r[1] - r[0])
    for pair in d.rdf["pairs"]:
        key = pair.replace("-", "")
        figs[f"rdf_{key}.png"] = (
            f"{pair} partial RDF per {d.peaks['window_ps'] if d.peaks else ''} ps window (heat map, time x r).",
            _png(rdf_heatmap(r, t_edges, d.rdf["g"][pair], pair, cutoffs.get(pair), norm=norm)),
        )
        n = d.rdf["n_per_atom"][pair] / dr
        nw = len(n)
        picks = sorted({0, nw // 2, nw - 1})
        curves = [(f"{d.rdf['t_start_ps'][w]:.2f}-{d.rdf['t_end_ps'][w]:.2f} ps", n[w]) for w in picks]
        refs = [(c, d.refs[f"{c}|{pair}"] / dr) for c in ranked.get(pair, [])[:3] if f"{c}|{pair}" in d.refs]
        md_peak = (d.match or {}).get("pairs", {}).get(pair, {}).get("md_peak_r")
        figs[f"match_{key}.png"] = (
            f"{pair}: neighbour density at the start, middle and end of the MD, over the broadened reference "
            "densities of the best candidates.",
            _png(stacked_curves(r, curves, refs, pair, md_peak)),
        )
    if d.bonds:
        first = {
            p: (d.peaks or {}).get("pairs", {}).get(p, {}).get("bonds", {}).get("first_formation_ps") for p in d.bonds
        }
        figs["bonds.png"] = (
            "Bond counts per frame; dashed lines: first formation.",
            _png(bond_plot(d.bonds, first, cutoffs)),
        )
    frames = _frames(run_dir)
    if frames is not None:
        new = [p for p, v in ((d.match or {}).get("pairs") or {}).items() if v.get("has_new")]
        shown = {p: float(cutoffs.get(p, 3.0)) for p in (new or [p for p in d.rdf["pairs"] if not p.startswith("P-")])}
        figs["interface.png"] = (
            "Side view (x-z) of the interface before and after MD; coloured lines: bonds of the pairs that "
            "gained neighbours (or the analysed metal pairs).",
            _png(interface_views(frames[0], frames[1], shown)),
        )
    for name, (_, png) in figs.items():
        atomic_write_bytes(out / name, png)
    sections = _sections(d)
    paths = {
        "html": atomic_write_text(out / "report.html", _html(d, sections, figs)),
        "md": atomic_write_text(out / "report.md", _markdown(d, sections, figs)),
    }
    paths.update({name: out / name for name in figs})
    return paths


def _ranked_products(products: list[dict[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in sorted(products, key=lambda x: int(x["rank"])):
        out.setdefault(row["pair"], []).append(row["candidate"])
    return out


def _side(side: dict[str, Any]) -> str:
    return f"{side['phase']}{tuple(side['miller'])}, {side['layers']} layers, {side['atoms']} atoms"


def _sections(d: RunData) -> list[tuple[str, list[str], list[list[str]], str]]:
    """(title, header, rows, note) tables shared by the HTML and Markdown reports."""
    sections = []
    i = d.interface
    if i:
        strain = i["strain"][i["strained"]]
        rows = [
            ["atoms", f"{i['n_atoms']} ({i['formula']})"],
            ["cell", f"{i['cell']['a']:.2f} x {i['cell']['b']:.2f} x {i['cell']['c']:.2f} A, area {i['area']:.1f} A^2"],
            [
                "electrolyte",
                _side(i["electrolyte"])
                + f", faces the metal with {i['electrolyte']['termination']['facing_interface']}",
            ],
            [
                "metal",
                _side(i["metal"]),
            ],
            ["strain", f"{i['strained']} {100 * strain['max_abs']:.2f} % (area {100 * strain['area']:+.2f} %)"],
            ["gap / vacuum", f"{i['gap']} A / {i['vacuum']} A"],
            ["PS4 units", f"{i['ps4']['count']} of {i['ps4']['p_atoms']} whole" if i.get("ps4") else "-"],
        ]
        sections.append(("Interface model", ["", ""], rows, ""))
    if d.engine:
        e0 = d.engine[0]
        steps = sum(int(e.get("steps_done", 0)) for e in d.engine)
        rows = [
            ["engine", f"{e0.get('engine')} ({e0.get('model')})"],
            ["thermostat", f"{e0.get('thermostat')}, {e0.get('temperature_K')} K, tdamp {e0.get('tdamp_fs')} fs"],
            [
                "time",
                f"{steps} steps x {e0.get('timestep_fs')} fs = {steps * float(e0.get('timestep_fs', 0)) / 1000:.3f} ps "
                f"in {len(d.engine)} segment(s)",
            ],
        ]
        sections.append(("Molecular dynamics", ["", ""], rows, ""))
    if d.peaks:
        rows = []
        for p, info in d.peaks["pairs"].items():
            b = info["bonds"]
            grown = b.get("first_above_as_built_ps")
            rows.append(
                [
                    p,
                    f"{info['bond_cutoff']:g}",
                    str(b.get("as_built", "-")),
                    f"{b['initial']} -> {b['final']} (min {b['min']}, max {b['max']})",
                    f"{grown:.3f}" if grown is not None else "-",
                    ", ".join(f"{x['r']:.2f}" for x in info["new_peaks"]) or "-",
                ]
            )
        sections.append(
            (
                "Bonds and new RDF peaks",
                [
                    "pair",
                    "cutoff (A)",
                    "as built",
                    "MD first -> last frame",
                    "first above as built (ps)",
                    "new peaks vs first window (A)",
                ],
                rows,
                f"g(r) normalised by the {d.peaks['normalisation']} volume; {d.peaks['frames']} frames, "
                f"{d.peaks['windows']} windows of {d.peaks['window_ps']} ps. 'As built' counts bonds in the "
                "interface before relaxation and MD.",
            )
        )
    if d.products:
        rows = [
            [
                x["pair"],
                x["rank"],
                x["candidate"],
                x["formula"],
                x["space_group"],
                x["md_peak_r"],
                x["ref_peak_r"],
                x["delta_r"],
                x["score"],
                x["source"],
            ]
            for x in d.products
            if int(x["rank"]) <= 3
        ]
        thr = (d.match or {}).get("threshold", 0.5)
        notes = "; ".join((d.match or {}).get("notes", []))
        sections.append(
            (
                "Candidate products",
                [
                    "pair",
                    "rank",
                    "candidate",
                    "formula",
                    "space group",
                    "MD peak (A)",
                    "ref. peak (A)",
                    "delta r (A)",
                    "score",
                    "source",
                ],
                rows,
                f"Score 0-1 per pair (>= {thr} counts as a match); overall = sum over pairs. {notes}",
            )
        )
    return sections


_CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}th{background:#f3f3f3}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
.note{font-size:.85em;color:#555}"""


def _html(
    d: RunData, sections: list[tuple[str, list[str], list[list[str]], str]], figs: dict[str, tuple[str, bytes]]
) -> str:
    e = html.escape
    name = d.study.get("name", d.run_dir.name)
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>cellsim report: {e(name)}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>cellsim report: {e(name)}</h1>",
        f"<p>{e(d.study.get('description', ''))}</p>",
    ]
    for title, header, rows, note in sections:
        parts.append(f"<h2>{e(title)}</h2><table>")
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
    parts.append(
        "<p class='note'>Made by cellsim from the files in this run directory "
        "(interface/, md/, analysis/).</p></body></html>"
    )
    return "\n".join(parts)


def _markdown(
    d: RunData, sections: list[tuple[str, list[str], list[list[str]], str]], figs: dict[str, tuple[str, bytes]]
) -> str:
    name = d.study.get("name", d.run_dir.name)
    lines = [f"# cellsim report: {name}", "", d.study.get("description", ""), ""]
    for title, header, rows, note in sections:
        lines += [f"## {title}", ""]
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
