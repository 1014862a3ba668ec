"""Slab templates: one oriented-unit-cell-thick layer of a bulk phase, cut by pymatgen's SlabGenerator.

A template is expressed in its own orthonormal frame: x along the first in-plane vector, z along the
surface normal. A slab of ``n`` layers is ``n`` copies of the template stacked along the layer vector,
so it keeps the bulk stoichiometry exactly, and a termination that SlabGenerator accepted with
``bonds=...`` (no bond broken) keeps every bonded unit (PS4 tetrahedra) whole.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from cellsim.core.errors import BuildError

if TYPE_CHECKING:
    from pymatgen.core import Structure


@dataclass(frozen=True)
class SlabTemplate:
    """One layer of a slab with a given termination.

    Attributes
    ----------
    inplane
        (2, 2) in-plane lattice vectors (rows) in the template frame, right-handed.
    layer_vector
        (3,) translation from one layer to the next; its z component is the layer thickness.
    species
        Element symbol of each atom of one layer.
    positions
        (N, 3) Cartesian positions of one layer in the template frame, lowest atom at z = 0.
    shift
        SlabGenerator shift (fraction of the oriented unit cell) that defines the termination.
    bottom, top
        Reduced formula of the atoms within 1 A of the bottom / top face (the termination label).
    turned_over
        The layer of SlabGenerator's cut turned upside down (:func:`turned_over`): its other face meets the
        other slab.
    """

    phase: str
    miller: tuple[int, int, int]
    inplane: np.ndarray
    layer_vector: np.ndarray
    species: tuple[str, ...]
    positions: np.ndarray
    shift: float
    bottom: str
    top: str
    broken_bonds: int
    turned_over: bool = False

    @property
    def area(self) -> float:
        return float(abs(np.linalg.det(self.inplane)))

    @property
    def layer_thickness(self) -> float:
        return float(self.layer_vector[2])

    def stacked(self, n_layers: int) -> tuple[list[str], np.ndarray]:
        """Species and positions of ``n_layers`` layers (Cartesian, template frame)."""
        species = list(self.species) * n_layers
        pos = np.concatenate([self.positions + k * self.layer_vector for k in range(n_layers)])
        return species, pos


def _face_label(species: list[str] | tuple[str, ...], z: np.ndarray, at_top: bool, depth: float = 1.0) -> str:
    from pymatgen.core import Composition

    mask = z >= z.max() - depth if at_top else z <= z.min() + depth
    counts: dict[str, float] = {}
    for sp, m in zip(species, mask, strict=True):
        if m:
            counts[sp] = counts.get(sp, 0) + 1
    return Composition(counts).to_pretty_string()


def _frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows: orthonormal x, y, z with x along a and z along a x b."""
    x = a / np.linalg.norm(a)
    z = np.cross(a, b)
    z /= np.linalg.norm(z)
    y = np.cross(z, x)
    return np.array([x, y, z])


def slab_templates(
    bulk: Structure,
    miller: tuple[int, int, int],
    phase: str,
    intact_bonds: dict[tuple[str, str], float] | None = None,
) -> list[SlabTemplate]:
    """All terminations of ``bulk`` along ``miller`` that break none of ``intact_bonds``.

    Parameters
    ----------
    bulk
        The bulk crystal (conventional or primitive cell).
    miller
        Miller index of the surface, in the bulk cell's setting.
    phase
        Name used in messages and reports.
    intact_bonds
        ``{(A, B): max_length}`` bonds no termination may cut (pymatgen ``get_slabs(bonds=...)``).
    """
    from pymatgen.core.surface import SlabGenerator

    try:
        with warnings.catch_warnings():
            # spglib (>= 2.5) deprecates the old error handling that pymatgen's SpacegroupAnalyzer still switches
            # on for every symmetry search of the cut; harmless (the symmetry found is the same), and under
            # `-W error` it would even refuse the cut
            warnings.filterwarnings("ignore", message="Set OLD_ERROR_HANDLING to false", category=DeprecationWarning)
            gen = SlabGenerator(
                bulk,
                miller,
                min_slab_size=1,
                min_vacuum_size=1,
                in_unit_planes=True,
                center_slab=False,
                primitive=True,
                reorient_lattice=True,
            )
            slabs = gen.get_slabs(bonds=intact_bonds, max_broken_bonds=0)  # type: ignore[arg-type]
    except Exception as exc:  # SlabGenerator raises ValueError/IndexError for odd inputs
        raise BuildError(f"{phase}{list(miller)}: pymatgen could not cut this surface: {exc}") from exc
    if not slabs:
        bonds = ", ".join(f"{a}-{b} < {d} A" for (a, b), d in (intact_bonds or {}).items())
        raise BuildError(
            f"{phase}{list(miller)}: every termination of this plane cuts a bond that must stay whole "
            f"({bonds}); choose another Miller index"
        )
    ouc = gen.oriented_unit_cell
    ouc_area = float(np.linalg.norm(np.cross(ouc.lattice.matrix[0], ouc.lattice.matrix[1])))
    ouc_height = ouc.volume / ouc_area
    templates = []
    for slab in slabs:
        m = slab.lattice.matrix
        rot = _frame(m[0], m[1])
        c_rot = rot @ m[2]
        n_cells = round(c_rot[2] / ouc_height)  # SlabGenerator stacks whole oriented cells (slab + vacuum)
        if n_cells < 1:
            raise BuildError(f"{phase}{list(miller)}: unexpected slab geometry from pymatgen")
        layer_vec = c_rot / n_cells
        pos = slab.cart_coords @ rot.T
        pos[:, 2] -= pos[:, 2].min()
        inplane = (rot @ m[:2].T).T[:, :2]
        species = tuple(site.specie.symbol for site in slab)
        templates.append(
            SlabTemplate(
                phase=phase,
                miller=tuple(int(i) for i in miller),  # type: ignore[arg-type]
                inplane=inplane,
                layer_vector=layer_vec,
                species=species,
                positions=pos,
                shift=float(slab.shift),
                bottom=_face_label(species, pos[:, 2], at_top=False),
                top=_face_label(species, pos[:, 2], at_top=True),
                broken_bonds=0,
            )
        )
    return templates


def turned_over(t: SlabTemplate) -> SlabTemplate:
    """The same layer upside down: a two-fold rotation about the in-plane x axis (a proper rotation, so the
    crystal keeps its handedness), then about z so the first in-plane vector lies along x again.

    The rotation maps (x, y, z) to (x, -y, -z): the old top face becomes the bottom face, the one the
    builder puts against the metal. The in-plane basis becomes (b', a') to stay right-handed (same lengths
    and angle, so the same lattice matches), and the layer vector is negated so that layers still stack
    upwards: the stack is the turned stack shifted as a whole, which changes no distance in it.
    """
    two_fold = np.diag([1.0, -1.0, -1.0])
    pos = t.positions @ two_fold.T
    layer = -(two_fold @ t.layer_vector)
    a = two_fold @ np.array([t.inplane[0, 0], t.inplane[0, 1], 0.0])
    b = two_fold @ np.array([t.inplane[1, 0], t.inplane[1, 1], 0.0])
    angle = -float(np.arctan2(b[1], b[0]))
    c, s = np.cos(angle), np.sin(angle)
    about_z = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    pos = pos @ about_z.T
    pos[:, 2] -= pos[:, 2].min()
    inplane = np.array([(about_z @ b)[:2], (about_z @ a)[:2]])
    return replace(
        t,
        inplane=inplane,
        layer_vector=about_z @ layer,
        positions=pos,
        bottom=_face_label(t.species, pos[:, 2], at_top=False),
        top=_face_label(t.species, pos[:, 2], at_top=True),
        turned_over=not t.turned_over,
    )


def with_both_faces(templates: list[SlabTemplate]) -> list[SlabTemplate]:
    """``templates`` followed by each one turned over (:func:`turned_over`) whose faces differ from every
    template's: a cut whose two faces differ (Li6PS5Cl(001): Li1S2 below, Li4S1 above) offers both to the
    other slab, each keeping every bond the cut kept. The first indices stay SlabGenerator's cuts."""
    seen = {(t.bottom, t.top) for t in templates}
    out = list(templates)
    for t in templates:
        other = turned_over(t)
        if (other.bottom, other.top) not in seen:
            seen.add((other.bottom, other.top))
            out.append(other)
    return out
