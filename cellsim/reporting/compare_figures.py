"""The comparison's figures: groups of runs (one interface each) against each other, every seed a point.

Functions of plain numbers in, a matplotlib :class:`~matplotlib.figure.Figure` out, no pyplot state (as
:mod:`cellsim.reporting.figures`); :func:`cellsim.reporting.figures.to_png` renders them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# one colour per answer kind, in the order of reactivity
KIND_COLOURS = {
    "products": "#d62728",
    "reaction": "#ff7f0e",
    "none": "#1f77b4",
    "too short": "#7f7f7f",
}
OTHER_COLOUR = "#bcbd22"


@dataclass(frozen=True)
class GroupPoints:
    """One group's values for one quantity: each seed's value (None: none, see ``missing``) and answer kind."""

    label: str
    values: Sequence[float | None]
    kinds: Sequence[str]
    missing: str = "not measured"


def _mean_sd(values: Sequence[float | None]) -> tuple[float, float] | None:
    got = np.array([v for v in values if v is not None], dtype=float)
    if not len(got):
        return None
    return float(got.mean()), float(got.std(ddof=1)) if len(got) > 1 else 0.0


def ranking_plot(panels: Sequence[tuple[str, Sequence[GroupPoints]]], title: str) -> Figure:
    """One panel per quantity, the groups top (most reactive) to bottom: each seed a dot coloured by its answer
    kind, the mean a bar with the seeds' standard deviation as its error bar.

    Parameters
    ----------
    panels
        ``(x-axis label, groups in rank order)`` per panel; every panel lists the same groups.
    title
        The figure's title.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    n_groups = max((len(g) for _, g in panels), default=1)
    fig = Figure(figsize=(3.4 * max(1, len(panels)) + 1.6, 1.2 + 0.48 * n_groups), layout="constrained")
    axes = fig.subplots(1, max(1, len(panels)), sharey=True, squeeze=False)[0]
    seen: dict[str, str] = {}
    for ax, (xlabel, groups) in zip(axes, panels, strict=False):
        y = np.arange(len(groups))[::-1]
        for yi, g in zip(y, groups, strict=True):
            stats = _mean_sd(g.values)
            if stats is not None:
                mean, sd = stats
                ax.barh(yi, mean, height=0.55, color="0.88", edgecolor="0.55", lw=0.8, zorder=1)
                if sd > 0:
                    ax.errorbar(mean, yi, xerr=sd, color="0.25", capsize=3, lw=1.0, zorder=2)
            else:
                ax.text(0.0, yi, f"  {g.missing}", va="center", fontsize=7, color="0.45")
            pts = [(v, k) for v, k in zip(g.values, g.kinds, strict=True) if v is not None]
            if pts:
                jitter = np.linspace(-0.14, 0.14, len(pts)) if len(pts) > 1 else np.zeros(1)
                for (v, kind), dy in zip(pts, jitter, strict=True):
                    colour = KIND_COLOURS.get(kind, OTHER_COLOUR)
                    seen.setdefault(kind, colour)
                    ax.plot(v, yi + dy, "o", ms=5, color=colour, mec="k", mew=0.4, zorder=3)
        ax.axvline(0.0, color="0.5", lw=0.6)
        measured = [float(v) for g in groups for v in g.values if v is not None]
        top = max([*measured, 0.0])
        ax.set_xlim(min([*measured, 0.0]) * 1.1, top * 1.12 if top > 0 else 1.0)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_yticks(y, [g.label for g in groups], fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", color="0.92", zorder=0)
    handles = [
        Line2D([], [], marker="o", ls="", color=c, mec="k", mew=0.4, label=f"seed: {k}")
        for k, c in sorted(seen.items(), key=lambda kc: list(KIND_COLOURS).index(kc[0]) if kc[0] in KIND_COLOURS else 9)
    ]
    handles.append(Line2D([], [], color="0.55", lw=6, alpha=0.4, label="mean +/- sd over seeds"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(5, len(handles)), fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def products_plot(amounts: dict[str, dict[str, Sequence[float | None]]], groups: Sequence[str], unit: str) -> Figure:
    """Atoms in each candidate product per group: the mean over seeds as a bar (0 for a seed where it was not
    seen), the seeds as dots.

    Parameters
    ----------
    amounts
        Candidate -> group label -> atoms per seed (None: not seen in that seed).
    groups
        The group labels in rank order.
    unit
        What the atoms count ("atoms of the counting element").
    """
    from matplotlib.figure import Figure

    cands = list(amounts)
    fig = Figure(figsize=(max(6.4, 1.4 + 0.5 * len(groups) * max(1, len(cands))), 3.8), layout="constrained")
    ax = fig.add_subplot()
    width = min(0.8 / max(1, len(cands)), 0.35)
    x = np.arange(len(groups))
    colours = ["#d62728", "#2ca02c", "#1f77b4", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    for k, cand in enumerate(cands):
        col = colours[k % len(colours)]
        xs = x - width * len(cands) / 2 + width * (k + 0.5)
        means = []
        for xi, g in zip(xs, groups, strict=True):
            per_seed = [0.0 if v is None else float(v) for v in amounts[cand].get(g, [])]
            means.append(float(np.mean(per_seed)) if per_seed else 0.0)
            if per_seed:
                ax.plot([xi] * len(per_seed), per_seed, "o", ms=3.5, color=col, mec="k", mew=0.3, zorder=3)
        ax.bar(xs, means, width=width * 0.9, color=col, alpha=0.45, label=cand, zorder=2)
    ax.set_xticks(x, list(groups), fontsize=8, rotation=20, ha="right")
    ax.set_ylabel(unit, fontsize=8)
    ax.set_title("Products (formed or possible) with amounts; bars: mean over seeds, dots: seeds", fontsize=9)
    ax.legend(fontsize=7, ncols=min(4, max(1, len(cands))))
    ax.grid(axis="y", color="0.92", zorder=0)
    return fig
