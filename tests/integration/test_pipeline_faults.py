"""The pipeline killed with kill -9 mid-stage, then re-run, equals an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from moviegraph.config import PROJECT_ROOT

TABLES = ("ratings", "movies", "item_counts", "pair_counts", "edges", "vertices", "walks",
          "vocab")


def _pipeline_cmd(root: Path, data: Path) -> list[str]:
    return [sys.executable, "-m", "moviegraph", "pipeline", "--until", "walks", "--quiet",
            "--set", f"warehouse.root={root}", "--set", "ingest.dataset=path",
            "--path", str(data), "--set", "spark.master=local[2]",
            "--set", "spark.shuffle_partitions=2", "--set", "spark.driver_memory=1g",
            "--set", "pairs.min_rating=3.5", "--set", "edges.min_weight=0",
            "--set", "walks.num_walks=2", "--set", "walks.walk_length=10"]


def _table(root: Path, name: str) -> pa.Table:
    from deltalake import DeltaTable

    table = DeltaTable(str(root / name)).to_pyarrow_table()
    keys = [c for c in table.column_names if not pa.types.is_list(table.schema.field(c).type)]
    return table.sort_by([(k, "ascending") for k in keys])


@pytest.fixture(scope="module")
def small_ratings(tmp_path_factory) -> Path:
    from moviegraph.sources.synth import generate

    out = tmp_path_factory.mktemp("synth")
    generate(out, ratings=20_000, seed=3, progress=False)
    return out


def test_killed_pipeline_resumes_to_the_same_tables(small_ratings, tmp_path):
    reference = tmp_path / "reference"
    done = subprocess.run(_pipeline_cmd(reference, small_ratings), capture_output=True,
                          text=True, timeout=900, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_pipeline_cmd(killed, small_ratings), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                            cwd=PROJECT_ROOT)
    try:
        for line in proc.stdout:
            if line.startswith("[stage] edges started"):
                time.sleep(1.5)  # inside the edges stage: pair counts read, edges being built
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (killed / "_moviegraph.lock").exists(), "the killed run should leave its lock"
    assert not (killed / "walks").exists()

    rerun = subprocess.run(_pipeline_cmd(killed, small_ratings), capture_output=True,
                           text=True, timeout=900, cwd=PROJECT_ROOT)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "[stage] ingest skipped" in rerun.stdout
    assert "[stage] pairs skipped" in rerun.stdout
    assert "[stage] walks done" in rerun.stdout
    for name in TABLES:
        assert _table(killed, name).equals(_table(reference, name)), f"{name} differs"
    assert not (killed / "_moviegraph.lock").exists()
