"""The report's tables after the answer, each a function of the report data (None: nothing to show), and
:func:`sections`, all of them in order for the HTML and the Markdown document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cellsim.reporting.data import ReportData, Section, ps_text
from cellsim.reporting.summary import answer_section, claims_sections, replicas_section


def _side(side: dict[str, Any]) -> str:
    return f"{side['phase']}{tuple(side['miller'])}, {side['layers']} layers, {side['atoms']} atoms"


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


def engine_check_section(d: ReportData) -> Section | None:
    """The engine check on the study's own phases (``cellsim engines check``)."""
    if not d.engine_check:
        return None

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
    return (
        "Engine check (the potential on the study's own phases)",
        ["engine", "phase", "quantity", "value", "reference", "verdict"],
        rows,
        "`cellsim engines check`: relaxed lattices (c/a for In), the bulk metal at the study temperature "
        "against the Debye model, PS4 kept whole, reaction-energy signs, speed. See docs/engine.md.",
    )


def diagnostics_section(d: ReportData) -> Section | None:
    """The physical diagnostics, one check a row."""
    if d.diagnostics is None:
        return None
    rows = [[c.status, c.name, c.message] for c in d.diagnostics.checks]
    return ("Diagnostics", ["", "check", "finding"], rows, "")


def trajectory_section(d: ReportData) -> Section | None:
    """What was read: sources, atoms, frames, time step and temperature with where they came from."""
    res = d.analysis
    info = res.meta
    segs = info.segments
    rows = [
        ["source", "; ".join(f"{Path(x.path).name} ({x.fmt}, {x.frames} frames)" for x in segs)],
        [
            "atoms",
            f"{sum(res.element_counts.values())} ({', '.join(f'{k} {v}' for k, v in res.element_counts.items())})",
        ],
        ["frames", f"{res.n_frames} x {res.settings.dt_fs:g} fs = {res.n_frames * res.settings.dt_fs / 1000:.3f} ps"],
        ["time step", f"{res.settings.dt_fs:g} fs ({info.dt_source})"],
        ["temperature", f"{res.temperature_K:g} K ({info.temperature_source})"],
    ]
    for x in segs:
        rows += [[f"note ({Path(x.path).name})", n] for n in x.notes]
    rows += [["note", n] for n in info.notes]
    return ("Trajectory", ["", ""], rows, "")


def interface_section(d: ReportData) -> Section | None:
    """The interface model as built (run directories only)."""
    i = d.interface
    if not i:
        return None
    strain = i["strain"][i["strained"]]
    rows = [
        ["atoms", f"{i['n_atoms']} ({i['formula']})"],
        ["cell", f"{i['cell']['a']:.2f} x {i['cell']['b']:.2f} x {i['cell']['c']:.2f} A, area {i['area']:.1f} A^2"],
        [
            "electrolyte",
            _side(i["electrolyte"]) + f", faces the metal with {i['electrolyte']['termination']['facing_interface']}",
        ],
        ["metal", _side(i["metal"])],
        ["strain", f"{i['strained']} {100 * strain['max_abs']:.2f} % (area {100 * strain['area']:+.2f} %)"],
        ["gap / vacuum", f"{i['gap']} A / {i['vacuum']} A"],
        ["PS4 units", f"{i['ps4']['count']} of {i['ps4']['p_atoms']} whole" if i.get("ps4") else "-"],
    ]
    return ("Interface model", ["", ""], rows, "")


def md_section(d: ReportData) -> Section | None:
    """The MD as the engine records it (run directories only)."""
    if not d.engine:
        return None
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
    from cellsim.engines.fit import describe_model

    card = describe_model(e0.get("model")) if str(e0.get("model", "")).endswith(".pth.tar") else None
    if card:  # a model from `cellsim engines fit`: what it was fitted on and how well, from its card
        rows.insert(1, ["model", card])
    return ("Molecular dynamics", ["", ""], rows, "")


def bonds_section(d: ReportData) -> Section | None:
    """Bond counts and RDF peaks per pair: as built, first and last frame, baseline and late mean, events."""
    if not d.peaks:
        return None
    from cellsim.products.result import PairRecord

    m = d.match

    def when(p: str, b: dict[str, Any], key: str, kind: str) -> str:
        # a time only where the answer's rule agrees (with a match); a departure it does not count is said so
        t = b.get(key)
        if t is None or m is None:
            return ps_text(t)
        event = PairRecord.from_dict(p, m.pairs.get(p) or {}).event
        return ps_text(t) if event == kind else "- (within the late-third noise)"

    rows = []
    for p, pinfo in d.peaks["pairs"].items():
        b = pinfo["bonds"]
        rows.append(
            [
                p,
                f"{pinfo['bond_cutoff']:g}",
                str(b.get("as_built", "-")),
                f"{b['initial']} -> {b['final']} (min {b['min']}, max {b['max']})",
                f"{b['baseline_mean']:.1f} -> {b['late_mean']:.1f}",
                when(p, b, "formation_ps", "formed"),
                when(p, b, "break_ps", "broken"),
                ", ".join(f"{x['r']:.2f}" for x in pinfo["new_peaks"]) or "-",
            ]
        )
    return (
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
        "running mean leaves its starting baseline by max(3 sd, 2 bonds, 10 %), shown where the answer's rule (the "
        "last third against that margin) agrees. 'As built': the interface "
        "before relaxation and MD.",
    )


def candidates_section(d: ReportData) -> Section | None:
    """The candidate products: verdict, best pair and score with its interval, amount, replicas, source."""
    m = d.match
    if m is None:
        return None
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
    return (
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


def environments_section(d: ReportData) -> Section | None:
    """Mean neighbours of each analysed centre early and late, and the late environments of those that changed."""
    m = d.match
    if m is None:
        return None
    rows = [
        [
            centre,
            str(summ["atoms"]),
            str(len(summ["changed_atoms"])),
            ", ".join(f"{k} {v:.2f}" for k, v in summ["early_mean"].items() if v),
            ", ".join(f"{k} {v:.2f}" for k, v in summ["late_mean"].items() if v),
            "; ".join(f"{k}: {v}" for k, v in list(summ["late_histogram"].items())[:4]) or "-",
        ]
        for centre, summ in (m.environments or {}).items()
        if summ
    ]
    if not rows:
        return None
    return (
        "Local environments",
        ["centre", "atoms", "changed", "early mean neighbours", "late mean neighbours", "late (changed)"],
        rows,
        "Neighbours within the bond cutoffs; an atom 'changed' when its mean count of another element moved by >= 0.5.",
    )


def sections(d: ReportData) -> list[Section]:
    """Every table of the report in order, the answer first; tables with nothing to show are left out."""
    builders = (
        engine_check_section,
        diagnostics_section,
        trajectory_section,
        interface_section,
        md_section,
        bonds_section,
        candidates_section,
        environments_section,
    )
    out: list[Section] = [answer_section(d), *claims_sections(d)]
    reps = replicas_section(d)
    if reps is not None:
        out.append(reps)
    out += [s for s in (b(d) for b in builders) if s is not None]
    if d.notes:
        out.append(("Notes", ["", ""], [["note", n] for n in d.notes], ""))
    return out
