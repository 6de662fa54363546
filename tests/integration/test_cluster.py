"""The whole pipeline on a real Spark standalone cluster (a master and two workers, each
its own JVM on 127.0.0.1), submitted as a user would: ``./spark-submit.sh --master
spark://...`` from a folder that is not the checkout, the package shipped as a zip and the
executors' Python as a venv-pack archive.

What it shows: the application registers with that master, its tasks run on two
executors (separate processes), every table equals a ``local[2]`` run's row for row, and
``train.distributed`` runs its DDP processes on the executors with the one-process result.
The runs themselves start in the background at the session's start
(``tests/integration/conftest.py``: ``cluster_started``); these tests read what they left.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.integration.tables_compare import delta_table

# Columns that name a run, or when it happened, rather than what it computed.
RUN_COLUMNS = {"run_id", "created_at", "started_at", "finished_at", "ts_written", "seconds"}
# Keys of metric maps that time the run (throughput) rather than measure its result.
TIMING_KEY_SUFFIXES = ("_per_s", "_seconds")
# Tables that describe the runs themselves.
BOOKKEEPING = {"runs"}
# Floats equal within this; they come from the same seeds on the same code, but the
# summation order of a Spark aggregate may follow the partitioning.
FLOAT_TOLERANCE = 1e-5


def _tables(root: Path) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/_delta_log"))


def _canonical(root: Path, name: str) -> pa.Table:
    table = delta_table(root, name)
    table = table.drop_columns([c for c in table.column_names if c in RUN_COLUMNS])
    for i, column in enumerate(table.column_names):
        if pa.types.is_map(table.schema.field(column).type):
            # A map as sorted text: timing entries dropped, values rounded to the tolerance.
            text = [None if m is None else json.dumps(sorted(
                (k, round(v, 5) if isinstance(v, float) else v) for k, v in m
                if not k.endswith(TIMING_KEY_SUFFIXES))) for m in table[column].to_pylist()]
            table = table.set_column(i, column, pa.array(text, pa.string()))
    keys = [c for c in table.column_names
            if not pa.types.is_nested(table.schema.field(c).type)
            and not pa.types.is_floating(table.schema.field(c).type)]
    return table.sort_by([(k, "ascending") for k in keys]) if keys else table


def _assert_close_tables(actual: pa.Table, expected: pa.Table, name: str) -> None:
    assert actual.schema.names == expected.schema.names, f"{name}: columns differ"
    assert actual.num_rows == expected.num_rows, (
        f"{name}: {actual.num_rows} rows vs {expected.num_rows}")
    for column in actual.column_names:
        a, b = actual[column].combine_chunks(), expected[column].combine_chunks()
        kind = actual.schema.field(column).type
        if pa.types.is_floating(kind) or (pa.types.is_list(kind)
                                          and pa.types.is_floating(kind.value_type)):
            flat_a = pc.list_flatten(a) if pa.types.is_list(kind) else a
            flat_b = pc.list_flatten(b) if pa.types.is_list(kind) else b
            np.testing.assert_allclose(flat_a.to_numpy(zero_copy_only=False),
                                       flat_b.to_numpy(zero_copy_only=False),
                                       atol=FLOAT_TOLERANCE, err_msg=f"{name}.{column}")
        else:
            assert a.equals(b), f"{name}.{column} differs"


def _event_logs(folder: Path) -> list[list[dict]]:
    """The events of each application logged under ``folder``."""
    return [[json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            for path in sorted(folder.rglob("*"))
            if path.is_file() and not path.name.startswith((".", "appstatus"))]


def _task_executors(events: list[dict], barrier_only: bool = False) -> dict[str, int]:
    """Executor id -> number of finished tasks (of barrier stages only, if asked)."""
    barrier = {e["Stage Info"]["Stage ID"] for e in events
               if e["Event"] == "SparkListenerStageSubmitted"
               and any(r.get("Barrier") for r in e["Stage Info"].get("RDD Info", []))}
    counts: dict[str, int] = {}
    for e in events:
        if e["Event"] == "SparkListenerTaskEnd" and (not barrier_only
                                                       or e["Stage ID"] in barrier):
            executor = e["Task Info"]["Executor ID"]
            counts[executor] = counts.get(executor, 0) + 1
    return counts


def test_application_registers_with_the_master_and_runs_on_two_executors(cluster_runs):
    cluster, done = cluster_runs.cluster, cluster_runs.pipeline
    logs = _event_logs(cluster_runs.events)
    assert len(logs) == 1, "one application"
    start = next(e for e in logs[0] if e["Event"] == "SparkListenerApplicationStart")
    apps = {a["id"] for a in cluster.applications()}
    assert start["App ID"] in apps, f"{start['App ID']} not among the master's {apps}"
    per_executor = _task_executors(logs[0])
    assert "driver" not in per_executor
    assert len(per_executor) == 2 and min(per_executor.values()) > 0, per_executor
    # Separate processes: each executor was added with its own host:port / process.
    added = [e for e in logs[0] if e["Event"] == "SparkListenerExecutorAdded"]
    assert len({e["Executor ID"] for e in added}) >= 2
    assert done.stdout.splitlines()[0].startswith(cluster.url) or cluster.url in done.stdout
    # spark-submit's --master is the session's master, not conf/local.toml's local[*]:
    # every stage ran on the cluster, as the runs table records.
    runs = delta_table(cluster_runs.root, "runs").to_pylist()
    assert runs and all(json.loads(r["notes"])["spark"]["master"] == cluster.url
                        for r in runs)
    assert {json.loads(r["notes"])["spark"]["app_id"] for r in runs} == {start["App ID"]}
    # Submitted off local mode, the job imports the package from the shipped zip, not the
    # source tree (spark-submit.sh ships it as --py-files; --ship does so in local mode).
    assert all(".zip" in json.loads(r["notes"])["package"] for r in runs), {
        json.loads(r["notes"])["package"] for r in runs}


def test_cluster_tables_equal_the_local_run(cluster_runs, reference_pipeline):
    local_run = reference_pipeline  # the same settings with a local[2] master
    root = cluster_runs.root
    names = _tables(root)
    assert names == _tables(local_run)
    for required in ("ratings", "pair_counts", "edges", "walks", "embeddings",
                     "similar_movies", "recommendations", "metrics"):
        assert required in names
    for name in sorted(set(names) - BOOKKEEPING):
        _assert_close_tables(_canonical(root, name), _canonical(local_run, name), name)
    # The report and the exports were written beside the warehouse, not in the
    # submitting folder or the checkout.
    assert any((root.parent / "reports").rglob("*.html"))
    assert any((root.parent / "exports").iterdir())
    assert not any((root.parent / "cwd").iterdir())


def test_distributed_training_runs_ddp_on_the_executors(cluster_runs):
    """``train --set train.distributed=true`` on the cluster, on a copy of the pipeline's
    warehouse: TorchDistributor starts the DDP processes as a barrier stage on the two
    executors; the model equals one process's within float noise."""
    from deltalake import DeltaTable

    root, done = cluster_runs.ddp_root, cluster_runs.ddp
    one_process = DeltaTable(str(cluster_runs.root / "embeddings")).version()
    assert done.returncode == 0, done.stderr[-3000:]
    [log] = _event_logs(cluster_runs.ddp_events)
    on = _task_executors(log, barrier_only=True)
    assert len(on) == 2 and "driver" not in on, f"DDP tasks ran on {on}"

    runs = DeltaTable(str(root / "runs")).to_pyarrow_table().to_pylist()
    trains = sorted((r for r in runs if r["stage"] == "train" and r["status"] == "succeeded"),
                    key=lambda r: r["started_at"])
    single, ddp = (json.loads(r["notes"])["models"]["mf"] for r in trains[-2:])
    assert ddp["distributed"] is True and ddp["ddp_processes_on"] == "executors"
    assert single["distributed"] is False
    # Same global batches, gradients averaged over the two halves: equal within noise.
    assert ddp["test_rmse"] == pytest.approx(single["test_rmse"], abs=0.01)
    one, two = (table[table["model"] == "mf"].sort_values("movie_id")
                for table in (delta_table(root, "embeddings", one_process).to_pandas(),
                              delta_table(root, "embeddings").to_pandas()))
    assert one["movie_id"].tolist() == two["movie_id"].tolist()
    np.testing.assert_allclose(np.stack(one["vector"]), np.stack(two["vector"]), atol=0.05)
