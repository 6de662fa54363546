"""The ``walks`` stage: ``edges`` -> ``walks`` and ``vocab`` (node2vec, two modes).

- broadcast: the driver reads ``edges`` as Arrow, builds the CSR over tokens and ships
  it (``walks/ship.py``); tasks walk their share of the starts (``walks/broadcast.py``).
- partitioned: adjacency lists stay distributed; walkers are joined with them step by
  step (``walks/partitioned.py``). Same walks, walk for walk.

``walks.mode = "auto"`` picks one by size (:func:`moviegraph.walks.spark.choose_mode`); the
choice and its reason are logged and recorded. ``vocab`` is tallied by the walk tasks as
they write (``walks/counts.py``), so the walks are never read back.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pyarrow.compute as pc
from pyspark.sql import SparkSession

from moviegraph.config import Config, WalksConfig
from moviegraph.errors import InputError
from moviegraph.runs import StageRun, input_versions
from moviegraph.stages.base import Stage
from moviegraph.tables import Warehouse
from moviegraph.walks.broadcast import broadcast_walks
from moviegraph.walks.counts import token_counter
from moviegraph.walks.partitioned import partitioned_walks
from moviegraph.walks.ship import ship_graph
from moviegraph.walks.spark import choose_mode, task_memory_bytes, vertex_ids, vocab_frame
from moviegraph.walks.vocab import EdgeListError, build_graph, csr_nbytes

log = logging.getLogger("moviegraph")


@dataclass
class WalksResult:
    """What the walks stage produced."""

    mode: str
    reason: str
    num_nodes: int
    num_edges: int  # edges rows read
    csr_bytes: int
    walks: int
    steps: int
    walk_seconds: float
    versions: dict[str, int]
    phases: dict[str, float]  # seconds per phase (read, build, ship, walk + write, vocab)

    def summary(self, cfg: WalksConfig) -> str:
        """One screen of what happened."""
        rate = self.steps / self.walk_seconds if self.walk_seconds else 0.0
        return "\n".join([
            f"walks: mode {self.mode} ({self.reason})",
            f"  graph: {self.num_nodes:,} vertices, {self.num_edges:,} edge rows, "
            f"CSR {self.csr_bytes / 2**20:,.1f} MiB, "
            f"{'directed' if cfg.directed else 'undirected'}",
            f"  {self.walks:,} walks ({cfg.num_walks} per vertex, {cfg.walk_length} nodes max), "
            f"p={cfg.p:g} q={cfg.q:g} seed={cfg.seed}",
            f"  {self.steps:,} steps in {self.walk_seconds:.1f}s = {rate:,.0f} steps/s "
            f"(walks written, end to end)",
            "  seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.phases.items()),
            f"  tables: walks v{self.versions['walks']}, vocab v{self.versions['vocab']}",
        ])


def generate_walks(spark: SparkSession, wh: Warehouse, cfg: WalksConfig,
                   run: StageRun | None = None) -> WalksResult:
    """Read ``edges``, write ``walks`` and ``vocab``; fill ``run`` (inputs, outputs, rows, notes).

    Raises:
        InputError: the edges table is empty or inconsistent (conflicting duplicates,
            bad weights).
    """
    inputs = input_versions(wh, "edges")
    # Weight-0 edges (pmi exactly 0, kept by edges.min_weight <= 0) carry no probability
    # mass: no walk can take them, so they are left out of the graph.
    # The row count comes from the Delta log's file statistics (no scan, no Spark job); it
    # bounds the graph's size for the mode choice, the walk graph itself drops weight 0.
    num_edges = wh.row_count("edges", inputs["edges"])
    if num_edges == 0:
        raise InputError("the edges table is empty: no graph to walk (check edges.min_weight "
                         "and the pairs/edges stages' output)")
    parts = cfg.partitions or spark.sparkContext.defaultParallelism
    threads = int(spark.sparkContext.getConf().get("spark.task.cpus", "1"))
    entries = num_edges if cfg.directed else 2 * num_edges
    # An upper bound before anything is collected: a graph has at most ``entries`` vertices
    # with edges (undirected); the exact size is recorded once the CSR exists.
    estimate = csr_nbytes(entries, entries)
    mode, reason = choose_mode(cfg, estimate, *task_memory_bytes(spark))
    log.info("walks: %s mode (%s)", mode, reason)

    t0 = time.perf_counter()
    phases: dict[str, float] = {}
    shipped = None
    try:
        if mode == "broadcast":
            # delta-rs reads the files straight into Arrow on the driver (Spark otherwise).
            table = wh.read_arrow("edges", ["src", "dst", "weight"], inputs["edges"])
            table = table.filter(pc.not_equal(table.column("weight"), 0.0))
            phases["read edges"] = time.perf_counter() - t0
            graph, movie_ids = build_graph(table.column("src").to_numpy(),
                                           table.column("dst").to_numpy(),
                                           table.column("weight").to_numpy(), cfg.directed)
            del table
            t1 = time.perf_counter()
            phases["build graph"] = t1 - t0 - phases["read edges"]
            estimate = graph.nbytes
            shipped = ship_graph(spark, graph, movie_ids)
            phases["ship graph"] = time.perf_counter() - t1
            counter = token_counter(spark.sparkContext, len(movie_ids))
            df = broadcast_walks(spark, graph, shipped, cfg.num_walks, cfg.walk_length,
                                 cfg.p, cfg.q, cfg.seed, parts, threads, counter)
        else:
            edges = wh.read("edges", inputs["edges"]).select("src", "dst", "weight").where(
                "weight != 0")
            movie_ids = vertex_ids(edges)
            if len(movie_ids) == 0:
                raise EdgeListError("every edge has weight 0: no graph to walk")
            estimate = csr_nbytes(len(movie_ids), entries)
            counter = token_counter(spark.sparkContext, len(movie_ids))
            df = partitioned_walks(spark, edges, movie_ids, cfg.num_walks, cfg.walk_length,
                                   cfg.p, cfg.q, cfg.seed, parts, cfg.directed, counter)
            phases["adjacency + steps"] = time.perf_counter() - t0  # steps run eagerly
        t1 = time.perf_counter()
        walks_version = wh.write("walks", df)
        phases["walk + write"] = time.perf_counter() - t1
    except (EdgeListError, ValueError) as exc:
        raise InputError(f"edges v{inputs['edges']}: {exc}") from None
    finally:
        if shipped is not None:
            shipped.release()
    walk_seconds = time.perf_counter() - t0

    counts = counter.value
    num_walks = len(movie_ids) * cfg.num_walks
    if int(counts.sum()) < num_walks:  # every walk holds its start at least
        raise RuntimeError(f"walks: the walk tasks reported {int(counts.sum()):,} nodes for "
                           f"{num_walks:,} walks; token counts were lost")
    t1 = time.perf_counter()
    vocab_version = wh.write("vocab", vocab_frame(spark, counts, movie_ids))
    phases["vocab"] = time.perf_counter() - t1
    result = WalksResult(mode=mode, reason=reason, num_nodes=len(movie_ids),
                         num_edges=num_edges, csr_bytes=estimate, walks=num_walks,
                         steps=int(counts.sum()) - num_walks, walk_seconds=walk_seconds,
                         versions={"walks": walks_version, "vocab": vocab_version},
                         phases={k: round(v, 3) for k, v in phases.items()})
    if run is not None:
        run.inputs.update(inputs)
        run.outputs.update(result.versions)
        run.rows.update({"walks": num_walks, "steps": result.steps, "vocab": len(movie_ids)})
        run.notes.update({
            "mode": mode, "mode_reason": reason, "p": cfg.p, "q": cfg.q, "seed": cfg.seed,
            "num_walks": cfg.num_walks, "walk_length": cfg.walk_length,
            "directed": cfg.directed, "partitions": parts, "csr_bytes": estimate,
            "walk_seconds": round(walk_seconds, 3), "phase_seconds": result.phases,
            "steps_per_second": round(result.steps / walk_seconds, 1) if walk_seconds else None,
        })
    return result


def run_walks(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """edges -> walks, vocab (node2vec walks, broadcast or partitioned mode)."""
    return generate_walks(spark, wh, cfg.walks, run).summary(cfg.walks)


STAGE = Stage(
    name="walks", summary="node2vec walks over the edges graph -> walks, vocab",
    reads=("edges",), writes=("walks", "vocab"),
    writes_doc="`walks(walk_id, start, round, path array<int>)` (node2vec, movie ids), "
               "`vocab(token, movie_id, count)`",
    sections=("walks",), run=run_walks)
