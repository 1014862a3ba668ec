"""The report's first tables: the answer (what reacted, when, into what, how sure), the claims of papers
about this interface, and the replicas."""

from __future__ import annotations

import numpy as np

from cellsim.products.amounts import MIN_ATOMS
from cellsim.products.verdicts import FORMED_LOWER, POSSIBLE_FRACTION
from cellsim.references.papers import Paper, papers_for
from cellsim.reporting.data import ReportData, Section, ps_text


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
                    f"{ps_text(b.get('formation_ps'))}; seen in {100 * v['bootstrap_support']:.0f} % of resamples",
                ]
            )
    else:
        rows.append(["reaction", "no pair gained neighbours beyond the reactants' and the early MD's"])
    broke = [p for p, v in pairs_b.items() if v.get("bonds", {}).get("break_ps") is not None]
    for p in broke:
        b = pairs_b[p]["bonds"]
        rows.append([f"{p} bonds broke", f"{b['baseline_mean']} -> {b['late_mean']} from {ps_text(b['break_ps'])}"])
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
    if d.parity:
        rows.append(["forces vs PBE", " ".join(d.parity)])
    react = m.reactants or {}
    note = (
        f"Reactants: {', '.join(react.get('phases', {})) or 'unknown'} ({react.get('source', '')}). Verdicts: "
        f"formed = score >= {m.threshold} with the 90 % interval's low end >= {FORMED_LOWER:g} x {m.threshold} and, "
        f"where the environments can see the candidate, a firm amount (>= {MIN_ATOMS:g} atoms at the interval's low "
        f"end); possible = the score or the interval reaches the threshold (or score >= {POSSIBLE_FRACTION:g} x "
        "threshold), or such an amount alone; not "
        "seen = otherwise. The answer weighs every line above: bonds formed or broken beyond the first frames' noise "
        "and lost PS4 units are a reaction even when no candidate fits. Rules: docs/matching.md."
    )
    return ("Answer", ["", ""], rows, note)


def claims_section(d: ReportData, paper: Paper) -> Section | None:
    """The claims of ``paper``, each reproduced or not by this run (None: nothing to check them against)."""
    res, m = d.analysis, d.match
    if m is None or not paper.applies_to(set(res.element_counts)):
        return None
    pb = (d.peaks or {}).get("pairs", {})

    def word(x: bool | None) -> str:
        return "not analysed" if x is None else ("reproduced" if x else "not reproduced")

    verdict = {c.candidate: c.verdict for c in m.candidates}
    rows = []
    for claim in paper.claims:
        if claim.kind == "bonds form":
            p = claim.subject
            rows.append([claim.label, word(None if p not in m.pairs else bool(m.pairs[p]["has_new"]))])
        elif claim.kind == "bonds break":
            p = claim.subject
            rows.append([claim.label, word(None if p not in pb else pb[p]["bonds"].get("break_ps") is not None)])
        else:
            v = verdict.get(claim.subject)
            rows.append([claim.label, "not a candidate" if v is None else ("reproduced" if v == "formed" else v)])
    return (f"Paper claims ({paper.citation})", ["claim", "this run"], rows, paper.setting)


def claims_sections(d: ReportData) -> list[Section]:
    """One table per paper whose claims speak about this run's elements."""
    out = []
    for paper in papers_for(set(d.analysis.element_counts)):
        section = claims_section(d, paper)
        if section is not None:
            out.append(section)
    return out
