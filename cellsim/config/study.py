"""The study specification: one YAML file describes a whole interface study.

Sections: ``interface`` (builder), ``md`` (VASP / embedded MD settings), ``engine`` (where MD runs) and
``analysis`` (RDF and bond settings). Every field has a default; the resolved study, with every default
written out, is saved as ``RUN_DIR/study.yaml`` on first use so that a run can be reproduced.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cellsim.config.engines import ENGINE_NAMES, check_engine_name
from cellsim.core.errors import StudyError

if TYPE_CHECKING:
    import yaml  # imported where YAML is read or written: the analysis of a bare XDATCAR never needs it

_ELEMENT_RE = re.compile(r"^[A-Z][a-z]?$")


def _check_pair(pair: str) -> str:
    from cellsim.core.elements import is_symbol

    parts = pair.split("-")
    if len(parts) != 2 or not all(_ELEMENT_RE.match(p) for p in parts):
        raise ValueError(f"'{pair}' is not a pair of element symbols like 'In-S'")
    for p in parts:
        if not is_symbol(p):
            raise ValueError(f"'{p}' in '{pair}' is not an element symbol")
    return pair


class _Model(BaseModel):
    # inf and nan are never a valid setting (a TEBEG = inf INCAR, NaN bond cutoffs)
    # defer_build: a schema is built on first use, not at import (the analyze path never validates a Study:
    # 15 ms of its import time)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False, defer_build=True)


# the one home of the default slab thicknesses (docs/builder.md, `cellsim study-schema`): an electrolyte
# thick enough for a bulk-like middle, a metal of a few atomic planes
ELECTROLYTE_MIN_THICKNESS = 10.0
METAL_MIN_THICKNESS = 8.0


class SlabSpec(_Model):
    """One side of the interface: a bulk phase cut along a Miller plane."""

    phase: str = Field(description="library name (see `cellsim refs list`) or path to a CIF/POSCAR file")
    miller: tuple[int, int, int] = Field((0, 0, 1), description="Miller index of the surface plane")
    termination: int | None = Field(
        None, ge=0, description="index into the allowed terminations (build report lists them); null = first"
    )
    layers: int | None = Field(None, ge=1, description="number of oriented-unit-cell layers; null = grow automatically")
    min_thickness: float | None = Field(
        None,
        ge=0,
        description="minimum slab thickness (layers x layer spacing), A, for automatic layers; "
        f"null = {ELECTROLYTE_MIN_THICKNESS} A for the electrolyte, {METAL_MIN_THICKNESS} A for the metal",
    )

    @field_validator("miller")
    @classmethod
    def _nonzero(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if not any(v):
            raise ValueError("Miller index (0, 0, 0) is not a plane")
        return v


class InterfaceSpec(_Model):
    """Builder settings. Lengths in Angstrom, strain as a fraction (0.03 = 3 %)."""

    electrolyte: SlabSpec = SlabSpec(phase="Li6PS5Cl")
    metal: SlabSpec = SlabSpec(phase="In")
    strained: Literal["metal", "electrolyte"] = "metal"
    lattice: Literal["reference", "engine"] = Field(
        "reference",
        description="cells of both slabs: the reference crystals, or the study engine's own relaxed lattices "
        "(so MLIP runs do not start under stress; strain reported against both)",
    )
    max_strain: float = Field(0.03, gt=0, lt=0.25)
    max_area: float = Field(400.0, gt=0, description="largest in-plane supercell area searched, A^2")
    min_lateral: float = Field(12.0, ge=0, description="shortest in-plane cell vector allowed, A")
    min_atoms: int = Field(250, ge=1)
    max_atoms: int = Field(450, ge=1)
    gap: float = Field(2.5, gt=0, description="distance between the facing atomic planes, A")
    vacuum: float = Field(15.0, ge=0, description="vacuum above the stack, A; 0 = periodic sandwich")
    fixed_metal_layers: int = Field(0, ge=0, description="bottom metal atomic planes fixed in MD")
    min_distance: float = Field(1.6, gt=0, description="refuse a model with any pair closer than this, A")
    intact_bonds: dict[str, float] | None = Field(
        None,
        description="bonds a termination may not cut, e.g. {'P-S': 2.3}; null = P-S 2.3 A (PS4 units) "
        "when the electrolyte has P and S",
    )

    @field_validator("intact_bonds")
    @classmethod
    def _pairs(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is not None:
            for pair, cutoff in v.items():
                _check_pair(pair)
                if cutoff <= 0:
                    raise ValueError(f"bond cutoff for {pair} must be > 0, got {cutoff}")
        return v

    @model_validator(mode="after")
    def _range(self) -> InterfaceSpec:
        if self.min_atoms > self.max_atoms:
            raise ValueError(f"min_atoms ({self.min_atoms}) is larger than max_atoms ({self.max_atoms})")
        # an omitted thickness takes its side's default here, so the resolved study writes it out
        for side, default in ((self.electrolyte, ELECTROLYTE_MIN_THICKNESS), (self.metal, METAL_MIN_THICKNESS)):
            if side.min_thickness is None:
                side.min_thickness = default
        return self

    def min_thickness(self, side: Literal["electrolyte", "metal"]) -> float:
        """The thickness floor of one slab (the study's, else the side's default)."""
        value = getattr(self, side).min_thickness
        if value is None:
            return ELECTROLYTE_MIN_THICKNESS if side == "electrolyte" else METAL_MIN_THICKNESS
        return float(value)


class MDSpec(_Model):
    """NVT molecular dynamics, shared by the VASP inputs and the embedded engine."""

    temperature: float = Field(300.0, gt=0, description="K (TEBEG = TEEND)")
    timestep_fs: float = Field(2.0, gt=0, le=10, description="POTIM, fs")
    total_time_ps: float = Field(10.0, gt=0)
    segment_time_ps: float = Field(1.0, gt=0, description="MD time per job segment (NSW = this / POTIM)")
    nblock: int = Field(1, ge=1, description="write a frame every NBLOCK steps")
    thermostat: Literal["nose-hoover"] = "nose-hoover"
    smass: float = Field(0.0, ge=-3, description="VASP SMASS (Nose mass; 0 = period of 40 time steps)")
    relax_steps: int = Field(100, ge=0, description="fixed-cell pre-relaxation steps (embedded engine)")
    incar: dict[str, Any] = Field(default_factory=dict, description="INCAR overrides (user_incar_settings)")
    potcar: dict[str, str] = Field(
        default_factory=lambda: {"Li": "Li_sv", "P": "P", "S": "S", "Cl": "Cl", "In": "In_d"},
        description="PBE POTCAR symbol per element",
    )


# engine names: cellsim.config.engines.ENGINE_NAMES (the offline models of the registry, vasp and cp2k)
EngineName = str


class EngineSpec(_Model):
    """Where the MD runs: VASP on a cluster, or an embedded machine-learned potential."""

    name: EngineName = Field(
        "chgnet",
        description="embedded model (`cellsim engines` lists them), cp2k (PBE through ASE's cp2k_shell) or vasp",
        json_schema_extra={"enum": list(ENGINE_NAMES)},
    )
    threads: int = Field(1, ge=1, description="torch threads (1 avoids spin-waiting on shared cores)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda when torch sees a GPU")
    checkpoint_every: int = Field(50, ge=1, description="MD steps between checkpoints")
    model_path: str | None = Field(None, description="optional model file for the MLIP engine")
    committee: Literal["auto", "off"] = Field(
        "auto",
        description="auto: when the model file has a committee beside it (committee.json, `cellsim engines "
        "committee`), its force deviation is recorded every monitor_every steps (deviation.csv in each MD "
        "segment folder)",
    )
    monitor_every: int = Field(20, ge=1, description="MD steps between the committee's (or teacher's) force checks")
    student: str | None = Field(
        None,
        description="opt-in: a student folder distilled from model_path (`cellsim.engines.student`, docs/student.md) "
        "drives the MD, and the teacher (model_path) checks its forces every monitor_every steps",
    )
    seed: int = Field(0, ge=0, description="seed of the initial Maxwell-Boltzmann velocities")
    relax_fmax: float = Field(0.1, gt=0, description="force threshold of the pre-relaxation, eV/A")
    tdamp_fs: float | None = Field(
        None, gt=0, description="Nose-Hoover chain time constant; null = 40 time steps (VASP SMASS = 0)"
    )
    cp2k: dict[str, Any] = Field(
        default_factory=dict,
        description="CP2K settings over templates/cp2k/pbe.yaml (engine: cp2k, `cellsim inputs --code cp2k`), "
        "e.g. {cutoff: 300, scf: {max_scf: 50}}",
    )

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return check_engine_name(v)


class AnalysisSpec(_Model):
    """RDF and bond analysis of the trajectory."""

    pairs: list[str] | None = Field(
        None,
        description="element pairs A-B; null = from the system's elements: metal-anion, metal-other non-metal, "
        "the electrolyte's framework bonds, Li/Na-anion (docs/analysis.md)",
    )
    window_ps: float = Field(0.5, gt=0, description="RDF time window, ps")
    rmax: float = Field(8.0, gt=0, le=30, description="largest r, A (30 A at most: first shells are the point)")
    bin_width: float = Field(0.02, ge=0.001, le=1.0, description="r bin width, A")
    bond_cutoffs: dict[str, float] = Field(
        default_factory=dict,
        description="bond length cutoff per pair, A; a pair not listed: 1.2 x the sum of covalent radii "
        "(docs/analysis.md)",
    )
    normalisation: Literal["cell", "occupied"] = "cell"

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("an empty list analyses nothing; leave pairs out (null) to derive them from the system")
        return None if v is None else [_check_pair(p) for p in v]

    @field_validator("bond_cutoffs")
    @classmethod
    def _cutoffs(cls, v: dict[str, float]) -> dict[str, float]:
        for pair, c in v.items():
            _check_pair(pair)
            if not (0 < c < 30):
                raise ValueError(f"bond cutoff of {pair} must be between 0 and 30 A, got {c}")
        return v

    @model_validator(mode="after")
    def _bins(self) -> AnalysisSpec:
        if self.rmax / self.bin_width > 20000:
            raise ValueError(f"rmax / bin_width = {self.rmax / self.bin_width:.0f} bins; at most 20000")
        if self.pairs is not None and len(set(self.pairs)) != len(self.pairs):
            raise ValueError(f"pairs listed twice: {self.pairs}")
        return self


class MatchSpec(_Model):
    """Matching new RDF peaks to candidate products (see docs/matching.md)."""

    candidates: list[str] | None = Field(
        None,
        description="library names, formulas of library phases or CIF/POSCAR paths (relative to the study file); "
        "null = every phase holding a pair with new bonds",
    )
    use_mp: bool = Field(True, description="add Materials Project phases when MP_API_KEY is set (and cached ones)")
    energy_above_hull: float = Field(0.05, ge=0, description="MP phases up to this far above the hull, eV/atom")
    sigma: float | None = Field(
        None, gt=0, description="Gaussian broadening of reference RDFs, A; null = 0.08 * sqrt(T / 300 K)"
    )
    late_fraction: float = Field(0.34, gt=0, le=1, description="fraction of the windows, from the end, taken as 'late'")
    position_tolerance: float = Field(
        0.2, gt=0, description="A; a delta_r this large scales the score by exp(-1/2) (interface bonds run long)"
    )
    min_new: float = Field(0.05, ge=0, description="new neighbours per atom below which a pair has no new bonds")
    min_new_fraction: float = Field(
        0.3, ge=0, le=1, description="share of the late shell that must be new (a peak that only broadens is not)"
    )
    threshold: float = Field(0.5, ge=0, le=1, description="score from which a candidate counts as a match")


class QueueSpec(_Model):
    """Batch-queue resources of the VASP jobs (``cellsim submit --queue slurm|pbs``).

    A null field falls back to the ``queue:`` section of the user config (``~/.config/cellsim/config.yaml``),
    then to the built-in default (1 node, 1 rank, 24 h, ``srun`` on SLURM, ``mpirun -np {ntasks}`` on PBS).
    """

    scheduler: Literal["slurm", "pbs", "pbspro", "torque"] | None = Field(
        None, description="slurm, pbs (= pbspro: select= syntax) or torque (nodes=:ppn=); null = --queue"
    )
    partition: str | None = Field(None, description="SLURM partition / PBS queue")
    account: str | None = Field(None, description="account (project) charged")
    qos: str | None = Field(None, description="SLURM quality of service")
    nodes: int | None = Field(None, ge=1, description="nodes per job (default 1)")
    ntasks_per_node: int | None = Field(None, ge=1, description="MPI ranks per node (default 1)")
    cpus_per_task: int | None = Field(None, ge=1, description="cores (OpenMP threads) per rank (default 1)")
    mem: str | None = Field(None, description="memory per node, e.g. 64G or 500M")
    walltime: str | None = Field(None, description="job time limit, HH:MM:SS or D-HH:MM:SS (default 24:00:00)")
    constraint: str | None = Field(None, description="SLURM --constraint; PBS Pro: extra select resource key=value")
    modules: list[str] | None = Field(None, description="modules loaded in the job (`module load NAME`)")
    pre_commands: list[str] | None = Field(None, description="shell lines run before cellsim in the job")
    mpi_launcher: str | None = Field(
        None,
        description="prefix of the VASP command: srun, or mpirun -np {ntasks} ({ntasks}, {nodes}, "
        "{ntasks_per_node}, {cpus_per_task} are filled in)",
    )
    extra_directives: list[str] | None = Field(None, description="raw #SBATCH/#PBS lines added to the script")
    resubmit: bool | None = Field(None, description="queue the next job automatically until the plan is done")

    @field_validator("partition", "account", "qos", "constraint", "mem", "walltime")
    @classmethod
    def _one_word(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or any(c.isspace() for c in v) or "#" in v):
            raise ValueError(f"{v!r}: expected one word (no spaces, newlines or #)")
        return v

    @field_validator("mem")
    @classmethod
    def _mem(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"\d+(\.\d+)?[KMGT]?B?", v, re.IGNORECASE):
            raise ValueError(f"{v!r}: expected a size like 64G, 4000M or 2T")
        return v

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, v: str | None) -> str | None:
        if v is not None:
            QueueSpec.walltime_seconds(v)
        return v

    @field_validator("modules", "pre_commands", "extra_directives")
    @classmethod
    def _lines(cls, v: list[str] | None) -> list[str] | None:
        for line in v or []:
            if "\n" in line or "\r" in line or not line.strip():
                raise ValueError(f"{line!r}: expected one non-empty line")
        return v

    @field_validator("mpi_launcher")
    @classmethod
    def _launcher(cls, v: str | None) -> str | None:
        import string

        if v is None:
            return v
        if "\n" in v or not v.strip():
            raise ValueError(f"{v!r}: expected a command prefix like 'srun' or 'mpirun -np {{ntasks}}'")
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        except ValueError as exc:
            raise ValueError(f"{v!r}: {exc}") from None
        unknown = names - {"ntasks", "nodes", "ntasks_per_node", "cpus_per_task"}
        if unknown:
            raise ValueError(
                f"{v!r}: unknown placeholder {{{sorted(unknown)[0]}}} (use {{ntasks}}, {{nodes}}, "
                "{ntasks_per_node} or {cpus_per_task})"
            )
        return v

    @staticmethod
    def walltime_seconds(text: str) -> int:
        """Seconds of a time limit written ``HH:MM:SS``, ``D-HH:MM:SS``, ``MM:SS`` or ``MM`` (SLURM's forms)."""
        m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d{1,2}))?(?::(\d{1,2}))?", text.strip())
        if m is None:
            raise ValueError(f"{text!r}: expected a time limit like 24:00:00 or 2-00:00:00")
        days, a, b, c = (int(g) if g else None for g in m.groups())
        if b is None:  # minutes (or D-HH)
            secs = (a or 0) * (3600 if days is not None else 60)
        elif c is None:  # MM:SS (or D-HH:MM)
            secs = (a or 0) * 3600 + b * 60 if days is not None else (a or 0) * 60 + b
        else:
            secs = (a or 0) * 3600 + b * 60 + c
        secs += (days or 0) * 86400
        if secs <= 0:
            raise ValueError(f"{text!r}: a time limit must be positive")
        return secs


class Study(_Model):
    """A whole study: what to build, how to run it, how to analyse it."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    description: str = ""
    interface: InterfaceSpec = Field(default_factory=InterfaceSpec)
    md: MDSpec = Field(default_factory=MDSpec)
    engine: EngineSpec = Field(default_factory=EngineSpec)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    match: MatchSpec = Field(default_factory=MatchSpec)
    queue: QueueSpec = Field(default_factory=QueueSpec)

    def to_yaml(self) -> str:
        """YAML with every default written out."""
        import yaml

        data = self.model_dump(mode="json")
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)


# --------------------------------------------------------------------------- loading with clear errors


def _line_map(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each key path in a YAML document to its 1-based line number."""
    import yaml

    lines: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, key.value)
                lines[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return lines


def _format_errors(source: str, exc: ValidationError, lines: dict[tuple[str | int, ...], int]) -> str:
    msgs = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        # the deepest path present in the file gives the line
        line = None
        for k in range(len(loc), -1, -1):
            if loc[:k] in lines:
                line = lines[loc[:k]]
                break
        where = f"{source}:{line}" if line else source
        field = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; `cellsim study-schema` lists the fields)"
        got = err.get("input")
        got_s = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {got!r})"
        msgs.append(f"{where}: {field}: {msg}{got_s}")
    return "\n".join(msgs)


def parse_study(text: str, source: str = "<study>") -> Study:
    """Validate study YAML text; errors name ``source``, the line, the field and what was expected."""
    import yaml

    try:
        data = yaml.safe_load(text)
        lines = _line_map(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise StudyError(f"{where}: not valid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise StudyError(f"{source}: expected a mapping with at least 'name:', got {type(data).__name__}")
    try:
        return Study.model_validate(data)
    except ValidationError as exc:
        raise StudyError(_format_errors(source, exc, lines)) from exc


def load_study(path: str | Path) -> Study:
    """Load and validate a study file, or a bundled study by name (e.g. ``li6ps5cl_in``)."""
    from cellsim.core.resources import bundled_workflows

    p = Path(path)
    if not p.is_file():
        bundled = bundled_workflows()
        if str(path) in bundled:
            p = bundled[str(path)]
        else:
            raise StudyError(f"{path}: no such study file (bundled studies: {', '.join(bundled) or 'none'})")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyError(f"{p}: cannot read the study file: {exc}") from exc
    study = parse_study(text, source=str(p))
    _model_beside(study, p.parent)
    return study


def resolve_study_paths(study: Study, base_dir: Path | None) -> Study:
    """Files of the study (``interface.*.phase``, ``match.candidates``, ``engine.model_path``) as absolute paths.

    Relative paths are taken from ``base_dir`` (the study file's folder), so the resolved study in a run
    directory works from any folder; library names and formulas stay as they are. Changes ``study`` in place.
    """
    from cellsim.references.library import get_phase

    def absolute(entry: str) -> str:
        if base_dir is None or get_phase(entry) is not None:
            return entry
        p = Path(entry).expanduser()
        p = p if p.is_absolute() else base_dir / p
        return str(p.resolve()) if p.is_file() else entry

    for side in (study.interface.electrolyte, study.interface.metal):
        side.phase = absolute(side.phase)
    if study.match.candidates is not None:
        study.match.candidates = [absolute(c) for c in study.match.candidates]
    if base_dir is not None:
        _model_beside(study, base_dir)
    return study


def _model_beside(study: Study, base_dir: Path) -> None:
    """A relative ``engine.model_path`` (``engine.student``) naming a file (folder) beside the study file: absolute."""
    if study.engine.model_path:
        m = Path(study.engine.model_path).expanduser()
        if not m.is_absolute() and (base_dir / m).is_file():
            study.engine.model_path = str((base_dir / m).resolve())
    if study.engine.student:
        st = Path(study.engine.student).expanduser()
        if not st.is_absolute() and (base_dir / st).is_dir():
            study.engine.student = str((base_dir / st).resolve())
