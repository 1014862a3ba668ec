"""The answer of the matching stage as an object and as files: ``products.csv`` (one row per pair and candidate,
then one per candidate), ``ref_rdf.npz`` (the candidates' reference densities) and ``match.json``, written
as one set and read back by :func:`load_match`."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cellsim.core.errors import CellsimError
from cellsim.products.scores import PairMatch
from cellsim.products.verdicts import RULES, CandidateVerdict


class MatchError(CellsimError):
    """Matching cannot run on this analysis, or its results cannot be read."""


@dataclass
class MatchResult:
    """The answer of the matching stage; :meth:`save` / :meth:`load` round-trip it."""

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
    # the one answer from all the evidence (:func:`cellsim.products.answer.answer_of`)
    answer: dict[str, Any] = field(default_factory=dict)
    # what the phase diagram of the engine's energies expects (:mod:`cellsim.products.thermo`)
    thermo: dict[str, Any] = field(default_factory=dict)

    @property
    def formed(self) -> list[CandidateVerdict]:
        return [c for c in self.candidates if c.verdict == "formed"]

    @property
    def overall(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.candidates]

    def to_dataframe(self) -> Any:
        """The products.csv table as a pandas DataFrame."""
        import pandas as pd

        return pd.read_csv(io.StringIO(products_csv(self)))

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
    doc = {
        "format": "cellsim-match",
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
        "answer": result.answer,
        "thermo": result.thermo,
        "rules": dict(RULES),
    }
    paths = commit_files(
        folder,
        {
            "products.csv": products_csv(result).encode(),
            "ref_rdf.npz": npz.getvalue(),
            "match.json": (json.dumps(doc, indent=2) + "\n").encode(),
        },
    )
    return {"products_csv": paths["products.csv"], "ref_rdf": paths["ref_rdf.npz"], "match_json": paths["match.json"]}


def load_match(folder: Path) -> MatchResult:
    """A :class:`MatchResult` from ``folder/match.json`` (and ref_rdf.npz)."""
    from cellsim.core.files import recover_files

    recover_files(folder)
    p = folder / "match.json"
    if not p.is_file():
        raise MatchError(f"{p}: no match yet; run `cellsim match {folder}`")
    try:
        d = json.loads(p.read_text())
    except ValueError as exc:
        raise MatchError(f"{p}: damaged ({exc}); run `cellsim match` again") from None
    if d.get("format") != "cellsim-match":
        raise MatchError(f"{p}: written by an older cellsim; run `cellsim match` again")
    refs: dict[str, dict[str, np.ndarray]] = {}
    if (folder / "ref_rdf.npz").is_file():
        with np.load(folder / "ref_rdf.npz") as z:
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
        d.get("reactants", {}),
        d.get("environments", {}),
        d.get("electrolyte", {}),
        d.get("analysis_id"),
        d.get("replicas", {}),
        d.get("amounts", {}),
        d.get("answer", {}),
        d.get("thermo", {}),
    )
