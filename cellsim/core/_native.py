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


@cache
def load() -> ctypes.CDLL | None:
    """The compiled kernels, or None (NumPy fallback) with one warning saying why."""
    if os.environ.get("CELLSIM_NO_NATIVE"):
        return None
    cc = _compiler()
    if cc is None:
        warnings.warn("no C compiler found: cellsim analysis runs on its slower NumPy path", stacklevel=2)
        return None
    # -march=native: the CPU is part of the key, so a cache shared by different nodes (an HPC home
    # directory) never loads a library built for another instruction set
    key = hashlib.sha256(
        SOURCE.read_bytes() + " ".join((cc, *CFLAGS, sysconfig.get_platform(), sys.version, _cpu_id())).encode()
    ).hexdigest()[:16]
    target = _cache_dir() / f"cellsim_kernels_{key}.so"
    try:
        if not target.exists():
            _build(cc, target)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        warnings.warn(f"could not build cellsim's C kernels ({detail.strip()[:200]}); using NumPy", stacklevel=2)
        return None
    lib.parse_frames.restype = ctypes.c_long
    lib.parse_frames.argtypes = [
        ctypes.c_char_p,
        ctypes.c_long,
        ctypes.c_long,
        ctypes.c_long,
        ctypes.c_long,
        _DP,
        _LP,
        ctypes.POINTER(ctypes.c_long),
        ctypes.POINTER(ctypes.c_long),
        ctypes.POINTER(ctypes.c_int),
    ]
    lib.pair_histogram.restype = None
    lib.pair_histogram.argtypes = [
        _DP,
        ctypes.c_long,
        ctypes.c_long,
        _DP,
        ctypes.c_int,
        _LP,
        ctypes.c_long,
        _LP,
        ctypes.c_long,
        ctypes.c_int,
        ctypes.c_double,
        ctypes.c_double,
        ctypes.c_long,
        _LP,
        ctypes.c_double,
        _LP,
        _LP,
        _DP,
        _LP,
    ]
    lib.neighbour_counts.restype = None
    lib.neighbour_counts.argtypes = [
        _DP,
        ctypes.c_long,
        ctypes.c_long,
        _DP,
        ctypes.c_int,
        _LP,
        ctypes.c_long,
        _LP,
        ctypes.c_long,
        ctypes.c_double,
        _LP,
        _LP,
    ]
    lib.kind_counts.restype = None
    lib.kind_counts.argtypes = [_DP, ctypes.c_long, _DP, _LP, ctypes.c_long, _DP, ctypes.c_long, _LP, _DP]
    lib.step_stats.restype = None
    lib.step_stats.argtypes = [
        _DP,
        ctypes.c_long,
        ctypes.c_long,
        _DP,
        _LP,
        ctypes.c_long,
        _DP,
        ctypes.c_int,
        _LP,
        _LP,
        ctypes.c_long,
        _DP,
        _DP,
        _DP,
    ]
    lib.unwrap_paths.restype = None
    lib.unwrap_paths.argtypes = [_DP, ctypes.c_long, ctypes.c_long, _LP, ctypes.c_long, _DP, _DP, _DP, _DP]
    lib.occupied_fractions.restype = ctypes.c_long
    lib.occupied_fractions.argtypes = [_DP, ctypes.c_long, ctypes.c_long, _DP, _DP, _DP]
    return lib
