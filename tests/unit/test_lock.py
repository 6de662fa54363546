"""The warehouse lease (moviegraph.lock) on a local folder: takeover, races, heartbeat.

Lease records of "other hosts" are written by hand in the documented layout (not by the
code under test), so the tests also pin the on-storage format other tools may read.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import threading
import time
from pathlib import Path

import pytest

from moviegraph.config import ConfigError
from moviegraph.lock import LOCK_DIR, LeaseLostError, PipelineLockedError, WarehouseLease


def write_foreign_lease(root: Path, epoch: int, *, host: str, run_id: str,
                        acquired_at: float, beats: list[float], ttl: float = 600) -> None:
    """A lease left by a run on another host, as that host would have written it."""
    folder = root / LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    record = {"run_id": run_id, "host": host, "pid": 4242, "token": "f" * 32,
              "acquired_at": acquired_at, "since": "2026-01-01 02:00:00 UTC",
              "ttl_seconds": ttl, "heartbeat_seconds": 30}
    (folder / f"lease-{epoch:012d}.json").write_text(json.dumps(record))
    for at in beats:
        (folder / f"lease-{epoch:012d}.beat-{round(at * 1000):015d}").touch()


def lease_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / LOCK_DIR).iterdir())


def test_dead_holder_on_another_host_is_taken_over(tmp_path):
    now = time.time()
    # Killed an hour ago on node-7: last heartbeat 50 minutes ago, ttl 10 minutes.
    write_foreign_lease(tmp_path, 3, host="node-7", run_id="dead-run",
                        acquired_at=now - 3600, beats=[now - 3100, now - 3000])
    lease = WarehouseLease(None, str(tmp_path), "new-run", ttl_seconds=600,
                           heartbeat_seconds=30)
    lease.acquire()
    try:
        assert lease.epoch == 4
        assert lease.took_over["run_id"] == "dead-run"
        assert lease.took_over["host"] == "node-7"
        held = json.loads((tmp_path / LOCK_DIR / "lease-000000000004.json").read_text())
        assert held["run_id"] == "new-run" and held["token"] == lease.token
        # A third run now finds the new holder, not the dead one.
        with pytest.raises(PipelineLockedError, match="in use by run new-run"):
            WarehouseLease(None, str(tmp_path), "third", heartbeat_seconds=30).acquire()
    finally:
        lease.release()
    assert "lease-000000000004.released" in lease_files(tmp_path)


def test_live_holder_on_another_host_is_named_and_kept(tmp_path):
    now = time.time()
    write_foreign_lease(tmp_path, 1, host="node-3", run_id="nightly-0302",
                        acquired_at=now - 7200, beats=[now - 40, now - 10])
    with pytest.raises(PipelineLockedError) as err:
        WarehouseLease(None, str(tmp_path), "mine", heartbeat_seconds=30).acquire()
    message = str(err.value)
    assert "run nightly-0302" in message and "host node-3" in message
    assert "since 2026-01-01 02:00:00 UTC" in message and "last heartbeat 10s ago" in message
    assert lease_files(tmp_path) == sorted([
        "lease-000000000001.json", f"lease-000000000001.beat-{round((now - 40) * 1000):015d}",
        f"lease-000000000001.beat-{round((now - 10) * 1000):015d}"])


def test_the_holders_own_ttl_decides_expiry(tmp_path):
    now = time.time()
    # Silent for 20 minutes, but its holder promised to beat within an hour.
    write_foreign_lease(tmp_path, 1, host="node-3", run_id="slow", acquired_at=now - 1200,
                        beats=[], ttl=3600)
    with pytest.raises(PipelineLockedError, match="run slow"):
        WarehouseLease(None, str(tmp_path), "mine", ttl_seconds=600,
                       heartbeat_seconds=30).acquire()


def test_released_lease_is_free_and_epochs_only_grow(tmp_path):
    for i in range(5):
        lease = WarehouseLease(None, str(tmp_path), f"run-{i}", heartbeat_seconds=30)
        lease.acquire()
        assert lease.epoch == i + 1
        lease.release()
    # Old epochs are cleaned up; the newest two stay so that epochs never go back.
    epochs = {name[6:18] for name in lease_files(tmp_path)}
    assert epochs == {"000000000004", "000000000005"}


def test_release_only_by_the_owner(tmp_path):
    owner = WarehouseLease(None, str(tmp_path), "owner", heartbeat_seconds=30)
    owner.acquire()
    try:
        other = WarehouseLease(None, str(tmp_path), "owner", heartbeat_seconds=30)
        other.release()  # same run id, not the same lease: must not free it
        with pytest.raises(PipelineLockedError):
            other.acquire()
        assert not any(n.endswith(".released") for n in lease_files(tmp_path))
    finally:
        owner.release()
    assert "lease-000000000001.released" in lease_files(tmp_path)


def test_heartbeat_keeps_a_long_run_alive_and_a_silent_one_is_taken_over(tmp_path):
    holder = WarehouseLease(None, str(tmp_path), "long-run", ttl_seconds=2.4,
                            heartbeat_seconds=0.2)
    holder.acquire()
    # The run lasts three ttls; a contender keeps trying and is always refused.
    deadline = time.time() + 3 * holder.ttl
    refusals = 0
    while time.time() < deadline:
        with pytest.raises(PipelineLockedError, match="in use by run long-run"):
            WarehouseLease(None, str(tmp_path), "contender", ttl_seconds=2.4,
                           heartbeat_seconds=0.2).acquire()
        refusals += 1
        time.sleep(0.3)
    assert refusals >= 10 and not holder.lost
    holder.check()
    # The holder freezes (heartbeat stops, no release): after its ttl another run takes it.
    holder._stop_heartbeat()
    taker = WarehouseLease(None, str(tmp_path), "taker", ttl_seconds=2.4,
                           heartbeat_seconds=0.2)
    time.sleep(holder.ttl + 0.5)
    taker.acquire()
    try:
        assert taker.took_over["run_id"] == "long-run"
        # The frozen run wakes up: its next beat finds the lease gone and says so.
        assert holder.beat() is False and holder.lost
        with pytest.raises(LeaseLostError, match="now held by run taker"):
            holder.check()
        holder.release()  # not its lease any more: changes nothing
        assert not (tmp_path / LOCK_DIR / "lease-000000000002.released").exists()
    finally:
        taker.release()


def test_heartbeat_must_fit_the_ttl():
    with pytest.raises(ConfigError, match=r"at most a third of pipeline\.lock_ttl_seconds"):
        WarehouseLease(None, "/tmp/unused", "r", ttl_seconds=60, heartbeat_seconds=30)


def test_simultaneous_takeovers_of_an_expired_lease_have_one_winner_threads(tmp_path):
    for round_no in range(60):
        root = tmp_path / f"wh{round_no}"
        now = time.time()
        write_foreign_lease(root, 7, host="dead-node", run_id="dead", acquired_at=now - 900,
                            beats=[now - 700])
        leases = [WarehouseLease(None, str(root), f"run-{i}", heartbeat_seconds=30)
                  for i in range(8)]
        barrier = threading.Barrier(len(leases))
        winners: list[str] = []

        def take(lease: WarehouseLease, barrier=barrier, winners=winners) -> None:
            barrier.wait()
            try:
                lease.acquire()
                winners.append(lease.owner["run_id"])
            except PipelineLockedError:
                pass

        threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(winners) == 1, f"round {round_no}: {winners} all took the lease"
        held = json.loads((root / LOCK_DIR / "lease-000000000008.json").read_text())
        assert held["run_id"] == winners[0]
        for lease in leases:
            lease.release()


def _race_worker(index: int, roots: list[str], barrier, results) -> None:
    """One process of the race: every round, try to take that round's expired lease."""
    for root in roots:
        lease = WarehouseLease(None, root, f"proc-{index}", heartbeat_seconds=30)
        barrier.wait()
        try:
            lease.acquire()
            results.put((root, index))
            lease._stop_heartbeat()  # hold it (no release) until the round is checked
        except PipelineLockedError:
            results.put((root, None))


def test_simultaneous_takeovers_of_an_expired_lease_have_one_winner_processes(tmp_path):
    rounds, workers = 25, 4
    roots = []
    now = time.time()
    for round_no in range(rounds):
        root = tmp_path / f"wh{round_no}"
        write_foreign_lease(root, 1, host="dead-node", run_id="dead", acquired_at=now - 900,
                            beats=[now - 700])
        roots.append(str(root))
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(i, roots, barrier, results))
             for i in range(workers)]
    for p in procs:
        p.start()
    outcomes: dict[str, list[int | None]] = {}
    for _ in range(rounds * workers):
        root, winner = results.get(timeout=300)
        outcomes.setdefault(root, []).append(winner)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for root in roots:
        won = [w for w in outcomes[root] if w is not None]
        assert len(won) == 1, f"{root}: processes {won} all took the lease"
        held = json.loads((Path(root) / LOCK_DIR / "lease-000000000002.json").read_text())
        assert held["run_id"] == f"proc-{won[0]}"


def test_an_older_versions_lock_file_is_reported_not_overwritten(tmp_path):
    (tmp_path / LOCK_DIR).write_text('{"run_id": "old", "host": "h", "pid": 1}')
    with pytest.raises(PipelineLockedError, match="lock file of an older moviegraph version"):
        WarehouseLease(None, str(tmp_path), "new", heartbeat_seconds=30).acquire()


def test_a_run_killed_on_this_host_is_taken_over_at_once(tmp_path):
    import socket

    now = time.time()
    write_foreign_lease(tmp_path, 1, host=socket.gethostname(), run_id="killed",
                        acquired_at=now - 5, beats=[now - 1])
    record = tmp_path / LOCK_DIR / "lease-000000000001.json"
    dead = json.loads(record.read_text())
    dead["pid"] = 2**22 + 12345  # beyond pid_max: no such process
    record.write_text(json.dumps(dead))
    lease = WarehouseLease(None, str(tmp_path), "rerun", heartbeat_seconds=30)
    lease.acquire()
    assert lease.epoch == 2 and lease.took_over["run_id"] == "killed"
    lease.release()
    # The same record with a live pid (this test's own) is a running run: refused.
    alive = json.loads(record.read_text()) if record.exists() else dead
    alive["pid"] = os.getpid()
    (tmp_path / LOCK_DIR / "lease-000000000003.json").write_text(json.dumps(
        {**alive, "acquired_at": time.time()}))
    with pytest.raises(PipelineLockedError, match="in use by run killed"):
        WarehouseLease(None, str(tmp_path), "other", heartbeat_seconds=30).acquire()
