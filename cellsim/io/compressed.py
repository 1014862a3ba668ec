"""Compressed or plain trajectory bytes: gzip, bzip2 and xz by their magic bytes, decoded in bounded pieces so
that a damaged stream yields what precedes the damage (:class:`ByteSource`), with the sha256 of the file's raw
bytes computed while it is read (:meth:`ByteSource.digest`; a worker thread through the same descriptor)."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO


class _Hashed:
    """A binary file read by the parser, with the sha256 of its bytes from offset 0 to its end.

    On Linux (``os.preadv``) a worker thread hashes the file through the same descriptor while the parser reads
    it: positioned reads into one reused buffer, so the parser's offset never moves and no memory is added
    (hashlib releases the GIL, so on a machine with a second core the 68 ms that the sha256 of a 112 MB
    XDATCAR takes here, at 1.6 GB/s, overlap the parsing and the kernels; on one core it costs what it did).
    The data come from the page cache the parser's read filled, or fill it for the parser: the disk is read
    once. :meth:`hexdigest` waits for the worker and hashes whatever the file gained since (a run still
    writing it), so the digest is that of the file as it is when the reading ends: for a file that only grows
    (an MD run), of every byte parsed; a file rewritten in place during the read is not hashed as parsed.
    Small files, and systems without ``preadv``, are hashed by :meth:`hexdigest` in one go; ``hashed=False``
    (a header read) hashes nothing.
    """

    THREAD_FROM = 1 << 20  # bytes: below this a thread is not worth its start
    PIECE = 1 << 20

    def __init__(self, fh: IO[bytes], hashed: bool = True) -> None:
        self.fh = fh
        self.h = hashlib.sha256()
        self.done = 0  # bytes [0, done) are in the hash
        self._stop = False
        self._worker: threading.Thread | None = None
        if hashed and hasattr(os, "preadv") and os.fstat(fh.fileno()).st_size >= self.THREAD_FROM:
            self._worker = threading.Thread(target=self._hash_to_end, name="cellsim-sha256", daemon=True)
            self._worker.start()

    def _hash_to_end(self) -> None:
        buf = bytearray(self.PIECE)
        view, fd = memoryview(buf), self.fh.fileno()
        while not self._stop:
            try:
                n = os.preadv(fd, [buf], self.done)
            except OSError:
                return  # hexdigest reads on from `done` in the caller's thread, where an error is reported
            if not n:
                return
            self.h.update(view[:n])
            self.done += n

    def _join(self) -> None:
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def read(self, n: int = -1) -> bytes:
        return self.fh.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)

    def tell(self) -> int:
        return self.fh.tell()

    def close(self) -> None:
        self._stop = True  # a reader closed early (an error, a partial read) does not wait for the whole hash
        self._join()
        self.fh.close()

    def hexdigest(self) -> str:
        """sha256 of the whole file (what the worker has not hashed yet is hashed now)."""
        self._join()
        here = self.fh.tell()
        self.fh.seek(self.done)
        while chunk := self.fh.read(4 << 20):
            self.h.update(chunk)
            self.done += len(chunk)
        self.fh.seek(here)
        return self.h.hexdigest()


def _compression(path: Path) -> str | None:
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    if magic[:3] == b"BZh":
        return "bzip2"
    if magic[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return None


def open_maybe_compressed(path: Path) -> IO[bytes] | gzip.GzipFile:
    """Open for binary reading, decompressing gzip, bzip2 or xz by their magic bytes."""
    kind = _compression(path)
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "bzip2":
        return bz2.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


_DECODE_ERRORS = (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error)
_MAGIC = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00"}


def _decompressor(kind: str) -> zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor:
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper: header, CRC-32 and length checked
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor()


class ByteSource:
    """The file's bytes, decompressed and with CRLF made LF, in chunks.

    A decompression or read error ends the data (``error`` says why) instead of escaping as zlib.error,
    OSError, EOFError or LZMAError. Compressed data are decoded here, not by gzip/bz2/lzma.open, so the
    output up to the damage is kept: those lose the whole buffer (8 KiB) in which the error is detected,
    which for a small file is everything.
    """

    PIECE = 1 << 14  # compressed bytes per call
    OUT = 1 << 20  # decompressed bytes per call at most (a compression bomb is read a piece at a time)

    def __init__(self, path: Path, hashed: bool = True) -> None:
        self.kind = _compression(path)
        fh = open(path, "rb")
        try:
            self.raw = _Hashed(fh, hashed)
        except BaseException:
            fh.close()
            raise
        self.error: str | None = None
        self.eof = False
        self._carry = b""
        self._chunks = self._decoded() if self.kind else None

    def __enter__(self) -> ByteSource:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.raw.close()

    def describe(self) -> str:
        return f"corrupt {self.kind} data" if self.kind else "read error"

    def _fail(self, exc: BaseException | str) -> None:
        self.error = " ".join(str(exc).split()) or type(exc).__name__

    def _drain(self, d: zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor, data: bytes) -> Iterator[bytes]:
        """Output of ``data`` fed to ``d``, at most OUT bytes a time (raises on corrupt data)."""
        out = d.decompress(data, self.OUT)
        yield out
        if isinstance(d, (bz2.BZ2Decompressor, lzma.LZMADecompressor)):
            while not d.eof and not d.needs_input:
                yield d.decompress(b"", self.OUT)
        else:
            while d.unconsumed_tail:
                yield d.decompress(d.unconsumed_tail, self.OUT)

    def _decoded(self) -> Iterator[bytes]:
        """Decompressed chunks of every stream (member) in the file; on damage, the output up to it."""
        assert self.kind is not None
        kind, raw = self.kind, self.raw
        d = _decompressor(kind)
        member_start = offset = 0
        while True:
            piece = raw.read(self.PIECE)
            if not piece:
                if not d.eof:
                    self._fail("the compressed data end before their end-of-stream marker")
                return
            given = 0  # bytes of this piece's output already passed on
            try:
                for out in self._drain(d, piece):
                    given += len(out)
                    yield out
            except _DECODE_ERRORS as exc:
                yield from self._recover(member_start, offset, piece, given)
                self._fail(exc)
                return
            offset += len(piece)
            if not d.eof:
                continue
            # a stream ended: another may follow (concatenated gzip members, bzip2 or xz streams), or zero
            # padding; anything else after the data is damage
            rest = d.unused_data + raw.read(1 << 12)
            next_start = offset - len(d.unused_data)
            while rest and not rest.strip(b"\0"):  # zero padding (gzip, xz stream padding)
                next_start += len(rest)
                rest = raw.read(1 << 16)
            zeros = len(rest) - len(rest.lstrip(b"\0"))
            next_start += zeros
            rest = rest[zeros:]
            if not rest:
                return
            if not rest.startswith(_MAGIC[kind][: len(rest)]):
                self._fail(f"unexpected data after the end of the compressed stream at byte {next_start}")
                return
            raw.seek(next_start)
            d, member_start, offset = _decompressor(kind), next_start, next_start

    def _recover(self, member_start: int, piece_start: int, piece: bytes, given: int) -> Iterator[bytes]:
        """Decode the stream again up to the damaged piece, then that piece in small bits: what it held."""
        d = _decompressor(self.kind or "")
        self.raw.seek(member_start)
        try:
            left = piece_start - member_start
            while left > 0:
                block = self.raw.read(min(left, 1 << 16))
                if not block:
                    return
                left -= len(block)
                for _ in self._drain(d, block):
                    pass
            for i in range(0, len(piece), 64):
                for out in self._drain(d, piece[i : i + 64]):
                    skip = min(given, len(out))
                    given -= skip
                    if len(out) > skip:
                        yield out[skip:]
        except _DECODE_ERRORS:
            return

    def read(self, n: int) -> bytes:
        """At least ``n`` bytes (a little more when compressed), fewer only at the end of the data."""
        pieces: list[bytes] = []
        got = 0
        while got < n and not self.eof:
            if self._chunks is not None:
                piece = next(self._chunks, None)  # the generator catches decoding errors itself
            else:
                try:
                    piece = self.raw.read(n - got)
                except OSError as exc:
                    self._fail(exc)
                    piece = None
            if piece is None or (self._chunks is None and not piece):
                self.eof = True
                break
            pieces.append(piece)
            got += len(piece)
        raw = self._carry + b"".join(pieces)
        self._carry = b""
        if raw.endswith(b"\r"):
            # the CR of a CRLF split between chunks waits for its LF; at the end of the file it belongs
            # to a last line that has no LF, which is incomplete anyway
            raw = raw[:-1]
            if not self.eof:
                self._carry = b"\r"
        if b"\r" in raw:
            raw = raw.replace(b"\r\n", b"\n")
        return raw

    def digest(self) -> str:
        """sha256 of the file's raw (compressed) bytes, hashed while they were read (see :class:`_Hashed`)."""
        return self.raw.hexdigest()


_Source = ByteSource  # the name the XDATCAR reader has always used
