"""One comparative answer across runs: which interface reacts, how fast, into what, how sure.

:func:`compare_runs` reads each run as its own report does (:func:`~cellsim.reporting.data.load_report_data`):
the answer's kind and sentence are the run's match result's (``match.json: answer``), never derived again
here; the numbers beside them come from the same records by the answer's own rule
(:func:`cellsim.products.answer.bond_event`): onset, new bonds, electrolyte units lost (the diagnostics'
unit counts), products with amounts, the engine's trust (every diagnostic check, by name, so a check added
later is shown too) and the stored PBE reaction energy. Runs that differ only in their seed (or replicas
of one run) form a group, with the mean and spread over seeds; groups are ranked by reactivity
(:data:`RANKING`). :meth:`Comparison.write` puts the table and figures into ``compare.html``,
``compare.md``, ``compare.csv``, ``compare.json`` and PNGs.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsim.config.matrix import SEED_AXIS, RunSet
from cellsim.config.rundir import AnalysisFiles, RunDir, find_run_dir, report_html
from cellsim.core.errors import CellsimError
from cellsim.reporting.data import Section

if TYPE_CHECKING:
    from cellsim.products.result import MatchResult
    from cellsim.reporting.data import ReportData

# the answer kinds (cellsim.products.answer.answer_of) as a reactivity score; other kinds are not judged
KIND_SCORE = {"products": 2, "reaction": 1, "none": 0}
# answer kinds that say something reacts
REACTING_KINDS = frozenset(k for k, v in KIND_SCORE.items() if v > 0)
# diagnostic checks that hold an engine's own uncertainty (a committee's or a teacher's deviation), by name
DEVIATION_RE = re.compile(r"deviation|committee|teacher|disagree|outside", re.IGNORECASE)
RANKING = (
    "Groups (runs that differ only in their seed, or replicas of one run) are ranked by, in turn: the mean answer "
    "score over their seeds (products formed 2, reaction in progress 1, none 0; 'too short' and unmatched runs "
    "are left out of the mean and a group with no judged seed goes last), the mean electrolyte units lost per "
    "nm^2 per ps, the mean new bonds per nm^2, then the earlier mean onset. Spread: the standard deviation over "
    "seeds (n - 1), and how many seeds gave each answer."
)


class CompareError(CellsimError):
    """Nothing to compare, or a target that is neither a run, an analysis folder nor a matrix."""


@dataclass
class ProductRow:
    """One candidate product of one run: its verdict and amount (atoms of the counting element)."""

    candidate: str
    verdict: str
    atoms: float | None = None
    atoms_lo: float | None = None
    atoms_hi: float | None = None
    element: str | None = None

    def text(self) -> str:
        if self.atoms is None:
            return f"{self.candidate} ({self.verdict})"
        if self.atoms_hi is not None and self.atoms_hi <= 0:  # as the answer writes it: no amount, not "~0"
            from cellsim.products.answer import distances_only

            return f"{self.candidate} ({self.verdict}, {distances_only(self.element)})"
        return (
            f"{self.candidate} ({self.verdict}, ~{self.atoms:g} {self.element} [{self.atoms_lo:g}-{self.atoms_hi:g}])"
        )


@dataclass
class RunRow:
    """One run (or one replica of a run) in the comparison.

    The answer (``kind``, ``sentence``) is the run's own match result's; ``None`` numbers were not measured.
    Areas are the interface's (a periodic sandwich has two interfaces); units lost are the diagnostics' count
    of the electrolyte's structural units (PS4) at the start minus at the end.
    """

    name: str
    folder: str
    run_dir: str | None
    group: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    kind: str = "not matched"
    sentence: str = ""
    formed: list[str] = field(default_factory=list)
    possible: list[str] = field(default_factory=list)
    onset_ps: float | None = None
    run_ps: float | None = None
    temperature_K: float | None = None
    area_nm2: float | None = None
    area_source: str = ""
    unit: str | None = None
    units: int | None = None
    unit_intact_start: float | None = None
    unit_intact_end: float | None = None
    units_lost: float | None = None
    new_bonds: float | None = None
    bonds_formed: dict[str, float] = field(default_factory=dict)
    bonds_broken: dict[str, float] = field(default_factory=dict)
    products: list[ProductRow] = field(default_factory=list)
    engine: str = "unknown"
    checks: list[dict[str, Any]] = field(default_factory=list)
    deviation: str | None = None
    engine_check: str | None = None
    parity: list[str] = field(default_factory=list)
    pbe_reaction: str | None = None
    pbe_products: list[str] = field(default_factory=list)
    pbe_eV_per_atom: float | None = None
    pbe_open_li_eV_per_atom: float | None = None
    report: str | None = None
    pooled: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def score(self) -> int | None:
        """The answer as a number: products 2, reaction 1, none 0; None for an unjudged run."""
        return KIND_SCORE.get(self.kind)

    @property
    def units_lost_per_nm2(self) -> float | None:
        return None if self.units_lost is None or not self.area_nm2 else self.units_lost / self.area_nm2

    @property
    def units_lost_per_nm2_ps(self) -> float | None:
        per = self.units_lost_per_nm2
        return None if per is None or not self.run_ps else per / self.run_ps

    @property
    def new_bonds_per_nm2(self) -> float | None:
        return None if self.new_bonds is None or not self.area_nm2 else self.new_bonds / self.area_nm2

    @property
    def warnings(self) -> list[str]:
        """Names of the diagnostic checks that warned."""
        return [str(c["name"]) for c in self.checks if c.get("status") != "ok"]

    def trust_text(self) -> str:
        """The diagnostics' verdicts in a few words."""
        if not self.checks:
            return "no diagnostics"
        warn = self.warnings
        if not warn:
            return f"all {len(self.checks)} checks ok"
        return f"{len(self.checks) - len(warn)} ok, warn: {', '.join(warn)}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            score=self.score,
            units_lost_per_nm2=self.units_lost_per_nm2,
            units_lost_per_nm2_ps=self.units_lost_per_nm2_ps,
            new_bonds_per_nm2=self.new_bonds_per_nm2,
        )
        return out


@dataclass
class Stat:
    """Mean, standard deviation (n - 1; 0 for one seed) and count of one quantity over a group's seeds."""

    mean: float | None
    sd: float | None
    n: int
    of: int

    def text(self, fmt: str = ".3g", unit: str = "") -> str:
        if self.mean is None:
            return "-"
        u = f" {unit}" if unit else ""
        spread = f" +/- {self.sd:{fmt}}" if self.n > 1 and self.sd is not None else ""
        seeds = f" ({self.n} of {self.of})" if self.n != self.of else ""
        return f"{self.mean:{fmt}}{spread}{u}{seeds}"


def stat(values: Sequence[float | None]) -> Stat:
    """:class:`Stat` of the measured values (None: not measured in that seed)."""
    got = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not got:
        return Stat(None, None, 0, len(values))
    mean = sum(got) / len(got)
    sd = math.sqrt(sum((x - mean) ** 2 for x in got) / (len(got) - 1)) if len(got) > 1 else 0.0
    return Stat(mean, sd, len(got), len(values))


@dataclass
class RunGroup:
    """Runs of one interface and protocol that differ only in their seed, with the spread over them."""

    label: str
    rows: list[RunRow]
    labels: dict[str, str] = field(default_factory=dict)
    rank: int = 0

    def stat(self, name: str) -> Stat:
        return stat([getattr(r, name) for r in self.rows])

    @property
    def kinds(self) -> Counter[str]:
        return Counter(r.kind for r in self.rows)

    @property
    def score(self) -> Stat:
        return stat([r.score for r in self.rows])

    def kinds_text(self) -> str:
        n = len(self.rows)
        order = [*KIND_SCORE, "too short"]
        counts = sorted(self.kinds.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
        return ", ".join(f"{k} {c}/{n}" for k, c in counts)

    def products(self) -> dict[str, dict[str, Any]]:
        """Per candidate seen in any seed: seeds formed, seeds possible, atoms per seed (None: not seen)."""
        out: dict[str, dict[str, Any]] = {}
        for k, r in enumerate(self.rows):
            for p in r.products:
                d = out.setdefault(
                    p.candidate, {"formed": 0, "possible": 0, "atoms": [None] * len(self.rows), "element": p.element}
                )
                d[p.verdict] = d.get(p.verdict, 0) + 1
                d["atoms"][k] = p.atoms
        return out

    def products_text(self) -> str:
        n = len(self.rows)
        parts = []
        for cand, d in self.products().items():
            seen = [x for x in d["atoms"] if x is not None]
            amount = f", ~{stat(seen).text('.3g', str(d['element'] or 'atoms'))}" if seen else ""
            if seen and max(seen) <= 0:
                from cellsim.products.answer import distances_only

                amount = f", {distances_only(d['element'])}"
            verdicts = " + ".join(f"{v} {d[v]}/{n}" for v in ("formed", "possible") if d.get(v))
            parts.append(f"{cand} ({verdicts}{amount})")
        return "; ".join(parts) or "none"

    def sort_key(self) -> tuple[float, ...]:
        """Most reactive first (:data:`RANKING`)."""
        score = self.score
        if score.mean is None:
            return (1.0, 0.0, 0.0, 0.0, 0.0)
        lost = self.stat("units_lost_per_nm2_ps").mean
        bonds = self.stat("new_bonds_per_nm2").mean
        onset = self.stat("onset_ps").mean
        return (
            0.0,
            -score.mean,
            -(lost if lost is not None else -math.inf),
            -(bonds if bonds is not None else -math.inf),
            onset if onset is not None else math.inf,
        )


@dataclass
class Comparison:
    """Runs side by side: :attr:`rows` (one per run or replica) and :attr:`groups` ranked, most reactive first."""

    title: str
    rows: list[RunRow]
    groups: list[RunGroup]
    description: str = ""
    notes: list[str] = field(default_factory=list)
    out_dir: Path | None = None

    def __repr__(self) -> str:
        ranked = ", ".join(f"{g.rank}. {g.label}" for g in self.groups[:6])
        return f"Comparison({self.title!r}: {len(self.rows)} runs in {len(self.groups)} groups; {ranked})"

    def ranked_rows(self) -> list[RunRow]:
        """Every row, the groups in rank order."""
        return [r for g in self.groups for r in g.rows]

    def to_dataframe(self) -> Any:
        """One row per run (pandas), in rank order, with the columns of ``compare.csv``."""
        import pandas as pd

        return pd.DataFrame([_csv_row(r, g) for g in self.groups for r in g.rows])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "cellsim-compare",
            "title": self.title,
            "description": self.description,
            "ranking": RANKING,
            "groups": [
                {
                    "rank": g.rank,
                    "label": g.label,
                    "labels": g.labels,
                    "runs": [r.name for r in g.rows],
                    "answers": dict(g.kinds),
                    "score": asdict(g.score),
                    "onset_ps": asdict(g.stat("onset_ps")),
                    "units_lost_per_nm2": asdict(g.stat("units_lost_per_nm2")),
                    "units_lost_per_nm2_ps": asdict(g.stat("units_lost_per_nm2_ps")),
                    "new_bonds_per_nm2": asdict(g.stat("new_bonds_per_nm2")),
                    "products": g.products(),
                }
                for g in self.groups
            ],
            "runs": [r.to_dict() for r in self.ranked_rows()],
            "notes": self.notes,
        }

    def sections(self) -> list[Section]:
        """The tables of the page, in order: ranking, runs, engines, notes."""
        return comparison_sections(self)

    def write(self, out: str | Path) -> dict[str, Path]:
        """Write ``compare.html`` (self-contained), ``compare.md``, ``compare.csv``, ``compare.json`` and the
        figures into ``out`` (swapped in as a whole); returns the paths by name."""
        return write_comparison(self, Path(out))


# --------------------------------------------------------------------------- reading runs


def _targets(targets: Sequence[str | Path] | RunSet) -> tuple[list[tuple[Path, dict[str, str]]], str, str]:
    """(path, labels) per run, a title and a description, from run directories, analysis folders, or one matrix
    or campaign file (or a matrix's output folder)."""
    from cellsim.config.matrix import load_run_set, run_set_path

    if isinstance(targets, RunSet):
        return [(r.run_dir, r.labels) for r in targets.runs], targets.name, targets.description
    items = list(targets)
    if not items:
        raise CompareError("compare: give run directories, analysis folders, or one matrix or campaign file")
    if len(items) == 1 and not RunDir(items[0]).is_run:
        found = run_set_path(items[0])
        if found is not None:
            rs = load_run_set(found)
            return [(r.run_dir, r.labels) for r in rs.runs], rs.name, rs.description
    for t in items:
        if Path(t).is_file():
            raise CompareError(
                f"{t}: a file among several targets; give one matrix or campaign file, or run directories"
            )
    return [(Path(t), {}) for t in items], "comparison", ""


def _engine_text(study: dict[str, Any], d: ReportData) -> str:
    eng = study.get("engine") or {}
    name = str(eng.get("name") or "")
    model = eng.get("model_path")
    if name and eng.get("student"):  # a student drives, its teacher (model_path) only checks
        return f"student {Path(str(eng['student'])).name} of {name} ({Path(str(model)).parent.name})"
    if name:
        return f"{name} ({Path(str(model)).parent.name or Path(str(model)).name})" if model else name
    for info in d.engine:
        if info.get("engine"):
            return str(info["engine"])
    return "unknown (a trajectory from elsewhere)"


def _area(d: ReportData) -> tuple[float | None, str]:
    """Interface area in nm^2 (both interfaces of a periodic sandwich) and where it came from."""
    iface = d.interface or {}
    if iface.get("area"):
        n = 2 if iface.get("periodic_sandwich") else 1
        return float(iface["area"]) * n / 100.0, "interface.json" + (" (2 interfaces)" if n == 2 else "")
    frame = d.analysis.first_frame
    if frame is not None:
        import numpy as np

        cell = np.asarray(frame[1], dtype=float)
        return float(np.linalg.norm(np.cross(cell[0], cell[1]))) / 100.0, "cell a x b (one interface assumed)"
    return None, ""


def onset_of(pairs: dict[str, dict[str, Any]]) -> float | None:
    """The answer's onset: the earliest departure of a pair the answer's rule calls formed or broken (the time
    its sentence states after "from")."""
    from cellsim.products.result import pair_records

    times = []
    for rec in pair_records(pairs).values():
        t = {"formed": rec.bonds.formation_ps, "broken": rec.bonds.break_ps}.get(rec.event or "")
        if t is not None:
            times.append(t)
    return min(times) if times else None


def _units(d: ReportData) -> tuple[str | None, int | None, float | None, float | None]:
    """The electrolyte's structural unit (the diagnostics' ``<unit>_intact_start/end/units``), any name."""
    diag = d.diagnostics
    summary = getattr(diag, "summary", None) or {}
    for key in summary:
        if key.endswith("_intact_start"):
            unit = key[: -len("_intact_start")]
            start, end = summary.get(key), summary.get(f"{unit}_intact_end")
            n = summary.get(f"{unit}_units")
            return unit, (int(n) if n is not None else None), _num(start), _num(end)
    return None, None, None, None


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def read_row(folder: Path, run: RunDir | None, name: str, labels: dict[str, str] | None = None) -> RunRow:
    """One row from an analysis folder (of run directory ``run``, if any), read as its report reads it."""
    from cellsim.reporting.data import load_report_data

    row = RunRow(name=name, folder=str(folder), run_dir=str(run.root) if run else None, labels=dict(labels or {}))
    try:
        d = load_report_data(folder, run)
    except CellsimError as exc:
        row.kind = "not analysed"
        row.sentence = str(exc)
        return row
    res = d.analysis
    row.notes.extend(d.notes)
    row.run_ps = round(res.n_frames * res.settings.dt_fs / 1000.0, 4)
    row.temperature_K = _num(res.temperature_K)
    row.area_nm2, row.area_source = _area(d)
    row.unit, row.units, row.unit_intact_start, row.unit_intact_end = _units(d)
    if row.units is not None and row.unit_intact_start is not None and row.unit_intact_end is not None:
        row.units_lost = round((row.unit_intact_start - row.unit_intact_end) * row.units, 3)
    row.engine = _engine_text(d.study, d)
    _read_checks(row, d)
    if run is not None and res.meta.replica is None and report_html(run.report_dir).is_file():
        row.report = str(report_html(run.report_dir))
    elif report_html(AnalysisFiles(folder).report_dir).is_file():
        row.report = str(report_html(AnalysisFiles(folder).report_dir))
    m = d.match
    if m is None:
        row.sentence = "; ".join(d.notes) or "no match result"
        return row
    _read_match(row, m)
    return row


def _read_checks(row: RunRow, d: ReportData) -> None:
    """The diagnostics' checks (the deviation check by name), the engine check and the force parity into ``row``."""
    for c in d.diagnostics.checks if d.diagnostics is not None else []:
        entry = {
            "name": c.name,
            "status": c.status,
            "value": _num(c.value),
            "unit": c.unit,
            "message": c.message,
        }
        row.checks.append(entry)
        if DEVIATION_RE.search(str(entry["name"])):
            value = ""
            if entry["value"] is not None and entry["unit"] == "fraction":
                # the deviation check's value: the share of checked frames with an atom beyond its limit
                value = f", {100 * entry['value']:.0f} % of checked frames beyond the limit"
            elif entry["value"] is not None:
                value = f" {entry['value']:.3g} {entry['unit']}".rstrip()
            row.deviation = f"{entry['name']}: {entry['status']}{value}"
    if d.engine_check:
        verdicts = Counter(str(r.get("verdict")) for r in d.engine_check)
        engines = sorted({str(r.get("engine")) for r in d.engine_check})
        row.engine_check = f"{', '.join(engines)}: " + ", ".join(
            f"{verdicts[v]} {v}" for v in ("fail", "warn", "ok") if verdicts.get(v)
        )
    row.parity = list(d.parity)


def _read_match(row: RunRow, m: MatchResult) -> None:
    """The run's own answer, its onset, the bonds its rule counts, the products with amounts and PBE's reaction."""
    ans = m.answer
    row.kind = str(ans.kind or "unknown")
    row.sentence = str(ans.sentence or "")
    row.formed = list(ans.formed)
    row.possible = list(ans.possible)
    # an onset the answer states itself (no cellsim writes one) is taken as it is
    onset = ans.extra["onset_ps"] if "onset_ps" in ans.extra else onset_of(m.pairs)
    row.onset_ps = _num(onset)
    total = 0.0
    for pair, rec in m.pair_records.items():
        change = _num(rec.bonds.change)
        if rec.event == "formed":
            row.bonds_formed[pair] = round(change or 0.0, 2)
            total += max(change or 0.0, 0.0)
        elif rec.event == "broken":
            row.bonds_broken[pair] = round(change or 0.0, 2)
    row.new_bonds = round(total, 2)
    for c in m.candidates:
        if c.verdict in ("formed", "possible"):
            a = c.amount or {}
            row.products.append(
                ProductRow(
                    c.candidate,
                    c.verdict,
                    _num(a.get("atoms")),
                    _num(a.get("atoms_lo")),
                    _num(a.get("atoms_hi")),
                    a.get("element"),
                )
            )
    pbe = (m.thermo or {}).get("pbe") or {}
    closed = pbe.get("closed") or {}
    if closed:
        row.pbe_reaction = str(closed.get("reaction") or "no reaction")
        row.pbe_products = [str(x) for x in closed.get("products") or []]
        row.pbe_eV_per_atom = _num(closed.get("energy_eV_per_atom"))
        row.pbe_open_li_eV_per_atom = _num((pbe.get("open_li") or {}).get("energy_eV_per_atom"))
    elif pbe.get("skipped"):
        row.notes.append(f"PBE: {pbe['skipped']}")


def _study_key(row: RunRow, study: dict[str, Any]) -> str:
    """What runs of one group share: the study without its name, description and seed."""
    s = json.loads(json.dumps(study))
    for k in ("name", "description"):
        s.pop(k, None)
    (s.get("engine") or {}).pop("seed", None)
    return json.dumps(s, sort_keys=True) if s else row.folder


def _rows_of(path: Path, labels: dict[str, str]) -> tuple[list[RunRow], str]:
    """The rows of one target (its replicas' rows when its analysis pooled replicas) and its group key."""
    import yaml

    from cellsim.analysis.store import ANALYSIS_FILE, read_info

    rd = RunDir(path)
    if rd.is_run:
        run: RunDir | None = rd
        folder = rd.analysis_dir
        name = rd.root.name
    elif path.is_dir():
        run = find_run_dir(path)
        folder = path
        name = run.root.name if run is not None else path.name
    else:
        row = RunRow(name=path.name, folder=str(path), run_dir=None, labels=labels, kind="not built")
        row.sentence = f"{path}: no run directory here yet"
        return [row], str(path)
    study: dict[str, Any] = {}
    if run is not None and run.study_file.is_file():
        try:
            study = yaml.safe_load(run.study_file.read_text()) or {}
        except (OSError, yaml.YAMLError):
            study = {}
    pooled = read_row(folder, run, name, labels)
    shared = sorted((k, v) for k, v in labels.items() if k != SEED_AXIS)
    key = json.dumps(shared) if labels else _study_key(pooled, study)
    replicas = []
    if (folder / ANALYSIS_FILE).is_file():
        try:
            folders = read_info(folder).replica_folders
        except CellsimError:
            folders = ()
        replicas = [Path(p) for p in folders if Path(p).is_dir()]
    if not replicas:
        return [pooled], key
    rows = []
    for sub in replicas:
        r = read_row(sub, run, f"{name}/{sub.name}", {**labels, "replica": sub.name})
        r.pooled = pooled.sentence
        rows.append(r)
    return rows, key


def compare_runs(targets: Sequence[str | Path] | RunSet, title: str | None = None) -> Comparison:
    """Compare runs: one row per run (per replica for a run with replicas), grouped and ranked.

    Parameters
    ----------
    targets
        Run directories and/or analysis folders, or one matrix or campaign file (or a matrix's output folder),
        or a loaded :class:`~cellsim.config.matrix.RunSet`.
    title
        The page's title (default: the matrix's name, else "comparison").

    Returns
    -------
    Comparison
        Rows and ranked groups; :meth:`Comparison.write` writes the page, the table and the figures.
    """
    items, name, description = _targets(targets)
    groups: dict[str, RunGroup] = {}
    rows: list[RunRow] = []
    notes: list[str] = []
    for path, labels in items:
        got, key = _rows_of(Path(path), labels)
        for r in got:
            if r.kind in ("not built", "not analysed", "not matched"):
                notes.append(f"{r.name}: {r.kind}: {r.sentence}")
        if key not in groups:
            group_labels = {k: v for k, v in labels.items() if k not in (SEED_AXIS, "replica")}
            label = " / ".join(group_labels.values()) if group_labels else _plain_label(got[0])
            groups[key] = RunGroup(label=label, rows=[], labels=group_labels)
        for r in got:
            r.group = groups[key].label
        groups[key].rows.extend(got)
        rows.extend(got)
    _distinct_labels(list(groups.values()))
    ranked = sorted(groups.values(), key=lambda g: g.sort_key())
    for k, g in enumerate(ranked, 1):
        g.rank = k
    return Comparison(title or name, rows, ranked, description, notes)


def _plain_label(row: RunRow) -> str:
    """A group's label without matrix labels: the run's name without a trailing seed token."""
    base = row.name.split("/", 1)[0]
    return re.sub(r"[-_.]s(eed)?\d+$", "", base) or base


def _distinct_labels(groups: list[RunGroup]) -> None:
    seen: Counter[str] = Counter()
    for g in groups:
        seen[g.label] += 1
        if seen[g.label] > 1:
            g.label = f"{g.label} ({seen[g.label]})"
        for r in g.rows:
            r.group = g.label


# --------------------------------------------------------------------------- the page


def _f(x: float | None, fmt: str = ".3g") -> str:
    return "-" if x is None else f"{x:{fmt}}"


def _labels_text(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items())


def _pbe_text(r: RunRow) -> str:
    """The stored PBE reaction energy in a few words: closed, and at the Li-In alloy's Li potential."""
    if r.pbe_eV_per_atom is None:
        return "-"
    closed = f"{1000 * r.pbe_eV_per_atom:+.0f} meV/atom" + (
        f" to {', '.join(r.pbe_products)}" if r.pbe_products else ""
    )
    if r.pbe_open_li_eV_per_atom is None:
        return closed
    li = r.pbe_open_li_eV_per_atom
    return closed + "; at the Li-In potential " + (f"{1000 * li:+.0f} meV/atom" if li < -1e-6 else "no reaction")


def comparison_sections(c: Comparison) -> list[Section]:
    """Ranking (one row per group), runs (one per seed), engines, notes."""
    unit = next((r.unit for r in c.rows if r.unit), None) or "units"
    sections = [_ranking_section(c, unit), _runs_section(c, unit), _engines_section(c)]
    if c.notes:
        sections.append(("Notes", ["", ""], [["note", n] for n in c.notes], ""))
    return sections


def _trust_of(g: RunGroup) -> str:
    """A group's trust in a few words: the seeds' diagnostic warnings and deviation checks."""
    warns = Counter(w for r in g.rows for w in r.warnings)
    trust = (
        "warn (seeds): " + ", ".join(f"{w} {n}/{len(g.rows)}" for w, n in warns.items())
        if warns
        else ("diagnostics ok in every seed" if any(r.checks for r in g.rows) else "no diagnostics")
    )
    devs = [r.deviation for r in g.rows if r.deviation]
    if devs:
        trust += "; " + "; ".join(dict.fromkeys(devs))
    return trust


def _ranking_section(c: Comparison, unit: str) -> Section:
    """One row per group, most reactive first."""
    ranking_rows = []
    for g in c.groups:
        pbe = next((r for r in g.rows if r.pbe_eV_per_atom is not None), None)
        engines = sorted({r.engine for r in g.rows})
        pooled = [r.pooled for r in g.rows if r.pooled]
        ranking_rows.append(
            [
                str(g.rank),
                g.label,
                str(len(g.rows)),
                g.kinds_text() + (f"; pooled: {pooled[0]}" if pooled else ""),
                g.stat("onset_ps").text(".3g", "ps"),
                g.stat("units_lost_per_nm2").text(".3g"),
                g.stat("units_lost_per_nm2_ps").text(".3g"),
                g.stat("new_bonds_per_nm2").text(".3g"),
                g.products_text(),
                ", ".join(engines),
                _trust_of(g),
                _pbe_text(pbe) if pbe is not None else "-",
            ]
        )
    return (
        "Ranking (most reactive first)",
        [
            "rank",
            "interface (levels)",
            "seeds",
            "answers",
            "onset",
            f"{unit} lost / nm^2",
            f"{unit} lost / nm^2 / ps",
            "new bonds / nm^2",
            "products (seeds; atoms)",
            "engine",
            "trust (diagnostics)",
            "PBE reaction energy (stored)",
        ],
        ranking_rows,
        RANKING + " Values: mean +/- sd over the seeds that measured it ('n of m' when some did not).",
    )


def _runs_section(c: Comparison, unit: str) -> Section:
    """One row per run (seed), each with its own answer."""
    run_rows = []
    for g in c.groups:
        for r in g.rows:
            run_rows.append(
                [
                    str(g.rank),
                    r.name,
                    r.kind,
                    r.sentence,
                    _f(r.onset_ps, ".3f") + (" ps" if r.onset_ps is not None else ""),
                    _f(r.run_ps, ".3g") + (" ps" if r.run_ps is not None else ""),
                    (
                        f"{_f(r.units_lost, '.3g')} of {r.units}; {_f(r.units_lost_per_nm2_ps)} /nm^2/ps"
                        if r.units is not None
                        else "-"
                    ),
                    (
                        f"{_f(r.new_bonds_per_nm2)} /nm^2"
                        + (
                            f" ({', '.join(f'{p} {v:+.1f}' for p, v in r.bonds_formed.items())})"
                            if r.bonds_formed
                            else ""
                        )
                        if r.new_bonds is not None
                        else "-"
                    ),
                    "; ".join(p.text() for p in r.products) or "-",
                    (("warn: " + ", ".join(r.warnings)) if r.warnings else r.trust_text())
                    + (f"; {r.deviation}" if r.deviation else ""),
                ]
            )
    return (
        "Runs (each answer is the run's own, from its match result)",
        [
            "rank",
            "run",
            "answer",
            "answer sentence",
            "onset",
            "MD",
            f"{unit} lost",
            "new bonds",
            "products with amounts",
            "trust (diagnostics)",
        ],
        run_rows,
        "Onset: the earliest time a pair's bonds left the first frames' noise, for the pairs the answer counts "
        "as formed or broken. New bonds: the rise of those pairs' bond counts (last third against the first "
        "frames). Units lost: intact units at the start minus at the end (the diagnostics' count). Each run's "
        "own report: RUN/report/report.html (paths in compare.csv). Areas: "
        + "; ".join(sorted({r.area_source for r in c.rows if r.area_source}) or ["not known"])
        + ".",
    )


def _engines_section(c: Comparison) -> Section:
    """Each engine's check and force parity, from its first run."""
    # each engine's record from its first run (the parity sentences name that run's folder)
    by_engine: dict[str, list[str]] = {}
    for r in c.rows:
        if r.engine not in by_engine:
            by_engine[r.engine] = [x for x in [r.engine_check and f"engine check: {r.engine_check}", *r.parity] if x]
    return (
        "Engines",
        ["engine", "checks against references"],
        [
            [e, " ".join(lines) or "no engine check or force parity stored with these runs"]
            for e, lines in by_engine.items()
        ],
        "From the first run of each engine: RUN/engine-check.json (`cellsim engines check RUN`) and the forces "
        "against PBE "
        "(`--reference cp2k`); every diagnostic check is read by name, so an engine's own deviation check "
        "(committee, teacher) shows in the trust columns where the analysis holds one.",
    )


def comparison_figures(c: Comparison) -> dict[str, tuple[str, bytes]]:
    """``compare_ranking.png`` (always) and ``compare_products.png`` (when a product was seen)."""
    from cellsim.reporting.compare_figures import GroupPoints, products_plot, ranking_plot
    from cellsim.reporting.figures import to_png

    unit = next((r.unit for r in c.rows if r.unit), None) or "units"

    def points(attr: str, missing: str = "not measured", undated: str | None = None) -> list[GroupPoints]:
        out = []
        for g in c.groups:
            kinds = [r.kind for r in g.rows]
            # a seed whose answer is a reaction but whose change was seen only late has no onset: not "nothing"
            text = undated if undated is not None and any(k in REACTING_KINDS for k in kinds) else missing
            out.append(GroupPoints(g.label, [getattr(r, attr) for r in g.rows], kinds, text))
        return out

    panels = [
        ("new bonds per nm^2 (pairs the answer counts)", points("new_bonds_per_nm2")),
        (f"{unit} units lost per nm^2 per ps", points("units_lost_per_nm2_ps")),
        (
            "onset (ps): bonds leave the first frames' noise",
            points("onset_ps", "no onset: nothing left its noise", "no onset dated: the change was seen late only"),
        ),
    ]
    figs = {
        "compare_ranking.png": (
            "Interfaces ranked by reactivity (top: most reactive). Each dot is one seed, coloured by its own answer; "
            "bars: mean over seeds, whiskers: their standard deviation.",
            to_png(ranking_plot(panels, f"{c.title}: which interface reacts")),
        )
    }
    amounts: dict[str, dict[str, Sequence[float | None]]] = {}
    elements: set[str] = set()
    for g in c.groups:
        for cand, d in g.products().items():
            if any(a is not None for a in d["atoms"]):
                amounts.setdefault(cand, {})[g.label] = list(d["atoms"])
                if d["element"]:
                    elements.add(str(d["element"]))
    if amounts:
        figs["compare_products.png"] = (
            "Products formed or possible with their amounts (atoms of the counting element, "
            f"{', '.join(sorted(elements)) or 'per candidate'}) per interface; dots: seeds (0 where not seen).",
            to_png(products_plot(amounts, [g.label for g in c.groups], "atoms in the product's environments")),
        )
    return figs


_CSV_COLUMNS = (
    "rank",
    "group",
    "run",
    "labels",
    "answer",
    "sentence",
    "onset_ps",
    "run_ps",
    "temperature_K",
    "area_nm2",
    "unit",
    "units",
    "units_lost",
    "units_lost_per_nm2",
    "units_lost_per_nm2_ps",
    "new_bonds",
    "new_bonds_per_nm2",
    "products",
    "engine",
    "warnings",
    "deviation",
    "pbe_reaction",
    "pbe_eV_per_atom",
    "folder",
    "report",
)


def _csv_row(r: RunRow, g: RunGroup) -> dict[str, Any]:
    return {
        "rank": g.rank,
        "group": g.label,
        "run": r.name,
        "labels": _labels_text(r.labels),
        "answer": r.kind,
        "sentence": r.sentence,
        "onset_ps": r.onset_ps,
        "run_ps": r.run_ps,
        "temperature_K": r.temperature_K,
        "area_nm2": r.area_nm2,
        "unit": r.unit,
        "units": r.units,
        "units_lost": r.units_lost,
        "units_lost_per_nm2": r.units_lost_per_nm2,
        "units_lost_per_nm2_ps": r.units_lost_per_nm2_ps,
        "new_bonds": r.new_bonds,
        "new_bonds_per_nm2": r.new_bonds_per_nm2,
        "products": "; ".join(p.text() for p in r.products),
        "engine": r.engine,
        "warnings": ", ".join(r.warnings),
        "deviation": r.deviation,
        "pbe_reaction": r.pbe_reaction,
        "pbe_eV_per_atom": r.pbe_eV_per_atom,
        "folder": r.folder,
        "report": r.report,
    }


def _csv_text(c: Comparison) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(_CSV_COLUMNS), lineterminator="\n")
    w.writeheader()
    for g in c.groups:
        for r in g.rows:
            w.writerow({k: ("" if v is None else v) for k, v in _csv_row(r, g).items()})
    return buf.getvalue()


def write_comparison(c: Comparison, out: Path) -> dict[str, Path]:
    """The comparison's files in ``out``, staged and swapped in as a whole (:meth:`Comparison.write`)."""
    import shutil

    from cellsim.core.files import atomic_write_bytes, atomic_write_text, recover_dir, replace_dir, staging_dir
    from cellsim.reporting.document import page_html, page_markdown

    figs = comparison_figures(c)
    sections = comparison_sections(c)
    intro = (c.description + " " if c.description else "") + (
        f"{len(c.rows)} runs in {len(c.groups)} groups. Each answer is the run's own (its match result); the "
        "numbers beside it come from the same records."
    )
    recover_dir(out)
    stage = staging_dir(out)
    try:
        for name, (_, png) in figs.items():
            atomic_write_bytes(stage / name, png)
        atomic_write_text(stage / "compare.html", page_html(f"cellsim compare: {c.title}", intro, sections, figs))
        atomic_write_text(stage / "compare.md", page_markdown(f"cellsim compare: {c.title}", intro, sections, figs))
        atomic_write_text(stage / "compare.csv", _csv_text(c))
        atomic_write_text(stage / "compare.json", json.dumps(c.to_dict(), indent=2, default=str) + "\n")
        replace_dir(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    c.out_dir = out
    paths = {"html": out / "compare.html", "md": out / "compare.md", "csv": out / "compare.csv"}
    paths["json"] = out / "compare.json"
    paths.update({name: out / name for name in figs})
    return paths
