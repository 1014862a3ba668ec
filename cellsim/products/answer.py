"""The one answer of a run from all the evidence: products formed, bonds formed or broken beyond the start's
noise, electrolyte units lost, the energy, the phase diagram, and what was assumed (``match.json: answer``,
the first line of ``cellsim match`` and of the report), as the typed record :class:`Answer`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsim.products.records import (  # noqa: F401  (importable from here as before)
    ANSWER_KEYS,
    MOBILE_IONS,
    Answer,
    _bond_text,
    _framework,
    bond_event,
)

if TYPE_CHECKING:
    from cellsim.analysis.analyze import AnalysisResult
    from cellsim.products.result import MatchResult
    from cellsim.products.verdicts import CandidateVerdict

# fewer frames or windows than this cannot show a change against the start's own noise
JUDGE_MIN_FRAMES = 20
JUDGE_MIN_WINDOWS = 3
MOTIF_LOSS = 0.05  # fraction of PS4 units lost: decomposition rather than a bond flickering past the cutoff


@dataclass
class _Bonds:
    """What the bond counts say: the pairs formed and broken, their departure times, the evidence lines."""

    formed: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)


def _bond_evidence(pairs: dict[str, dict[str, Any]]) -> _Bonds:
    """Each pair by the answer's rule, with a line for every count that left its noise (and why a fall that
    is no break is none)."""
    out = _Bonds()
    for pair, d in pairs.items():
        b = d.get("bonds") or {}
        a, c = pair.split("-")
        event = bond_event(pair, d)
        if event == "formed":
            out.formed.append(pair)
            out.evidence.append(f"{_bond_text(pair, d)} bonds (+{b['change']:.1f}, noise margin {b['margin']:.1f})")
            if b.get("formation_ps") is not None:
                out.times.append(b["formation_ps"])
        if b.get("fell") and not _framework(pair, d):
            why = (
                "Li/Na hopping between sites"
                if {a, c} & MOBILE_IONS
                else "the metal's own bonds: see the diagnostics"
                if a == c
                else "contacts of the interface lost, not a reaction"
            )
            out.evidence.append(f"{_bond_text(pair, d)} bonds fewer ({b['change']:.1f}): {why}")
        if event == "broken":
            out.broken.append(pair)
            out.evidence.append(
                f"{_bond_text(pair, d)} bonds broken ({b['change']:.1f}, noise margin {b['margin']:.1f})"
            )
            if b.get("break_ps") is not None:
                out.times.append(b["break_ps"])
    return out


def _time_step_flag(res: AnalysisResult) -> str | None:
    """Why the time step cannot be right, when the atoms' moves say so (None: plausible or not judged)."""
    check = res.meta.dt_check
    if check.get("status") != "implausible":
        return None
    lo, hi = ([*(check.get("implied_dt_fs") or []), None, None])[:2]
    implied = (
        f" (the atoms' moves between frames imply {lo:.3g}-{hi:.3g} fs)"
        if lo and hi
        else f" (the atoms' moves between frames imply at least {lo:.3g} fs)"
        if lo
        else ""
    )
    return f"the time step of {res.settings.dt_fs:g} fs is implausible{implied}: times and rates are wrong"


def _engine_failure_flag(res: AnalysisResult) -> str | None:
    """When the run's own check (committee or teacher) says its engine failed outright (a force disputed by more than
    :data:`cellsim.analysis.checks.DEVIATION_BROKEN`): from when, in words (None: it did not, or no check ran)."""
    from cellsim.analysis.checks import DEVIATION_BROKEN

    diag = res.diagnostics
    times = np.asarray(getattr(diag, "deviation_times_ps", ()), dtype=float)
    dev = np.asarray(getattr(diag, "deviation_max_eV_A", ()), dtype=float)
    if len(dev) == 0 or len(times) != len(dev) or not (dev > DEVIATION_BROKEN).any():
        return None
    k = int(np.argmax(dev > DEVIATION_BROKEN))
    return (
        f"its engine failed outright from {times[k]:.3g} ps (a force disputed by {dev[k]:.3g} eV/A, more than "
        f"{DEVIATION_BROKEN:g}): whatever happens after {times[k]:.3g} ps is not physical"
    )


def _assumptions(res: AnalysisResult, dt_flag: str | None) -> list[str]:
    """What the answer assumed: a default time step or temperature, a time step the atoms contradict."""
    out: list[str] = []
    if res.meta.dt_source == "default":
        out.append(f"time step assumed {res.settings.dt_fs:g} fs between frames (none given or found)")
    if dt_flag is not None:
        out.append(dt_flag)
    if res.meta.temperature_source == "default":
        out.append(f"temperature assumed {res.temperature_K:g} K (none given or found)")
    return out


def _motifs(result: MatchResult, res: AnalysisResult) -> tuple[bool, dict[str, float]]:
    """Whether PS4 units were lost, and the intact fractions early and late: the diagnostics' verdict where
    they judged the units (the answer agrees with what is printed beside it), else the match's count."""
    ps4: dict[str, float] = (result.electrolyte or {}).get("PS4_intact_fraction") or {}
    motif_lost = bool(ps4 and ps4["early"] - ps4["late"] > MOTIF_LOSS)
    diag = res.diagnostics
    unit = diag.check("PS4 integrity") if diag is not None else None
    if diag is not None and unit is not None:
        start = diag.summary.get("PS4_intact_start")
        end = diag.summary.get("PS4_intact_end")
        motif_lost = unit.status != "ok"
        if start is not None and end is not None:
            ps4 = {"early": float(start), "late": float(end)}
    return motif_lost, ps4


def _energy_evidence(res: AnalysisResult) -> list[str]:
    """A falling potential energy the diagnostics flagged: energy released, or a run still relaxing."""
    diag = res.diagnostics
    drift = getattr(diag, "summary", {}).get("potential_drift_eV_per_ps") if diag is not None else None
    drift_check = diag.check("potential energy drift") if diag is not None and hasattr(diag, "check") else None
    if drift is not None and drift < 0 and drift_check is not None and drift_check.status != "ok":
        return [f"potential energy falling {drift:+.3g} eV/ps (energy released or still relaxing)"]
    return []


def distances_only(element: str | None) -> str:
    """How a candidate the distances made possible, with no atom in its environments, is written (not "~0 atoms")."""
    return f"distances only: no {element + ' ' if element else ''}atom in its environments"


def _amount_text(c: CandidateVerdict) -> str:
    """A candidate with its amount of atoms and interval, and the candidates its environments cannot tell apart."""
    a = c.amount or {}
    if not a:
        return c.candidate
    others = [m for m in a["members"] if m != c.candidate]
    group = f"; environments alike in {' / '.join(others)}" if others else ""
    if a["atoms_hi"] <= 0:
        # the distances made it a candidate, but no atom sits in its environments: not "~0 atoms" of a product
        return f"{c.candidate} ({distances_only(a['element'])}{group})"
    return f"{c.candidate} (~{a['atoms']:g} {a['element']} atoms [{a['atoms_lo']:g}-{a['atoms_hi']:g}]{group})"


def _group_evidence(named: list[CandidateVerdict]) -> list[str]:
    """One line per group of candidates the first-shell environments cannot tell apart."""
    out = []
    for group in {tuple(c.amount["members"]): c.amount for c in named if c.amount}.values():
        if len(group["members"]) > 1:
            out.append(
                f"{' / '.join(group['members'])}: not distinguishable by first-shell environments "
                f"({group.get('sites', '')}); their shared amount is {group['atoms']:g} {group['element']} atoms and "
                "the distances rank them"
            )
    return out


def _kind_and_sentence(
    res: AnalysisResult,
    candidates: list[CandidateVerdict],
    bonds: _Bonds,
    motif_lost: bool,
    ps4: dict[str, float],
) -> tuple[str, str]:
    """The answer's kind and its sentence before the lines every kind may gain (not seen, time step, bare)."""
    run_ps = res.n_frames * res.settings.dt_fs / 1000.0
    formed = [c for c in candidates if c.verdict == "formed"]
    possible = [c for c in candidates if c.verdict == "possible"]
    start = f" from {min(bonds.times):.3g} ps" if bonds.times else ""
    if res.n_frames < JUDGE_MIN_FRAMES or len(res.window_frames) < JUDGE_MIN_WINDOWS:
        return "too short", (
            f"Too short to judge: {res.n_frames} frames ({run_ps:.3g} ps) in {len(res.window_frames)} window(s); "
            f"at least {JUDGE_MIN_FRAMES} frames in {JUDGE_MIN_WINDOWS} windows are needed to tell a change from "
            "noise, and reactions at these interfaces take 0.1-several ps"
        )
    if formed:
        sentence = f"Reaction{start}: " + "; ".join(_amount_text(c) + " formed" for c in formed)
        if possible:
            sentence += "; possible " + ", ".join(_amount_text(c) for c in possible)
        return "products", sentence
    if bonds.formed or bonds.broken or motif_lost:
        parts = [f"{p} breaking" for p in bonds.broken] + [f"{p} forming" for p in bonds.formed]
        if motif_lost and ps4:
            parts.append(f"PS4 units lost ({100 * ps4['early']:.0f} -> {100 * ps4['late']:.0f} % intact)")
        sentence = f"Reaction in progress{start}: " + ", ".join(parts) + "; "
        sentence += (
            "products not identified yet (possible: " + ", ".join(_amount_text(c) for c in possible) + ")"
            if possible
            else "products not identified yet"
        )
        return "reaction", sentence
    sentence = (
        "No reaction seen: no bonds formed beyond the noise of the first frames, no framework bond broke and no "
        "electrolyte unit was lost"
    )
    if possible:
        sentence += "; weak, unconfirmed matches: " + ", ".join(c.candidate for c in possible)
    return "none", sentence


def answer_of(result: MatchResult, res: AnalysisResult) -> Answer:
    """One answer from all the evidence: products, new and broken bonds, lost motifs, energy, assumptions.

    Kinds: ``products`` (a candidate formed), ``reaction`` (bonds formed or broke beyond the start's noise or
    PS4 units were lost, no product formed yet), ``none`` (nothing left its noise), ``too short``. The
    sentence never says "no product formed" while the bond table shows a change: both come from the same
    bond counts (:func:`cellsim.products.baseline.bond_change`).
    """
    from cellsim.products.thermo import thermo_lines

    dt_flag = _time_step_flag(res)
    bonds = _bond_evidence(result.pairs)
    motif_lost, ps4 = _motifs(result, res)
    evidence = list(bonds.evidence)
    if motif_lost:
        evidence.append(f"PS4 intact {100 * ps4['early']:.0f} % -> {100 * ps4['late']:.0f} %")
    evidence += _energy_evidence(res)
    evidence.extend(f"phase diagram: {line}" for line in thermo_lines(result.thermo or {}))
    kind, sentence = _kind_and_sentence(res, result.candidates, bonds, motif_lost, ps4)
    formed = [c for c in result.candidates if c.verdict == "formed"]
    possible = [c for c in result.candidates if c.verdict == "possible"]
    unseen = [c.candidate for c in result.candidates if c.verdict == "not seen"]
    if unseen and kind in ("products", "reaction"):
        sentence += "; not seen: " + ", ".join(unseen)
    if dt_flag is not None:
        # a verdict on times that cannot be right is no verdict: the flag leads
        sentence = f"Time step implausible: {dt_flag}. As read: " + sentence
    failed = _engine_failure_flag(res)
    if failed is not None:
        # nor is one on a trajectory its engine could not describe (a student or fit far outside its data)
        sentence = f"Engine failed: {failed}. As read: " + sentence
        evidence.append(failed)
    evidence += _group_evidence(formed + possible)
    bare = [p for p, d in result.pairs.items() if d.get("no_candidates") and p in bonds.formed + bonds.broken]
    if bare and kind in ("products", "reaction"):
        sentence += "; no candidate phase holds " + ", ".join(bare) + " (none looked for: see notes)"
    return Answer(
        kind=kind,
        sentence=sentence,
        evidence=tuple(evidence),
        assumptions=tuple(_assumptions(res, dt_flag)),
        run_ps=round(res.n_frames * res.settings.dt_fs / 1000.0, 4),
        formed=tuple(c.candidate for c in formed),
        possible=tuple(c.candidate for c in possible),
    )


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
