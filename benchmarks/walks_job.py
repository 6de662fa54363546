"""Benchmark: the `walks` stage end to end (broadcast and partitioned) vs the kernel alone.

Usage (from the repository root)::

    bash benchmarks/setup_peers.sh        # once: PecanPy in .venv-bench (optional)
    .venv/bin/python -m benchmarks.walks_job --graph ml100k           # min_weight 0 and 10
    .venv/bin/python -m benchmarks.walks_job --graph synthetic --nodes 60000 --edges 10000000 \
        --modes broadcast --peers

``ml100k``: MovieLens 100K through the project's own ingest -> pairs (min_rating 4) ->
edges stages, once per ``--min-weight``. ``synthetic``: benchmarks/walk_kernel.py's heavy-
tailed graph written straight to ``edges``. For each graph it prints, in walk steps per
second (a walk of L nodes has L - 1 steps):

- the kernel alone on one core (and two), and with ``--peers`` PecanPy (SparseOTF,
  PreComp; 1 and 2 workers) and the recipe's Python walker on a subset -- all by running
  benchmarks/walk_kernel.py on the same graph;
- the walks stage end to end on local Spark (``--master``, default local[2]), per mode:
  the walk phase (edges read, CSR build, walks written) and the whole stage (plus vocab),
  with the peak resident memory of the whole process tree (driver JVM + Python workers).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.data import add_walk_arguments
from benchmarks.tree_rss import PeakRSS

ROOT = Path(__file__).resolve().parents[1]


def ml100k_edges(spark, wh, min_weight: float) -> None:
    """ratings -> pairs -> edges with the project's stages (min_rating 4)."""
    from moviegraph.config import Config
    from moviegraph.pipeline import run_stage
    from moviegraph.sources.fetch import fetch
    from moviegraph.sources.ingest import ingest

    if not wh.exists("ratings"):
        ingest(spark, wh, str(fetch("ml-100k-recbole", ROOT / "data", quiet=True)))
    cfg = Config()
    cfg.pairs.min_rating = 4.0
    cfg.pairs.ratings = "all"
    cfg.edges.min_count, cfg.edges.top_k = 1, 0  # the recipe's graph
    cfg.edges.min_weight = min_weight
    for stage in ("pairs", "edges"):
        run_stage(stage, spark, cfg, wh, f"bench-{stage}")


def synthetic_edges(spark, wh, nodes: int, edges: int, seed: int) -> None:
    """benchmarks/walk_kernel.py's heavy-tailed graph as the `edges` table."""
    import pyarrow as pa

    from benchmarks.walk_kernel import synthetic_graph

    src, dst, w = synthetic_graph(nodes, edges, 0.6, seed)
    lo, hi = np.minimum(src, dst).astype(np.int32), np.maximum(src, dst).astype(np.int32)
    table = pa.table({"src": lo, "dst": hi, "weight": w, "pmi": w,
                      "n": np.ones(len(w), dtype=np.int64)})
    wh.write("edges", spark.createDataFrame(table))


def npz_edges(spark, wh, path: Path) -> None:
    """An edge list saved by ``edges_npz`` (or benchmarks/graph_scale.py) as the `edges` table."""
    import pyarrow as pa

    z = np.load(path)
    src, dst, w = z["src"], z["dst"], z["weight"]
    table = pa.table({"src": np.minimum(src, dst).astype(np.int32),
                      "dst": np.maximum(src, dst).astype(np.int32), "weight": w, "pmi": w,
                      "n": np.ones(len(w), dtype=np.int64)})
    wh.write("edges", spark.createDataFrame(table).repartition(8))


def edges_npz(wh, path: Path) -> None:
    """The edges table as walk_kernel.py's --npz input (tokens, like the stage's CSR)."""
    from moviegraph.walks.vocab import build_graph

    t = wh.read("edges").select("src", "dst", "weight").toArrow()
    g, ids = build_graph(t.column("src").to_numpy(), t.column("dst").to_numpy(),
                         t.column("weight").to_numpy(), directed=False)
    src = np.repeat(np.arange(g.num_nodes, dtype=np.int32), np.diff(g.indptr))
    once = src <= g.indices  # each undirected edge once
    np.savez(path, src=src[once], dst=g.indices[once], weight=g.weights[once],
             num_nodes=len(ids))


def run_job(spark, wh, mode: str, a: argparse.Namespace) -> str:
    """One walks stage run; a result line."""
    from moviegraph.config import WalksConfig
    from moviegraph.stages.walks import generate_walks

    cfg = WalksConfig(num_walks=a.num_walks, walk_length=a.walk_length, p=a.p, q=a.q,
                      mode=mode, partitions=a.partitions)
    load0 = os.getloadavg()[0]
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        r = generate_walks(spark, wh, cfg)
        total = time.perf_counter() - t0
    return (f"| walks stage, {mode} | {a.p:g},{a.q:g} | {a.master} | "
            f"{r.steps / r.walk_seconds:,.0f} | {r.steps / total:,.0f} | {r.steps:,} | "
            f"{r.walk_seconds:.1f} | {total:.1f} | {mem.peak / 2**20:,.0f} MiB | "
            f"{load0:.1f}/{os.getloadavg()[0]:.1f} | "
            + ", ".join(f"{k} {v:.1f}" for k, v in r.phases.items()) + " |")


def main(argv: list[str] | None = None) -> int:
    """Build the graph(s), run the kernel benchmark and the stage in each mode."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--graph", choices=["ml100k", "synthetic", "npz"], default="ml100k")
    ap.add_argument("--npz", type=Path, help="--graph npz: arrays src, dst, weight (e.g. the "
                    "25M synthetic ratings' graph saved by benchmarks/graph_scale.py --save-npz)")
    ap.add_argument("--min-weight", default="0,10", help="ml100k: edges.min_weight values")
    ap.add_argument("--nodes", type=int, default=60_000)
    ap.add_argument("--edges", type=int, default=10_000_000)
    ap.add_argument("--graph-seed", type=int, default=0)
    add_walk_arguments(ap)
    ap.add_argument("--modes", default="broadcast,partitioned")
    ap.add_argument("--partitions", type=int, default=0)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="8g")
    ap.add_argument("--repeat", type=int, default=2,
                    help="stage runs per mode (run 1 includes the session's warm-up)")
    ap.add_argument("--peers", action="store_true",
                    help="also PecanPy and the recipe's Python walker (walk_kernel.py)")
    ap.add_argument("--peer-max-walks", type=int, default=20_000)
    a = ap.parse_args(argv)

    from moviegraph.config import SparkConfig
    from moviegraph.session import build_session
    from moviegraph.tables import Warehouse

    spark = build_session(SparkConfig(master=a.master, driver_memory=a.driver_memory,
                                      shuffle_partitions=8, progress=False), "walks-bench")
    variants = ([float(x) for x in a.min_weight.split(",")] if a.graph == "ml100k"
                else [None])
    with tempfile.TemporaryDirectory(prefix="walks-bench-") as tmp:
        wh = Warehouse(spark, f"{tmp}/warehouse")
        for mw in variants:
            t0 = time.perf_counter()
            if a.graph == "ml100k":
                ml100k_edges(spark, wh, mw)
                label = f"MovieLens 100K, min_rating 4, min_weight {mw:g}"
            elif a.graph == "npz":
                npz_edges(spark, wh, a.npz)
                label = f"edge list {a.npz}"
            else:
                synthetic_edges(spark, wh, a.nodes, a.edges, a.graph_seed)
                label = f"synthetic heavy-tailed, {a.nodes:,} nodes, {a.edges:,} edges"
            print(f"\n## {label} (edges built in {time.perf_counter() - t0:.0f}s)", flush=True)
            npz = Path(tmp) / "graph.npz"
            edges_npz(wh, npz)
            cmd = [sys.executable, "-m", "benchmarks.walk_kernel", "--npz",
                   str(npz), "--num-walks", str(a.num_walks), "--walk-length",
                   str(a.walk_length), "--pq", f"{a.p},{a.q}", "--threads-list", "1,2",
                   "--peer-max-walks", str(a.peer_max_walks)]
            if not a.peers:
                cmd += ["--skip-pecanpy", "--python-walks", "0"]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
            lines = [ln for ln in out.stdout.splitlines()
                     if a.peers or "recipe Python" not in ln]
            print("\n".join(lines) or out.stderr[-2000:], flush=True)
            print("\n| job | p,q | master | walk-phase steps/s | stage steps/s | steps "
                  "| walk s | stage s | peak RSS (tree) | load before/after | phases (s) |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
            for mode in a.modes.split(","):
                for rep in range(a.repeat):  # the first run in a session pays JIT/worker start
                    line = run_job(spark, wh, mode, a)
                    print(line.replace(f"| walks stage, {mode} |",
                                       f"| walks stage, {mode}, run {rep + 1} |"), flush=True)
    print("\nwalk phase: edges read + CSR + walks written to Delta; stage: + vocab table.")
    print("peak RSS (tree): driver JVM + Python workers + this process, sampled every 0.2s.")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
