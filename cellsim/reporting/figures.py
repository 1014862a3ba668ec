"""The report's figures, as functions: arrays (or a result's plain fields) in, a matplotlib Figure out.

None of them reads a file or sets a backend: each builds its own :class:`matplotlib.figure.Figure` (no
pyplot state), so they can be called from a notebook, a test or :func:`cellsim.reporting.document.make_report`
alike; :func:`to_png` renders one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PAIR_COLOURS = ["#d62728", "#2ca02c", "#1f77b4", "#9467bd", "#ff7f0e", "#8c564b"]


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (110 dpi)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


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


DEVIATION_LABEL = "engine deviation,\nmax atom (eV/A)"


def diagnostics_plot(d: Any) -> Figure | None:
    """Temperature, potential energy, metal order, PS4 integrity and the engine's force deviation over time (the
    series that exist)."""
    from matplotlib.figure import Figure

    series = [
        ("temperature (K)", d.energy_times_ps, d.temperature_K),
        ("potential energy (eV)", d.energy_times_ps, d.potential_eV),
        ("metal RMS displacement (A)", d.block_times_ps, d.rmsd_A),
        ("metal-metal neighbours", d.coordination_times_ps, d.metal_coordination),
        *((f"intact {k} fraction", d.frame_times_ps, v) for k, v in d.unit_fractions.items()),
        (DEVIATION_LABEL, getattr(d, "deviation_times_ps", ()), getattr(d, "deviation_max_eV_A", ())),
    ]
    panels = [(lab, t, y) for lab, t, y in series if len(y) > 1 and len(t) == len(y)]
    if not panels:
        return None
    from cellsim.analysis.checks import DEVIATION_WARN

    fig = Figure(figsize=(7.0, 1.6 * len(panels) + 0.8), layout="constrained")
    for i, (lab, t, y) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        ax.plot(t, y, lw=1.0, color=PAIR_COLOURS[i % len(PAIR_COLOURS)])
        ax.set_ylabel(lab, fontsize=8)
        if lab == DEVIATION_LABEL:  # the check's limit, so the panel reads the same as the table row
            ax.axhline(DEVIATION_WARN, color="firebrick", ls="--", lw=1)
            ax.text(t[0], DEVIATION_WARN, " limit", color="firebrick", fontsize=7, va="bottom")
        if i == len(panels) - 1:
            ax.set_xlabel("time (ps)")
    eq = d.summary.get("equilibration_ps")
    # the line only where the check found the run equilibrated: a drawn end of equilibration beside
    # "not equilibrated" contradicted the table
    settled = d.summary.get("equilibrated") is not False
    if eq and settled:
        for ax in fig.axes:
            ax.axvline(float(eq), color="grey", ls=":", lw=1)
        fig.suptitle("physical diagnostics (dotted: end of equilibration)", fontsize=10)
    else:
        fig.suptitle("physical diagnostics (not equilibrated: no end of equilibration drawn)", fontsize=10)
    return fig


def mixing_plot(answers: dict[str, dict[str, Any]]) -> Figure:
    """The reaction energy *between* metal and electrolyte (meV/atom of the mixture, less what each reactant does
    on its own) against the metal's atom fraction, one panel per interface: PBE closed (solid) and at the Li-In
    alloy's Li potential (dashed) where computed; a point per hull kink, the products at the minimum."""
    from matplotlib.figure import Figure

    n = max(1, len(answers))
    fig = Figure(figsize=(3.3 * n, 3.3), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (key, ans) in zip(axes, answers.items(), strict=False):
        for which, style, label in (("closed", "-o", "closed"), ("open_li", "--s", "open Li (Li-In potential)")):
            if which not in ans:
                continue
            kinks = sorted(ans[which]["kinks"], key=lambda k: k["metal_fraction"])
            x = [k["metal_fraction"] for k in kinks]
            y = [1000 * k["mixing_eV_per_atom"] for k in kinks]
            own = ans[which].get("electrolyte_alone")
            if own:
                label += f"; electrolyte alone {1000 * own['energy_eV_per_atom']:+.0f}"
            ax.plot(x, y, style, ms=3, lw=1.2, label=label)
            best = ans[which]
            if best.get("exergonic"):
                ax.annotate(
                    " + ".join(best["products"]),
                    (best["metal_fraction"], 1000 * best["mixing_eV_per_atom"]),
                    fontsize=6,
                    ha="center",
                    va="top",
                )
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_title(key.replace("|", " | "), fontsize=9)
        ax.set_xlabel("metal atom fraction")
        ax.set_ylabel("reaction energy between them (meV/atom)")
        ax.legend(fontsize=6)
    fig.suptitle("PBE (GPAW): metal + electrolyte at every mixing ratio, beyond each on its own", fontsize=9)
    return fig
