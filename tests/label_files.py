"""Label files for the label-source tests: vasprun.xml, OUTCAR-free ML_AB and extxyz written from ASE frames.

The vasprun.xml follows the layout of the vasprun.xml VASP 6.3 writes (the one ASE ships as
``ase/test/testdata/vasp/vasprun_pstress.xml``): generator, incar, kpoints, parameters with their separators,
atominfo with the POTCAR titles, the initial structure, then one ``<calculation>`` per ionic step (electronic
steps, structure, forces, stress, energies, times) and the final structure. Both pymatgen's ``Vasprun`` and
ASE's ``read_vasp_xml`` read it. Nothing here imports cellsim, so a writer bug cannot hide a reader bug.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms


@dataclass
class Frame:
    """One labelled configuration: the atoms, the free energy (eV) and the forces (eV/A)."""

    atoms: Atoms
    energy: float
    forces: np.ndarray


def _v(rows: np.ndarray, name: str | None = None, indent: str = "   ") -> str:
    attr = f' name="{name}" ' if name else ""
    body = "".join(f"{indent} <v> {' '.join(f'{x:16.8f}' for x in row)} </v>\n" for row in np.atleast_2d(rows))
    return f"{indent}<varray{attr}>\n{body}{indent}</varray>\n"


def _i(name: str, value: str, indent: str) -> str:
    """An INCAR tag as VASP writes it: typed (int, logical, string) or untyped (a real number)."""
    v = value.strip()
    if v.upper() in ("T", "F", ".TRUE.", ".FALSE."):
        return f'{indent}<i type="logical" name="{name}"> {v.strip(".")[0].upper()}  </i>\n'
    try:
        int(v)
        return f'{indent}<i type="int" name="{name}">{v:>6s}</i>\n'
    except ValueError:
        pass
    try:
        float(v)
        return f'{indent}<i name="{name}">{v:>16s}</i>\n'
    except ValueError:
        return f'{indent}<i type="string" name="{name}">{v}</i>\n'


def _structure(atoms: Atoms, name: str = "", indent: str = " ") -> str:
    attr = f' name="{name}" ' if name else " "
    return (
        f"{indent}<structure{attr}>\n{indent} <crystal>\n"
        + _v(np.asarray(atoms.cell), "basis", indent + "  ")
        + f'{indent}  <i name="volume"> {atoms.get_volume():16.8f} </i>\n'
        + _v(np.asarray(atoms.cell.reciprocal()), "rec_basis", indent + "  ")
        + f"{indent} </crystal>\n"
        + _v(atoms.get_scaled_positions(wrap=False), "positions", indent + " ")
        + f"{indent}</structure>\n"
    )


def vasprun_text(
    frames: Sequence[Frame],
    *,
    gga: str = "PE",
    potcar: str = "PAW_PBE",
    incar: dict[str, str] | None = None,
    machine_learned: Sequence[int] = (),
) -> str:
    """A vasprun.xml of ``frames`` (one ionic step each); ``machine_learned`` steps have no electronic steps,
    as VASP writes the steps its on-the-fly force field predicted."""
    first = frames[0].atoms
    symbols = first.get_chemical_symbols()
    types = list(dict.fromkeys(symbols))
    tags = {"IBRION": "0", "POTIM": "2.0", "TEBEG": "600", "GGA": gga, **(incar or {})}
    incar_xml = "".join(_i(k, v, "  ") for k, v in tags.items())
    rc = "".join(f"    <rc><c>{s:2s}</c><c>{types.index(s) + 1:4d}</c></rc>\n" for s in symbols)
    rt = "".join(
        f"    <rc><c>{symbols.count(t):4d}</c><c>{t:2s}</c><c> 63.546</c><c> 11.0</c>"
        f"<c>  {potcar} {t} 05Jan2001  </c></rc>\n"
        for t in types
    )
    extra = "".join(_i(k, v, "   ") for k, v in (incar or {}).items() if k != "GGA")
    parts = [
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<modeling>\n',
        ' <generator>\n  <i name="program" type="string">vasp </i>\n'
        '  <i name="version" type="string">6.3.0  </i>\n </generator>\n',
        f" <incar>\n{incar_xml} </incar>\n",
        ' <kpoints>\n  <generation param="Gamma">\n   <v type="int" name="divisions"> 1 1 1 </v>\n'
        '  </generation>\n  <varray name="kpointlist" >\n   <v> 0.0 0.0 0.0 </v>\n  </varray>\n'
        '  <varray name="weights" >\n   <v> 1.0 </v>\n  </varray>\n </kpoints>\n',
        ' <parameters>\n  <separator name="general" >\n   <i type="string" name="SYSTEM">test</i>\n'
        '  </separator>\n  <separator name="electronic" >\n   <i name="ENMAX">    400.00000000</i>\n'
        '   <i name="EDIFF">      0.00000100</i>\n   <separator name="electronic convergence" >\n'
        '    <i type="int" name="NELM">    60</i>\n   </separator>\n  </separator>\n'
        '  <i type="logical" name="LDAU"> F  </i>\n'
        '  <separator name="electronic exchange-correlation" >\n'
        f'   <i type="string" name="GGA">{gga}</i>\n   <i type="logical" name="LHFCALC"> F  </i>\n'
        '   <i name="AEXX">      0.00000000</i>\n   <i name="HFSCREEN">      0.00000000</i>\n'
        f'   <i type="logical" name="LUSE_VDW"> F  </i>\n{extra}  </separator>\n'
        '  <separator name="ionic" >\n   <i type="int" name="IBRION">     0</i>\n'
        '   <i type="int" name="NSW">   100</i>\n   <i name="POTIM">      2.00000000</i>\n'
        "  </separator>\n </parameters>\n",
        f" <atominfo>\n  <atoms>{len(symbols):8d} </atoms>\n  <types>{len(types):8d} </types>\n"
        '  <array name="atoms" >\n   <dimension dim="1">ion</dimension>\n'
        '   <field type="string">element</field>\n   <field type="int">atomtype</field>\n'
        f"   <set>\n{rc}   </set>\n  </array>\n"
        '  <array name="atomtypes" >\n   <dimension dim="1">type</dimension>\n'
        '   <field type="int">atomspertype</field>\n   <field type="string">element</field>\n'
        '   <field>mass</field>\n   <field>valence</field>\n   <field type="string">pseudopotential</field>\n'
        f"   <set>\n{rt}   </set>\n  </array>\n </atominfo>\n",
        _structure(first, "initialpos"),
    ]
    ml = set(machine_learned)
    for k, fr in enumerate(frames):
        e = fr.energy
        energy = (
            f'   <i name="e_fr_energy"> {e:16.8f} </i>\n   <i name="e_wo_entrp"> {e - 0.001:16.8f} </i>\n'
            f'   <i name="e_0_energy"> {e - 0.0005:16.8f} </i>\n'
        )
        sc = (
            ""
            if k in ml
            else '  <scstep>\n   <time name="total">    0.01    0.01</time>\n   <energy>\n'
            f'    <i name="e_fr_energy"> {e + 0.01:16.8f} </i>\n   </energy>\n  </scstep>\n'
            '  <scstep>\n   <time name="total">    0.01    0.01</time>\n   <energy>\n'
            f"{energy}   </energy>\n  </scstep>\n"
        )
        parts.append(
            f" <calculation>\n{sc}"
            + _structure(fr.atoms, indent="  ")
            + _v(fr.forces, "forces", "  ")
            + _v(np.zeros((3, 3)), "stress", "  ")
            + f"  <energy>\n{energy}  </energy>\n"
            + '  <time name="totalsc">    0.02    0.02</time>\n </calculation>\n'
        )
    parts.append(_structure(frames[-1].atoms, "finalpos") + "</modeling>\n")
    return "".join(parts)


def write_vasprun(path: Path, frames: Sequence[Frame], **kw: object) -> Path:
    """Write :func:`vasprun_text` to ``path`` (its folder created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(vasprun_text(frames, **kw))  # type: ignore[arg-type]
    return path


def ml_ab_text(frames: Sequence[Frame], system: str = "test") -> str:
    """An ML_AB file (VASP's machine-learning training set, version 1.0) holding ``frames``."""
    stars, eq, dash = "*" * 50, "=" * 50, "-" * 50
    types = list(dict.fromkeys(s for fr in frames for s in fr.atoms.get_chemical_symbols()))

    def block(title: str, body: str, sep: str = stars) -> str:
        return f"{sep}\n     {title}\n{dash}\n{body}\n"

    out = [" 1.0 Version\n"]
    out.append(block("The number of configurations", f"{len(frames):12d}"))
    out.append(block("The maximum number of atom type", f"{len(types):8d}"))
    out.append(block("The atom types in the data file", "     " + " ".join(f"{t:2s}" for t in types)))
    out.append(block("The maximum number of atoms per system", f"{max(len(f.atoms) for f in frames):12d}"))
    out.append(block("The maximum number of atoms per atom type", f"{max(len(f.atoms) for f in frames):12d}"))
    out.append(block("Reference atomic energy (eV)", "   " + "  ".join("0.0" for _ in types)))
    out.append(block("Atomic mass", "   " + "  ".join("63.546" for _ in types)))
    out.append(block("The numbers of basis sets per atom type", "   " + "  ".join("1" for _ in types)))
    for t in types:
        out.append(block(f"Basis set for {t}", "          1      1"))
    for k, fr in enumerate(frames, start=1):
        syms = fr.atoms.get_chemical_symbols()
        here = list(dict.fromkeys(syms))
        out.append(f"{stars}\n     Configuration num.{k:7d}\n")
        out.append(block("System name", f"     {system}", eq))
        out.append(block("The number of atom types", f"{len(here):8d}", eq))
        out.append(block("The number of atoms", f"{len(syms):12d}", eq))
        out.append(block("Atom types and atom numbers", "\n".join(f"     {t:2s}{syms.count(t):6d}" for t in here)))
        out.append(block("CTIFOR", "   0.200000000000000E-02", eq))
        rows = "\n".join("  " + " ".join(f"{x:20.12f}" for x in r) for r in np.asarray(fr.atoms.cell))
        out.append(block("Primitive lattice vectors (ang.)", rows, eq))
        rows = "\n".join("  " + " ".join(f"{x:20.12f}" for x in r) for r in fr.atoms.positions)
        out.append(block("Atomic positions (ang.)", rows, eq))
        out.append(block("Total energy (eV)", f"  {fr.energy:20.12f}", eq))
        rows = "\n".join("  " + " ".join(f"{x:20.12f}" for x in r) for r in fr.forces)
        out.append(block("Forces (eV ang.^-1)", rows, eq))
        out.append(
            f"{eq}\n     Stress (kbar)\n{dash}\n     XX YY ZZ\n{dash}\n   0.0 0.0 0.0\n{dash}\n"
            f"     XY YZ ZX\n{dash}\n   0.0 0.0 0.0\n"
        )
    return "".join(out)


def emt_md(n_steps: int, *, repeat: tuple[int, int, int] = (1, 1, 1), temperature_K: float = 900.0) -> list[Frame]:
    """``n_steps`` steps (2 fs) of velocity-Verlet MD of fcc Cu under ASE's EMT: a real trajectory, with the
    energies and forces of one consistent potential energy surface."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.md.velocitydistribution import thermalize_momenta
    from ase.md.verlet import VelocityVerlet
    from ase.units import fs

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * repeat
    atoms.calc = EMT()
    thermalize_momenta(atoms, temperature_K, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(atoms, timestep=2 * fs)
    frames = []
    for _ in range(n_steps):
        dyn.run(1)
        snap = atoms.copy()
        snap.calc = None
        frames.append(Frame(snap, float(atoms.get_potential_energy(force_consistent=True)), atoms.get_forces().copy()))
    return frames


def with_results(frames: Sequence[Frame], **info: str) -> list[Atoms]:
    """The frames as ASE atoms carrying their energy and forces (a single-point calculator) and ``info`` keys."""
    from ase.calculators.singlepoint import SinglePointCalculator

    out = []
    for fr in frames:
        atoms = fr.atoms.copy()
        atoms.info.update(info)
        atoms.calc = SinglePointCalculator(atoms, energy=fr.energy, free_energy=fr.energy, forces=fr.forces)
        out.append(atoms)
    return out


def write_extxyz(path: Path, frames: Sequence[Frame], **info: str) -> Path:
    """An extended-XYZ file of ``frames`` (ASE's writer) with ``info`` keys on every frame."""
    from ase.io import write

    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, with_results(frames, **info), format="extxyz")
    return path


def write_db(path: Path, frames: Sequence[Frame], **keys: str) -> Path:
    """An ASE database (SQLite) of ``frames`` with ``keys`` on every row."""
    import ase.db

    path.parent.mkdir(parents=True, exist_ok=True)
    with ase.db.connect(str(path), use_lock_file=False) as db:
        for atoms in with_results(frames):
            db.write(atoms, **keys)
    return path


def indium_frames(n: int, seed: int = 0) -> list[Frame]:
    """``n`` rattled 4-atom tetragonal In cells with small random forces: labels of the study's metal whose values
    do not matter (the checks refuse them before any fit)."""
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = bulk("In", "fcc", a=4.6, cubic=True)
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        out.append(Frame(atoms, -10.0 + rng.normal(0, 0.01), rng.normal(0, 0.1, (4, 3))))
    return out
