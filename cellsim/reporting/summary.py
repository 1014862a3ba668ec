"""The report's first tables: the answer (what reacted, when, into what, how sure), the claims of papers
about this interface, and the replicas."""

from __future__ import annotations

from typing import Any

import numpy as np

from cellsim.products.amounts import MIN_ATOMS
from cellsim.products.answer import Answer
from cellsim.products.result import BondChange, PairRecord, pair_records
from cellsim.products.verdicts import FORMED_LOWER, POSSIBLE_FRACTION
from cellsim.references.papers import Paper, papers_for
from cellsim.reporting.data import ReportData, Section, ps_text


def replicas_section(d: ReportData) -> Section | None:
    """Formation times and late bond counts of each replica, with mean and spread."""
    ev = d.analysis.meta.replica_events
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
    n = len(d.analysis.meta.replica_ids)
    return (
        f"Replicas ({n})",
        ["pair", "bonds formed from", "bonds broke from", "late bond count"],
        rows,
        "Each replica starts from the same relaxed interface with its own velocities; the pooled analysis "
        "(figures, verdicts above) averages them, and the candidates table counts the replicas' own verdicts.",
    )


def _n(x: Any) -> str:
    """A bond count (mean) as every table shows it: one decimal."""
    return "-" if x is None else f"{float(x):.1f}"


def answer_section(d: ReportData) -> Section:
    """The answer first: what reacted, when, into what, how sure, what was not seen."""
    m = d.match
    if m is None:
        return ("Answer", ["", ""], [["products", "not matched yet"]], "; ".join(d.notes))
    ans = Answer.coerce(m.answer)
    rows = _answer_rows(ans) + _bond_rows(m) + _product_rows(m) + _trust_rows(d, m, ans)
    return ("Answer", ["", ""], rows, _answer_note(m))


def _answer_rows(ans: Answer) -> list[list[str]]:
    """The answer's sentence, what it assumed and its evidence (nothing for a record without an answer)."""
    if not ans:
        return []
    rows = [["answer", ans.sentence or ""]]
    rows += [["assumed", line] for line in ans.assumptions]
    rows += [["evidence", line] for line in ans.evidence]
    return rows


def _bond_rows(m: Any) -> list[list[str]]:
    """The pairs whose bonds formed or broke by the answer's rule, with their counts against the noise."""
    rows: list[list[str]] = []
    records = pair_records(m.pairs)
    # the answer's rule decides what formed or broke here, as in the answer, the claims and bonds.png
    reacted = [v for v in records.values() if v.event == "formed"]
    for v in reacted:
        b = v.bonds
        counts = (
            f"bonds {_n(b.baseline_mean)} -> {_n(b.late_mean)} (noise margin {_n(b.margin)}), "
            f"leaving the baseline from {ps_text(b.formation_ps)}"
        )
        shell = (
            f"+{v.new:.2f} neighbours per {v.pair.split('-')[0]} at {v.md_peak_r:.2f} A; "
            if v.has_new and v.md_peak_r is not None
            else ""
        )
        support = f"; seen in {100 * (v.bootstrap_support or 0.0):.0f} % of resamples" if v.has_new else ""
        rows.append([f"{v.pair} bonds formed", shell + counts + support])
    if not reacted:
        rows.append(["reaction", "no pair gained neighbours beyond the reactants' and the early MD's"])
    for v in records.values():
        if v.event == "broken":
            b = v.bonds
            rows.append(
                [
                    f"{v.pair} bonds broke",
                    f"{_n(b.baseline_mean)} -> {_n(b.late_mean)} (noise margin {_n(b.margin)}) "
                    f"from {ps_text(b.break_ps)}",
                ]
            )
    return rows


def _candidate_text(c: Any) -> str:
    """A candidate with its best pair score, interval and pair, and its amount of atoms where counted."""
    return (
        f"{c.candidate} ({c.spacegroup}) {c.best_score:.2f} [{c.best_lo:.2f}-{c.best_hi:.2f}]"
        + (f" on {c.best_pair}" if c.best_pair else "")
        + (
            f", ~{c.amount['atoms']:g} {c.amount['element']} atoms [{c.amount['atoms_lo']:g}-{c.amount['atoms_hi']:g}]"
            if c.amount
            else ""
        )
    )


def _product_rows(m: Any) -> list[list[str]]:
    """Products formed and possible, the replicas' support, the candidates not seen, the electrolyte's breakdown."""
    rows: list[list[str]] = []
    for verdict in ("formed", "possible"):
        got = [c for c in m.candidates if c.verdict == verdict]
        if got:
            rows.append([f"products {verdict}", "; ".join(_candidate_text(c) for c in got)])
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
    return rows


def _trust_rows(d: ReportData, m: Any, ans: Answer) -> list[list[str]]:
    """The phase diagram (when the answer's evidence lacks it), the diagnostics' warnings, the engine check and
    the engines' forces against PBE."""
    from cellsim.products.thermo import thermo_lines

    rows: list[list[str]] = []
    # a record written before the answer carried them: the phase-diagram lines once, here (else in the evidence)
    if not any(str(e).startswith("phase diagram: ") for e in ans.evidence):
        for line in thermo_lines(m.thermo or {}):
            rows.append(["phase diagram", line])
    if d.diagnostics is not None:
        warns = [c for c in d.diagnostics.checks if c.status != "ok"]
        rows.append(
            [
                "trust",
                "; ".join(getattr(c, "message", str(c)) for c in warns)
                if warns
                else "the physical diagnostics raised no warning",
            ]
        )
    # per-phase formation rows are summed up by their "worst formation error" row
    bad = [
        r for r in d.engine_check if r.get("verdict") in ("fail", "warn") and r.get("quantity") != "formation energy"
    ]
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
    return rows


def _answer_note(m: Any) -> str:
    """The answer table's note: the reactants and the verdicts' rules."""
    react = m.reactants or {}
    return (
        f"Reactants: {', '.join(react.get('phases', {})) or 'unknown'} ({react.get('source', '')}). Verdicts: "
        f"formed = score >= {m.threshold} with the 90 % interval's low end >= {FORMED_LOWER:g} x {m.threshold} and, "
        f"where the environments can see the candidate, a firm amount (>= {MIN_ATOMS:g} atoms at the interval's low "
        f"end); possible = the score or the interval reaches the threshold (or score >= {POSSIBLE_FRACTION:g} x "
        "threshold), or such an amount alone; not "
        "seen = otherwise. The answer weighs every line above: bonds formed or broken beyond the first frames' noise "
        "and lost PS4 units are a reaction even when no candidate fits. Rules: docs/matching.md."
    )


def as_built_bonds(d: ReportData) -> dict[str, int] | None:
    """Bond counts of the run's interface as built (before relaxation and MD: the paper's "0 ps" model), as the
    analysis counted them into peaks.json (``bonds.as_built``, run directories only); None without them."""
    pairs = (d.peaks or {}).get("pairs", {})
    built = {p: int(v["bonds"]["as_built"]) for p, v in pairs.items() if v.get("bonds", {}).get("as_built") is not None}
    return built or None


def _counts_text(pair: str, b: BondChange, built: dict[str, int] | None) -> str:
    start = f"{built[pair]} as built -> " if built is not None and pair in built else ""

    def num(x: float | None) -> float:
        return float("nan") if x is None else x

    return (
        f"{pair} {start}{num(b.baseline_mean):.1f} in the first frames -> "
        f"{num(b.late_mean):.1f} in the last third (noise margin {num(b.margin):.1f})"
    )


def _bond_claim(claim: Any, m: Any, built: dict[str, int] | None) -> str:
    """A bond claim judged by the answer's own rule (:func:`cellsim.products.answer.bond_event`), with the counts
    the paper compared: as built (0 ps) against the run."""
    p = claim.subject
    if p not in m.pairs:
        return "not analysed"
    rec = PairRecord.from_dict(p, m.pairs[p])
    b, event = rec.bonds, rec.event
    counts = _counts_text(p, b, built)
    if claim.kind == "bonds form":
        if event == "formed":
            return f"reproduced: {counts}, grew beyond the noise"
        contacts = built is not None and p in built and (b.baseline_mean or 0.0) - built[p] >= 1.0
        if contacts and b.fell:  # counts, not an event: a falling interfacial pair is no "broken" bond
            return f"contacts formed against the as-built model, then were lost beyond the noise: {counts}"
        if contacts:
            return f"contacts formed against the as-built model but did not grow: {counts}"
        return f"not reproduced: {counts}"
    if event == "broken":
        return f"reproduced: {counts}, fell beyond the noise"
    return f"not reproduced, {p} bonds kept: {counts}"


def claims_section(d: ReportData, paper: Paper) -> Section | None:
    """The claims of ``paper``, each reproduced or not by this run (None: nothing to check them against).

    Bond claims use the answer's rule and show the counts the paper compared (its Fig. 5a: after AIMD against
    the interface model before it): as built, the first frames and the last third; products use the verdicts."""
    res, m = d.analysis, d.match
    if m is None or not paper.applies_to(set(res.element_counts)):
        return None
    built = as_built_bonds(d)
    verdict = {c.candidate: c.verdict for c in m.candidates}
    rows = []
    for claim in paper.claims:
        if claim.kind in ("bonds form", "bonds break"):
            rows.append([claim.label, _bond_claim(claim, m, built)])
        else:
            v = verdict.get(claim.subject)
            rows.append([claim.label, "not a candidate" if v is None else ("reproduced" if v == "formed" else v)])
    where = (
        "'as built' is the run's interface/POSCAR before relaxation and MD (the paper's 0 ps model)"
        if built is not None
        else "no as-built model (no run directory): counts from the trajectory only"
    )
    note = (
        f"{paper.setting} Bonds are judged by the answer's rule (a rise or fall beyond the first frames' noise); "
        f"{where}."
    )
    return (f"Paper claims ({paper.citation})", ["claim", "this run"], rows, note)


def claims_sections(d: ReportData) -> list[Section]:
    """One table per paper whose claims speak about this run's elements."""
    out = []
    for paper in papers_for(set(d.analysis.element_counts)):
        section = claims_section(d, paper)
        if section is not None:
            out.append(section)
    return out
