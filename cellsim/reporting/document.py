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
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.core.errors import RunDirError
from cellsim.core.files import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cellsim.analysis.analyze import AnalysisResult
    from cellsim.config.rundir import RunDir
    from cellsim.products.match import MatchResult

PAIR_COLOURS = ["#d62728", "#2ca02c", "#1f77b4", "#9467bd", "#ff7f0e", "#8c564b"]


@dataclass
class ReportData:
    """Everything the report shows: an analysis folder, its match, and the run directory when there is one."""

    folder: Path
    analysis: AnalysisResult
    run: RunDir | None
    study: dict[str, Any] = field(default_factory=dict)
    interface: dict[str, Any] | None = None
    peaks: dict[str, Any] | None = None
    match: MatchResult | None = None
    engine: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: Any = None
    notes: list[str] = field(default_factory=list)
    engine_check: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        if self.study.get("name"):
            return str(self.study["name"])
        srcs = [Path(x["path"]).name for x in self.analysis.info.get("segments", [])]
        return ", ".join(srcs) or self.folder.name


def load_report_data(folder: Path, run: RunDir | None = None) -> ReportData:
    """Read the analysis folder (and the run directory's study, interface and engine records, if any)."""
    import yaml

    from cellsim.analysis.analyze import AnalysisResult
    from cellsim.products.match import MatchError, load_match

    res = AnalysisResult.load(folder)
    d = ReportData(folder=folder, analysis=res, run=run, peaks=_json(folder / "peaks.json"))
    if run is not None and res.info.get("run_dir"):
        d.study = yaml.safe_load(run.study_file.read_text()) or {}
        d.interface = _json(run.interface_json)
        if run.engine_check_file.is_file():
            try:
                d.engine_check = list(json.loads(run.engine_check_file.read_text()))
            except ValueError:
                d.notes.append(f"{run.engine_check_file}: damaged; run `cellsim engines check {run.root}` again")
        replica = res.info.get("replica")
        for seg in run.segments(replica):
            info = _json(seg / "engine.json")
            if info:
                d.engine.append(info)
    if (folder / "match.json").is_file():
        try:
            m = load_match(folder)
        except MatchError as exc:
            d.notes.append(str(exc))
        else:
            if m.analysis_id == res.info.get("id"):
                d.match = m
            else:
                d.notes.append("the match results belong to an earlier analysis: run `cellsim match` again")
    else:
        d.notes.append(f"no product matching yet: run `cellsim match {run.root if run else folder}`")
    if (folder / "diagnostics.json").is_file():
        try:
            from cellsim.analysis.diagnostics import Diagnostics

            d.diagnostics = Diagnostics.from_json(folder / "diagnostics.json")
        except Exception as exc:  # a damaged or older diagnostics file must not stop the report
            d.notes.append(f"diagnostics.json not read ({type(exc).__name__}: {exc})")
    return d


def _json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise RunDirError(f"{path}: damaged JSON ({exc}); run the stage that writes it again") from None
    return data


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


def first_last_plot(
    r: np.ndarray,
    first: tuple[str, np.ndarray, np.ndarray],
    last: tuple[str, np.ndarray, np.ndarray],
    refs: list[tuple[str, str, np.ndarray]],
    pair: str,
    cutoff: float | None,
    r_range: tuple[float, float] = (1.5, 6.0),
) -> Figure:
    """First- and last-window g(r) with their running coordination n(r) (right axis), and the reactant and
    candidate crystals' broadened g(r) shapes on the same r axis (each scaled to the last window's maximum)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    ax2 = ax.twinx()
    sel = (r >= r_range[0]) & (r <= r_range[1])
    top = max(float(last[1][sel].max()), float(first[1][sel].max()), 1e-12)
    for (label, g, cn), col in ((first, "#31688e"), (last, "#d62728")):
        ax.plot(r[sel], g[sel], color=col, lw=1.8, label=f"MD g(r) {label}")
        ax2.plot(r[sel], cn[sel], color=col, lw=1.0, ls=":", label=f"n(r) {label}")
    styles = {"reactant": ("0.3", "--"), "candidate": ("#2ca02c", "-.")}
    for k, (kind, label, shape) in enumerate(refs):
        peak = float(shape[sel].max())
        if peak <= 0:
            continue
        col, ls = styles[kind]
        ax.plot(
            r[sel], shape[sel] / peak * top, color=col, ls=ls, lw=1.0, alpha=0.9 - 0.15 * k, label=f"{label} ({kind})"
        )
    if cutoff:
        ax.axvline(cutoff, color="0.5", lw=0.8, ls="--")
        ax.text(cutoff, top * 1.02, f" cutoff {cutoff:g} A", fontsize=7, color="0.4")
    ax.set_xlabel("r (A)")
    ax.set_ylabel("g(r)")
    ax2.set_ylabel("n(r): B neighbours per A within r (dotted)")
    ax.set_title(f"{pair}: first and last window against the reactants and the candidates")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    fig.legend(h1 + h2, l1 + l2, fontsize=7, loc="outside lower center", ncols=3)
    return fig


def bond_plot(
    bonds: dict[str, tuple[np.ndarray, np.ndarray]],
    first: dict[str, float | None],
    cutoffs: dict[str, float],
    spread: dict[str, np.ndarray] | None = None,
    broke: dict[str, float | None] | None = None,
) -> Figure:
    """Bond counts per frame, with when each bond type left its starting noise upwards (formed, dashed) or
    downwards (broke, dotted); with replicas, the mean and a band of +/- one standard deviation across them
    (``spread``: replicas x frames per pair)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for k, (pair, (t, c)) in enumerate(bonds.items()):
        col = PAIR_COLOURS[k % len(PAIR_COLOURS)]
        label = f"{pair} (< {cutoffs.get(pair, float('nan')):g} A)"
        if spread and pair in spread and len(spread[pair]) > 1:
            sd = spread[pair].std(axis=0, ddof=1)
            ax.fill_between(t, c - sd, c + sd, color=col, alpha=0.2, lw=0)
            label += f", mean +/- sd of {len(spread[pair])} replicas"
        ax.plot(t, c, color=col, lw=1.2, label=label)
        if first.get(pair) is not None:
            ax.axvline(float(first[pair]), color=col, ls="--", lw=1)  # type: ignore[arg-type]
            ax.annotate(
                f"{pair} formed\n{first[pair]:.3f} ps", (first[pair], ax.get_ylim()[1] * 0.9), fontsize=7, color=col
            )
        if broke and broke.get(pair) is not None:
            ax.axvline(float(broke[pair]), color=col, ls=":", lw=1.2)  # type: ignore[arg-type]
            ax.annotate(
                f"{pair} broke\n{broke[pair]:.3f} ps", (broke[pair], ax.get_ylim()[1] * 0.75), fontsize=7, color=col
            )
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("bonds")
    ax.set_title("bond counts over time")
    ax.legend(fontsize=8)
    return fig


def interface_views(
    before: Any, after: Any, new_pairs: dict[str, float], titles: tuple[str, str] = ("as built", "after MD")
) -> Figure:
    """Side views (x-z) of two ASE Atoms with the bonds of ``new_pairs`` ({pair: cutoff}) drawn."""
    from ase.data import atomic_numbers, covalent_radii
    from ase.data.colors import jmol_colors
    from ase.neighborlist import neighbor_list
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 5.0), layout="constrained")
    for k, (atoms, title) in enumerate(((before, titles[0]), (after, titles[1]))):
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


def environment_plot(summary: dict[str, Any], centre: str) -> Figure:
    """Mean neighbours of each element around ``centre`` atoms, early vs late, and the late environments
    of the atoms that changed (how many atoms have each neighbour set)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 3.4), layout="constrained")
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    els = [e for e in summary["early_mean"] if summary["early_mean"][e] > 0 or summary["late_mean"][e] > 0]
    x = np.arange(len(els))
    ax1.bar(x - 0.2, [summary["early_mean"][e] for e in els], 0.4, label="early", color="#9ecae1")
    ax1.bar(x + 0.2, [summary["late_mean"][e] for e in els], 0.4, label="late", color="#3182bd")
    ax1.set_xticks(x, els)
    ax1.set_ylabel(f"neighbours per {centre}")
    ax1.set_title(f"{centre}: mean neighbours ({summary['atoms']} atoms)", fontsize=10)
    ax1.legend(fontsize=8)
    hist = summary.get("late_histogram") or {}
    if hist:
        keys = list(hist)[:10]
        ax2.barh(range(len(keys)), [hist[k] for k in keys], color="#e6550d")
        ax2.set_yticks(range(len(keys)), keys, fontsize=8)
        ax2.invert_yaxis()
        ax2.set_xlabel("atoms")
        ax2.set_title(f"late environments of the {len(summary['changed_atoms'])} {centre} that changed", fontsize=10)
    else:
        ax2.text(0.5, 0.5, f"no {centre} atom changed its environment", ha="center", va="center")
        ax2.set_axis_off()
    return fig


def diagnostics_plot(d: Any) -> Figure | None:
    """Temperature, potential energy, metal order and PS4 integrity over time (the series that exist)."""
    from matplotlib.figure import Figure

    series = [
        ("temperature (K)", d.energy_times_ps, d.temperature_K),
        ("potential energy (eV)", d.energy_times_ps, d.potential_eV),
        ("metal RMS displacement (A)", d.block_times_ps, d.rmsd_A),
        ("metal-metal neighbours", d.coordination_times_ps, d.metal_coordination),
        *((f"intact {k} fraction", d.frame_times_ps, v) for k, v in d.unit_fractions.items()),
    ]
    panels = [(lab, t, y) for lab, t, y in series if len(y) > 1 and len(t) == len(y)]
    if not panels:
        return None
    fig = Figure(figsize=(7.0, 1.6 * len(panels) + 0.8), layout="constrained")
    for i, (lab, t, y) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        ax.plot(t, y, lw=1.0, color=PAIR_COLOURS[i % len(PAIR_COLOURS)])
        ax.set_ylabel(lab, fontsize=8)
        if i == len(panels) - 1:
            ax.set_xlabel("time (ps)")
    eq = d.summary.get("equilibration_ps")
    if eq:
        for ax in fig.axes:
            ax.axvline(float(eq), color="grey", ls=":", lw=1)
    fig.suptitle("physical diagnostics (dotted: end of equilibration)", fontsize=10)
    return fig


def _atoms(species: list[str], frame: tuple[np.ndarray, np.ndarray]) -> Any:
    from ase import Atoms

    frac, cell = frame
    return Atoms(symbols=species, scaled_positions=frac, cell=cell, pbc=True)


def make_report(folder: Path, run: RunDir | None = None) -> dict[str, Path]:
    """Write the figures, report.html and report.md of an analysis folder into ``RUN/report`` or ``folder/report``."""
    d = load_report_data(folder, run)
    res = d.analysis
    out = (
        run.report_dir
        if (run is not None and res.info.get("run_dir") and res.info.get("replica") is None)
        else (folder / "report")
    )
    figs: dict[str, tuple[str, bytes]] = {}  # file -> (caption, png)
    r = res.r
    t_edges = (float(res.t_start[0]), float(res.t_end[-1]))
    cutoffs = res.cutoffs
    norm = res.settings.normalisation
    m = d.match
    dr = float(r[1] - r[0])
    reactant_g = _reactant_shapes(d, r, dr)

    def refs_g(pair: str) -> list[tuple[str, np.ndarray]]:
        if m is None:
            return []
        ranked = [x.candidate for x in m.rows if x.pair == pair and x.score > 0][:2]
        return [(c, m.references[c][pair]) for c in ranked if pair in m.references.get(c, {})]

    for pair in res.settings.pairs:
        key = pair.replace("-", "")
        figs[f"rdf_{key}.png"] = (
            f"{pair} partial RDF per {res.settings.window_ps:g} ps window (heat map, time x r).",
            _png(rdf_heatmap(r, t_edges, res.g[pair], pair, cutoffs.get(pair), norm=norm)),
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
            md_peak = m.pairs.get(pair, {}).get("md_peak_r")
        figs[f"match_{key}.png"] = (
            f"{pair}: neighbour density at the start, middle and end of the MD, over the broadened reference "
            "densities of the best candidates.",
            _png(stacked_curves(r, curves, refs, pair, md_peak)),
        )
        both = [("reactant", name, g) for name, g in reactant_g.get(pair, [])]
        both += [("candidate", c, _ref_g(n_ref, r, dr)) for c, n_ref in refs_g(pair)]
        figs[f"first_last_{key}.png"] = (
            f"{pair}: g(r) of the first and the last window with their running coordination n(r), over the "
            "reactant and candidate crystals' g(r) shapes (broadened to the run's temperature).",
            _png(
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
    times = res.frame_times
    bonds = {p: (times, res.bonds[p]) for p in res.settings.pairs}

    def event(p: str, key: str) -> float | None:
        # the match's bond events are the ones its answer used; the analysis' otherwise (same rule)
        ev = ((m.pairs.get(p) or {}).get("bonds") if m is not None else None) or (
            (d.peaks or {}).get("pairs", {}).get(p, {}).get("bonds", {})
        )
        return ev.get(key)

    form = {p: event(p, "formation_ps") for p in bonds}
    broke = {p: event(p, "break_ps") for p in bonds}
    figs["bonds.png"] = (
        "Bond counts per frame; dashed lines: when the count rose out of its starting noise (bonds formed), "
        "dotted: when it fell out of it (bonds broke).",
        _png(bond_plot(bonds, form, cutoffs, res.replica_bonds or None, broke)),
    )
    env = (d.peaks or {}).get("environments") or {}
    for centre, summ in env.items():
        if summ:
            figs[f"environment_{centre}.png"] = (
                f"Local environment of {centre}: neighbours within the bond cutoffs early and late in the run, "
                f"and the late environments of the {centre} atoms that changed.",
                _png(environment_plot(summ, centre)),
            )
    if d.diagnostics is not None:
        fig = diagnostics_plot(d.diagnostics)
        if fig is not None:
            figs["diagnostics.png"] = ("Temperature, energy and order of the metal over time.", _png(fig))
    if res.first_frame is not None and res.last_frame is not None and res.species:
        new = [p for p, v in (m.pairs.items() if m else []) if v.get("has_new")]
        shown = {
            p: float(cutoffs.get(p, 3.0)) for p in (new or [p for p in res.settings.pairs if not p.startswith("P-")])
        }
        before = _atoms(res.species, res.first_frame)
        titles = ("first frame", "last frame")
        if run is not None and res.info.get("run_dir") and run.interface_poscar.is_file():
            from ase.io import read

            built = read(run.interface_poscar, format="vasp")
            if not isinstance(built, list) and built.get_chemical_symbols() == res.species:
                before, titles = built, ("as built", "after MD")
        figs["structure.png"] = (
            f"Side view (x-z), {titles[0]} and {titles[1]}; coloured lines: bonds of the pairs that gained "
            "neighbours (or the analysed metal pairs).",
            _png(interface_views(before, _atoms(res.species, res.last_frame), shown, titles)),
        )
    # the whole report is staged and swapped in: a kill leaves the previous report or the new one
    from cellsim.core.files import recover_dir, replace_dir, staging_dir

    recover_dir(out)
    stage = staging_dir(out)
    try:
        for name, (_, png) in figs.items():
            atomic_write_bytes(stage / name, png)
        sections = _sections(d)
        atomic_write_text(stage / "report.html", _html(d, sections, figs))
        atomic_write_text(stage / "report.md", _markdown(d, sections, figs))
        replace_dir(stage, out)
    except BaseException:
        import shutil

        shutil.rmtree(stage, ignore_errors=True)
        raise
    paths = {"html": out / "report.html", "md": out / "report.md"}
    paths.update({name: out / name for name in figs})
    return paths


def _ref_g(n: np.ndarray, r: np.ndarray, dr: float) -> np.ndarray:
    """A neighbour density per bin as a g(r) shape (divided by the shell volume; only the shape is drawn)."""
    shell = 4.0 * np.pi * np.maximum(r, dr) ** 2 * dr
    return n / shell


def _reactant_shapes(d: ReportData, r: np.ndarray, dr: float) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Per analysed pair, the g(r) shapes of the reactant crystals that hold it (broadened to T)."""
    import math
    import warnings

    from cellsim.products.match import reference_density
    from cellsim.references.reactants import Reactants, reactant_structures

    res = d.analysis
    react = Reactants.from_dict(res.info.get("reactants") or {})
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


def _side(side: dict[str, Any]) -> str:
    return f"{side['phase']}{tuple(side['miller'])}, {side['layers']} layers, {side['atoms']} atoms"


def _ps(x: float | None) -> str:
    return f"{x:.3f} ps" if x is not None else "-"


Section = tuple[str, list[str], list[list[str]], str]


def _amount_cell(a: dict[str, Any] | None, name: str) -> str:
    if not a:
        return "-"
    fu = a.get("formula_units")
    fus = "" if not fu else f", {fu[0]:g} f.u." if fu[0] == fu[1] else f", {fu[0]:g}-{fu[1]:g} f.u."
    others = [x for x in a["members"] if x != name]
    group = f" (environments alike: {' / '.join(others)})" if others else ""
    return f"{a['atoms']:g} {a['element']} [{a['atoms_lo']:g}-{a['atoms_hi']:g}]{fus}{group}"


def _replica_cell(d: dict[str, Any] | None) -> str:
    if not d:
        return "-"
    return (
        f"formed in {d['formed']} of {d['n']}, possible in {d['possible']}; "
        f"score {d['score_mean']:.2f} +/- {d['score_sd']:.2f}"
    )


def replicas_section(d: ReportData) -> Section | None:
    """Formation times and late bond counts of each replica, with mean and spread."""
    ev = d.analysis.info.get("replica_events")
    if not ev:
        return None

    def stats(xs: list[float | None]) -> str:
        got = [x for x in xs if x is not None]
        each = ", ".join("-" if x is None else f"{x:.3f}" for x in xs)
        if not got:
            return f"none ({each})"
        sd = float(np.std(got, ddof=1)) if len(got) > 1 else 0.0
        return f"{np.mean(got):.3f} +/- {sd:.3f} ps in {len(got)} of {len(xs)} ({each})"

    rows = []
    for pair, e in ev.items():
        fb = [x for x in e["final_bonds"] if x is not None]
        sd = float(np.std(fb, ddof=1)) if len(fb) > 1 else 0.0
        rows.append([pair, stats(e["formation_ps"]), stats(e["break_ps"]), f"{np.mean(fb):.1f} +/- {sd:.1f}"])
    n = len(d.analysis.info.get("replica_ids", []))
    return (
        f"Replicas ({n})",
        ["pair", "bonds formed from", "bonds broke from", "late bond count"],
        rows,
        "Each replica starts from the same relaxed interface with its own velocities; the pooled analysis "
        "(figures, verdicts above) averages them, and the candidates table counts the replicas' own verdicts.",
    )


def answer_section(d: ReportData) -> Section:
    """The answer first: what reacted, when, into what, how sure, what was not seen."""
    m = d.match
    rows: list[list[str]] = []
    pairs_b = (d.peaks or {}).get("pairs", {})
    if m is None:
        return ("Answer", ["", ""], [["products", "not matched yet"]], "; ".join(d.notes))
    ans = m.answer or {}
    if ans:
        rows.append(["answer", ans["sentence"]])
        for line in ans.get("assumptions", []):
            rows.append(["assumed", line])
        for line in ans.get("evidence", []):
            rows.append(["evidence", line])
    reacted = [p for p, v in m.pairs.items() if v.get("has_new")]
    if reacted:
        for p in reacted:
            b = pairs_b.get(p, {}).get("bonds", {})
            v = m.pairs[p]
            rows.append(
                [
                    f"{p} bonds formed",
                    f"+{v['new']:.2f} neighbours per {p.split('-')[0]} at {v['md_peak_r']:.2f} A; bonds "
                    f"{b.get('baseline_mean', '-')} -> {b.get('late_mean', '-')}, leaving the baseline from "
                    f"{_ps(b.get('formation_ps'))}; seen in {100 * v['bootstrap_support']:.0f} % of resamples",
                ]
            )
    else:
        rows.append(["reaction", "no pair gained neighbours beyond the reactants' and the early MD's"])
    broke = [p for p, v in pairs_b.items() if v.get("bonds", {}).get("break_ps") is not None]
    for p in broke:
        b = pairs_b[p]["bonds"]
        rows.append([f"{p} bonds broke", f"{b['baseline_mean']} -> {b['late_mean']} from {_ps(b['break_ps'])}"])
    for verdict in ("formed", "possible"):
        got = [c for c in m.candidates if c.verdict == verdict]
        if got:
            rows.append(
                [
                    f"products {verdict}",
                    "; ".join(
                        f"{c.candidate} ({c.spacegroup}) {c.best_score:.2f} [{c.best_lo:.2f}-{c.best_hi:.2f}]"
                        + (f" on {c.best_pair}" if c.best_pair else "")
                        + (
                            f", ~{c.amount['atoms']:g} {c.amount['element']} atoms "
                            f"[{c.amount['atoms_lo']:g}-{c.amount['atoms_hi']:g}]"
                            if c.amount
                            else ""
                        )
                        for c in got
                    ),
                ]
            )
    if m.replicas:
        sup = [
            f"{c.candidate} formed in {m.replicas[c.candidate]['formed']} of {m.replicas[c.candidate]['n']}"
            for c in m.candidates
            if c.candidate in m.replicas and m.replicas[c.candidate]["formed"] + m.replicas[c.candidate]["possible"]
        ]
        rows.append(["replicas", "; ".join(sup) or "no replica shows a product"])
    not_seen = [c.candidate for c in m.candidates if c.verdict == "not seen"]
    if not_seen:
        rows.append(["not seen", ", ".join(not_seen)])
    for text in (m.electrolyte or {}).get("points_to", []):
        rows.append(["electrolyte", text])
    th = m.thermo or {}
    if th.get("reaction") or th.get("skipped"):
        rows.append(
            [
                "phase diagram",
                (
                    f"no exergonic reaction between {' and '.join(th['reactants'])}"
                    + "".join(f"; on its own: {x}" for x in th.get("reactant_decomposes", []))
                    if th.get("reactants_react") is False
                    else f"{th['reaction']}: {th['energy_eV_per_atom']:+.3f} eV/atom of the mixture"
                )
                + f" ({th['source']}; phases {', '.join(th['phases'])}), beside what the MD shows above"
                if th.get("reaction")
                else str(th["skipped"]),
            ]
        )
    if d.diagnostics is not None and hasattr(d.diagnostics, "checks"):
        warns = [c for c in d.diagnostics.checks if getattr(c, "status", "ok") != "ok"]
        rows.append(
            [
                "trust",
                "; ".join(getattr(c, "message", str(c)) for c in warns)
                if warns
                else "the physical diagnostics raised no warning",
            ]
        )
    bad = [r for r in d.engine_check if r.get("verdict") in ("fail", "warn")]
    if d.engine_check:
        engines = sorted({str(r["engine"]) for r in d.engine_check})
        rows.append(
            [
                "engine check",
                f"{', '.join(engines)}: "
                + (
                    "; ".join(f"{r['phase']} {r['quantity']} {r['verdict']}" for r in bad)
                    if bad
                    else "every check ok on the study's phases"
                ),
            ]
        )
    react = m.reactants or {}
    note = (
        f"Reactants: {', '.join(react.get('phases', {})) or 'unknown'} ({react.get('source', '')}). Verdicts: "
        f"formed = score >= {m.threshold} with the 90 % interval's low end >= 0.8 x {m.threshold} and, where the "
        "environments can see the candidate, a firm amount (>= 2 atoms at the interval's low end); possible = the "
        "score or the interval reaches the threshold (or score >= 0.6 x threshold), or such an amount alone; not "
        "seen = otherwise. The answer weighs every line above: bonds formed or broken beyond the first frames' noise "
        "and lost PS4 units are a reaction even when no candidate fits. Rules: docs/matching.md."
    )
    return ("Answer", ["", ""], rows, note)


def paper_claims_section(d: ReportData) -> Section | None:
    """Luo et al. 2021's claims for Li6PS5Cl/In, each reproduced or not by this run (when the atoms fit)."""
    res, m = d.analysis, d.match
    if m is None or not {"In", "S", "Cl", "P", "Li"} <= set(res.element_counts):
        return None
    pb = (d.peaks or {}).get("pairs", {})

    def grew(p: str) -> bool | None:
        return None if p not in m.pairs else bool(m.pairs[p]["has_new"])

    def broke(p: str) -> bool | None:
        return None if p not in pb else pb[p]["bonds"].get("break_ps") is not None

    def word(x: bool | None) -> str:
        return "not analysed" if x is None else ("reproduced" if x else "not reproduced")

    verdict = {c.candidate: c.verdict for c in m.candidates}
    rows = [
        ["In-S bonds form and grow from ~1 ps", word(grew("In-S"))],
        ["In-Cl bonds form", word(grew("In-Cl"))],
        ["P-S bonds break", word(broke("P-S"))],
    ]
    for prod in ("In2S3", "InS", "InCl", "InCl3"):
        v = verdict.get(prod)
        rows.append([f"product {prod}", "not a candidate" if v is None else ("reproduced" if v == "formed" else v)])
    return (
        "Paper claims (Luo et al., Nat. Commun. 12, 6968, 2021)",
        ["claim", "this run"],
        rows,
        "The paper: VASP PBE AIMD, 300 K, 10-20 ps. A short run, or a potential that misdescribes the metal "
        "(see the diagnostics), may not reproduce them.",
    )


def _sections(d: ReportData) -> list[Section]:
    """(title, header, rows, note) tables shared by the HTML and Markdown reports, the answer first."""
    res = d.analysis
    sections: list[Section] = [answer_section(d)]
    claims = paper_claims_section(d)
    if claims is not None:
        sections.append(claims)
    reps = replicas_section(d)
    if reps is not None:
        sections.append(reps)
    if d.engine_check:

        def val(x: Any) -> str:
            return "-" if x is None else (f"{x:.4g}" if isinstance(x, float) else str(x))

        rows = [
            [
                str(r["engine"]),
                str(r["phase"]),
                str(r["quantity"]),
                val(r.get("value")) + (f" {r['unit']}" if r.get("unit") and r.get("value") is not None else ""),
                val(r.get("reference")),
                str(r["verdict"]),
            ]
            for r in d.engine_check
        ]
        sections.append(
            (
                "Engine check (the potential on the study's own phases)",
                ["engine", "phase", "quantity", "value", "reference", "verdict"],
                rows,
                "`cellsim engines check`: relaxed lattices (c/a for In), the bulk metal at the study temperature "
                "against the Debye model, PS4 kept whole, reaction-energy signs, speed. See docs/engine.md.",
            )
        )
    if d.diagnostics is not None and hasattr(d.diagnostics, "checks"):
        rows = [
            [str(getattr(c, "status", "")), str(getattr(c, "name", "")), str(getattr(c, "message", ""))]
            for c in d.diagnostics.checks
        ]
        sections.append(("Diagnostics", ["", "check", "finding"], rows, ""))
    info = res.info
    segs = info.get("segments", [])
    rows = [
        ["source", "; ".join(f"{Path(x['path']).name} ({x['fmt']}, {x['frames']} frames)" for x in segs)],
        [
            "atoms",
            f"{sum(res.element_counts.values())} ({', '.join(f'{k} {v}' for k, v in res.element_counts.items())})",
        ],
        ["frames", f"{res.n_frames} x {res.settings.dt_fs:g} fs = {res.n_frames * res.settings.dt_fs / 1000:.3f} ps"],
        ["time step", f"{res.settings.dt_fs:g} fs ({info.get('dt_source')})"],
        ["temperature", f"{info.get('temperature_K')} K ({info.get('temperature_source')})"],
    ]
    for x in segs:
        rows += [[f"note ({Path(x['path']).name})", n] for n in x.get("notes", [])]
    rows += [["note", n] for n in info.get("notes", [])]
    sections.append(("Trajectory", ["", ""], rows, ""))
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
            ["metal", _side(i["metal"])],
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
        for p, pinfo in d.peaks["pairs"].items():
            b = pinfo["bonds"]
            rows.append(
                [
                    p,
                    f"{pinfo['bond_cutoff']:g}",
                    str(b.get("as_built", "-")),
                    f"{b['initial']} -> {b['final']} (min {b['min']}, max {b['max']})",
                    f"{b['baseline_mean']:g} -> {b['late_mean']:g}",
                    _ps(b.get("formation_ps")),
                    _ps(b.get("break_ps")),
                    ", ".join(f"{x['r']:.2f}" for x in pinfo["new_peaks"]) or "-",
                ]
            )
        sections.append(
            (
                "Bonds and RDF peaks",
                [
                    "pair",
                    "cutoff (A)",
                    "as built",
                    "first -> last frame",
                    "baseline -> late mean",
                    "formed from",
                    "broke from",
                    "peaks new vs first window (A)",
                ],
                rows,
                f"g(r) normalised by the {d.peaks['normalisation']} volume; {d.peaks['frames']} frames, "
                f"{d.peaks['windows']} windows of {d.peaks['window_ps']} ps. 'Formed/broke from': the bond count's "
                "running mean leaves its starting baseline by max(3 sd, 2 bonds, 10 %). 'As built': the interface "
                "before relaxation and MD.",
            )
        )
    m = d.match
    if m is not None:
        rows = [
            [
                c.candidate,
                c.formula,
                c.spacegroup,
                c.verdict,
                c.best_pair or "-",
                f"{c.best_score:.2f} [{c.best_lo:.2f}-{c.best_hi:.2f}]",
                _amount_cell(c.amount, c.candidate),
                f"{c.env_agreement:.2f}" if c.env_agreement is not None else "-",
                f"{c.score:.2f}",
                _replica_cell(m.replicas.get(c.candidate)),
                c.source,
            ]
            for c in m.candidates
        ]
        sections.append(
            (
                "Candidate products",
                [
                    "candidate",
                    "formula",
                    "space group",
                    "verdict",
                    "best pair",
                    "score [90 %]",
                    "amount: atoms [90 %], formula units",
                    "environment share",
                    "overall",
                    "replicas",
                    "source",
                ],
                rows,
                f"Pair score 0-1 (>= {m.threshold} counts as a match). Amount: atoms of the counting element whose "
                "environment changed into one like the candidate's sites (share-weighted), with formula units; "
                "candidates listed together have environments alike (the distances decide between them). "
                "Environment share: that amount over all reacted atoms of the element. Overall = sum over pairs. "
                + " ".join(m.notes)
                + "".join(f" {k}: {v}." for k, v in (m.amounts or {}).get("unseen", {}).items()),
            )
        )
        env_rows = []
        for centre, summ in (m.environments or {}).items():
            if summ:
                env_rows.append(
                    [
                        centre,
                        str(summ["atoms"]),
                        str(len(summ["changed_atoms"])),
                        ", ".join(f"{k} {v:.2f}" for k, v in summ["early_mean"].items() if v),
                        ", ".join(f"{k} {v:.2f}" for k, v in summ["late_mean"].items() if v),
                        "; ".join(f"{k}: {v}" for k, v in list(summ["late_histogram"].items())[:4]) or "-",
                    ]
                )
        if env_rows:
            sections.append(
                (
                    "Local environments",
                    ["centre", "atoms", "changed", "early mean neighbours", "late mean neighbours", "late (changed)"],
                    env_rows,
                    "Neighbours within the bond cutoffs; an atom 'changed' when its mean count of another element "
                    "moved by >= 0.5.",
                )
            )
    if d.notes:
        sections.append(("Notes", ["", ""], [["note", n] for n in d.notes], ""))
    return sections


_CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}th{background:#f3f3f3}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
.note{font-size:.85em;color:#555}"""


def _html(
    d: ReportData, sections: list[tuple[str, list[str], list[list[str]], str]], figs: dict[str, tuple[str, bytes]]
) -> str:
    e = html.escape
    name = d.name
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
        f"<p class='note'>Made by cellsim from the analysis in {e(str(d.folder))}"
        + (f" of run directory {e(str(d.run.root))}" if d.run is not None else "")
        + ".</p></body></html>"
    )
    return "\n".join(parts)


def _markdown(
    d: ReportData, sections: list[tuple[str, list[str], list[list[str]], str]], figs: dict[str, tuple[str, bytes]]
) -> str:
    name = d.name
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
