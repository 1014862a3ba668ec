"""Open a FireWorks LaunchPad: the user's MongoDB (``my_launchpad.yaml``) or the embedded mongomock store.

The embedded store is FireWorks' own mongomock mode: a JSON file (``$CELLSIM_FW_STORE``, default
``~/.cache/cellsim/fireworks/launchpad.json``) read when a process opens it and written when the process
exits. Two processes using it at once lose or duplicate work, so cellsim holds an exclusive lock on
``<store>.lock`` from opening until the process exits; a second process waits for it
(``CELLSIM_FW_LOCK_TIMEOUT_S``, default 600 s) or stops with a clear message. Use MongoDB for anything
concurrent (several workers, a busy cluster).

FireWorks chooses its database client when it is first imported, so this module imports nothing of it
at the top and must be used before :mod:`cellsim.fw` is imported.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path
from typing import Any

from cellsim.errors import CellsimError

_LOCK_FD: int | None = None


class LaunchPadBusy(CellsimError):
    """Another process holds the embedded FireWorks store."""


def default_store() -> Path:
    root = os.environ.get("CELLSIM_FW_STORE")
    if root:
        return Path(root)
    return Path(os.path.expanduser("~")) / ".cache" / "cellsim" / "fireworks" / "launchpad.json"


def _lock_store(store: Path) -> None:
    global _LOCK_FD
    if _LOCK_FD is not None:
        return
    store.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(store) + ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    deadline = time.monotonic() + float(os.environ.get("CELLSIM_FW_LOCK_TIMEOUT_S", "600"))
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise LaunchPadBusy(
                    f"{store}: another process is using cellsim's embedded FireWorks store (it is single-process: "
                    "read at start, written at exit). Wait for it to finish, or use a MongoDB launchpad "
                    "(--launchpad my_launchpad.yaml)"
                ) from None
            time.sleep(0.2)
    _LOCK_FD = fd  # held until the process exits, after mongomock has written the store


def open_launchpad(launchpad_file: Path | None = None) -> Any:
    """The user's LaunchPad (YAML), or the embedded mongomock store, locked for this process."""
    if launchpad_file is not None:
        from fireworks import LaunchPad

        if not launchpad_file.is_file():
            raise CellsimError(f"{launchpad_file}: no such launchpad file")
        return LaunchPad.from_file(str(launchpad_file))
    store = default_store()
    if "fireworks.fw_config" in sys.modules and os.environ.get("MONGOMOCK_SERVERSTORE_FILE") != str(store):
        raise CellsimError(
            "FireWorks was imported before cellsim chose its embedded store; open the launchpad first "
            f"(or set MONGOMOCK_SERVERSTORE_FILE={store} before starting Python), or use a MongoDB launchpad"
        )
    _lock_store(store)
    if not store.is_file() or store.stat().st_size == 0:
        store.write_text("{}")  # mongomock_persistence reads the file and needs it to exist
    os.environ["MONGOMOCK_SERVERSTORE_FILE"] = str(store)
    import fireworks.fw_config as cfg

    if getattr(cfg, "MONGOMOCK_SERVERSTORE_FILE", None) != str(store):
        raise CellsimError(
            "FireWorks was imported before cellsim chose its embedded store; set MONGOMOCK_SERVERSTORE_FILE "
            f"to {store} before starting Python, or use a MongoDB launchpad"
        )
    from fireworks import LaunchPad

    lpad = LaunchPad(host="localhost", name="cellsim", strm_lvl="ERROR")
    if lpad.fw_id_assigner.find_one() is None:  # a new store: initialise FireWorks' id counters
        lpad.reset("", require_password=False)
    return lpad
