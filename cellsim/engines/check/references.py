"""Known facts the engine check compares against: Debye temperatures and melting points of anode metals, and
reactions whose sign a well-established fact fixes (with the fact). System-specific claims live here, not in
the generic check code; add a metal or a reaction here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


# Debye temperatures (K) and melting points (K) of common anode metals. Theta_D: low-temperature values
# of C. Kittel, Introduction to Solid State Physics (8th ed.), ch. 5, Table 1; melting points: CRC
# Handbook of Chemistry and Physics. Used for the classical Debye RMS displacement (debye_rms).
DEBYE_K: dict[str, tuple[float, float]] = {
    "Li": (344.0, 453.7),
    "Na": (158.0, 371.0),
    "K": (91.0, 336.5),
    "Mg": (400.0, 923.0),
    "Al": (428.0, 933.5),
    "Zn": (327.0, 692.7),
    "Ga": (320.0, 302.9),
    "In": (108.0, 429.7),
    "Sn": (200.0, 505.1),
    "Pb": (105.0, 600.6),
    "Bi": (119.0, 544.6),
    "Cu": (343.0, 1357.8),
    "Ag": (225.0, 1234.9),
    "Au": (165.0, 1337.3),
}


# Candidate reactions (reactants, products, expected sign of the reaction energy or None, why), in order of
# preference; the first ones whose phases are all in the library and whose elements the study holds are
# used. A sign is given only where a well-established fact fixes it.
REACTIONS: tuple[tuple[tuple[str, ...], tuple[str, ...], str | None, str], ...] = (
    (
        ("InCl",),
        ("In", "InCl3"),
        ">",
        "InCl is a stable compound of the In-Cl phase diagram: it must not disproportionate into In + InCl3",
    ),
    (
        ("Li", "InCl"),
        ("LiCl", "In"),
        "<",
        "Li reduces In(I) chloride (standard potentials: Li+/Li -3.04 V, In+/In -0.14 V)",
    ),
    (
        ("Li", "InS"),
        ("Li2S", "In"),
        "<",
        "Li reduces indium sulfide (Li is by far the more electropositive metal)",
    ),
    (
        ("Li", "In"),
        ("LiIn",),
        "<",
        "LiIn is a stable intermetallic of the Li-In phase diagram",
    ),
    (
        ("InS",),
        ("In", "In2S3"),
        ">",
        "InS is a stable compound of the In-S phase diagram: it must not disproportionate into In + In2S3",
    ),
    (
        ("Li6PS5Cl",),
        ("Li3PS4", "Li2S", "LiCl"),
        None,
        "no offline reference; the library's Li6PS5Cl is an ordered model (Li on 24g) of a disordered phase",
    ),
    (
        ("Li3PS4", "Li"),
        ("Li3P", "Li2S"),
        "<",
        "thiophosphates are reduced by Li metal (Li3PS4 + 8 Li -> Li3P + 4 Li2S)",
    ),
)

MP_NOTE = (
    "no reference value offline; Materials Project reaction energies need `cellsim refs fetch` with an MP "
    "API key (formation energies are not in cellsim's MP cache)"
)

# RMS displacement / Debye expectation seen with the offline models on In at 300 K (the engine check on
# li6ps5cl_in): what the RMS_RATIO_TOL thresholds of the verdicts were set against
RMS_RATIOS_SEEN = {"In": {"sevennet": (1.0, 1.5), "chgnet": (2.3, 2.3)}}

# anion units the electrolyte check watches when the study names no interface.intact_bonds: PS4 of a
# thiophosphate (P-S 2.3 A; the builder's default too)
DEFAULT_UNIT_BONDS = {"P-S": 2.3}
