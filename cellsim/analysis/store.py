"""The analysis folder: :class:`AnalysisResult` written (:func:`write_outputs`, swapped in at once) and read back
(:func:`load_analysis`).

Files: ``rdf.csv`` (pair, window, t_start_ps, t_end_ps, r, g, n_per_atom, cn), ``rdf.npz`` (the same as arrays,
plus raw histograms, volumes, environments, frames), ``bonds.csv`` (time_ps, pair, count for every frame),
``peaks.json`` (peaks per window, peaks absent from the first window, bond times), ``analysis.json`` (the
manifest: format, settings, sources with their sha256, notes), ``diagnostics.json``, first/last frames.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cellsim.analysis.environments import Environments
from cellsim.analysis.info import AnalysisInfo
from cellsim.analysis.peaks import peaks_report
from cellsim.analysis.result import AnalysisData, AnalysisSettings
from cellsim.config.rundir import ANALYSIS_FILE, REPLICA_PREFIX, AnalysisFiles
from cellsim.core.errors import AnalysisError
from cellsim.core.files import atomic_write_json
from cellsim.core.records import Upgrade, read_versioned

__all__ = [
    "ANALYSIS_FILE",
    "FORMAT_TAG",
    "FORMAT_VERSION",
    "REPLICA_PREFIX",
    "UPGRADES",
    "AnalysisResult",
    "load_analysis",
    "load_rdf",
    "read_info",
    "read_manifest",
    "write_outputs",
]

FORMAT_TAG = "cellsim-analysis"
FORMAT_VERSION = 2
# analysis.json upgrades, version v -> v + 1 (cellsim.core.records.read_versioned); format 2 is the first
# written, so there is none yet: a change to the manifest bumps FORMAT_VERSION and adds the old one's upgrade here
UPGRADES: dict[int, Upgrade] = {}
_RERUN = "re-run `cellsim analyze`"


@dataclass(repr=False)
class AnalysisResult(AnalysisData):
    """Everything the analysis stage computed; :meth:`save` and :meth:`load` round-trip it through a folder.

    ``repr`` is a few lines (:meth:`AnalysisData.__repr__`); the typed facts are :attr:`meta`.
    """

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write the analysis folder (all files, swapped in at once; see :func:`write_outputs`)."""
        return write_outputs(self, Path(out_dir))

    @classmethod
    def load(cls, folder: str | Path) -> AnalysisResult:
        """Read an analysis folder written by :meth:`save` (``cellsim analyze``)."""
        return load_analysis(Path(folder))


_RDF_HEADER = """# cellsim partial RDFs, one row per pair, time window and r bin
# r: bin centre (A); window: {fpw} frames of {dt} fs ({window} ps), t in ps from the start of the MD
# g: n_per_atom / (rho_B * 4/3 pi (r_hi^3 - r_lo^3)), rho_B = N_B / V (N_B - 1 when A == B),
#    V = {vol_desc}
# n_per_atom: mean number of B atoms in the shell around an A atom (no volume involved)
# cn: running coordination number (sum of n_per_atom up to the bin's outer edge)
"""


def write_outputs(res: AnalysisResult, out_dir: Path) -> dict[str, Path]:
    """Write the analysis folder: rdf.csv, rdf.npz, bonds.csv, peaks.json, analysis.json, first/last frames.

    The set is written into a staging folder and swapped in as a whole (:func:`cellsim.core.files.replace_dir`):
    a kill leaves the previous folder or the new one, never a mix. Results of later stages in the folder
    (match) belong to the old analysis and go with it. ``out_dir`` must be new, empty or an analysis folder.
    """
    import uuid

    from cellsim.core.files import recover_dir, replace_dir, staging_dir
    from cellsim.core.version import __version__

    out_dir = Path(out_dir)
    recover_dir(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise AnalysisError(f"{out_dir}: exists and is not a folder; give another -o")
        others = [p for p in out_dir.iterdir() if not p.name.startswith(".") and not p.name.startswith(REPLICA_PREFIX)]
        files = AnalysisFiles(out_dir)
        if others and not (files.manifest.is_file() or files.rdf_npz.is_file()):
            raise AnalysisError(
                f"{out_dir}: exists and holds files that are not a cellsim analysis; give a new or empty -o folder"
            )
    stage = staging_dir(out_dir)
    try:
        paths = _write_files(res, stage)
        res.info["id"] = uuid.uuid4().hex
        res.info["cellsim_version"] = __version__
        manifest = {
            "format": FORMAT_TAG,
            "version": FORMAT_VERSION,
            **res.info,
            "species_order": list(res.element_counts),
            "element_counts": res.element_counts,
            "natoms": sum(res.element_counts.values()),
            "frames": res.n_frames,
            "duration_ps": round(res.n_frames * res.settings.dt_fs / 1000.0, 6),
            "settings": res.settings.model_dump(mode="json"),
            "replicas": res.replicas,
            "bond_cutoffs_used": res.cutoffs,
            "baseline_bonds": res.baseline_bonds,
            "cell_first": res.first_frame[1].tolist() if res.first_frame else None,
            "cell_last": res.last_frame[1].tolist() if res.last_frame else None,
            "files": sorted(p.name for p in paths.values()),
        }
        paths["analysis_json"] = atomic_write_json(AnalysisFiles(stage).manifest, manifest)
        if out_dir.is_dir():
            # the replicas' own analyses live inside the pooled one; they are not part of this set
            for sub in out_dir.glob(f"{REPLICA_PREFIX}*"):
                if sub.is_dir():
                    sub.rename(stage / sub.name)
        replace_dir(stage, out_dir)
    except BaseException:
        import shutil

        shutil.rmtree(stage, ignore_errors=True)
        raise
    res.out_dir = out_dir
    return {k: out_dir / v.name for k, v in paths.items()}


@contextmanager
def _stream(path: Path, binary: bool = False) -> Iterator[Any]:
    """A file of the staging folder written as it is made, flushed to disk before the folder is swapped in."""
    with open(
        path, "wb" if binary else "w", encoding=None if binary else "utf-8", newline=None if binary else "\n"
    ) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def _write_files(res: AnalysisResult, out: Path) -> dict[str, Path]:
    """Every file of the analysis folder but the manifest, written into the staging folder ``out``."""
    files = AnalysisFiles(out)
    paths = {
        "rdf_csv": _write_rdf_csv(res, files.rdf_csv),
        "rdf_npz": _write_rdf_npz(res, files.rdf_npz),
        "bonds_csv": _write_bonds_csv(res, files.bonds_csv),
        "peaks_json": atomic_write_json(files.peaks, _peaks_document(res)),
    }
    from cellsim.io.poscar import write_poscar

    for name, fr in (("first", res.first_frame), ("last", res.last_frame)):
        if fr is not None:
            paths[f"{name}_frame"] = write_poscar(files.frame(name), res.species, fr[0], fr[1], f"cellsim {name} frame")
    if res.diagnostics is not None:
        paths["diagnostics_json"] = res.diagnostics.to_json(files.diagnostics)
    return paths


def _write_rdf_csv(res: AnalysisResult, path: Path) -> Path:
    s = res.settings
    vol_desc = (
        "mean occupied volume of the window (cell area x extent of the atoms along c)"
        if s.normalisation == "occupied"
        else "mean cell volume of the window (as pymatgen, ASE, MDAnalysis and freud)"
    )
    # the tables are written as they are formatted, a window (or 10,000 frames) at a time: the text never sits
    # in memory whole (rdf.csv of 100,000 frames is ~25 MB); the staging folder is swapped in as a whole
    with _stream(path) as fh:
        fh.write(_RDF_HEADER.format(fpw=s.frames_per_window, dt=s.dt_fs, window=s.window_ps, vol_desc=vol_desc))
        fh.write("pair,window,t_start_ps,t_end_ps,r,g,n_per_atom,cn\n")
        r_txt = [f"{x:.4f}" for x in res.r]
        for p in s.pairs:
            for w in range(len(res.window_frames)):
                prefix = f"{p},{w},{res.t_start[w]:.6g},{res.t_end[w]:.6g},"
                ga, na, ca = res.g[p][w], res.n_per_atom[p][w], res.cn[p][w]
                # rows of +0 (every bin below the first shell: a quarter to a half of them) are written without
                # formatting their three zeros; Python floats format faster than NumPy scalars, to the same text
                neg = np.signbit(ga) | np.signbit(na) | np.signbit(ca)  # -0.0 is written "-0"
                zero = ((ga == 0) & (na == 0) & (ca == 0) & ~neg).tolist()
                g, n, cn = ga.tolist(), na.tolist(), ca.tolist()
                fh.write(
                    "".join(
                        f"{prefix}{rt},0,0,0\n" if z else f"{prefix}{rt},{gv:.6g},{nv:.6g},{cv:.6g}\n"
                        for rt, gv, nv, cv, z in zip(r_txt, g, n, cn, zero, strict=True)
                    )
                )
    return path


def _write_rdf_npz(res: AnalysisResult, path: Path) -> Path:
    s = res.settings
    arrays: dict[str, Any] = {
        "r": res.r,
        "t_start_ps": res.t_start,
        "t_end_ps": res.t_end,
        "window_frames": res.window_frames,
        "volume": res.volume,
        "occupied_volume": res.occupied_volume,
        "pairs": np.array(s.pairs),
        "species": np.array(res.species),
    }
    for p, base in res.baseline.items():
        arrays[f"baseline/{p}"] = base
    for p in s.pairs:
        arrays[f"g/{p}"] = res.g[p]
        arrays[f"n_per_atom/{p}"] = res.n_per_atom[p]
        arrays[f"cn/{p}"] = res.cn[p]
        arrays[f"hist/{p}"] = res.hist[p]
        arrays[f"bonds/{p}"] = res.bonds[p]
    for name, fr in (("first", res.first_frame), ("last", res.last_frame)):
        if fr is not None:
            arrays[f"frame/{name}_frac"], arrays[f"frame/{name}_cell"] = fr
    if res.environments is not None:
        arrays.update(res.environments.to_arrays())
    for p, rb in res.replica_bonds.items():
        arrays[f"replica_bonds/{p}"] = rb
    with _stream(path, binary=True) as bfh:
        np.savez(bfh, **arrays)
    return path


def _write_bonds_csv(res: AnalysisResult, path: Path) -> Path:
    times = res.frame_times
    with _stream(path) as fh:
        fh.write("# bonds: pairs closer than the cutoff in each frame; cutoffs (A): ")
        fh.write(", ".join(f"{p} {c}" for p, c in res.cutoffs.items()) + "\n")
        fh.write("time_ps,pair,count\n")
        for k0 in range(0, len(times), 10_000):
            t_txt = [f"{t:.6g}" for t in times[k0 : k0 + 10_000].tolist()]
            for p in res.settings.pairs:
                counts = res.bonds[p][k0 : k0 + 10_000].tolist()
                fh.write("".join(f"{t},{p},{c}\n" for t, c in zip(t_txt, counts, strict=True)))
    return path


def _peaks_document(res: AnalysisResult) -> dict[str, Any]:
    """The content of peaks.json: the peaks report, the sources, the counts and the environments."""
    report = peaks_report(res)
    report["sources"] = res.sources
    report["element_counts"] = res.element_counts
    if res.environments is not None:
        report["environments"] = {
            c: res.environments.summary(c) for c in dict.fromkeys(p.split("-")[0] for p in res.settings.pairs)
        }
        report["motifs"] = res.environments.motifs()
    return report


def load_analysis(folder: Path) -> AnalysisResult:
    """An :class:`AnalysisResult` from an analysis folder: the arrays of rdf.npz, the facts of analysis.json
    (format :data:`FORMAT_VERSION` only; another is refused by name) and diagnostics.json when there."""
    import json
    import zipfile

    from cellsim.core.files import recover_dir

    recover_dir(folder)
    files = AnalysisFiles(folder)
    npz, man = files.rdf_npz, files.manifest
    if not npz.is_file():
        raise AnalysisError(f"{npz}: no analysis here; run `cellsim analyze TRAJECTORY -o {folder}` first")
    if not man.is_file():
        raise AnalysisError(f"{man}: missing (an analysis from an older cellsim?); run `cellsim analyze` again")
    try:
        info = json.loads(man.read_text())
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise AnalysisError(
            f"{folder}: damaged analysis files ({type(exc).__name__}: {exc}); run `cellsim analyze` again"
        ) from None
    info = read_manifest(man, info)
    try:
        return _result_of(folder, npz, info, arrays)
    except (KeyError, ValueError, TypeError) as exc:
        what = f"no {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise AnalysisError(f"{folder}: damaged analysis files ({what}); {_RERUN}") from None


def read_manifest(path: Path, doc: Any) -> dict[str, Any]:
    """The parsed ``analysis.json`` at ``path`` at :data:`FORMAT_VERSION` (older known versions upgraded by
    :data:`UPGRADES`), or an :class:`AnalysisError` naming the file, the version found and the one expected."""
    return read_versioned(
        path,
        doc,
        tag=FORMAT_TAG,
        current=FORMAT_VERSION,
        rerun=_RERUN,
        upgrades=UPGRADES,
        error=AnalysisError,
    )


def read_info(folder: Path) -> AnalysisInfo:
    """The typed facts of an analysis folder's ``analysis.json`` alone (no arrays read), version checked."""
    import json

    man = AnalysisFiles(Path(folder)).manifest
    try:
        doc = json.loads(man.read_text())
    except (OSError, ValueError) as exc:
        raise AnalysisError(f"{man}: cannot be read ({type(exc).__name__}: {exc}); {_RERUN}") from None
    info = read_manifest(man, doc)
    try:
        return AnalysisInfo.from_dict(_kept(info))
    except (ValueError, TypeError) as exc:
        raise AnalysisError(f"{man}: damaged ({type(exc).__name__}: {exc}); {_RERUN}") from None


def _kept(info: dict[str, Any]) -> dict[str, Any]:
    """The manifest's keys that ``AnalysisResult.info`` holds (the format tag and version are written anew)."""
    return {k: v for k, v in info.items() if k not in ("settings", "baseline_bonds", "format", "version")}


def _result_of(folder: Path, npz: Path, info: dict[str, Any], arrays: dict[str, np.ndarray]) -> AnalysisResult:
    pairs = [str(p) for p in arrays["pairs"]]

    def by_pair(kind: str) -> dict[str, np.ndarray]:
        return {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(kind + "/")}

    settings = AnalysisSettings.model_validate(info["settings"])
    fr = {
        n: (arrays[f"frame/{n}_frac"], arrays[f"frame/{n}_cell"])
        for n in ("first", "last")
        if f"frame/{n}_frac" in arrays
    }
    keep = _kept(info)
    AnalysisInfo.from_dict(keep)  # every typed fact readable, or the folder is damaged
    diagnostics = None
    diag = AnalysisFiles(folder).diagnostics
    if diag.is_file():
        from cellsim.analysis.diagnostics import Diagnostics

        try:
            diagnostics = Diagnostics.from_json(diag)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise AnalysisError(f"{diag}: damaged ({type(exc).__name__}: {exc}); run `cellsim analyze` again") from None
    res = AnalysisResult(
        settings=settings,
        sources=[s["path"] for s in info.get("segments", [])],
        element_counts={k: int(v) for k, v in info["element_counts"].items()},
        r=arrays["r"],
        n_frames=int(info["frames"]),
        window_frames=arrays["window_frames"],
        volume=arrays["volume"],
        occupied_volume=arrays["occupied_volume"],
        hist=by_pair("hist"),
        bonds=by_pair("bonds"),
        cutoffs={k: float(v) for k, v in info["bond_cutoffs_used"].items()},
        g=by_pair("g"),
        n_per_atom=by_pair("n_per_atom"),
        cn=by_pair("cn"),
        baseline=by_pair("baseline"),
        baseline_bonds={k: int(v) for k, v in info.get("baseline_bonds", {}).items()},
        species=[str(x) for x in arrays.get("species", [])],
        first_frame=fr.get("first"),
        last_frame=fr.get("last"),
        environments=Environments.from_arrays(arrays),
        info=keep,
        diagnostics=diagnostics,
        out_dir=folder,
        replica_bonds=by_pair("replica_bonds"),
        replicas=int(info.get("replicas", 1)),
    )
    if set(pairs) != set(res.g):
        raise AnalysisError(f"{npz}: pairs {pairs} but arrays for {sorted(res.g)}; run `cellsim analyze` again")
    return res


def load_rdf(path: Path) -> dict[str, Any]:
    """Read rdf.npz back into plain arrays (``g``, ``n_per_atom``, ``cn``, ``hist`` as dicts by pair)."""
    with np.load(path) as z:
        out: dict[str, Any] = {k: z[k] for k in z.files if "/" not in k}
        for kind in ("g", "n_per_atom", "cn", "hist", "baseline"):
            out[kind] = {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(kind + "/")}
    out["pairs"] = [str(p) for p in out["pairs"]]
    return out
