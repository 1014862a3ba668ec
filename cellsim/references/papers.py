"""Published claims a run can be held against: what a paper says forms (or breaks) at an interface.

Generic code never names a paper's products or bonds; it asks :func:`papers_for` which papers speak about a
run's elements and checks each :class:`Claim` by its kind (the report's "Paper claims" table,
:func:`cellsim.reporting.summary.claims_section`). A new paper is one more :class:`Paper` in :data:`PAPERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ClaimKind = Literal["bonds form", "bonds break", "product"]


@dataclass(frozen=True)
class Claim:
    """One statement of a paper: bonds of a pair form or break, or a phase forms."""

    kind: ClaimKind
    subject: str  # a pair ("In-S") for bonds, a phase name ("In2S3") for a product
    text: str = ""  # the claim in the paper's words; default: the kind and subject

    @property
    def label(self) -> str:
        if self.text:
            return self.text
        return f"product {self.subject}" if self.kind == "product" else f"{self.subject} {self.kind}"


@dataclass(frozen=True)
class Paper:
    """A paper's claims about one interface, the elements they need, and how its simulation was run."""

    key: str
    citation: str
    elements: frozenset[str]  # a run holds every one of them, or the claims do not apply
    claims: tuple[Claim, ...]
    setting: str  # how the paper's simulation was run, beside which a run is read

    def applies_to(self, elements: set[str] | frozenset[str]) -> bool:
        return self.elements <= set(elements)


LUO_2021 = Paper(
    key="luo2021",
    citation="Luo et al., Nat. Commun. 12, 6968, 2021",
    elements=frozenset({"In", "S", "Cl", "P", "Li"}),
    claims=(
        Claim("bonds form", "In-S", "In-S bonds form and grow from ~1 ps"),
        Claim("bonds form", "In-Cl", "In-Cl bonds form"),
        Claim("bonds break", "P-S", "P-S bonds break"),
        # InxSy is the main product; InCl and InCl3 are the chlorides considered beside it
        Claim("product", "In2S3"),
        Claim("product", "InS"),
        Claim("product", "InCl"),
        Claim("product", "InCl3"),
    ),
    setting="The paper: VASP PBE AIMD, 300 K, 10-20 ps. A short run, or a potential that misdescribes the metal "
    "(see the diagnostics), may not reproduce them.",
)

PAPERS: tuple[Paper, ...] = (LUO_2021,)


def papers_for(elements: set[str] | frozenset[str]) -> list[Paper]:
    """The papers whose claims a run with these elements can be checked against."""
    return [p for p in PAPERS if p.applies_to(elements)]
