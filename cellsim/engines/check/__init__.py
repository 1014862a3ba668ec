"""Is a machine-learned potential fit for a study's interface? Checks on the study's own reactants.

For each engine, on the metal and electrolyte phases the study names (library phases or CIF files):

* relaxed lattice (cell + positions, space group kept) vs the reference cell: a, b, c by crystal system,
  ``c/a`` for tetragonal and hexagonal cells, volume per atom;
* bulk metal at the study temperature (short Langevin NVT at the reference lattice, and again at the engine's
  own relaxed lattice): RMS displacement about the lattice sites vs a classical Debye-model value, and the
  Lindemann ratio;
* electrolyte at the study temperature (short NVT, the study's time step): fraction of anion units
  (PS4 for a thiophosphate) that stay whole;
* energies of 2-4 balanced reactions among library phases made of the study's elements, with a sign
  reference where a known fact fixes it (e.g. LiIn is a stable compound, so Li + In -> LiIn is downhill);
* speed: seconds per MD step on a cell of interface size, and ps/day at the study's time step.

Every number is cached on disk (``$CELLSIM_CACHE/engine-check``, default ``~/.cache/cellsim/engine-check``)
under a key of engine weights, structure, temperature and the check's settings; a repeated check does not
even load the model. Verdicts are recomputed from the cached numbers, so thresholds can change freely.

The package: :mod:`.settings` (settings, rows, reports), :mod:`.references` (the known facts checked
against), :mod:`.verdicts`, :mod:`.reactions`, :mod:`.compute` (one engine's relaxations, NVT, speed; the
cache), :mod:`.tasks` (the rows of one engine), :mod:`.run` (several engines, JSON, recommendation),
:mod:`.bain` (PBE Bain path), :mod:`.reactants` (energies and densities for the matching). Every public name
is importable from ``cellsim.engines.check``.
"""

from __future__ import annotations

from cellsim.engines.check.bain import (
    LATTICE_REFERENCE,
    PBE_LABEL,
    PW_LABEL,
    BainReference,
    bain_reference,
    plot_bain,
)
from cellsim.engines.check.compute import (
    cache_dir,
    electrolyte_md,
    metal_md,
    metal_timestep,
    relax,
    speed,
    speed_cell,
    structure_digest,
    unit_centres,
)
from cellsim.engines.check.reactants import (
    REACTANT_MD_PS,
    REACTANT_MIN_ATOMS,
    reactant_densities,
    reactant_md,
    relaxed_energies,
)
from cellsim.engines.check.reactions import (
    balance,
    pick_reactions,
    reaction_energy,
    reaction_label,
)
from cellsim.engines.check.references import (
    DEBYE_K,
    MP_NOTE,
    REACTIONS,
)
from cellsim.engines.check.run import (
    cached_speeds,
    check_engines,
    parity_trust,
    recommend,
    relaxed_structure,
    rows_json,
    write_json,
)
from cellsim.engines.check.settings import (
    CHECK_VERSION,
    CalculatorFactory,
    CheckSettings,
    EngineReport,
    Phase,
    Progress,
    Row,
)
from cellsim.engines.check.tasks import (
    CheckInput,
    expected_rms,
    prepare,
)
from cellsim.engines.check.verdicts import (
    CA_TOL,
    INTACT_MIN,
    LATTICE_TOL,
    LINDEMANN_TOL,
    RMS_RATIO_TOL,
    SIGN_TOLERANCE,
    VOLUME_TOL,
    ca_verdict,
    debye_rms,
    intact_verdict,
    lattice_verdict,
    lindemann_verdict,
    relative_error,
    rms_verdict,
    sign_verdict,
    tolerance_verdict,
    volume_verdict,
)

__all__ = [
    "CA_TOL",
    "CHECK_VERSION",
    "DEBYE_K",
    "INTACT_MIN",
    "LATTICE_REFERENCE",
    "LATTICE_TOL",
    "LINDEMANN_TOL",
    "MP_NOTE",
    "PBE_LABEL",
    "PW_LABEL",
    "REACTANT_MD_PS",
    "REACTANT_MIN_ATOMS",
    "REACTIONS",
    "RMS_RATIO_TOL",
    "SIGN_TOLERANCE",
    "VOLUME_TOL",
    "BainReference",
    "CalculatorFactory",
    "CheckInput",
    "CheckSettings",
    "EngineReport",
    "Phase",
    "Progress",
    "Row",
    "bain_reference",
    "balance",
    "ca_verdict",
    "cache_dir",
    "cached_speeds",
    "check_engines",
    "debye_rms",
    "electrolyte_md",
    "expected_rms",
    "intact_verdict",
    "lattice_verdict",
    "lindemann_verdict",
    "metal_md",
    "metal_timestep",
    "parity_trust",
    "pick_reactions",
    "plot_bain",
    "prepare",
    "reactant_densities",
    "reactant_md",
    "reaction_energy",
    "reaction_label",
    "recommend",
    "relative_error",
    "relax",
    "relaxed_energies",
    "relaxed_structure",
    "rms_verdict",
    "rows_json",
    "sign_verdict",
    "speed",
    "speed_cell",
    "structure_digest",
    "tolerance_verdict",
    "unit_centres",
    "volume_verdict",
    "write_json",
]
