"""The answer of the matching stage as an object and as files: ``products.csv`` (one row per pair and candidate,
then one per candidate), ``ref_rdf.npz`` (the candidates' reference densities) and ``match.json``, written
as one set and read back by :func:`load_match`."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cellsim.config.rundir import MATCH_FILE as _MATCH_FILE
from cellsim.config.rundir import PRODUCTS_CSV, REF_RDF_NPZ
from cellsim.core.errors import CellsimError
from cellsim.core.records import read_versioned
from cellsim.products.records import Answer, bond_event
from cellsim.products.scores import PairMatch
from cellsim.products.verdicts import RULES, CandidateVerdict


class MatchError(CellsimError):
    """Matching cannot run on this analysis, or its results cannot be read."""


MATCH_FILE = _MATCH_FILE  # importable from here as before
FORMAT_TAG = "cellsim-match"
# 1: match.json without a "version" (cellsim up to 0.2.0; keys added over its life may be absent)
# 2: "version" and "cellsim_version" written, every key of write_products present
FORMAT_VERSION = 2
_OPTIONAL_V1: dict[str, Any] = {
    "reactants": {},
    "environments": {},
    "electrolyte": {},
    "analysis_id": None,
    "replicas": {},
    "amounts": {},
    "answer": {},
    "thermo": {},
}


def _upgrade_1(d: dict[str, Any]) -> dict[str, Any]:
    """Format 1 -> 2: the keys a format-1 file may lack, with the values that meant "none"."""
    import copy

    return {**{k: copy.deepcopy(v) for k, v in _OPTIONAL_V1.items() if k not in d}, **d}


# MatchResult.pairs_dataframe's columns (the pairs table of `cellsim match`)
_PAIR_COLUMNS = (
    "pair",
    "kind",
    "bonds_baseline",
    "bonds_late",
    "bonds_change",
    "noise_margin",
    "new_per_atom",
    "new_per_minority_atom",
    "minority",
    "new_bonds",
    "md_peak_r",
    "support",
)

# the one place older match.json files are brought forward: version v -> v + 1
UPGRADES = {1: _upgrade_1}


def _opt(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    return None if v is None else float(v)


@dataclass(frozen=True)
class BondChange:
    """A pair's bond count at the start against the end (``match.json: pairs[pair].bonds``,
    :func:`cellsim.products.baseline.bond_change`): the first frames' mean and noise margin, the last third's
    mean, whether it rose or fell beyond the margin, and when it first left it (None: not measured)."""

    baseline_mean: float | None = None
    late_mean: float | None = None
    margin: float | None = None
    change: float = 0.0
    rose: bool = False
    fell: bool = False
    formation_ps: float | None = None
    break_ps: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BondChange:
        return cls(
            baseline_mean=_opt(d, "baseline_mean"),
            late_mean=_opt(d, "late_mean"),
            margin=_opt(d, "margin"),
            change=float(d.get("change") or 0.0),
            rose=bool(d.get("rose")),
            fell=bool(d.get("fell")),
            formation_ps=_opt(d, "formation_ps"),
            break_ps=_opt(d, "break_ps"),
        )


@dataclass(frozen=True)
class PairRecord:
    """One analysed pair of a match (``match.json: pairs[pair]``, :func:`cellsim.products.baseline.pair_changes`)
    as a typed, read-only view: how it relates to the reactants, its new neighbours and peak with their bootstrap
    support, its bond change, and ``event``, what the answer's rule (:func:`cellsim.products.answer.bond_event`)
    calls it: ``"formed"``, ``"broken"`` or None. ``MatchResult.pairs`` stays the dict match.json spells out."""

    pair: str
    kind: str | None = None
    reactants_with_pair: tuple[str, ...] = ()
    md_peak_r: float | None = None
    new: float | None = None  # new neighbours per A atom
    new_per_minority_atom: float | None = None
    minority: str | None = None
    has_new: bool = False
    bootstrap_support: float | None = None
    bond_cutoff: float | None = None
    bonds: BondChange = field(default_factory=BondChange)
    no_candidates: str | None = None  # why no candidate was looked for (none holds the pair)
    event: str | None = None

    @classmethod
    def from_dict(cls, pair: str, d: dict[str, Any]) -> PairRecord:
        return cls(
            pair=pair,
            kind=d.get("kind"),
            reactants_with_pair=tuple(d.get("reactants_with_pair") or ()),
            md_peak_r=_opt(d, "md_peak_r"),
            new=_opt(d, "new"),
            new_per_minority_atom=_opt(d, "new_per_minority_atom"),
            minority=d.get("minority"),
            has_new=bool(d.get("has_new")),
            bootstrap_support=_opt(d, "bootstrap_support"),
            bond_cutoff=_opt(d, "bond_cutoff"),
            bonds=BondChange.from_dict(d.get("bonds") or {}),
            no_candidates=d.get("no_candidates"),
            event=bond_event(pair, d),
        )


def pair_records(pairs: dict[str, dict[str, Any]]) -> dict[str, PairRecord]:
    """The typed view of a match's ``pairs`` table, in its order."""
    return {p: PairRecord.from_dict(p, d) for p, d in pairs.items()}


@dataclass(repr=False)
class MatchResult:
    """The answer of the matching stage; :meth:`save` / :meth:`load` round-trip it; ``repr`` is a few lines."""

    pairs: dict[str, dict[str, Any]]
    rows: list[PairMatch]
    candidates: list[CandidateVerdict]
    references: dict[str, dict[str, np.ndarray]]
    notes: list[str]
    threshold: float
    reactants: dict[str, Any] = field(default_factory=dict)
    environments: dict[str, Any] = field(default_factory=dict)
    electrolyte: dict[str, Any] = field(default_factory=dict)
    analysis_id: str | None = None
    # with replicas: per candidate, how many replicas gave each verdict, and their best scores
    replicas: dict[str, dict[str, Any]] = field(default_factory=dict)
    # per-atom assignment of the changed atoms (amounts.Amounts.to_dict)
    amounts: dict[str, Any] = field(default_factory=dict)
    # the one answer from all the evidence (:func:`cellsim.products.answer.answer_of`); a dict is read as one
    answer: Answer = field(default_factory=Answer.absent)
    # what the phase diagram of the engine's energies expects (:mod:`cellsim.products.thermo`)
    thermo: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.answer = Answer.coerce(self.answer)

    def __repr__(self) -> str:
        a = self.answer
        sentence = str(a.sentence or "(no answer)")
        if len(sentence) > 400:
            sentence = sentence[:397] + "..."
        pairs = list(self.pairs)
        shown = ", ".join(pairs[:8]) + (f" and {len(pairs) - 8} more" if len(pairs) > 8 else "")
        by: dict[str, list[str]] = {}
        for c in self.candidates:
            by.setdefault(c.verdict, []).append(c.candidate)

        def names(xs: list[str]) -> str:
            return ", ".join(xs[:5]) + (f" +{len(xs) - 5}" if len(xs) > 5 else "")

        verdicts = "; ".join(f"{v} {names(xs)}" for v, xs in by.items()) or "none"
        lines = [
            f"MatchResult(analysis {self.analysis_id or '?'}: {len(pairs)} pairs ({shown or 'none'})",
            f"  {len(self.candidates)} candidates: {verdicts}",
            f"  answer {a.kind if a.kind is not None else '?'}: {sentence})",
        ]
        return "\n".join(lines)

    @property
    def pair_records(self) -> dict[str, PairRecord]:
        """The ``pairs`` table as typed records (:class:`PairRecord`), in the analysis' order."""
        return pair_records(self.pairs)

    @property
    def formed(self) -> list[CandidateVerdict]:
        return [c for c in self.candidates if c.verdict == "formed"]

    @property
    def overall(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.candidates]

    def to_dataframe(self) -> Any:
        """The products.csv table as a pandas DataFrame, with what ``cellsim match`` prints per candidate beside
        it on the ``overall`` rows: ``best_pair``, ``best_score`` (``score_lo``/``score_hi`` its interval) and the
        amount, ``atoms`` [``atoms_lo``-``atoms_hi``] of ``element``, ``alike`` the candidates its environments
        cannot tell apart (empty on the pair rows and where the environments cannot see the candidate)."""
        import pandas as pd

        df = pd.read_csv(io.StringIO(products_csv(self)))
        blank: list[Any] = [None] * len(self.rows)
        amounts = [c.amount or {} for c in self.candidates]
        df["best_pair"] = blank + [c.best_pair for c in self.candidates]
        df["best_score"] = blank + [c.best_score for c in self.candidates]
        for col, key in (("atoms", "atoms"), ("atoms_lo", "atoms_lo"), ("atoms_hi", "atoms_hi")):
            df[col] = pd.array(blank + [a.get(key) for a in amounts], dtype="Float64")
        df["element"] = blank + [a.get("element") for a in amounts]
        df["alike"] = blank + [
            " / ".join(m for m in a.get("members", []) if m != c.candidate) or None
            for c, a in zip(self.candidates, amounts, strict=True)
        ]
        return df

    def pairs_dataframe(self) -> Any:
        """The pairs table of ``cellsim match`` as a pandas DataFrame: one row per pair, its kind, its bond count
        (first frames -> last third, change and noise margin), new neighbours per A atom and per minority atom,
        the new peak and its bootstrap support."""
        import pandas as pd

        rows = []
        for pair, d in self.pairs.items():
            b = d.get("bonds") or {}
            rows.append(
                {
                    "pair": pair,
                    "kind": d.get("kind"),
                    "bonds_baseline": b.get("baseline_mean"),
                    "bonds_late": b.get("late_mean"),
                    "bonds_change": b.get("change"),
                    "noise_margin": b.get("margin"),
                    "new_per_atom": d.get("new"),
                    "new_per_minority_atom": d.get("new_per_minority_atom"),
                    "minority": d.get("minority"),
                    "new_bonds": d.get("has_new"),
                    "md_peak_r": d.get("md_peak_r"),
                    "support": d.get("bootstrap_support"),
                }
            )
        return pd.DataFrame(rows, columns=list(_PAIR_COLUMNS))

    def save(self, folder: str | Path) -> dict[str, Path]:
        return write_products(self, Path(folder))

    @classmethod
    def load(cls, folder: str | Path) -> MatchResult:
        return load_match(Path(folder))


def products_csv(result: MatchResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "pair",
            "candidate",
            "formula",
            "space_group",
            "source",
            "md_peak_r",
            "ref_shell_r",
            "delta_r",
            "score",
            "score_lo",
            "score_hi",
            "verdict",
            "rank",
        ]
    )

    def f(x: float | None, nd: int = 3) -> str:
        return "" if x is None else f"{x:.{nd}f}"

    for m in result.rows:
        w.writerow(
            [
                m.pair,
                m.candidate,
                m.formula,
                m.spacegroup,
                m.source,
                f(m.md_peak_r, 2),
                f(m.ref_peak_r),
                f(m.delta_r),
                f(m.score, 2),
                f(m.score_lo, 2),
                f(m.score_hi, 2),
                "",
                m.rank,
            ]
        )
    for v in result.candidates:
        w.writerow(
            [
                "overall",
                v.candidate,
                v.formula,
                v.spacegroup,
                v.source,
                "",
                "",
                "",
                f(v.score, 2),
                f(v.best_lo, 2),
                f(v.best_hi, 2),
                v.verdict,
                v.rank,
            ]
        )
    return buf.getvalue()


def write_products(result: MatchResult, folder: Path) -> dict[str, Path]:
    """products.csv, ref_rdf.npz and match.json, committed as one set (:func:`cellsim.core.files.commit_files`)."""
    from cellsim.core.files import commit_files

    arrays: dict[str, Any] = {f"{c}|{p}": v for c, d in result.references.items() for p, v in d.items()}
    npz = io.BytesIO()
    np.savez(npz, **arrays)
    from cellsim.core.version import __version__

    doc = {
        "format": FORMAT_TAG,
        "version": FORMAT_VERSION,
        "cellsim_version": __version__,
        "analysis_id": result.analysis_id,
        "threshold": result.threshold,
        "reactants": result.reactants,
        "pairs": result.pairs,
        "notes": result.notes,
        "candidates": [asdict(c) for c in result.candidates],
        "rows": [asdict(m) for m in result.rows],
        "environments": result.environments,
        "electrolyte": result.electrolyte,
        "replicas": result.replicas,
        "amounts": result.amounts,
        "answer": result.answer.to_dict(),
        "thermo": result.thermo,
        "rules": dict(RULES),
    }
    paths = commit_files(
        folder,
        {
            PRODUCTS_CSV: products_csv(result).encode(),
            REF_RDF_NPZ: npz.getvalue(),
            MATCH_FILE: (json.dumps(doc, indent=2) + "\n").encode(),
        },
    )
    return {"products_csv": paths[PRODUCTS_CSV], "ref_rdf": paths[REF_RDF_NPZ], "match_json": paths[MATCH_FILE]}


def read_match_doc(path: Path) -> dict[str, Any]:
    """The parsed ``match.json`` at ``path``, at :data:`FORMAT_VERSION` (format 1 upgraded by :data:`UPGRADES`);
    anything else a :class:`MatchError` naming the file, the version found and the one expected."""
    if not path.is_file():
        raise MatchError(f"{path}: no match yet; run `cellsim match {path.parent}`")
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MatchError(f"{path}: damaged ({exc}); run `cellsim match` again") from None
    return read_versioned(
        path,
        d,
        tag=FORMAT_TAG,
        current=FORMAT_VERSION,
        rerun="run `cellsim match` again",
        upgrades=UPGRADES,
        missing=1,
        error=MatchError,
    )


def load_match(folder: Path) -> MatchResult:
    """A :class:`MatchResult` from ``folder/match.json`` (and ref_rdf.npz)."""
    from cellsim.core.files import recover_files

    recover_files(folder)
    p = folder / MATCH_FILE
    d = read_match_doc(p)
    refs: dict[str, dict[str, np.ndarray]] = {}
    try:
        if (folder / REF_RDF_NPZ).is_file():
            with np.load(folder / REF_RDF_NPZ) as z:
                for k in z.files:
                    c, pair = k.split("|", 1)
                    refs.setdefault(c, {})[pair] = z[k]
        return MatchResult(
            d["pairs"],
            [PairMatch(**m) for m in d["rows"]],
            [CandidateVerdict(**c) for c in d["candidates"]],
            refs,
            d["notes"],
            d["threshold"],
            d["reactants"],
            d["environments"],
            d["electrolyte"],
            d["analysis_id"],
            d["replicas"],
            d["amounts"],
            Answer.from_dict(d["answer"]),
            d["thermo"],
        )
    except KeyError as exc:
        raise MatchError(f"{p}: damaged (no {exc}); run `cellsim match` again") from None
    except (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise MatchError(f"{p}: damaged ({type(exc).__name__}: {exc}); run `cellsim match` again") from None
