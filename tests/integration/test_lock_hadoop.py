"""The warehouse lease through Hadoop's FileSystem API (the cluster path), on a file:// URI.

Races are tested on the local store (tests/unit/test_lock.py): Hadoop's local
filesystem checks then creates, so only stores with an atomic create (HDFS, ABFS, GCS)
make the Hadoop path race-free; here it must show the same behaviour one call at a time.
"""

from __future__ import annotations

import json
import time

import pytest

from moviegraph.lock import (
    LOCK_DIR,
    HadoopStore,
    LocalStore,
    PipelineLockedError,
    WarehouseLease,
    store_for,
)
from tests.unit.test_lock import write_foreign_lease


def test_lease_through_the_hadoop_filesystem(spark, tmp_path):
    root = tmp_path / "wh"
    now = time.time()
    write_foreign_lease(root, 2, host="node-9", run_id="killed", acquired_at=now - 5000,
                        beats=[now - 4000])
    uri = root.as_uri()
    store = HadoopStore(spark, f"{uri}/{LOCK_DIR}")

    def lease(run_id: str) -> WarehouseLease:
        return WarehouseLease(spark, uri, run_id, ttl_seconds=600, heartbeat_seconds=30,
                              store=store)

    first = lease("run-a")
    first.acquire()
    assert first.epoch == 3 and first.took_over["host"] == "node-9"
    record = json.loads((root / LOCK_DIR / "lease-000000000003.json").read_text())
    assert record["run_id"] == "run-a" and record["token"] == first.token
    assert first.beat() is True
    beats = [p.name for p in (root / LOCK_DIR).iterdir() if ".beat-" in p.name
             and p.name.startswith("lease-000000000003")]
    assert len(beats) == 1
    with pytest.raises(PipelineLockedError, match="in use by run run-a"):
        lease("run-b").acquire()
    lease("run-b").release()  # not the owner: nothing happens
    assert not (root / LOCK_DIR / "lease-000000000003.released").exists()
    first.release()
    assert (root / LOCK_DIR / "lease-000000000003.released").exists()
    second = lease("run-b")
    second.acquire()
    assert second.epoch == 4 and second.took_over is None
    second.release()


def test_store_choice(spark, tmp_path):
    assert isinstance(store_for(spark, str(tmp_path)), LocalStore)
    assert isinstance(store_for(spark, tmp_path.as_uri()), LocalStore)
    assert store_for(None, tmp_path.as_uri()).folder == str(tmp_path / LOCK_DIR)
    with pytest.raises(ValueError, match="needs a SparkSession"):
        store_for(None, "hdfs://namenode/warehouse")
