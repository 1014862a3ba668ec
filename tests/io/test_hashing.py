"""The sha256 of a trajectory file hashed while it is read (cellsim.io.compressed): the file's own hash, plain
or compressed, small (hashed at the end) or large (a worker thread), grown while read, closed early."""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cellsim.io.compressed import ByteSource, _Hashed
from cellsim.io.sources import SegmentInfo, iter_trajectory
from cellsim.testing import write_xdatcar


def _drain(src: ByteSource) -> bytes:
    out = []
    while not src.eof:
        out.append(src.read(1 << 16))
    return b"".join(out)


@pytest.mark.parametrize("size", [0, 100, _Hashed.THREAD_FROM - 1, _Hashed.THREAD_FROM, 3 * _Hashed.PIECE + 17])
def test_digest_is_the_files_sha256(tmp_path: Path, size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes().replace(b"\r", b"x")
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    with ByteSource(path) as src:
        assert (src.raw._worker is not None) == (size >= _Hashed.THREAD_FROM and hasattr(os, "preadv"))
        assert _drain(src) == data
        assert src.digest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("lines", [1000, 400_000])  # 5 kB and ~1.7 MB of gzip: hashed at the end / by the worker
def test_digest_of_compressed_bytes(tmp_path: Path, lines: int) -> None:
    rng = np.random.default_rng(lines)
    raw = b"".join(b"%.8f %.8f\n" % tuple(v) for v in rng.random((lines, 2)))
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(raw))
    with ByteSource(path) as src:
        assert (src.raw._worker is not None) == (path.stat().st_size >= _Hashed.THREAD_FROM and hasattr(os, "preadv"))
        assert _drain(src) == raw
        assert src.digest() == hashlib.sha256(path.read_bytes()).hexdigest()  # of the file, not of its content


def test_digest_covers_what_the_file_gained(tmp_path: Path) -> None:
    """A run still writing its XDATCAR: bytes appended after the worker reached the end are hashed too."""
    path = tmp_path / "f.bin"
    first = b"a" * (2 * _Hashed.THREAD_FROM)
    path.write_bytes(first)
    with ByteSource(path) as src:
        src.raw._join()  # the worker has hashed the file as it was
        with open(path, "ab") as fh:
            fh.write(b"b" * 1000)
        assert src.digest() == hashlib.sha256(first + b"b" * 1000).hexdigest()


@pytest.mark.skipif(not hasattr(os, "preadv"), reason="no os.preadv: no worker")
def test_closing_early_stops_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader closed after its first piece: the worker stops there instead of hashing the whole file."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"c" * (8 * _Hashed.PIECE))
    first_done, release = threading.Event(), threading.Event()
    real = os.preadv

    def slow_preadv(fd: int, buffers: list[bytearray], offset: int) -> int:
        n = real(fd, buffers, offset)
        first_done.set()
        release.wait(10)
        return n

    monkeypatch.setattr(os, "preadv", slow_preadv)
    src = ByteSource(path)
    raw = src.raw
    assert first_done.wait(10)
    stopper = threading.Thread(target=src.__exit__, args=(None, None, None))
    stopper.start()
    while not raw._stop:  # close() has asked the worker to stop; now let its first read return
        time.sleep(0.001)
    release.set()
    stopper.join(10)
    assert raw._worker is None and raw.done == _Hashed.PIECE  # one piece hashed, not eight


@pytest.mark.skipif(not hasattr(os, "preadv"), reason="no os.preadv: no worker")
def test_a_read_error_in_the_worker_is_the_callers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """preadv failing in the worker: the worker ends quietly and digest() reads on, in the caller's thread."""
    data = b"d" * (3 * _Hashed.PIECE + 5)
    path = tmp_path / "f.bin"
    path.write_bytes(data)

    def failing(fd: int, buffers: list[bytearray], offset: int) -> int:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "preadv", failing)
    with ByteSource(path) as src:
        assert src.raw._worker is not None
        assert src.digest() == hashlib.sha256(data).hexdigest()


def test_a_header_read_hashes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"e" * (2 * _Hashed.THREAD_FROM))
    with ByteSource(path, hashed=False) as src:
        assert src.raw._worker is None
        src.read(100)
        assert src.raw.done == 0


def test_trajectory_segments_carry_the_hash(tmp_path: Path) -> None:
    """Through the reader: a multi-megabyte XDATCAR's recorded sha256 is the file's."""
    rng = np.random.default_rng(0)
    frames = rng.random((400, 120, 3))
    path = write_xdatcar(tmp_path / "XDATCAR", ["Li", "S"], [60, 60], np.eye(3) * 12.0, frames)
    assert path.stat().st_size >= _Hashed.THREAD_FROM
    segments: list[SegmentInfo] = []
    n = sum(len(block) for _, block in iter_trajectory([path], None, segments))
    assert n == 400
    assert segments[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
