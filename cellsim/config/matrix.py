"""Study matrices and campaigns: one YAML file naming many runs, for ``submit``, ``run``, ``status``, ``screen``
and ``compare`` alike.

Two forms are read (:func:`load_run_set`):

* a **campaign**: ``runs:`` lists run directories (relative to the file), with ``max_jobs:``; the file
  ``cellsim submit`` always took. It may also carry ``name``, ``description``, ``axes``, ``labels`` (per run,
  axis -> level) and ``matrix_file``: the manifest that a matrix writes into its output folder
  (:data:`MATRIX_FILE`) is such a campaign.
* a **matrix**: a base ``study:``, changes for every run (``set:``), and ``matrix:`` axes whose levels
  multiply into runs (metal x electrolyte x termination x temperature x seed x engine, or any field). Each
  run is an ordinary run directory ``OUT/<run name>`` holding its own resolved study.

::

    name: screen_li6ps5cl
    study: ../li6ps5cl_in_fitted.yaml      # the base study (a file relative to this one, or a bundled name)
    set: {md.total_time_ps: 1.0}           # study fields changed in every run
    matrix:
      metal:                               # a known axis: a list of values, or label: value / label: {fields}
        In: {interface.metal.phase: In}
        Li: {interface.metal.phase: Li, analysis.pairs: [Li-S, Li-Cl, Li-P, P-S]}
      termination: [0, 1]
      seed: 3                              # seeds engine.seed, engine.seed + 1, engine.seed + 2
    max_jobs: 4

Errors name the file, the line, the field and what was expected (:class:`MatrixError`). Nothing here builds
or runs anything: the stages do (:mod:`cellsim.stages.screening`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cellsim.core.errors import StudyError

if TYPE_CHECKING:
    from cellsim.config.study import Study

# the manifest a matrix writes into its output folder: a campaign file listing its runs with their levels
MATRIX_FILE = "matrix.yaml"
# the folder of bundled matrices inside the shipped workflows (a subfolder: they are not studies)
SCREENS = "screens"
SEED_AXIS = "seed"
CAMPAIGN_FIELDS = ("runs", "max_jobs", "name", "description", "axes", "labels", "matrix_file")
MATRIX_FIELDS = ("name", "description", "study", "set", "matrix", "out", "max_jobs")
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_FORMULA_RE = re.compile(r"^(?:[A-Z][a-z]?\d*(?:\.\d+)?)+$")


class MatrixError(StudyError):
    """A matrix or campaign file is unreadable or names a field, level or run that cannot be."""


@dataclass(frozen=True)
class Axis:
    """A known matrix axis: the study field its plain values set, and how a value becomes a run-name label."""

    field: str
    describe: str

    def label(self, name: str, value: Any) -> str:
        """The label of a plain value on this axis (``300`` -> ``300K`` on temperature)."""
        if name == "temperature":
            return f"{float(value):g}K"
        if name == SEED_AXIS:
            return f"s{value}"
        if name == "termination":
            return f"t{value}"
        if name in ("orientation", "metal_orientation"):
            return "".join(f"m{-int(i)}" if int(i) < 0 else str(int(i)) for i in value)
        text = str(value)
        if "/" in text or "\\" in text or text.lower().endswith((".cif", ".vasp")) or "POSCAR" in text:
            text = Path(text).stem or text
        return re.sub(r"[^A-Za-z0-9_.+]", "_", text).strip("._") or "x"


AXES: dict[str, Axis] = {
    "metal": Axis("interface.metal.phase", "the metal phase"),
    "electrolyte": Axis("interface.electrolyte.phase", "the electrolyte phase"),
    "termination": Axis("interface.electrolyte.termination", "the electrolyte's termination index"),
    "orientation": Axis("interface.electrolyte.miller", "the electrolyte's Miller index"),
    "metal_orientation": Axis("interface.metal.miller", "the metal's Miller index"),
    "temperature": Axis("md.temperature", "the MD temperature, K"),
    SEED_AXIS: Axis("engine.seed", "the velocity seed (a count N: engine.seed + 0 .. N-1)"),
    "engine": Axis("engine.name", "the MD engine"),
}


@dataclass(frozen=True)
class MatrixRun:
    """One run of a matrix or campaign.

    Attributes
    ----------
    name
        The run's name (its folder's name in a matrix: the levels joined by ``-``).
    run_dir
        Its run directory.
    labels
        Axis -> level of this run (empty for a campaign that gives none).
    study
        The run's study (a matrix; None for a campaign, whose run directories hold theirs).
    """

    name: str
    run_dir: Path
    labels: dict[str, str] = field(default_factory=dict)
    study: Study | None = None

    @property
    def group_labels(self) -> dict[str, str]:
        """The labels without the seed: runs that differ only in their seed share these."""
        return {k: v for k, v in self.labels.items() if k != SEED_AXIS}


@dataclass
class RunSet:
    """The runs a matrix or campaign file names.

    Attributes
    ----------
    source
        The file read.
    kind
        ``matrix`` (expanded from axes) or ``campaign`` (a list of run directories).
    name, description
        From the file (a campaign without a name: the file's stem).
    runs
        In order: a matrix's first axis varies slowest.
    max_jobs
        At most this many runs' job chains at once (``cellsim submit``), or None.
    out
        Where a matrix's run directories go (None for a campaign).
    axes
        The axes in order (a campaign: those its labels name).
    """

    source: Path
    kind: Literal["matrix", "campaign"]
    name: str
    description: str
    runs: list[MatrixRun]
    max_jobs: int | None = None
    out: Path | None = None
    axes: list[str] = field(default_factory=list)

    @property
    def run_dirs(self) -> list[Path]:
        return [r.run_dir for r in self.runs]

    @property
    def manifest_file(self) -> Path | None:
        """The campaign file a matrix writes into its output folder (None for a campaign)."""
        return None if self.out is None else self.out / MATRIX_FILE

    def manifest(self) -> dict[str, Any]:
        """The campaign form of this set (what :meth:`write_manifest` writes)."""
        base = self.out if self.out is not None else self.source.parent
        return {
            "name": self.name,
            "description": self.description,
            "matrix_file": str(self.source.resolve()),
            "max_jobs": self.max_jobs,
            "axes": list(self.axes),
            "runs": [_relative(r.run_dir, base) for r in self.runs],
            "labels": {r.name: dict(r.labels) for r in self.runs},
        }

    def write_manifest(self) -> Path:
        """Write ``OUT/matrix.yaml``: a campaign file (``submit``, ``status``, ``compare`` take it or its folder)."""
        import yaml

        from cellsim.core.files import atomic_write_text

        target = self.manifest_file
        if target is None:
            raise MatrixError(f"{self.source}: a campaign has no output folder to write a manifest into")
        head = (
            f"# the runs of the study matrix {self.source.resolve()} (written by cellsim; a campaign file:\n"
            "# `cellsim submit`, `cellsim status` and `cellsim compare` take it or this folder)\n"
        )
        text = yaml.safe_dump(self.manifest(), sort_keys=False, default_flow_style=False, width=100)
        return atomic_write_text(target, head + text)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path.resolve())


def bundled_matrices() -> dict[str, Path]:
    """Bundled matrix files (``workflows/screens/*.yaml``) by stem."""
    from cellsim.core.resources import shipped_dir

    folder = shipped_dir("workflows") / SCREENS
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


def run_set_path(target: str | Path) -> Path | None:
    """The matrix or campaign file that ``target`` names: a YAML file, a folder holding :data:`MATRIX_FILE`
    (a matrix's output folder), or a bundled matrix's name; None when it names none (a run directory)."""
    p = Path(target)
    if p.is_file() and p.suffix.lower() in (".yaml", ".yml"):
        return p
    if p.is_dir() and (p / MATRIX_FILE).is_file():
        return p / MATRIX_FILE
    if not p.exists() and str(target) in bundled_matrices():
        return bundled_matrices()[str(target)]
    return None


def load_run_set(path: str | Path, out: str | Path | None = None) -> RunSet:
    """The runs a matrix or campaign file names.

    Parameters
    ----------
    path
        A matrix file, a campaign file, a matrix's output folder (it holds :data:`MATRIX_FILE`) or the name of
        a bundled matrix (``workflows/screens/NAME.yaml``).
    out
        Where a matrix's run directories go, instead of the file's ``out:`` (relative to the file) or
        ``runs/<name>`` (relative to the current folder). Ignored for a campaign.

    Returns
    -------
    RunSet
        The runs in order, each with its labels and, for a matrix, its validated study.

    Raises
    ------
    MatrixError
        The file cannot be read, or a field, level or run is wrong (the message names the file, line and field).
    """
    import yaml

    from cellsim.config.study import _line_map

    found = run_set_path(path) or (Path(path) if Path(path).is_file() else None)
    if found is None:
        p = Path(path)
        if p.is_dir():
            raise MatrixError(
                f"{p}: a folder without {MATRIX_FILE}; give a matrix or campaign file, or run directories"
            )
        raise MatrixError(
            f"{p}: no such matrix or campaign file (bundled matrices: {', '.join(bundled_matrices()) or 'none'})"
        )
    try:
        text = found.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MatrixError(f"{found}: cannot read the file ({exc})") from None
    try:
        data = yaml.safe_load(text)
        lines = _line_map(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{found}:{mark.line + 1}" if mark is not None else str(found)
        raise MatrixError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if isinstance(data, list):  # the oldest campaign form: a bare list of run directories
        data = {"runs": data}
    if not isinstance(data, dict):
        raise MatrixError(
            f"{found}: expected a mapping: `runs:` (a campaign) or `study:` and `matrix:` (a study matrix)"
        )
    reader = _Reader(found, lines)
    if "matrix" in data and "runs" in data:
        raise reader.error(("runs",), "a file is a campaign (runs:) or a matrix (matrix:), not both")
    if "matrix" in data:
        return _matrix(reader, data, out)
    if "runs" in data:
        return _campaign(reader, data)
    raise MatrixError(
        f"{found}: expected `runs:` with a list of run directories (a campaign, optionally `max_jobs:`) or "
        "`study:` and `matrix:` (a study matrix; docs/screening.md)"
    )


@dataclass
class _Reader:
    """Where things are in the file being read, for messages."""

    source: Path
    lines: dict[tuple[str | int, ...], int]

    def where(self, loc: tuple[str | int, ...]) -> str:
        for k in range(len(loc), -1, -1):
            if loc[:k] in self.lines:
                return f"{self.source}:{self.lines[loc[:k]]}"
        return str(self.source)

    def error(self, loc: tuple[str | int, ...], message: str) -> MatrixError:
        field_name = ".".join(str(p) for p in loc)
        return MatrixError(f"{self.where(loc)}: {field_name}: {message}")


def _max_jobs(reader: _Reader, data: dict[str, Any]) -> int | None:
    mj = data.get("max_jobs")
    if mj is not None and (isinstance(mj, bool) or not isinstance(mj, int) or mj < 1):
        raise reader.error(("max_jobs",), f"expected a positive whole number, got {mj!r}")
    return mj


def _text(reader: _Reader, data: dict[str, Any], key: str, default: str) -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise reader.error((key,), f"expected text, got {value!r}")
    return value


def _campaign(reader: _Reader, data: dict[str, Any]) -> RunSet:
    unknown = [k for k in data if k not in CAMPAIGN_FIELDS]
    if unknown:
        raise reader.error((str(unknown[0]),), f"unknown field (a campaign takes {', '.join(CAMPAIGN_FIELDS)})")
    runs = data["runs"]
    if not isinstance(runs, list) or not runs:
        raise reader.error(("runs",), "expected a list of run directories")
    labels = data.get("labels") or {}
    if not isinstance(labels, dict):
        raise reader.error(("labels",), "expected run name: {axis: level, ...}")
    axes = data.get("axes") or []
    if not isinstance(axes, list) or not all(isinstance(a, str) for a in axes):
        raise reader.error(("axes",), "expected a list of axis names")
    out: list[MatrixRun] = []
    seen: set[Path] = set()
    for k, entry in enumerate(runs):
        if not isinstance(entry, str | Path) or not str(entry).strip():
            raise reader.error(("runs", k), f"expected a run directory, got {entry!r}")
        run_dir = (reader.source.parent / str(entry)).resolve()
        if run_dir in seen:
            raise reader.error(("runs", k), f"{entry} is listed twice")
        seen.add(run_dir)
        mine = labels.get(str(entry)) or labels.get(run_dir.name) or {}
        if not isinstance(mine, dict):
            raise reader.error(("labels", str(entry)), "expected {axis: level, ...}")
        out.append(MatrixRun(run_dir.name, run_dir, {str(a): str(v) for a, v in mine.items()}))
    return RunSet(
        source=reader.source,
        kind="campaign",
        name=_text(reader, data, "name", reader.source.stem),
        description=_text(reader, data, "description", ""),
        runs=out,
        max_jobs=_max_jobs(reader, data),
        axes=[str(a) for a in axes] or list(dict.fromkeys(a for r in out for a in r.labels)),
    )


@dataclass
class _Level:
    """One level of one axis: its label, the study fields it sets, and where it was written."""

    axis: str
    label: str
    fields: dict[str, Any]
    loc: tuple[str | int, ...]


def _levels(reader: _Reader, axis: str, spec: Any, base_seed: int) -> list[_Level]:
    loc: tuple[str | int, ...] = ("matrix", axis)
    known = AXES.get(axis)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", axis):
        raise reader.error(loc, "an axis name is a word (letters, digits, _)")
    if axis == SEED_AXIS and isinstance(spec, int) and not isinstance(spec, bool):
        if spec < 1:
            raise reader.error(loc, f"a number of seeds must be positive, got {spec}")
        spec = [base_seed + k for k in range(spec)]
    levels: list[_Level] = []
    if isinstance(spec, list):
        if known is None:
            raise reader.error(
                loc,
                f"{axis!r} is not a known axis ({', '.join(AXES)}): give its levels as label: "
                "{study.field: value, ...}",
            )
        for k, value in enumerate(spec):
            if isinstance(value, dict | list) and axis not in ("orientation", "metal_orientation"):
                raise reader.error(
                    (*loc, k), "a listed level is a plain value; to set several fields write label: {field: value}"
                )
            levels.append(_Level(axis, known.label(axis, value), {known.field: value}, (*loc, k)))
    elif isinstance(spec, dict):
        for key, value in spec.items():
            label = str(key)
            where = (*loc, label)
            if not _LABEL_RE.match(label):
                raise reader.error(where, "a level's label is letters, digits, _ . + (it names the run directories)")
            if isinstance(value, dict):
                fields = {}
                for name, v in value.items():
                    if not isinstance(name, str) or not name.strip():
                        raise reader.error(where, f"expected study.field: value, got the key {name!r}")
                    fields[name] = v
                if not fields:
                    raise reader.error(where, "a level sets at least one study field")
            elif known is None:
                raise reader.error(
                    where, f"{axis!r} is not a known axis ({', '.join(AXES)}): a level is {{study.field: value}}"
                )
            else:
                fields = {known.field: value}
            levels.append(_Level(axis, label, fields, where))
    else:
        raise reader.error(loc, "expected a list of levels or label: level (docs/screening.md)")
    if not levels:
        raise reader.error(loc, "an axis needs at least one level")
    labels = [lv.label for lv in levels]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise reader.error(loc, f"two levels share the label {twice[0]!r}: give them labels (label: value)")
    return levels


def _set_field(data: dict[str, Any], dotted: str) -> tuple[dict[str, Any], str]:
    """The mapping holding the last part of ``dotted`` inside ``data`` (made where missing) and that key."""
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    return node, parts[-1]


def _elements_of(phase: str) -> set[str] | None:
    """The elements of a phase written as a formula (library names are formulas), else None."""
    from cellsim.core.elements import is_symbol

    if not _FORMULA_RE.match(phase):
        return None
    els = set(re.findall(r"[A-Z][a-z]?", phase))
    return els if all(is_symbol(e) for e in els) else None


def _matrix(reader: _Reader, data: dict[str, Any], out: str | Path | None) -> RunSet:
    import itertools

    from pydantic import ValidationError

    from cellsim.config.study import Study, resolve_study_paths

    unknown = [k for k in data if k not in MATRIX_FIELDS]
    if unknown:
        raise reader.error((str(unknown[0]),), f"unknown field (a matrix takes {', '.join(MATRIX_FIELDS)})")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise reader.error(("name",), f"expected a name of letters, digits, _ . - (got {name!r})")
    base_ref, base = _base_study(reader, data)
    here = reader.source.parent
    common = data.get("set") or {}
    if not isinstance(common, dict):
        raise reader.error(("set",), "expected study.field: value, ...")
    axes_spec = data.get("matrix")
    if not isinstance(axes_spec, dict) or not axes_spec:
        raise reader.error(("matrix",), "expected axes: metal, termination, seed, ... each with its levels")
    # the seed count counts from the seed the runs would have without the axis (set: or the base study)
    base_seed = common.get("engine.seed", base.engine.seed)
    if isinstance(base_seed, bool) or not isinstance(base_seed, int):
        raise reader.error(("set", "engine.seed"), f"expected a whole number, got {base_seed!r}")
    axes = [(str(a), _levels(reader, str(a), spec, base_seed)) for a, spec in axes_spec.items()]
    root = _matrix_root(reader, data, out, name)
    base_data = base.model_dump(mode="json")
    runs: list[MatrixRun] = []
    names: dict[str, tuple[str, ...]] = {}
    for combo in itertools.product(*(levels for _, levels in axes)):
        labels = {lv.axis: lv.label for lv in combo}
        run_name = "-".join(lv.label for lv in combo)
        if run_name in names:
            raise reader.error(("matrix",), f"two runs are both named {run_name!r}: give the levels distinct labels")
        names[run_name] = tuple(labels.values())
        study_data, origin = _run_data(reader, base_data, common, combo)
        study_data["name"] = f"{name}.{run_name}"
        tag = ", ".join(f"{a}={lab}" for a, lab in labels.items())
        study_data["description"] = f"{base.description.strip()} [matrix {name}: {tag}]".strip()
        try:
            study = Study.model_validate(study_data)
        except ValidationError as exc:
            raise _study_error(reader, exc, origin, run_name, base_ref) from None
        resolve_study_paths(study, here.resolve())
        _check_pairs(reader, study, origin, run_name, base_ref)
        runs.append(MatrixRun(run_name, (root / run_name).absolute(), labels, study))
    return RunSet(
        source=reader.source,
        kind="matrix",
        name=name,
        description=_text(reader, data, "description", ""),
        runs=runs,
        max_jobs=_max_jobs(reader, data),
        out=root.absolute(),
        axes=[a for a, _ in axes],
    )


def _base_study(reader: _Reader, data: dict[str, Any]) -> tuple[str, Study]:
    """The matrix's ``study:`` as written, and that study loaded with its paths resolved (beside its file, or
    the bundled study's)."""
    from cellsim.config.study import load_study, resolve_study_paths

    base_ref = data.get("study")
    if not isinstance(base_ref, str) or not base_ref.strip():
        raise reader.error(
            ("study",), "expected the base study: a study file (relative to this file) or a bundled name"
        )
    base_file = reader.source.parent / base_ref
    try:
        base = load_study(base_file if base_file.is_file() else base_ref)
    except StudyError as exc:
        raise MatrixError(f"{reader.where(('study',))}: study: {exc}") from None
    base_dir = base_file.parent.resolve() if base_file.is_file() else None
    if base_dir is None:
        from cellsim.core.resources import bundled_workflows

        base_dir = bundled_workflows()[base_ref].parent.resolve()
    resolve_study_paths(base, base_dir)
    return base_ref, base


def _matrix_root(reader: _Reader, data: dict[str, Any], out: str | Path | None, name: str) -> Path:
    """The folder of the matrix's runs: ``out`` given, else the file's ``out:`` (beside the file), else runs/NAME."""
    if out is not None:
        return Path(out)
    if data.get("out") is not None:
        if not isinstance(data["out"], str):
            raise reader.error(("out",), f"expected a folder (relative to this file), got {data['out']!r}")
        return reader.source.parent / data["out"]
    return Path("runs") / name


def _run_data(
    reader: _Reader, base_data: dict[str, Any], common: dict[Any, Any], combo: tuple[_Level, ...]
) -> tuple[dict[str, Any], dict[str, tuple[str | int, ...]]]:
    """One run's study as data: the base study with ``set:`` and the run's levels written in; and where in the
    file each field was set (for the errors of its validation)."""
    import copy

    study_data = copy.deepcopy(base_data)
    origin: dict[str, tuple[str | int, ...]] = {}
    for key, value in common.items():
        if not isinstance(key, str):
            raise reader.error(("set",), f"expected study.field: value, got the key {key!r}")
        node, last = _set_field(study_data, key)
        node[last] = copy.deepcopy(value)
        origin[key] = ("set", key)
    for lv in combo:
        for key, value in lv.fields.items():
            if key in origin and origin[key][0] == "matrix":
                raise reader.error(
                    lv.loc,
                    f"{key} is also set by {'.'.join(str(p) for p in origin[key])}: one axis per field",
                )
            node, last = _set_field(study_data, key)
            node[last] = copy.deepcopy(value)
            origin[key] = lv.loc
    return study_data, origin


def _origin_of(origin: dict[str, tuple[str | int, ...]], loc: tuple[str | int, ...]) -> tuple[str, tuple[Any, ...]]:
    """The field written in the file that covers the validation error at ``loc`` (longest dotted prefix)."""
    dotted = [str(p) for p in loc]
    for k in range(len(dotted), 0, -1):
        key = ".".join(dotted[:k])
        if key in origin:
            return key, origin[key]
    return "", ()


def _study_error(
    reader: _Reader, exc: Any, origin: dict[str, tuple[str | int, ...]], run_name: str, base_ref: str
) -> MatrixError:
    msgs = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        field_name = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown study field (`cellsim study-schema` lists them)"
        got = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {err.get('input')!r})"
        _, where = _origin_of(origin, loc)
        if where:
            written = ".".join(str(p) for p in where)
            msgs.append(f"{reader.where(where)}: {written}: {field_name}: {msg}{got} (run {run_name})")
        else:
            msgs.append(f"{reader.where(('study',))}: study {base_ref}: {field_name}: {msg}{got} (run {run_name})")
    return MatrixError("\n".join(msgs))


def _check_pairs(
    reader: _Reader, study: Study, origin: dict[str, tuple[str | int, ...]], run_name: str, base_ref: str
) -> None:
    """Refuse analysis pairs naming an element that neither phase of the run holds (a base study's In-S pairs
    on a Li run): the analysis would find no such atoms."""
    els_e = _elements_of(study.interface.electrolyte.phase)
    els_m = _elements_of(study.interface.metal.phase)
    if els_e is None or els_m is None or not study.analysis.pairs:
        return
    have = els_e | els_m
    for pair in study.analysis.pairs:
        missing = sorted(set(pair.split("-")) - have)
        if not missing:
            continue
        _, where = _origin_of(origin, tuple("analysis.pairs".split(".")))
        source = (
            f"{reader.where(where)}: {'.'.join(str(p) for p in where)}"
            if where
            else f"{reader.where(('study',))}: study {base_ref}"
        )
        phases = f"{study.interface.electrolyte.phase} + {study.interface.metal.phase}"
        raise MatrixError(
            f"{source}: analysis.pairs: {pair} names {', '.join(missing)}, which run {run_name} ({phases}) does not "
            "hold; give the level its own analysis.pairs (or analysis.pairs: null to derive them from the elements)"
        )
