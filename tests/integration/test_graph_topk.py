"""edges.min_count and edges.top_k of the edges stage against plain-Python references."""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict

import numpy as np

from moviegraph import config
from moviegraph.runs import StageRun
from moviegraph.stages.edges import run_edges
from moviegraph.stages.pairs import run_pairs
from moviegraph.tables import SCHEMAS


def _run(spark, wh, fn, *sets: str):
    cfg = config.load(None, ["pairs.ratings=all", "edges.weighting=pmi", *sets])
    run = StageRun(stage=fn.__name__, run_id="test", config_hash="test")
    summary = fn(spark, cfg, wh, run)
    assert isinstance(summary, str) and summary.count("\n") < 25
    return run


def _edges(wh, version):
    t = wh.read("edges", version).toArrow()
    cols = [t.column(c).to_pylist() for c in ("src", "dst", "pmi", "n")]
    return {(s, d): (p, n) for s, d, p, n in zip(*cols, strict=True)}


def _plain_counts(rows):
    """Item and pair counts of every rating, plainly: (Counter, Counter)."""
    by_user = defaultdict(set)
    for user, movie, _ in rows:
        by_user[user].add(movie)
    item, pair = Counter(), Counter()
    for movies in by_user.values():
        item.update(movies)
        pair.update(itertools.combinations(sorted(movies), 2))
    return item, pair


def _counts_reference(rows, min_weight, min_count):
    """Edges of the recipe, plainly, with the min_count rule: {(a, b): n}."""
    item, pair = _plain_counts(rows)
    d = math.log(sum(item.values()))
    out = {}
    for (x, y), n in pair.items():
        weight = (math.log(n) - math.log(item[x]) - math.log(item[y]) + d) * n
        if weight >= min_weight and n >= min_count:
            out[(x, y)] = n
    return out


def _top_k_reference(edges, k):
    """Keep an edge when it is among the k best of either end by (pmi desc, other asc)."""
    neighbours = defaultdict(list)
    for (a, b), (pmi, _) in edges.items():
        neighbours[a].append((-pmi, b))
        neighbours[b].append((-pmi, a))
    keep = set()
    for node, lst in neighbours.items():
        for _, other in sorted(lst)[:k]:
            keep.add((min(node, other), max(node, other)))
    return keep


def test_min_count_and_top_k_match_references(spark, warehouse):
    rng = np.random.default_rng(7)
    # 40 users over 15 movies, skewed popularity: many equal counts, so PMI ties occur and
    # the tie-break is exercised.
    pop = np.linspace(3.0, 0.5, 15)
    rows = []
    for user in range(40):
        movies = rng.choice(15, size=rng.integers(2, 9), replace=False, p=pop / pop.sum())
        rows += [(user, int(m) + 1, 5.0) for m in movies]
    df = spark.createDataFrame([(u, m, r, 0) for u, m, r in rows], SCHEMAS["ratings"])
    warehouse.write("ratings", df)
    _run(spark, warehouse, run_pairs, "pairs.min_rating=1")

    # No top-k cut here (the default cuts at edges.top_k): the count floor alone.
    base = _run(spark, warehouse, run_edges, "edges.min_weight=0", "edges.min_count=3",
                "edges.top_k=0")
    full = _edges(warehouse, base.outputs["edges"])
    ref = _counts_reference(rows, 0.0, 3)
    assert {k: n for k, (_, n) in full.items()} == ref
    assert min(ref.values()) == 3 and len(ref) < len(_counts_reference(rows, 0.0, 1))
    pmis = Counter(p for p, _ in full.values())
    assert max(pmis.values()) > 1  # ties present

    for k in (1, 3):
        run = _run(spark, warehouse, run_edges, "edges.min_weight=0", "edges.min_count=3",
                   f"edges.top_k={k}")
        got = _edges(warehouse, run.outputs["edges"])
        want = _top_k_reference(full, k)
        assert set(got) == want
        assert all(got[e] == full[e] for e in got)  # rows unchanged, only fewer
        assert run.rows["edges"] == len(want) < len(full)
        assert run.notes["top_k"] == k and run.notes["min_count"] == 3


def test_cosine_weighting_and_its_top_k_match_references(spark, warehouse):
    """edges.weighting=cosine: weight = n / sqrt(n_a n_b), top_k by that weight (ties to
    the smaller neighbour id), against a plain-Python reference."""
    rng = np.random.default_rng(11)
    pop = np.linspace(3.0, 0.5, 15)
    rows = []
    for user in range(40):
        movies = rng.choice(15, size=rng.integers(2, 9), replace=False, p=pop / pop.sum())
        rows += [(user, int(m) + 1, float(rng.integers(1, 6))) for m in movies]
    df = spark.createDataFrame([(u, m, r, 0) for u, m, r in rows], SCHEMAS["ratings"])
    warehouse.write("ratings", df)
    _run(spark, warehouse, run_pairs, "pairs.min_rating=1")
    item, pair = _plain_counts(rows)
    cosine = {e: n / math.sqrt(item[e[0]] * item[e[1]]) for e, n in pair.items()}
    for k in (0, 2):
        run = _run(spark, warehouse, run_edges, "edges.weighting=cosine", "edges.min_count=1",
                   f"edges.top_k={k}")
        t = warehouse.read("edges", run.outputs["edges"]).toArrow()
        got = {(s, d): w for s, d, w in zip(t.column("src").to_pylist(),
                                            t.column("dst").to_pylist(),
                                            t.column("weight").to_pylist(), strict=True)}
        want = set(cosine) if k == 0 else _top_k_reference(
            {e: (w, 0) for e, w in cosine.items()}, k)
        assert set(got) == want
        assert all(abs(got[e] - cosine[e]) < 1e-12 for e in got)
        assert run.notes["weighting"] == "cosine"
