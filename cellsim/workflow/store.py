"""FireWorks LaunchPads: each run's own embedded store, or the user's MongoDB (``my_launchpad.yaml``).

**Embedded store (default).** FireWorks' mongomock mode keeps the database in a JSON file. cellsim
gives every run directory its own file (``RUN/workflow/fw_store.json``) with its own lock, so one run's
job never blocks, or runs the work of, another run. The file is read when a :class:`WorkflowStore` opens
it and written (atomically) by :meth:`WorkflowStore.flush`: between Fireworks and when the store is
closed; the lock (``fw_store.json.lock``, flock) is held from opening to closing, so a second process on
the same run waits (``CELLSIM_FW_LOCK_TIMEOUT_S``, default 600 s) or stops with a message. A process
killed mid-Firework leaves the file as it was before that Firework: the Firework is READY again (or, if
the process wrote RUNNING, a lost run that the next opener reruns: nothing else can hold the lock).
``CELLSIM_FW_STORE`` selects one shared embedded store for every run instead (the older behaviour).

**MongoDB.** ``--launchpad my_launchpad.yaml``: reachability is checked with a ping
(``serverSelectionTimeoutMS``, ``CELLSIM_MONGO_TIMEOUT_MS``, default 5000) before anything is written;
errors are one line naming host:port, never the password. Fireworks carry ``spec._run_id`` and every
cellsim worker queries it, so runs sharing one database stay apart.

FireWorks chooses its database client when it is first imported, so the embedded store must be opened
before anything imports FireWorks (this module imports nothing of it at the top), and one process uses
either embedded stores or MongoDB.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cellsim.config.rundir import RunDir
from cellsim.core.errors import CellsimError
from cellsim.core.files import BusyError, WriterLock, atomic_write_text

_HELD: dict[str, WriterLock] = {}  # store path -> the lock this process holds on it (lock_store)


class LaunchPadBusy(CellsimError):
    """Another process holds the embedded FireWorks store."""


class LaunchPadError(CellsimError):
    """The launchpad file is missing or malformed, or MongoDB cannot be reached."""


def default_store() -> Path:
    """The shared embedded store (``$CELLSIM_FW_STORE``, default ``~/.cache/cellsim/fireworks/launchpad.json``)."""
    root = os.environ.get("CELLSIM_FW_STORE")
    if root:
        return Path(root)
    return Path(os.path.expanduser("~")) / ".cache" / "cellsim" / "fireworks" / "launchpad.json"


def run_id(rd: RunDir) -> str:
    """The tag of a run's Fireworks (``spec._run_id``): its absolute path."""
    return str(rd.root.resolve())


def store_for(rd: RunDir | None) -> Path:
    """The embedded store a run uses: ``$CELLSIM_FW_STORE`` when set, else the run's own."""
    if os.environ.get("CELLSIM_FW_STORE") or rd is None:
        return default_store()
    return rd.fw_store_file


# --------------------------------------------------------------------------- quiet FireWorks


@contextlib.contextmanager
def quiet_fireworks() -> Iterator[None]:
    """Keep FireWorks' and custodian's chatter out of the terminal and the job logs, while a store is open.

    FireWorks' ping thread pings its launch once more after the Firework finished; with the embedded
    store that races the launch's last update and prints "No Launch exists with launch_id=..." to
    stderr. The thread here pings only while the Firework runs, and ignores a launch already gone.
    Everything changed (logger levels, warning filters, ``rocket.ping_launch``) is put back on exit, so
    nested stores restore in order and nothing outlives the last one.
    """
    import warnings

    import fireworks.core.rocket as rocket
    from fireworks.fw_config import PING_TIME_SECS

    names = ("launchpad", "rocket.launcher", "custodian", "custodian.custodian", "fireworks")
    levels = {name: logging.getLogger(name).level for name in names}
    saved = (rocket.ROCKET_STREAM_LOGLEVEL, rocket.ping_launch)
    filters: list[tuple[type[Warning], str]] = [
        (FutureWarning, r"fireworks\..*"),
        (FutureWarning, r"pymongo\..*"),
        (DeprecationWarning, r"fireworks\..*"),
    ]
    before = list(warnings.filters)

    def ping_launch(launchpad: Any, launch_id: int, stop_event: Any, master_thread: Any) -> None:
        while not stop_event.wait(PING_TIME_SECS) and master_thread.is_alive():
            try:
                rocket.do_ping(launchpad, launch_id)
            except ValueError:
                return

    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
    rocket.ROCKET_STREAM_LOGLEVEL = "ERROR"  # each Rocket makes its logger again, at this level
    for category, module in filters:
        warnings.filterwarnings("ignore", category=category, module=module)
    added = [f for f in warnings.filters if f not in before]
    rocket.ping_launch = ping_launch
    try:
        yield
    finally:
        rocket.ROCKET_STREAM_LOGLEVEL, rocket.ping_launch = saved
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for f in added:
            if f in warnings.filters:
                warnings.filters.remove(f)  # type: ignore[attr-defined]  # a list at run time
        mutated = getattr(warnings, "_filters_mutated", None)  # drop the cache of decisions made meanwhile
        if mutated is not None:
            mutated()


# --------------------------------------------------------------------------- MongoDB


def _mask(text: str, secrets: list[str]) -> str:
    text = re.sub(r"(mongodb(?:\+srv)?://)[^@/\s]*@", r"\1***@", text)
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def mongo_launchpad(launchpad_file: Path) -> Any:
    """The MongoDB LaunchPad of ``my_launchpad.yaml``, after a ping; one-line errors without the password."""
    import yaml

    if not launchpad_file.is_file():
        raise LaunchPadError(f"{launchpad_file}: no such launchpad file")
    try:
        data = yaml.safe_load(launchpad_file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise LaunchPadError(f"{launchpad_file}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise LaunchPadError(f"{launchpad_file}: expected a mapping (host, port, name, username, password)")
    secrets = [str(data.get("password") or "")]
    host = str(data.get("host") or "localhost")
    where = _mask(host, secrets) if data.get("uri_mode") else f"{host}:{data.get('port') or 27017}"
    if "fireworks.fw_config" in sys.modules:
        import fireworks.fw_config as cfg

        if getattr(cfg, "MONGOMOCK_SERVERSTORE_FILE", None):
            raise LaunchPadError(
                f"{launchpad_file}: this process already uses cellsim's embedded store; use MongoDB from a new process"
            )
    timeout_ms = int(os.environ.get("CELLSIM_MONGO_TIMEOUT_MS", "5000"))
    kwargs = dict(data.get("mongoclient_kwargs") or {})
    kwargs.setdefault("serverSelectionTimeoutMS", timeout_ms)
    kwargs.setdefault("connectTimeoutMS", timeout_ms)
    data["mongoclient_kwargs"] = kwargs
    data.setdefault("strm_lvl", "ERROR")
    from fireworks import LaunchPad

    try:
        lpad = LaunchPad.from_dict(data)
        lpad.connection.admin.command("ping")
    except Exception as exc:  # pymongo's errors (configuration, network, authentication) carry no common base
        first = _mask(str(exc).split(", Timeout:")[0].splitlines()[0] if str(exc) else type(exc).__name__, secrets)
        raise LaunchPadError(
            f"{launchpad_file}: MongoDB at {where} not reachable ({type(exc).__name__}: {first[:300]})"
        ) from None
    return lpad


# --------------------------------------------------------------------------- the store of a run


class WorkflowStore:
    """An open LaunchPad for one run (or for all, ``run=None``): the embedded store under its lock, or MongoDB.

    Use as a context manager; :meth:`flush` writes the embedded store now (a no-op for MongoDB).
    """

    def __init__(self, run: RunDir | None, launchpad_file: Path | None = None, wait_s: float | None = None) -> None:
        self.run = run
        self.run_id = run_id(run) if run is not None else None
        self.launchpad_file = launchpad_file
        self.embedded = launchpad_file is None
        self.path: Path | None = None
        self._server: Any = None
        if launchpad_file is not None:
            self.lpad = mongo_launchpad(launchpad_file)
        else:
            self.path = store_for(run)
            self.lpad = self._open_embedded(self.path, wait_s)
        self._quiet = contextlib.ExitStack()
        self._quiet.enter_context(quiet_fireworks())

    # embedded store
    def _open_embedded(self, store: Path, wait_s: float | None) -> Any:
        if "fireworks.fw_config" in sys.modules:
            import fireworks.fw_config as cfg

            if not getattr(cfg, "MONGOMOCK_SERVERSTORE_FILE", None):
                raise LaunchPadError(
                    "FireWorks was imported before cellsim chose its embedded store; open the store first "
                    "(or use a MongoDB launchpad)"
                )
        lock_store(store, wait_s)
        if not store.is_file() or store.stat().st_size == 0:
            store.write_text("{}")  # mongomock_persistence reads the file and needs it to exist
        # mongomock_persistence reads this variable whenever a client is made: one process may open the
        # stores of several runs, one after the other
        os.environ["MONGOMOCK_SERVERSTORE_FILE"] = str(store)
        from fireworks import LaunchPad

        try:
            lpad = LaunchPad(host="localhost", name="cellsim", strm_lvl="ERROR")
        except Exception as exc:  # a damaged JSON file: bson's errors have no common base
            unlock_store(store)
            raise LaunchPadError(f"{store}: cannot read the embedded FireWorks store ({exc})") from None
        self._server = lpad.connection._store
        finalizer = getattr(self._server, "_finalizer", None)
        if finalizer is not None:
            finalizer.detach()  # written by flush(), atomically, never by a stale copy at exit
        if lpad.fw_id_assigner.find_one() is None:  # a new store: FireWorks' id counters
            lpad.reset("", require_password=False)
        return lpad

    def flush(self) -> None:
        if self._server is None or self.path is None:
            return
        from bson import json_util

        atomic_write_text(self.path, json_util.dumps(self._server.to_dict()))

    def close(self) -> None:
        try:
            if self.path is not None and self._server is not None:
                try:
                    self.flush()
                finally:
                    self._server = None
                    unlock_store(self.path)
        finally:
            self._quiet.close()

    def __enter__(self) -> WorkflowStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # queries of this run
    def query(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        q: dict[str, Any] = {"spec._run_id": self.run_id} if self.run_id else {}
        q.update(extra or {})
        return q

    def fireworks(self) -> list[dict[str, Any]]:
        """This run's Fireworks (fw_id, name, state, launches), in id order."""
        docs = self.lpad.fireworks.find(self.query(), {"fw_id": 1, "name": 1, "state": 1, "launches": 1, "spec": 1})
        return sorted(docs, key=lambda d: d["fw_id"])

    def rerun_lost(self, job_alive: Any = None, expiration_s: float = 4 * 3600) -> list[int]:
        """Rerun this run's Fireworks left RUNNING by a process that died; their ids.

        Embedded store: holding its lock proves no process runs them. MongoDB: the launch's worker names
        the job (``cellsim RUN slurm:ID``); ``job_alive(tag)`` says whether it still runs (None: unknown,
        then FireWorks' own ping-based test with ``expiration_s``).
        """
        lost: list[int] = []
        for fw in self.lpad.fireworks.find(self.query({"state": "RUNNING"}), {"fw_id": 1, "launches": 1}):
            dead = self.embedded
            launch_ids = list(fw.get("launches") or [])
            if not dead and launch_ids:
                launch = self.lpad.launches.find_one({"launch_id": launch_ids[-1]}, {"fworker": 1})
                tag = str(((launch or {}).get("fworker") or {}).get("name", "")).rsplit(" ", 1)[-1]
                alive = job_alive(tag) if job_alive is not None else None
                dead = alive is False
            if dead:
                for lid in launch_ids:
                    if (self.lpad.launches.find_one({"launch_id": lid}, {"state": 1}) or {}).get("state") == "RUNNING":
                        self.lpad.mark_fizzled(lid)
                self.lpad.rerun_fw(fw["fw_id"])
                lost.append(int(fw["fw_id"]))
        if not self.embedded:
            _, fw_ids, _ = self.lpad.detect_lostruns(expiration_secs=expiration_s, query=self.query(), rerun=True)
            lost.extend(int(i) for i in fw_ids if int(i) not in lost)
        return lost


def lock_store(store: Path, wait_s: float | None = None) -> None:
    """Take the exclusive lock of an embedded store (re-entrant within this process).

    Re-entrant because a Firework's task may open the store its rocket already holds: a second flock on a
    new descriptor would wait for this very process. ``_HELD`` is the table of the locks this process holds.
    """
    key = os.path.abspath(store)
    if key in _HELD:
        return
    wait = float(os.environ.get("CELLSIM_FW_LOCK_TIMEOUT_S", "600")) if wait_s is None else wait_s
    job = os.environ.get("SLURM_JOB_ID") or os.environ.get("PBS_JOBID")
    lock = WriterLock(
        Path(str(store) + ".lock"), str(store), wait_s=wait, holder=f"pid {os.getpid()}{f', job {job}' if job else ''}"
    )
    try:
        lock.__enter__()
    except BusyError as exc:
        holder = str(exc).split("(", 1)[-1].split(")", 1)[0]
        raise LaunchPadBusy(
            f"{store}: another process is using cellsim's embedded FireWorks store ({holder}); it is "
            "single-process: wait for it to finish, or use a MongoDB launchpad (--launchpad my_launchpad.yaml)"
        ) from None
    _HELD[key] = lock


def unlock_store(store: Path) -> None:
    lock = _HELD.pop(os.path.abspath(store), None)
    if lock is not None:
        lock.__exit__(None, None, None)


def read_store_snapshot(store: Path) -> list[dict[str, Any]]:
    """The Fireworks of an embedded store file as last written, without its lock (for status displays)."""
    if not store.is_file() or store.stat().st_size == 0:
        return []
    from bson import json_util

    try:
        data = json_util.loads(store.read_text())
    except (OSError, ValueError):
        return []
    coll = (data.get("cellsim") or {}).get("fireworks") or {}
    return [doc for _, doc in coll.get("documents", [])]


def open_launchpad(launchpad_file: Path | None = None) -> Any:
    """A LaunchPad for scripts: the user's MongoDB, or the shared embedded store locked until this process exits.

    cellsim itself opens each run's store with :class:`WorkflowStore`.
    """
    import atexit

    store = WorkflowStore(None, launchpad_file)
    if store.embedded:
        atexit.register(store.close)
    return store.lpad
