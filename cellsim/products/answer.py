"""The one answer of a run from all the evidence: products formed, bonds formed or broken beyond the start's
noise, electrolyte units lost, the energy, the phase diagram, and what was assumed (``match.json: answer``,
the first line of ``cellsim match`` and of the report)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from cellsim.analysis.analyze import AnalysisResult
    from cellsim.products.result import MatchResult
    from cellsim.products.verdicts import CandidateVerdict

# fewer frames or windows than this cannot show a change against the start's own noise
JUDGE_MIN_FRAMES = 20
JUDGE_MIN_WINDOWS = 3
# ions that hop between sites at room temperature: their bond counts to the anions change without a reaction
MOBILE_IONS = frozenset({"Li", "Na", "K", "Ag", "Cu"})
MOTIF_LOSS = 0.05  # fraction of PS4 units lost: decomposition rather than a bond flickering past the cutoff


def _bond_text(pair: str, d: dict[str, Any]) -> str:
    b = d["bonds"]
    return f"{pair} {b['baseline_mean']:.1f} -> {b['late_mean']:.1f}"


def bond_event(pair: str, d: dict[str, Any]) -> str | None:
    """The answer's rule for one pair of the match (``MatchResult.pairs[pair]``): ``"formed"`` (a new RDF shell,
    or a count risen beyond the first frames' noise for a pair not bonded in a reactant), ``"broken"`` (a
    framework pair of a reactant, neither mobile ion nor metal-metal, fallen beyond that noise) or None. The
    answer, the evidence and the paper-claims table all use it."""
    b = d.get("bonds") or {}
    a, c = pair.split("-")
    if d.get("has_new") or (b.get("rose") and d.get("kind") != "reactant pair"):
        return "formed"
    framework = d.get("kind") == "reactant pair" and not ({a, c} & MOBILE_IONS) and a != c
    if b.get("fell") and framework:
        return "broken"
    return None


def answer_of(result: MatchResult, res: AnalysisResult) -> dict[str, Any]:
    """One answer from all the evidence: products, new and broken bonds, lost motifs, energy, assumptions.

    Kinds: ``products`` (a candidate formed), ``reaction`` (bonds formed or broke beyond the start's noise or
    PS4 units were lost, no product formed yet), ``none`` (nothing left its noise), ``too short``. The
    sentence never says "no product formed" while the bond table shows a change: both come from the same
    bond counts (:func:`cellsim.products.baseline.bond_change`).
    """
    run_ps = res.n_frames * res.settings.dt_fs / 1000.0
    assumptions: list[str] = []
    meta = res.meta
    if meta.dt_source == "default":
        assumptions.append(f"time step assumed {res.settings.dt_fs:g} fs between frames (none given or found)")
    check = meta.dt_check
    implausible = check.get("status") == "implausible"
    if implausible:
        lo, hi = ([*(check.get("implied_dt_fs") or []), None, None])[:2]
        implied = (
            f" (the atoms' moves between frames imply {lo:.3g}-{hi:.3g} fs)"
            if lo and hi
            else f" (the atoms' moves between frames imply at least {lo:.3g} fs)"
            if lo
            else ""
        )
        dt_flag = f"the time step of {res.settings.dt_fs:g} fs is implausible{implied}: times and rates are wrong"
        assumptions.append(dt_flag)
    if meta.temperature_source == "default":
        assumptions.append(f"temperature assumed {res.temperature_K:g} K (none given or found)")
    evidence: list[str] = []
    formed_bonds, broken_bonds, times = [], [], []
    for pair, d in result.pairs.items():
        b = d.get("bonds") or {}
        a, c = pair.split("-")
        event = bond_event(pair, d)
        if event == "formed":
            formed_bonds.append(pair)
            evidence.append(f"{_bond_text(pair, d)} bonds (+{b['change']:.1f}, noise margin {b['margin']:.1f})")
            if b.get("formation_ps") is not None:
                times.append(b["formation_ps"])
        framework = d.get("kind") == "reactant pair" and not ({a, c} & MOBILE_IONS) and a != c
        if b.get("fell") and not framework:
            why = (
                "Li/Na hopping between sites"
                if {a, c} & MOBILE_IONS
                else "the metal's own bonds: see the diagnostics"
                if a == c
                else "contacts of the interface lost, not a reaction"
            )
            evidence.append(f"{_bond_text(pair, d)} bonds fewer ({b['change']:.1f}): {why}")
        if event == "broken":
            broken_bonds.append(pair)
            evidence.append(f"{_bond_text(pair, d)} bonds broken ({b['change']:.1f}, noise margin {b['margin']:.1f})")
            if b.get("break_ps") is not None:
                times.append(b["break_ps"])
    ps4: dict[str, float] = (result.electrolyte or {}).get("PS4_intact_fraction") or {}
    motif_lost = bool(ps4 and ps4["early"] - ps4["late"] > MOTIF_LOSS)
    diag = res.diagnostics
    unit = diag.check("PS4 integrity") if diag is not None and hasattr(diag, "check") else None
    if unit is not None:
        # the diagnostics printed beside the answer judged the same units: their verdict is the answer's
        start = diag.summary.get("PS4_intact_start")
        end = diag.summary.get("PS4_intact_end")
        motif_lost = unit.status != "ok"
        if start is not None and end is not None:
            ps4 = {"early": float(start), "late": float(end)}
    if motif_lost:
        evidence.append(f"PS4 intact {100 * ps4['early']:.0f} % -> {100 * ps4['late']:.0f} %")
    drift = getattr(diag, "summary", {}).get("potential_drift_eV_per_ps") if diag is not None else None
    drift_check = diag.check("potential energy drift") if diag is not None and hasattr(diag, "check") else None
    if drift is not None and drift < 0 and drift_check is not None and drift_check.status != "ok":
        evidence.append(f"potential energy falling {drift:+.3g} eV/ps (energy released or still relaxing)")
    from cellsim.products.thermo import thermo_lines

    evidence.extend(f"phase diagram: {line}" for line in thermo_lines(result.thermo or {}))
    formed = [c for c in result.candidates if c.verdict == "formed"]
    possible = [c for c in result.candidates if c.verdict == "possible"]
    unseen = [c.candidate for c in result.candidates if c.verdict == "not seen"]
    start = f" from {min(times):.3g} ps" if times else ""

    def amount_text(c: CandidateVerdict) -> str:
        a = c.amount or {}
        if not a:
            return c.candidate
        others = [m for m in a["members"] if m != c.candidate]
        group = f"; environments alike in {' / '.join(others)}" if others else ""
        return f"{c.candidate} (~{a['atoms']:g} {a['element']} atoms [{a['atoms_lo']:g}-{a['atoms_hi']:g}]{group})"

    if res.n_frames < JUDGE_MIN_FRAMES or len(res.window_frames) < JUDGE_MIN_WINDOWS:
        kind = "too short"
        sentence = (
            f"Too short to judge: {res.n_frames} frames ({run_ps:.3g} ps) in {len(res.window_frames)} window(s); "
            f"at least {JUDGE_MIN_FRAMES} frames in {JUDGE_MIN_WINDOWS} windows are needed to tell a change from "
            "noise, and reactions at these interfaces take 0.1-several ps"
        )
    elif formed:
        kind = "products"
        sentence = f"Reaction{start}: " + "; ".join(amount_text(c) + " formed" for c in formed)
        if possible:
            sentence += "; possible " + ", ".join(amount_text(c) for c in possible)
    elif formed_bonds or broken_bonds or motif_lost:
        kind = "reaction"
        parts = [f"{p} breaking" for p in broken_bonds] + [f"{p} forming" for p in formed_bonds]
        if motif_lost and ps4:
            parts.append(f"PS4 units lost ({100 * ps4['early']:.0f} -> {100 * ps4['late']:.0f} % intact)")
        sentence = f"Reaction in progress{start}: " + ", ".join(parts) + "; "
        sentence += (
            "products not identified yet (possible: " + ", ".join(amount_text(c) for c in possible) + ")"
            if possible
            else "products not identified yet"
        )
    else:
        kind = "none"
        sentence = (
            "No reaction seen: no bonds formed beyond the noise of the first frames, no framework bond broke and no "
            "electrolyte unit was lost"
        )
        if possible:
            sentence += "; weak, unconfirmed matches: " + ", ".join(c.candidate for c in possible)
    if unseen and kind in ("products", "reaction"):
        sentence += "; not seen: " + ", ".join(unseen)
    if implausible:
        # a verdict on times that cannot be right is no verdict: the flag leads
        sentence = f"Time step implausible: {dt_flag}. As read: " + sentence
    for group in {tuple(c.amount["members"]): c.amount for c in formed + possible if c.amount}.values():
        if len(group["members"]) > 1:
            evidence.append(
                f"{' / '.join(group['members'])}: not distinguishable by first-shell environments "
                f"({group.get('sites', '')}); their shared amount is {group['atoms']:g} {group['element']} atoms and "
                "the distances rank them"
            )
    bare = [p for p, d in result.pairs.items() if d.get("no_candidates") and p in formed_bonds + broken_bonds]
    if bare and kind in ("products", "reaction"):
        sentence += "; no candidate phase holds " + ", ".join(bare) + " (none looked for: see notes)"
    return {
        "kind": kind,
        "sentence": sentence,
        "evidence": evidence,
        "assumptions": assumptions,
        "run_ps": round(run_ps, 4),
        "formed": [c.candidate for c in formed],
        "possible": [c.candidate for c in possible],
    }


def electrolyte_motifs(env: Any) -> dict[str, Any]:
    """Electrolyte breakdown in words and numbers: PS4 losing S, S without P, Cl leaving its Li cage."""
    if env is None:
        return {}
    m = env.motifs()
    out: dict[str, Any] = {}
    n = len(m["times_ps"])
    if n < 2:
        return out
    k = max(1, n // 5)

    def change(series: list[float]) -> tuple[float, float]:
        return float(np.mean(series[:k])), float(np.mean(series[-k:]))

    if "PS4_intact_fraction" in m:
        a, b = change(m["PS4_intact_fraction"])
        out["PS4_intact_fraction"] = {"early": round(a, 3), "late": round(b, 3)}
        sa, sb = change(m["S_without_P"])
        out["S_without_P"] = {"early": round(sa, 2), "late": round(sb, 2)}
        if b < a - 0.05:
            out.setdefault("points_to", []).append("PS4 units lose S (P-S bonds break): P-S fragments, Li3P")
        if sb > sa + 1.0:
            out.setdefault("points_to", []).append("sulfur without P grows: sulfides (Li2S or metal sulfides)")
    if "Cl_mean_nLi" in m:
        a, b = change(m["Cl_mean_nLi"])
        out["Cl_mean_nLi"] = {"early": round(a, 2), "late": round(b, 2)}
        if b < a - 0.5:
            out.setdefault("points_to", []).append("Cl leaves its Li cage: chlorides of the metal (or LiCl)")
    return out
