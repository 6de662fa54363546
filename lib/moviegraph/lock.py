"""The warehouse lease: one pipeline at a time per warehouse, from any number of hosts.

A run holds a *lease* recorded in the warehouse, renews it with a heartbeat while it
runs, and gives it back at the end. A lease whose holder stopped heartbeating for its
ttl has expired: any host may take it over, so a driver killed on one node no longer
blocks the runs that a scheduler starts on other nodes the next night.

Layout, under ``<warehouse root>/_moviegraph.lock/`` (all names fixed-width, so they sort):

``lease-<epoch:012d>.json``
    Written once, by the run that took epoch ``N``: ``run_id, host, pid, token,
    acquired_at`` (seconds since the epoch, holder's clock), ``since`` (UTC, for people),
    ``ttl_seconds``, ``heartbeat_seconds``. The highest epoch is the current lease.
``lease-<epoch>.beat-<ms:015d>``
    Heartbeats of epoch ``N``: empty files named after the holder's clock in
    milliseconds; the holder keeps its two newest.
``lease-<epoch>.released``
    The holder gave epoch ``N`` back.

Taking the lease is an *exclusive create* of ``lease-<top+1>.json``, where ``top`` is the
highest epoch seen, allowed only when ``top`` is released or expired (or there is none).
Exactly one of any number of simultaneous takers can create a given name, and a taker
that read a stale ``top`` finds a higher epoch when it lists again after creating its
own and backs off; epoch files are never rewritten and the newest two are never
deleted, so epochs only grow. Heartbeats and the release marker are separate files for
the same reason: nothing a taker reads is ever rewritten in place (an overwrite is
delete-then-create on HDFS and truncate-then-write locally, so a reader could see the
lease vanish or empty).

Exclusive create: locally ``os.link`` of a fully written temporary file (atomic, fails
when the name exists, and the file is never seen half-written); elsewhere Hadoop's
``FileSystem.create(path, overwrite=false)``, atomic on HDFS, ABFS and GCS. S3A in
Hadoop 3.4 checks then PUTs, so there two drivers starting within the same instant
could both create: the lease reads its file back after creating it and on every
heartbeat, and a holder whose token is gone marks the lease lost (``check()`` raises);
put the warehouse (or at least its lock) on a store with atomic create when that gap
matters.

Expiry compares the holder's clock (heartbeat names) with the taker's: keep
``ttl_seconds`` well above the hosts' clock skew plus ``heartbeat_seconds``. A lease whose
holder ran on this host and whose process is gone is taken over at once (a run killed
here is rerun without waiting for the ttl).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moviegraph.config import ConfigError, PipelineConfig

log = logging.getLogger(__name__)

LOCK_DIR = "_moviegraph.lock"
_LEASE = re.compile(r"^lease-(\d{12})\.json$")
_BEAT = re.compile(r"^lease-(\d{12})\.beat-(\d{15})$")
_RELEASED = re.compile(r"^lease-(\d{12})\.released$")
# Epochs below top - _KEEP_EPOCHS + 1 are deleted by the next holder (best effort).
_KEEP_EPOCHS = 2


class PipelineLockedError(RuntimeError):
    """Another pipeline holds the warehouse (exit code 5: retry later)."""


class LeaseLostError(PipelineLockedError):
    """This run's lease was taken over (it stopped heartbeating for longer than its ttl)."""


# ----------------------------------------------------------------------------- stores


class LocalStore:
    """Lock files on a local (or NFS-mounted) folder, through the OS."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.where = folder

    def is_file(self) -> bool:
        """True when the lock folder's path is a plain file (an older version's lock)."""
        return os.path.isfile(self.folder)

    def list(self) -> dict[str, float]:
        """File name -> modification time (seconds) of every file in the folder."""
        out = {}
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return {}
        for entry in entries:
            try:
                out[entry.name] = entry.stat().st_mtime
            except FileNotFoundError:  # deleted between listing and stat
                continue
        return out

    def create_exclusive(self, name: str, data: bytes) -> bool:
        """Create ``name`` holding ``data`` unless it exists; False when it does."""
        os.makedirs(self.folder, exist_ok=True)
        tmp = os.path.join(self.folder, f".tmp-{uuid.uuid4().hex}")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            # link() is atomic and never replaces: the name appears complete, or not at all.
            os.link(tmp, os.path.join(self.folder, name))
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def write(self, name: str, data: bytes) -> None:
        """Create or replace ``name`` (used only for names no other run writes)."""
        os.makedirs(self.folder, exist_ok=True)
        with open(os.path.join(self.folder, name), "wb") as f:
            f.write(data)

    def read(self, name: str) -> bytes | None:
        """The file's bytes, None when it does not exist."""
        try:
            with open(os.path.join(self.folder, name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def delete(self, name: str) -> None:
        """Remove ``name`` if it exists."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.folder, name))


class HadoopStore:
    """Lock files through Hadoop's FileSystem API (HDFS, ABFS, GCS, S3A, ... any URI)."""

    def __init__(self, spark: Any, folder: str) -> None:
        jvm = spark.sparkContext._jvm
        self._jvm = jvm
        self._dir = jvm.org.apache.hadoop.fs.Path(folder)
        self._fs = self._dir.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        self.where = str(self._dir)

    def _path(self, name: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(self._dir, name)

    def is_file(self) -> bool:
        """True when the lock folder's path is a plain file (an older version's lock)."""
        return bool(self._fs.exists(self._dir) and self._fs.getFileStatus(self._dir).isFile())

    def list(self) -> dict[str, float]:
        """File name -> modification time (seconds) of every file in the folder."""
        try:
            statuses = self._fs.listStatus(self._dir)
        except Exception as exc:  # py4j: FileNotFoundException
            if "FileNotFound" in str(exc):
                return {}
            raise
        return {s.getPath().getName(): s.getModificationTime() / 1000.0
                for s in statuses if s.isFile()}

    def create_exclusive(self, name: str, data: bytes) -> bool:
        """``create(path, overwrite=false)``; False when the file already exists."""
        self._fs.mkdirs(self._dir)
        try:
            out = self._fs.create(self._path(name), False)
        except Exception as exc:  # py4j: FileAlreadyExistsException
            if "FileAlreadyExists" in str(exc) or "already exists" in str(exc):
                return False
            raise
        try:
            out.write(data)
        finally:
            out.close()
        return True

    def write(self, name: str, data: bytes) -> None:
        """Create or replace ``name`` (used only for names no other run writes)."""
        out = self._fs.create(self._path(name), True)
        try:
            out.write(data)
        finally:
            out.close()

    def read(self, name: str) -> bytes | None:
        """The file's bytes, None when it does not exist."""
        path = self._path(name)
        try:
            stream = self._fs.open(path)
        except Exception as exc:
            if "FileNotFound" in str(exc):
                return None
            raise
        try:
            return bytes(stream.readAllBytes())
        finally:
            stream.close()

    def delete(self, name: str) -> None:
        """Remove ``name`` if it exists."""
        self._fs.delete(self._path(name), False)


def store_for(spark: Any, root: str) -> LocalStore | HadoopStore:
    """The store of ``<root>/_moviegraph.lock``: the OS for local paths, else Hadoop FS."""
    if root.startswith("file:"):
        local = re.sub(r"^file:(//)?", "", root)
        return LocalStore(os.path.join(local, LOCK_DIR))
    if "://" not in root:
        return LocalStore(os.path.join(os.path.abspath(root), LOCK_DIR))
    if spark is None:
        raise ValueError(f"a lease on {root} needs a SparkSession (Hadoop FileSystem)")
    return HadoopStore(spark, f"{root.rstrip('/')}/{LOCK_DIR}")


# ------------------------------------------------------------------------------ state


def lease_name(epoch: int) -> str:
    """File name of epoch ``epoch``'s lease record."""
    return f"lease-{epoch:012d}.json"


def beat_name(epoch: int, at: float) -> str:
    """File name of a heartbeat of ``epoch`` at ``at`` (seconds since the epoch)."""
    return f"lease-{epoch:012d}.beat-{round(at * 1000):015d}"


def released_name(epoch: int) -> str:
    """File name of the marker saying ``epoch`` was given back."""
    return f"lease-{epoch:012d}.released"


@dataclass
class LeaseState:
    """What the lock folder says about the current (highest) epoch."""

    epoch: int = 0  # 0: no lease was ever taken
    record: dict[str, Any] = field(default_factory=dict)  # {} when unreadable
    released: bool = False
    last_alive: float = 0.0  # newest heartbeat (or acquisition), seconds since the epoch
    ttl: float = 0.0
    files: dict[str, float] = field(default_factory=dict)  # the listing it came from

    def free(self, now: float) -> bool:
        """True when a new run may take the warehouse: no lease, released, expired, or
        held by a process of this host that is gone (a killed run, taken over at once)."""
        return (self.epoch == 0 or self.released or now - self.last_alive > self.ttl
                or self.holder_died_here())

    def holder_died_here(self) -> bool:
        """True when the holder ran on this host and its process no longer exists."""
        if self.record.get("host") != socket.gethostname() or "pid" not in self.record:
            return False
        try:
            os.kill(int(self.record["pid"]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError, OverflowError):
            return False
        return False

    def describe(self, now: float) -> str:
        """The holder, for error messages."""
        r = self.record
        return (f"run {r.get('run_id', '?')} (host {r.get('host', '?')}, pid "
                f"{r.get('pid', '?')}, since {r.get('since', '?')}; last heartbeat "
                f"{max(0.0, now - self.last_alive):.0f}s ago, the lease expires after "
                f"{self.ttl:.0f}s without one)")


def read_state(store: LocalStore | HadoopStore, default_ttl: float) -> LeaseState:
    """The current lease, from one listing of the lock folder (and its newest record)."""
    files = store.list()
    epochs = [int(m.group(1)) for name in files if (m := _LEASE.match(name))]
    if not epochs:
        return LeaseState(files=files, ttl=default_ttl)
    top = max(epochs)
    record: dict[str, Any] = {}
    raw = store.read(lease_name(top))
    try:
        record = json.loads(raw.decode()) if raw else {}
    except (ValueError, UnicodeDecodeError):
        record = {}
    # A record not readable yet (a store whose create shows the file before its content)
    # counts from the file's own time, so a fresh lease is never mistaken for a dead one.
    alive = [float(record["acquired_at"])] if "acquired_at" in record else [
        files.get(lease_name(top), 0.0)]
    alive += [int(m.group(2)) / 1000.0 for name in files
              if (m := _BEAT.match(name)) and int(m.group(1)) == top]
    return LeaseState(epoch=top, record=record, released=released_name(top) in files,
                      last_alive=max(alive), ttl=float(record.get("ttl_seconds", default_ttl)),
                      files=files)


# ------------------------------------------------------------------------------ lease


class WarehouseLease:
    """The lease of one warehouse for one run (see the module doc).

    ``acquire()`` takes it or raises :class:`PipelineLockedError` naming the holder, and
    starts the heartbeat thread; ``release()`` gives it back (only if this run still holds
    it); ``check()`` raises :class:`LeaseLostError` once another run took it over.
    """

    def __init__(self, spark: Any, root: str, run_id: str, ttl_seconds: float = 600,
                 heartbeat_seconds: float = 30, *,
                 store: LocalStore | HadoopStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if heartbeat_seconds <= 0 or ttl_seconds < 3 * heartbeat_seconds:
            raise ConfigError(
                f"pipeline.heartbeat_seconds = {heartbeat_seconds}: must be > 0 and at most a "
                f"third of pipeline.lock_ttl_seconds = {ttl_seconds}")
        self.root = root
        self.store = store if store is not None else store_for(spark, root)
        self.ttl = float(ttl_seconds)
        self.heartbeat = float(heartbeat_seconds)
        self.clock = clock
        self.token = uuid.uuid4().hex
        now = clock()
        self.owner: dict[str, Any] = {
            "run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
            "token": self.token, "acquired_at": now,
            "since": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now)),
            "ttl_seconds": self.ttl, "heartbeat_seconds": self.heartbeat}
        self.epoch = 0  # ours, once acquired
        self.took_over: dict[str, Any] | None = None  # the expired lease we replaced
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_beat_ok = 0.0

    # -- taking and giving back

    def state(self) -> LeaseState:
        """The lock folder's current lease (anyone's)."""
        return read_state(self.store, self.ttl)

    def acquire(self) -> None:
        """Take the lease (a new one, or an expired or released one) or raise."""
        if self.store.is_file():
            raise PipelineLockedError(
                f"{self.store.where} is the lock file of an older moviegraph version: a run "
                "of it holds the warehouse; delete the file once that run is known to be dead")
        for _ in range(5):
            now = self.clock()
            st = self.state()
            if not st.free(now):
                raise PipelineLockedError(
                    f"warehouse {self.root} is in use by {st.describe(now)}; retry later")
            epoch = st.epoch + 1
            self.owner["acquired_at"] = now
            self.owner["since"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
            if not self.store.create_exclusive(lease_name(epoch),
                                               json.dumps(self.owner).encode()):
                continue  # another run took this epoch first: look again
            after = self.state()
            if after.epoch != epoch or after.record.get("token") != self.token:
                # A taker that saw an older top created a stale epoch below the real one,
                # or a store without atomic create let two writes race: we lost.
                raise PipelineLockedError(
                    f"warehouse {self.root} is in use by {after.describe(self.clock())}; "
                    "retry later")
            self.epoch = epoch
            if st.epoch and not st.released:
                self.took_over = {**st.record, "last_heartbeat_age_s":
                                  round(now - st.last_alive, 1)}
                log.warning("took over the lease of %s: %s", st.describe(now),
                            "its process is gone" if st.holder_died_here() else "expired")
            self._last_beat_ok = now
            self._gc(after.files)
            self._start_heartbeat()
            return
        raise PipelineLockedError(f"could not take the lease of {self.root}: too much contention")

    def release(self) -> None:
        """Give the lease back if this run still holds it; never touches another's lease."""
        self._stop_heartbeat()
        if not self.epoch:
            return
        st = self.state()
        if st.epoch == self.epoch and st.record.get("token") == self.token and not st.released:
            self.store.create_exclusive(released_name(self.epoch), json.dumps(
                {"run_id": self.owner["run_id"], "at": self.clock()}).encode())
            for name in st.files:
                m = _BEAT.match(name)
                if m and int(m.group(1)) == self.epoch:
                    self.store.delete(name)
        else:
            log.warning("lease of %s epoch %d was no longer ours at release", self.root,
                        self.epoch)
        self.epoch = 0

    def __enter__(self) -> WarehouseLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- heartbeat

    @property
    def lost(self) -> bool:
        """True once this run's lease was taken over or could not be renewed within ttl."""
        return self._lost.is_set()

    def check(self) -> None:
        """Raise LeaseLostError when the lease is lost (call between stages)."""
        if self._lost.is_set():
            now = self.clock()
            raise LeaseLostError(
                f"the lease on {self.root} was lost (taken over, or not renewed for "
                f"{self.ttl:.0f}s); the warehouse is now held by {self.state().describe(now)}")

    def beat(self) -> bool:
        """Renew the lease once; False (and ``lost``) when it is no longer ours."""
        now = self.clock()
        st = self.state()
        if st.epoch != self.epoch or st.record.get("token") != self.token or st.released:
            self._lost.set()
            return False
        self.store.write(beat_name(self.epoch, now), b"")
        self._last_beat_ok = now
        mine = sorted(name for name in st.files
                      if (m := _BEAT.match(name)) and int(m.group(1)) == self.epoch)
        for name in mine[:-1]:  # keep the previous beat beside the new one
            self.store.delete(name)
        return True

    def _run_heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                if not self.beat():
                    log.error("lease on %s lost: another run took it over", self.root)
                    return
            except Exception as exc:  # storage hiccup: try again next time, until ttl
                log.warning("lease heartbeat on %s failed: %s", self.root, exc)
                if self.clock() - self._last_beat_ok > self.ttl:
                    self._lost.set()
                    return

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run_heartbeat, daemon=True,
                                        name=f"lease-heartbeat-{self.owner['run_id']}")
        self._thread.start()

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.heartbeat))
            self._thread = None

    def _gc(self, files: dict[str, float]) -> None:
        """Delete the files of epochs older than the newest two (best effort)."""
        for name in files:
            m = _LEASE.match(name) or _BEAT.match(name) or _RELEASED.match(name)
            if m and int(m.group(1)) <= self.epoch - _KEEP_EPOCHS:
                try:
                    self.store.delete(name)
                except Exception as exc:
                    log.warning("could not delete old lease file %s: %s", name, exc)


def open_lease(spark: Any, root: str, run_id: str, cfg: PipelineConfig) -> WarehouseLease:
    """The lease of warehouse ``root`` for ``run_id`` with the ``[pipeline]`` settings."""
    return WarehouseLease(spark, root, run_id, ttl_seconds=cfg.lock_ttl_seconds,
                          heartbeat_seconds=cfg.heartbeat_seconds)
