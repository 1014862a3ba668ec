"""PBE single points with CP2K: energy, forces and (when asked) stress of one structure, cached on disk.

Each structure is one job in its own folder, named by a hash of the structure and the resolved settings:
``<cache>/<formula>-<hash>/`` holds ``job.inp`` (the complete CP2K input: rerun it by hand with
``cp2k.psmp -i job.inp``), ``job.out``, ``structure.json`` and, once CP2K ended well, ``result.json``
(written atomically). A folder with a ``result.json`` is never run again, so a killed batch resumes where it
stopped and a second call on the same structure costs nothing.

CP2K is run as a fresh ``cp2k.psmp -i`` process per job rather than through ASE's ``cp2k_shell`` driver:
one job cannot poison the next, the input on disk is exactly what ran, a timeout kills only that job, and
k-point meshes (needed for small metallic cells) are plain input. The output is read with
:class:`pymatgen.io.cp2k.outputs.Cp2kOutput`.

Settings come from ``templates/cp2k/pbe.yaml`` (PBE, GTH pseudopotentials, DZVP-MOLOPT-SR-GTH, Fermi-Dirac
smearing, Broyden mixing, k-points for small cells and Gamma for big ones), overridden in order by any
mappings given to :func:`resolve_settings`.

The settings (defaults, executable, data files, kinds) and the input writer live one layer down, beside the
MD input set: :mod:`cellsim.inputsets.cp2k_settings`, :mod:`cellsim.inputsets.cp2k_input`. Here:
:mod:`.jobs` (cached single points: CP2K's parts of the job loop in :mod:`cellsim.engines.singlepoint`, which
GPAW shares) and :mod:`.labels` (cache folder, stored labels, Bain path). Every public name of the four is
importable from ``cellsim.engines.cp2k``.
"""

from __future__ import annotations

from cellsim.engines.cp2k.jobs import (
    Cp2kResult,
    _physics,
    as_atoms,
    job_dir,
    job_key,
    label_set,
    load_result,
    parse_output,
    refresh_result,
    single_point,
    single_points,
)
from cellsim.engines.cp2k.labels import (
    BAIN_CA,
    BAIN_SETTINGS,
    BAIN_VOLUME,
    bain_cell,
    cache_dir,
    parabola_minimum,
    stored_labels,
)
from cellsim.inputsets.cp2k_input import (
    emit_tree,
    input_tree,
    kpoint_mesh,
    write_input,
)
from cellsim.inputsets.cp2k_settings import (
    INSTALL_HINT,
    Cp2kError,
    Cp2kNotFoundError,
    cp2k_version,
    data_dir,
    default_settings_path,
    find_cp2k,
    kinds,
    resolve_settings,
)

__all__ = [
    "BAIN_CA",
    "BAIN_SETTINGS",
    "BAIN_VOLUME",
    "INSTALL_HINT",
    "Cp2kError",
    "Cp2kNotFoundError",
    "Cp2kResult",
    "_physics",
    "as_atoms",
    "bain_cell",
    "cache_dir",
    "cp2k_version",
    "data_dir",
    "default_settings_path",
    "emit_tree",
    "find_cp2k",
    "input_tree",
    "job_dir",
    "job_key",
    "kinds",
    "kpoint_mesh",
    "label_set",
    "load_result",
    "parabola_minimum",
    "parse_output",
    "refresh_result",
    "resolve_settings",
    "single_point",
    "single_points",
    "stored_labels",
    "write_input",
]
