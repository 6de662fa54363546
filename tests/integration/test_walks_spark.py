"""The walks stage on local Spark: fidelity, determinism, mode equality, vocab, errors.

Kept quick: the kernel's full (graph x (p, q) x method) chi-square matrix lives in
tests/unit/test_walk_kernel.py. Here every graph is walked through Spark for every
(p, q) in broadcast mode (short walks); partitioned mode (one Spark job per step) is run
on the 50-node graph for the two biased settings and on a directed graph, and must
give exactly the broadcast walks -- so its fidelity is that of the broadcast walks, and
one chi-square on its own output is checked as well.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from pyspark.sql import Row

from moviegraph.config import Config, WalksConfig
from moviegraph.errors import InputError
from moviegraph.stages.walks import generate_walks
from moviegraph.walks.broadcast import broadcast_walks
from moviegraph.walks.csr import CSRGraph
from moviegraph.walks.exact import transition_chi_square
from moviegraph.walks.partitioned import partitioned_walks
from moviegraph.walks.ship import SharedFiles, SparkBroadcast
from moviegraph.walks.spark import choose_mode
from moviegraph.walks.vocab import build_graph
from tests.graphs import GRAPHS, random_weighted, star, triangle_plus_tail

PQ = [(1.0, 1.0), (0.25, 4.0), (4.0, 0.25)]


# ---------------------------------------------------------------- graphs: tests/graphs.py


# (walks per vertex, walk length): enough transitions per context for the chi-square.
PLAN = {"triangle_tail": (400, 20), "star": (400, 20), "random50": (200, 20)}


def movie_id(token):
    """Movie ids unlike tokens but in the same order, so a token/id mix-up shows."""
    return 1000 + 7 * np.asarray(token)


def token_of(movie):
    return (np.asarray(movie) - 1000) // 7


def write_edges(warehouse, src, dst, w):
    rows = [Row(src=int(a), dst=int(b), weight=float(c), pmi=1.0, n=1)
            for a, b, c in zip(movie_id(src), movie_id(dst), w, strict=True)]
    df = warehouse.spark.createDataFrame(rows, "src int, dst int, weight double, pmi double, "
                                               "n long")
    return warehouse.write("edges", df)


def walk(warehouse, **overrides):
    """Run the stage; return (result, walks as a -1 padded token matrix in walk_id order, rows)."""
    cfg = WalksConfig(**{"mode": "broadcast", "partitions": 2, **overrides})
    result = generate_walks(warehouse.spark, warehouse, cfg)
    table = warehouse.read("walks").orderBy("walk_id").toArrow()
    rows = table.to_pylist()
    mat = np.full((len(rows), cfg.walk_length), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        mat[i, :len(r["path"])] = token_of(np.array(r["path"]))
    return result, mat, rows


def direct(spark, name, mode, partitions=2, directed=False, ship="files", **kw):
    """Walks of graph ``name`` from the mode's Spark function (no tables), by walk id.

    Broadcast mode ships the graph as memory-mapped files (what local masters use) or, with
    ``ship="broadcast"``, as a Spark broadcast variable (what clusters use)."""
    src, dst, w, _ = GRAPHS[name]() if isinstance(name, str) else name
    graph, mids = build_graph(movie_id(src), movie_id(dst), w, directed)
    args = (kw["num_walks"], kw["walk_length"], kw["p"], kw["q"], kw["seed"], partitions)
    if mode == "broadcast":
        shipped = (SharedFiles(graph, mids, None) if ship == "files"
                   else SparkBroadcast(spark, graph, mids))
        rows = broadcast_walks(spark, graph, shipped, *args).orderBy("walk_id").toArrow()
        shipped.release()
        return _matrix(rows.to_pylist(), kw["walk_length"])
    else:
        edges = spark.createDataFrame(
            [(int(a), int(b), float(c)) for a, b, c in
             zip(movie_id(src), movie_id(dst), w, strict=True)], "src int, dst int, weight double")
        df = partitioned_walks(spark, edges, mids, *args, directed=directed)
    return _matrix(df.orderBy("walk_id").toArrow().to_pylist(), kw["walk_length"])


def _matrix(rows, walk_length):
    """(walks as a -1 padded token matrix, rows)."""
    mat = np.full((len(rows), walk_length), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        mat[i, :len(r["path"])] = token_of(np.array(r["path"]))
    return mat, rows


def graph_of(name, directed=False):
    src, dst, w, n = GRAPHS[name]()
    return CSRGraph.from_edges(src, dst, w, n, directed=directed)


# ---------------------------------------------------------------- fidelity


@pytest.mark.parametrize("name", list(GRAPHS))
def test_broadcast_walks_match_exact_node2vec(spark, name):
    g = graph_of(name)
    rounds, length = PLAN[name]
    for p, q in PQ:
        walks, _ = direct(spark, name, "broadcast", num_walks=rounds, walk_length=length,
                          p=p, q=q, seed=5)
        chi2, dof, pval = transition_chi_square(walks, g, p, q)
        assert dof > 10
        assert pval > 1e-3, f"{name} p={p} q={q}: chi2={chi2:.1f} dof={dof} p={pval:.2e}"
        # Teeth: the same walks judged against a wrongly biased law must fail.
        wrong = (q, p) if p != q else (0.25, 4.0)
        assert transition_chi_square(walks, g, *wrong)[2] < 1e-6, (name, p, q)


def test_partitioned_walks_equal_broadcast_and_match_exact(spark):
    p, q = 0.25, 4.0
    g = graph_of("random50")
    kw = dict(num_walks=120, walk_length=12, p=p, q=q, seed=9)
    _, rows_b = direct(spark, "random50", "broadcast", **kw)
    walks_p, rows_p = direct(spark, "random50", "partitioned", partitions=3, **kw)
    assert rows_p == rows_b  # walk for walk, ids, starts and rounds included
    chi2, dof, pval = transition_chi_square(walks_p, g, p, q)
    assert dof > 10 and pval > 1e-3, (chi2, dof, pval)
    assert transition_chi_square(walks_p, g, q, p)[2] < 1e-6


def test_directed_sinks_same_in_both_modes(spark):
    # 0 -> 1 -> 2 (a sink), 3 -> 0, a chord 3 -> 1 and a cycle 1 <-> 4.
    src, dst = np.array([0, 1, 3, 3, 1, 4]), np.array([1, 2, 0, 1, 4, 1])
    graph = (src, dst, np.array([1.0, 2.0, 1.0, 3.0, 1.0, 0.5]), 5)
    kw = dict(num_walks=30, walk_length=8, p=0.5, q=2.0, seed=3, directed=True)
    walks_b, rows_b = direct(spark, graph, "broadcast", **kw)
    _, rows_p = direct(spark, graph, "partitioned", **kw)
    assert rows_p == rows_b
    edges = set(zip(src.tolist(), dst.tolist(), strict=True))
    lengths = (walks_b >= 0).sum(axis=1)
    for row in walks_b.tolist():
        path = [x for x in row if x >= 0]
        assert all((a, b) in edges for a, b in itertools.pairwise(path))
        if len(path) < 8:
            assert path[-1] == 2  # only the sink ends a walk early
    assert lengths.min() == 1 and lengths.max() == 8  # walks from 2 stop at once


# ---------------------------------------------------------------- determinism, ids, vocab


def test_same_walks_for_any_partitioning_and_rerun(warehouse):
    src, dst, w, n = random_weighted()
    write_edges(warehouse, src, dst, w)
    kw = dict(num_walks=4, walk_length=15, p=0.25, q=4.0, seed=42)
    _, _, one = walk(warehouse, partitions=1, **kw)
    _, _, seventeen = walk(warehouse, partitions=17, **kw)
    _, _, again = walk(warehouse, partitions=1, **kw)
    _, three = direct(warehouse.spark, "random50", "broadcast", partitions=3, **kw)
    _, spark_broadcast = direct(warehouse.spark, "random50", "broadcast", partitions=3,
                                ship="broadcast", **kw)
    assert one == seventeen == again == three == spark_broadcast
    _, other_seed = direct(warehouse.spark, "random50", "broadcast", partitions=3,
                           **{**kw, "seed": 43})
    assert [r["path"] for r in other_seed] != [r["path"] for r in one]

    # Ids and shape, checked plainly: walk_id = round * n + token(start), path starts there.
    vertices = sorted(set(movie_id(src).tolist()) | set(movie_id(dst).tolist()))
    assert len(vertices) == n - 1  # this graph has one isolated node, not in `edges`
    assert [r["walk_id"] for r in one] == list(range(len(vertices) * 4))
    for r in one:
        assert r["walk_id"] == r["round"] * len(vertices) + vertices.index(r["start"])
        assert r["path"][0] == r["start"] and len(r["path"]) == 15


@pytest.mark.parametrize("mode,partitions", [("broadcast", 3), ("partitioned", 2)])
def test_vocab_tokens_and_counts(warehouse, mode, partitions):
    """The walk tasks' own token counts (an accumulator) equal a count of the written walks."""
    src, dst, w, _ = random_weighted(30, 0.2, seed=8)
    write_edges(warehouse, src, dst, w)
    result, _, rows = walk(warehouse, num_walks=3, walk_length=10, mode=mode,
                           partitions=partitions)
    vocab = warehouse.read("vocab").orderBy("token").toArrow().to_pylist()
    vertices = sorted(set(movie_id(src).tolist()) | set(movie_id(dst).tolist()))
    assert [v["token"] for v in vocab] == list(range(len(vertices)))
    assert [v["movie_id"] for v in vocab] == vertices
    counts: dict[int, int] = {}
    for r in rows:
        for m in r["path"]:
            counts[m] = counts.get(m, 0) + 1
    assert [v["count"] for v in vocab] == [counts.get(m, 0) for m in vertices]
    assert result.steps == sum(counts.values()) - len(rows)


def test_edges_stored_both_ways_give_same_walks(spark):
    src, dst, w, n = triangle_plus_tail()
    kw = dict(num_walks=5, walk_length=10, p=4.0, q=0.25, seed=1)
    _, once = direct(spark, "triangle_tail", "broadcast", **kw)
    twice = (np.concatenate([src, dst]), np.concatenate([dst, src]), np.concatenate([w, w]), n)
    _, both = direct(spark, twice, "broadcast", **kw)
    _, both_p = direct(spark, twice, "partitioned", **kw)
    assert once == both == both_p


# ---------------------------------------------------------------- errors, mode, run record


def test_empty_and_conflicting_edges_are_clear_errors(warehouse):
    write_edges(warehouse, np.array([], dtype=int), np.array([], dtype=int), np.array([]))
    with pytest.raises(InputError, match="edges table is empty"):
        walk(warehouse)
    write_edges(warehouse, np.array([0, 1]), np.array([1, 0]), np.array([1.0, 2.0]))
    with pytest.raises(InputError, match="different weights"):
        walk(warehouse)
    with pytest.raises(InputError, match="different weights"):
        walk(warehouse, mode="partitioned")
    write_edges(warehouse, np.array([0]), np.array([1]), np.array([-1.0]))
    with pytest.raises(InputError, match="weight"):
        walk(warehouse)
    with pytest.raises(InputError, match="finite and > 0"):
        walk(warehouse, mode="partitioned")


def test_auto_mode_choice():
    cfg = WalksConfig(broadcast_max_bytes=1000)
    assert choose_mode(cfg, 999, 10**9, "x")[0] == "broadcast"
    mode, reason = choose_mode(cfg, 1000, 10**9, "x")
    assert mode == "partitioned" and "broadcast_max_bytes" in reason
    mode, reason = choose_mode(WalksConfig(), 10**8, 10**8, "1 slot")
    assert mode == "partitioned" and "task memory (1 slot)" in reason
    assert choose_mode(WalksConfig(mode="broadcast"), 10**12, 1, "x")[0] == "broadcast"


def test_stage_run_record(warehouse, capsys):
    from moviegraph.pipeline import run_stage

    src, dst, w, n = star()
    edges_version = write_edges(warehouse, src, dst, w)
    cfg = Config()
    cfg.walks = WalksConfig(num_walks=2, walk_length=5, p=0.5, q=2.0,
                            broadcast_max_bytes=64)  # auto mode -> partitioned
    run_stage("walks", warehouse.spark, cfg, warehouse, "test-run")
    out = capsys.readouterr().out
    assert "mode partitioned (auto: CSR" in out and "steps/s" in out
    rec = warehouse.read("runs").filter("stage = 'walks'").first()
    assert rec["status"] == "succeeded"
    assert rec["inputs"] == {"edges": edges_version}
    assert rec["outputs"] == {"walks": warehouse.version("walks"),
                              "vocab": warehouse.version("vocab")}
    assert rec["rows"] == {"walks": 2 * n, "steps": 2 * n * 4, "vocab": n}
    notes = json.loads(rec["notes"])
    assert notes["mode"] == "partitioned" and notes["p"] == 0.5 and notes["q"] == 2.0
