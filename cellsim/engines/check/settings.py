"""The engine check's settings, result rows and reports (plain data)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator
    from pymatgen.core import Structure

    from cellsim.engines.registry import ModelInfo


# bump when a task's computation changes: old cache entries are then ignored
CHECK_VERSION = 1

# --------------------------------------------------------------------------- settings and results


@dataclass(frozen=True)
class CheckSettings:
    """Sizes of the checks (part of every cache key).

    Attributes
    ----------
    relax_fmax, relax_stress_gpa, relax_steps
        Force (eV/A) and stress (GPa) thresholds and step bound of the cell + position relaxations.
    metal_md_ps, electrolyte_md_ps
        Simulated time of the two NVT checks.
    metal_min_atoms, electrolyte_min_atoms
        Smallest supercells of the NVT checks.
    friction_per_fs
        Langevin friction (1/fs); 0.02 brings a cold-started crystal to temperature within ~50 fs.
    speed_steps, speed_max_atoms
        MD steps timed for the speed estimate, and the largest cell timed.
    max_reactions
        Number of reactions evaluated.
    seed
        Seed of velocities and Langevin noise.
    """

    relax_fmax: float = 0.03
    relax_stress_gpa: float = 0.01
    relax_steps: int = 150
    metal_md_ps: float = 0.5
    electrolyte_md_ps: float = 0.15
    metal_min_atoms: int = 54
    electrolyte_min_atoms: int = 40
    friction_per_fs: float = 0.02
    speed_steps: int = 3
    speed_max_atoms: int = 300
    max_reactions: int = 4
    seed: int = 0

    @classmethod
    def quick(cls) -> CheckSettings:
        """A smoke-test size: a few dozen steps per check, two reactions."""
        return cls(
            relax_fmax=0.05,
            relax_stress_gpa=0.05,
            relax_steps=40,
            metal_md_ps=0.1,
            electrolyte_md_ps=0.04,
            metal_min_atoms=32,
            speed_steps=2,
            speed_max_atoms=120,
            max_reactions=2,
        )


@dataclass
class Row:
    """One line of the report: a quantity of a phase (or reaction), its reference and the verdict."""

    engine: str
    phase: str
    quantity: str
    value: float | None
    reference: float | str | None
    verdict: str  # ok | warn | fail | n/a
    unit: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EngineReport:
    """All rows of one engine, with its speed and the wall time the check took."""

    engine: str
    model: str
    loaded: bool
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    s_per_step: float | None = None  # estimated, at the study's interface size
    ps_per_day: float | None = None
    error: str = ""

    def count(self, verdict: str) -> int:
        return sum(1 for r in self.rows if r.verdict == verdict)


@dataclass(frozen=True)
class Phase:
    """A reactant or library phase: label, structure and a hash of the structure (cache key)."""

    label: str
    structure: Structure
    digest: str
    note: str = ""


Progress = Callable[[str, str, float, bool], None]
CalculatorFactory = Callable[["ModelInfo"], "Calculator"]
