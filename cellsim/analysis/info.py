"""The facts an analysis records beside its numbers (``analysis.json`` apart from settings, counts and cells), as a
typed, read-only view: :class:`AnalysisInfo`, what later stages read (``AnalysisResult.meta``) instead of string
keys of ``AnalysisResult.info``.

``info`` stays the dict the analysis fills and ``analysis.json`` spells out; :meth:`AnalysisInfo.from_dict` reads
every key another layer needs (a key an older analysis lacks reads as its default) and keeps the rest in
``extra``, and :meth:`AnalysisInfo.to_dict` gives the same keys back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cellsim.io.sources import SegmentInfo

_SEGMENT_DEFAULTS: dict[str, Any] = {"path": "", "fmt": "", "size": 0, "sha256": ""}


@dataclass(frozen=True)
class AnalysisInfo:
    """What an analysis says about where its frames came from and what it assumed."""

    id: str | None = None  # set on save; a match result names it (match.json: analysis_id)
    cellsim_version: str | None = None
    dt_fs: float | None = None
    dt_source: str | None = None  # "default" when nothing gave the time step
    dt_check: dict[str, Any] = field(default_factory=dict)  # the time step judged from the atoms' moves
    temperature_K: float | None = None
    temperature_source: str | None = None  # "default" when nothing gave the temperature
    run_dir: str | None = None  # the run directory analysed, None for trajectories from elsewhere
    replica: int | None = None  # which replica of the run directory; None for a single run or the pooled one
    study: str | None = None
    reactants: dict[str, Any] = field(default_factory=dict)  # cellsim.references.reactants.Reactants.to_dict()
    pairs_source: str | None = None
    pair_rule: str | None = None
    bond_cutoff_sources: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    equilibration_ps: float | None = None
    segments: tuple[SegmentInfo, ...] = ()  # the input files as read, in order
    replica_ids: tuple[int, ...] = ()  # pooled analyses: the replicas pooled
    replica_folders: tuple[str, ...] = ()  # ... their own analysis folders
    replica_events: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)  # per pair, per replica
    extra: dict[str, Any] = field(default_factory=dict)  # every other key, as it was

    @property
    def reactant_phases(self) -> dict[str, float]:
        """Reactant phase -> formula units in the trajectory (empty when unknown)."""
        return {str(k): float(v) for k, v in (self.reactants.get("phases") or {}).items()}

    @property
    def source_names(self) -> list[str]:
        """The input files' names, in order."""
        from pathlib import Path

        return [Path(s.path).name for s in self.segments]

    @classmethod
    def field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls) if f.name != "extra")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnalysisInfo:
        """The typed view of an ``info`` dict; raises ValueError or TypeError on a value of the wrong kind."""
        known = cls.field_names()
        g = d.get

        def opt(key: str, kind: type) -> Any:
            v = g(key)
            return None if v is None else kind(v)

        return cls(
            id=opt("id", str),
            cellsim_version=opt("cellsim_version", str),
            dt_fs=opt("dt_fs", float),
            dt_source=opt("dt_source", str),
            dt_check=dict(g("dt_check") or {}),
            temperature_K=opt("temperature_K", float),
            temperature_source=opt("temperature_source", str),
            run_dir=opt("run_dir", str),
            replica=opt("replica", int),
            study=opt("study", str),
            reactants=dict(g("reactants") or {}),
            pairs_source=opt("pairs_source", str),
            pair_rule=opt("pair_rule", str),
            bond_cutoff_sources={str(k): str(v) for k, v in (g("bond_cutoff_sources") or {}).items()},
            notes=tuple(str(n) for n in _seq(g("notes"), "notes")),
            equilibration_ps=opt("equilibration_ps", float),
            segments=tuple(_segment(s) for s in _seq(g("segments"), "segments")),
            replica_ids=tuple(int(k) for k in _seq(g("replica_ids"), "replica_ids")),
            replica_folders=tuple(str(p) for p in _seq(g("replica_folders"), "replica_folders")),
            replica_events={str(p): dict(e) for p, e in (g("replica_events") or {}).items()},
            extra={k: v for k, v in d.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``info`` dict again (JSON types: lists for tuples, segments as dicts)."""
        out: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            if f.name == "segments":
                v = [vars(s).copy() for s in v]
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out


def _seq(v: Any, key: str) -> list[Any]:
    if v is None:
        return []
    if isinstance(v, str | bytes | dict) or not hasattr(v, "__iter__"):
        raise TypeError(f"{key}: a list expected, got {type(v).__name__}")
    return list(v)


def _segment(s: Any) -> SegmentInfo:
    from cellsim.io.sources import SegmentInfo

    if not isinstance(s, dict):
        raise TypeError(f"segments: an object expected, got {type(s).__name__}")
    names = {f.name for f in fields(SegmentInfo)}
    kw = {**_SEGMENT_DEFAULTS, **{k: v for k, v in s.items() if k in names}}
    kw["notes"] = [str(n) for n in kw.get("notes") or []]
    return SegmentInfo(**kw)
