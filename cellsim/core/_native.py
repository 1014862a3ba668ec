"""Load the C kernels of ``_kernels.c`` through ctypes, compiling them once per machine.

The shared library is cached under ``$CELLSIM_CACHE`` (default ``~/.cache/cellsim``) keyed by a hash of
the source, the compiler and the Python platform, so an edited kernel is rebuilt and a stale one never
loads. Without a working C compiler (or with ``CELLSIM_NO_NATIVE=1``) :func:`load` returns None and the
NumPy implementations in :mod:`cellsim.analysis.rdf`, :mod:`cellsim.analysis.neighbours`,
:mod:`cellsim.analysis.timestep`, :mod:`cellsim.analysis.diagnostics` and :mod:`cellsim.io.xdatcar` are used.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from cellsim.core.resources import cache_root

SOURCE = Path(__file__).with_name("_kernels.c")
CFLAGS = ("-O3", "-march=native", "-fno-math-errno", "-shared", "-fPIC")
_DP = np.ctypeslib.ndpointer(dtype=np.float64, flags="C_CONTIGUOUS")
_LP = np.ctypeslib.ndpointer(dtype=np.int64, flags="C_CONTIGUOUS")


def _cache_dir() -> Path:
    return cache_root() / "kernels"


def _cpu_id() -> str:
    """Model and instruction-set flags of this CPU (Linux), or the platform's machine name."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        import platform

        return platform.machine() + platform.processor()
    keep = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags", "Features", "CPU part"))]
    return "\n".join(sorted(set(keep)))


def _compiler() -> str | None:
    cc = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "cc").split()[0]
    for cand in (cc, "cc", "gcc", "clang"):
        path = shutil.which(cand)
        if path:
            return path
    return None


def _build(cc: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        subprocess.run(
            [cc, *CFLAGS, "-o", tmp, str(SOURCE), "-lm"],
            check=True,
            capture_output=True,
            text=True,
        )
        os.replace(tmp, target)  # atomic: concurrent first runs never load a half-written library
    finally:
        Path(tmp).unlink(missing_ok=True)


# ctypes signatures of the kernels in _kernels.c: (restype, argtypes) by name
_L, _I, _D = ctypes.c_long, ctypes.c_int, ctypes.c_double
# frames of fractional coordinates (frac, nframes, natoms), their cells (cells, cell_per_frame) and two atom
# index sets with their lengths: how both pair kernels begin
_FRAMES_TWO_SETS = [_DP, _L, _L, _DP, _I, _LP, _L, _LP, _L]
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "parse_frames": (
        _L,
        [ctypes.c_char_p, _L, _L, _L, _L, _DP, _LP, ctypes.POINTER(_L), ctypes.POINTER(_L), ctypes.POINTER(_I)],
    ),
    "pair_histogram": (None, [*_FRAMES_TWO_SETS, _I, _D, _D, _L, _LP, _D, _LP, _LP, _DP, _LP]),
    "neighbour_counts": (None, [*_FRAMES_TWO_SETS, _D, _LP, _LP]),
    "kind_counts": (None, [_DP, _L, _DP, _LP, _L, _DP, _L, _LP, _DP]),
    "step_stats": (None, [_DP, _L, _L, _DP, _LP, _L, _DP, _I, _LP, _LP, _L, _DP, _DP, _DP]),
    "unwrap_paths": (None, [_DP, _L, _L, _LP, _L, _DP, _DP, _DP, _DP]),
    "occupied_fractions": (_L, [_DP, _L, _L, _DP, _DP, _DP]),
}


def _library(cc: str) -> ctypes.CDLL | None:
    """The kernels built by ``cc`` for this machine (once: cached by source, compiler, platform and CPU), or None
    with a warning when they do not build or load."""
    # -march=native: the CPU is part of the key, so a cache shared by different nodes (an HPC home
    # directory) never loads a library built for another instruction set
    key = hashlib.sha256(
        SOURCE.read_bytes() + " ".join((cc, *CFLAGS, sysconfig.get_platform(), sys.version, _cpu_id())).encode()
    ).hexdigest()[:16]
    target = _cache_dir() / f"cellsim_kernels_{key}.so"
    try:
        if not target.exists():
            _build(cc, target)
        return ctypes.CDLL(str(target))
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        warnings.warn(f"could not build cellsim's C kernels ({detail.strip()[:200]}); using NumPy", stacklevel=3)
        return None


@cache
def load() -> ctypes.CDLL | None:
    """The compiled kernels, or None (NumPy fallback) with one warning saying why."""
    if os.environ.get("CELLSIM_NO_NATIVE"):
        return None
    cc = _compiler()
    if cc is None:
        warnings.warn("no C compiler found: cellsim analysis runs on its slower NumPy path", stacklevel=2)
        return None
    lib = _library(cc)
    if lib is None:
        return None
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib
