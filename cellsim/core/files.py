"""Atomic file writes: a reader never sees a half-written artefact, and a crash leaves the old one."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8, ``\n`` line ends) to ``path`` atomically: temp file in the same folder + rename."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


@functools.cache
def _file_mode() -> int:
    """0o666 less the process umask (read once, on the first write: reading it means setting it)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (usual permissions, not mkstemp's private 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------- output sets and writers


def staging_dir(target: Path) -> Path:
    """A fresh hidden folder beside ``target`` in which a stage writes its whole output set."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))


def recover_dir(target: Path) -> None:
    """Undo a swap that a kill interrupted: with ``target`` gone, the previous set comes back."""
    if target.exists():
        for left in target.parent.glob(f".{target.name}.old-*"):
            _rmtree(left)
        return
    old = sorted(target.parent.glob(f".{target.name}.old-*"))
    if old:
        os.replace(old[-1], target)


def replace_dir(staged: Path, target: Path) -> Path:
    """Put a complete output set in place of ``target``: a reader sees the old set or the new one, never a mix.

    Two renames; a kill between them leaves ``.NAME.old-*`` beside a missing ``target``, which
    :func:`recover_dir` restores on the next run.
    """
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
    os.replace(staged, target)
    if old is not None:
        _rmtree(old)
    for left in target.parent.glob(f".{target.name}.partial-*"):
        # staging folders of killed runs (ours was just renamed)
        _rmtree(left)
    return target


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


class BusyError(Exception):
    """Another process holds the lock of an output folder (turned into a CellsimError by the stages)."""


class WriterLock:
    """An exclusive lock on ``path`` (a lock file, flock), held for a ``with`` block: the one lock of cellsim.

    Two cellsim processes writing the same folder are refused, never interleaved. The lock dies with the
    process (flock), so a killed run leaves nothing to clean up. ``wait_s`` says what a second taker does:
    0 (default) is refused at once with :class:`BusyError`, a number waits that long first (polling), None
    waits as long as it takes. The lock file names its holder (``holder``, default the pid) for the message.
    """

    def __init__(self, path: Path, what: str, wait_s: float | None = 0.0, holder: str | None = None) -> None:
        self.path = Path(path)
        self.what = what
        self.wait_s = wait_s
        self.holder = holder
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if self.wait_s is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + self.wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() < deadline:
                        time.sleep(0.2)
                        continue
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "pid ?"
                    os.close(fd)
                    if holder.isdigit():  # written by an older cellsim: the pid alone
                        holder = f"pid {holder}"
                    raise BusyError(
                        f"{self.what}: another cellsim process ({holder}) is writing it; wait for it to finish"
                    ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (self.holder or f"pid {os.getpid()}").encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


_JOURNAL = ".commit.json"


def commit_files(folder: Path, files: dict[str, bytes]) -> dict[str, Path]:
    """Write several files in ``folder`` as one set: a kill leaves all the old ones or all the new ones.

    Each file is staged under a hidden name, then a journal naming them is written (the commit point), then
    each is renamed into place and the journal removed. :func:`recover_files` finishes an interrupted
    commit (after the journal) or drops the staged files (before it).
    """
    import json

    folder.mkdir(parents=True, exist_ok=True)
    recover_files(folder)
    staged = {}
    for name, data in files.items():
        tmp = folder / f".{name}.staged"
        atomic_write_bytes(tmp, data)
        staged[name] = tmp.name
    atomic_write_text(folder / _JOURNAL, json.dumps(staged))
    recover_files(folder)
    return {name: folder / name for name in files}


def recover_files(folder: Path) -> None:
    """Finish (or drop) a :func:`commit_files` that a kill interrupted."""
    import json

    journal = folder / _JOURNAL
    if journal.is_file():
        try:
            staged = json.loads(journal.read_text())
        except ValueError:
            staged = {}
        for name, tmp in staged.items():
            if (folder / tmp).is_file():
                os.replace(folder / tmp, folder / name)
        journal.unlink(missing_ok=True)
    for left in folder.glob(".*.staged") if folder.is_dir() else []:
        left.unlink(missing_ok=True)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes (hex), read in 4 MiB chunks: trajectories, model files and label files alike."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()
