"""How much of each product: every atom whose environment changed is assigned to the candidate site it resembles.

Pair RDFs say that In-S bonds formed; they cannot say whether 20 In atoms became In2S3-like or 80 In atoms
each touched one S, nor tell S-bound In from Cl-bound In when both happen in one slab. The environments
(:class:`~cellsim.analysis.environments.Environments`: per atom, the number of neighbours of each element
within the bond cutoffs, on sampled frames) can.

Rules (docs/matching.md gives them with examples):

1. **Counting element of a candidate.** Environments count an atom's partners, never its own element (a
   melting metal loses metal neighbours without reacting). The element of the candidate whose sites differ
   most from that element's sites in every reactant crystal (L1 distance of the partner-count vectors), among the
   elements that belong to one reactant only (Li of a Li anode next to a Li electrolyte cannot be followed
   to one side); a tie goes to the more electropositive element. In for In2S3 / InCl, P for Li3P, S for
   Li2S, Cl for LiCl. A candidate whose best element
   differs by less than :data:`MIN_DISTINCT` neighbours from the reactants' sites cannot be seen in the
   environments ("not distinguishable from the reactants": Li3PS4 next to Li6PS5Cl).
2. **Groups.** Candidates counted on the same element whose site vectors point the same way (cosine >=
   :data:`GROUP_COSINE`: In2S3, InS and LiInS2 all have In bound to S only) are one group: no first-shell
   observable separates them, so their amount is reported together.
3. **Decomposition of each atom.** An atom *changed* when the L1 distance between its mean late and mean
   early neighbour counts is at least :data:`MIN_CHANGE`. Its late vector is fitted as a convex mixture of
   its own early vector (unchanged) and the site vectors of every group (non-negative least squares with the
   weights summing to one). An atom is *reacted* when it gained at least :data:`MIN_GAIN` partners (a
   surface In that gains one S is a contact, not In2S3), the product weights sum to at least
   :data:`REACTED_WEIGHT` and the fit is good (L1 residual <= :data:`MAX_RESIDUAL_FRACTION` of its neighbours, at least
   :data:`MAX_RESIDUAL_MIN`); else it is a *contact* or *unassigned*. A reacted atom counts for each group by
   its share of the product weight (an In with 2 S and 2 Cl is half sulfide, half chloride).
4. **Amounts.** Atoms of the counting element per group (sum of shares) and formula units (atoms / that
   element's count per formula unit; a range over the group's members), with a 90 % interval from a
   bootstrap over the early and late samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

MIN_DISTINCT = 2.0  # neighbours: less than this and a candidate's sites look like the reactant's own
GROUP_COSINE = 0.9  # same partner mix (In bound to S only) -> not separable by first-shell counts
MIN_CHANGE = 1.0  # neighbours (L1 of mean counts): a thermal flicker past a cutoff moves a mean by less
MIN_GAIN = 2.0  # partners gained: one anion on a surface metal atom is a contact, two begin a product
REACTED_WEIGHT = 0.25  # product weight of a reacted atom: a quarter of the way to the product's partners
MAX_RESIDUAL_FRACTION = 0.35
MAX_RESIDUAL_MIN = 2.0
# the fit's weights and residual are exact only to their last bits (a 2.0 residual came back 2.0000000000000018):
# the edges of rule 3 are read with this slack, far below a neighbour and far above the rounding
FIT_SLACK = 1e-9
BOOTSTRAP = 200
# an amount is firm when its interval's low end holds at least this many atoms
MIN_ATOMS = 2.0


@dataclass
class Group:
    """Candidates that the environments cannot tell apart, counted on one element."""

    element: str
    members: list[str]
    vectors: list[np.ndarray]  # site vectors (neighbour counts per element), unique sites of all members
    per_formula_unit: dict[str, int]  # atoms of ``element`` per formula unit, by member
    site_counts: dict[str, int] = field(default_factory=dict)  # how many of ``vectors`` each member brought

    @property
    def name(self) -> str:
        return " / ".join(self.members)

    def sites(self, elements: list[str]) -> str:
        """The neighbours of the counting element in every member (why they cannot be told apart)."""

        def text(v: np.ndarray) -> str:
            return " + ".join(f"{int(n)} {el}" for el, n in zip(elements, v, strict=True) if n > 0) or "none"

        per: dict[str, list[str]] = {}
        k = 0
        for m in self.members:
            n = self.site_counts[m]
            per[m] = sorted({text(v) for v in self.vectors[k : k + n]})
            k += n
        return "; ".join(f"{m}: {self.element} with {' or '.join(v)}" for m, v in per.items())


@dataclass
class Amounts:
    """Per-atom assignment of the changed atoms and the amount of each product group."""

    elements: list[str]
    groups: list[Group]
    # per group name: atoms (share-weighted), interval, formula units range, number of atoms contributing
    amounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # per counting element: atoms total, changed, reacted, contacts, unassigned
    centres: dict[str, dict[str, Any]] = field(default_factory=dict)
    # candidates that the environments cannot see, with the reason
    unseen: dict[str, str] = field(default_factory=dict)
    # per candidate: its group name (when counted)
    group_of: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": [
                {"name": g.name, "element": g.element, "members": g.members, "per_formula_unit": g.per_formula_unit}
                for g in self.groups
            ],
            "amounts": self.amounts,
            "centres": self.centres,
            "unseen": self.unseen,
            "group_of": self.group_of,
            "rules": {
                "changed": f"L1(late - early mean neighbour counts) >= {MIN_CHANGE}",
                "reacted": f">= {MIN_GAIN:g} partners gained, product weight >= {REACTED_WEIGHT} in a convex fit "
                "of the late counts by the atom's early counts and the candidate sites; "
                f"residual <= max({MAX_RESIDUAL_MIN}, "
                f"{MAX_RESIDUAL_FRACTION} x neighbours)",
                "groups": f"candidates counted on one element with site vectors of cosine >= {GROUP_COSINE}",
                "interval": f"5-95 % of {BOOTSTRAP} bootstrap resamples of the early and late samples",
            },
        }


def _l1(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).sum())


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    d = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / d) if d > 0 else 0.0


def _chi(el: str) -> float:
    from pymatgen.core import Element

    x = Element(el).X
    return float(x) if x == x else 4.0  # noble gases have no Pauling value (nan)


def _site_vectors(structure: Any, element: str, elements: list[str], cut: np.ndarray) -> list[np.ndarray]:
    from cellsim.analysis.environments import crystal_environments

    sites = crystal_environments(structure, element, elements, cut)
    if not len(sites):
        return []
    sites = sites.astype(float)
    sites[:, elements.index(element)] = 0.0  # partners only (rule 1): a melting metal changes its own count
    return list(np.unique(sites, axis=0))


def build_groups(
    candidates: list[Any],
    reactant_structures: dict[str, Any],
    elements: list[str],
    cut: np.ndarray,
    present: set[str],
) -> tuple[list[Group], dict[str, str]]:
    """The counting element and group of each candidate (rules 1 and 2), and why the others are unseen."""
    react_sites: dict[str, list[np.ndarray]] = {}
    holders: dict[str, int] = {}
    for s in reactant_structures.values():
        for el in {e.symbol for e in s.composition}:
            if el in elements:
                react_sites.setdefault(el, []).extend(_site_vectors(s, el, elements, cut))
                holders[el] = holders.get(el, 0) + 1
    unseen: dict[str, str] = {}
    counted: list[tuple[str, str, list[np.ndarray], int]] = []
    for c in candidates:
        comp = c.structure.composition.reduced_composition
        best: tuple[float, str, list[np.ndarray]] | None = None
        for el in sorted(c.elements):
            if el not in present or el not in elements or holders.get(el, 0) > 1:
                continue
            vecs = _site_vectors(c.structure, el, elements, cut)
            if not vecs:
                continue
            refs = react_sites.get(el, [])
            mean = np.mean(vecs, axis=0)
            dist = min((_l1(mean, r) for r in refs), default=float(mean.sum()))
            # ties go to the more electropositive element: the metal centre of a salt (In of InCl)
            if best is None or dist > best[0] + 1e-9 or (abs(dist - best[0]) <= 1e-9 and _chi(el) < _chi(best[1])):
                best = (dist, el, vecs)
        if best is None:
            unseen[c.name] = "no element of it can be followed to one reactant"
            continue
        if best[0] < MIN_DISTINCT:
            unseen[c.name] = (
                f"its {best[1]} sites have the neighbours of the reactants' {best[1]} "
                f"(within {best[0]:.1f}): not distinguishable from the reactants by first-shell environments"
            )
            continue
        counted.append((c.name, best[1], best[2], round(comp[best[1]])))
    groups: list[Group] = []
    for name, el, vecs, per_fu in counted:
        mean = np.mean(vecs, axis=0)
        home = next(
            (g for g in groups if g.element == el and _cos(np.mean(g.vectors, axis=0), mean) >= GROUP_COSINE), None
        )
        if home is None:
            groups.append(Group(el, [name], list(vecs), {name: per_fu}, {name: len(vecs)}))
        else:
            home.members.append(name)
            home.vectors.extend(vecs)
            home.per_formula_unit[name] = per_fu
            home.site_counts[name] = len(vecs)
    return groups, unseen


def _convex_fit(target: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, float]:
    """Weights w >= 0, sum 1, minimising |columns @ w - target|^2; and the L1 residual."""
    from scipy.optimize import nnls

    # the sum-to-one constraint as a heavily weighted extra row (exact to ~1e-6 at this weight)
    lam = 100.0 * max(1.0, float(np.abs(columns).max()))
    a = np.vstack([columns, lam * np.ones(columns.shape[1])])
    b = np.concatenate([target, [lam]])
    w, _ = nnls(a, b)
    s = w.sum()
    if s > 0:
        w = w / s
    return w, float(np.abs(columns @ w - target).sum())


def _assign(
    early: np.ndarray, late: np.ndarray, groups: list[Group], gidx: list[int]
) -> tuple[np.ndarray, dict[str, int]]:
    """Share of each group per atom (atoms x groups) and the counts of changed/reacted/contact/unassigned."""
    n = len(early)
    shares = np.zeros((n, len(groups)))
    stats = {"changed": 0, "reacted": 0, "contacts": 0, "unassigned": 0}
    if not gidx:
        stats["changed"] = int(sum(_l1(late[i], early[i]) >= MIN_CHANGE for i in range(n)))
        stats["unassigned"] = stats["changed"]
        return shares, stats
    owner = [k for k in gidx for _ in groups[k].vectors]
    cols = np.column_stack([v for k in gidx for v in groups[k].vectors])
    for i in range(n):
        if _l1(late[i], early[i]) < MIN_CHANGE:
            continue
        stats["changed"] += 1
        w, resid = _convex_fit(late[i], np.column_stack([early[i], cols]))
        prod = w[1:]
        total = float(prod.sum())
        limit = max(MAX_RESIDUAL_MIN, MAX_RESIDUAL_FRACTION * float(late[i].sum()))
        gained = float(np.clip(late[i] - early[i], 0.0, None).sum())
        if total < REACTED_WEIGHT - FIT_SLACK or gained < MIN_GAIN:
            stats["contacts"] += 1
            continue
        if resid > limit + FIT_SLACK:
            stats["unassigned"] += 1
            continue
        stats["reacted"] += 1
        for k, wk in zip(owner, prod, strict=True):
            shares[i, k] += wk / total
    return shares, stats


def product_amounts(
    env: Any,
    candidates: list[Any],
    reactant_structures: dict[str, Any],
    early_samples: np.ndarray,
    late_samples: np.ndarray,
    seed: int = 0,
) -> Amounts:
    """Rules 1-4 of the module docstring on sampled environments ``env``.

    Parameters
    ----------
    env
        :class:`~cellsim.analysis.environments.Environments` of the trajectory.
    candidates
        :class:`~cellsim.products.candidates.Candidate` s (name, elements, structure).
    reactant_structures
        Reactant crystals by name (their sites are what a counting element must differ from).
    early_samples, late_samples
        Indices into the environment samples forming the early and the late state.
    """
    elements = list(env.elements)
    present = set(env.species)
    groups, unseen = build_groups(candidates, reactant_structures, elements, env.cutoffs, present)
    out = Amounts(elements, groups, unseen=unseen)
    rng = np.random.default_rng(seed)
    counts = env.counts.astype(float)
    for g in groups:
        for m in g.members:
            out.group_of[m] = g.name
    for el in dict.fromkeys(g.element for g in groups):
        idx = env.atoms_of(el)
        gidx = [k for k, g in enumerate(groups) if g.element == el]
        own = elements.index(el)
        early = counts[early_samples][:, idx].mean(axis=0)
        late = counts[late_samples][:, idx].mean(axis=0)
        early[:, own] = late[:, own] = 0.0
        shares, stats = _assign(early, late, groups, gidx)
        out.centres[el] = {"atoms": len(idx), **stats}
        boot = np.zeros((BOOTSTRAP, len(groups)))
        for b in range(BOOTSTRAP):
            e = counts[rng.choice(early_samples, len(early_samples))][:, idx].mean(axis=0)
            lt = counts[rng.choice(late_samples, len(late_samples))][:, idx].mean(axis=0)
            e[:, own] = lt[:, own] = 0.0
            boot[b] = _assign(e, lt, groups, gidx)[0].sum(axis=0)
        for k in gidx:
            g = groups[k]
            atoms = float(shares[:, k].sum())
            lo, hi = np.percentile(boot[:, k], [5, 95])
            fu = [atoms / n for n in g.per_formula_unit.values() if n > 0]
            out.amounts[g.name] = {
                "element": el,
                "members": g.members,
                "sites": g.sites(elements),
                "atoms": round(atoms, 1),
                "atoms_lo": round(float(min(lo, atoms)), 1),
                "atoms_hi": round(float(max(hi, atoms)), 1),
                "formula_units": [round(min(fu), 1), round(max(fu), 1)] if fu else None,
                # a share under 1e-6 is the convex fit's rounding (its sum-to-one row is exact to ~1e-6), not an atom
                "contributing_atoms": int((shares[:, k] > 1e-6).sum()),
                "firm": bool(min(lo, atoms) >= MIN_ATOMS),
            }
    return out
