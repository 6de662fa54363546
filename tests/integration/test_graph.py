"""pairs + edges stages against the recipe written as a plain Python dict loop."""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter, defaultdict

import numpy as np
import pytest
from pyspark.sql import functions as F

from moviegraph import config
from moviegraph.graph import GraphFramesUnavailable, load_graphframe
from moviegraph.graph.stats import components_driver, components_spark
from moviegraph.runs import StageRun
from moviegraph.sources.ingest import ingest
from moviegraph.stages.edges import run_edges
from moviegraph.stages.pairs import run_pairs
from moviegraph.tables import SCHEMAS


def _run(spark, wh, fn, *sets: str, **kwargs):
    # The recipe: PMI weights, ratings >= 4 unless a test says otherwise, every rating of the
    # data (no split), no pair-count floor, no top-k cut (tests of those say so).
    cfg = config.load(None, ["pairs.ratings=all", "pairs.min_rating=4", "edges.weighting=pmi",
                             "edges.min_count=1", "edges.top_k=0", *sets])
    run = StageRun(stage=fn.__name__, run_id="test", config_hash="test")
    summary = fn(spark, cfg, wh, run, **kwargs)
    assert isinstance(summary, str) and summary.count("\n") < 25  # one screen
    return run, summary


def _write_ratings(spark, wh, rows):
    df = spark.createDataFrame([(u, m, float(r), 0) for u, m, r in rows], SCHEMAS["ratings"])
    wh.write("ratings", df)


def _ratings(wh):
    t = wh.read("ratings").select("user_id", "movie_id", "rating").toArrow()
    return tuple(zip(*(t.column(c).to_pylist() for c in t.column_names), strict=True))


@functools.lru_cache(maxsize=2)
def _reference_counts(rows: tuple, min_rating: float) -> tuple[Counter, Counter]:
    """Item and pair counts of the kept ratings, by plain loops.

    Cached: on ml-100k the pair loop is the slow part of the module, and three tests ask
    for the same (rows, min_rating); callers only read the counters."""
    by_user = defaultdict(set)
    for user, movie, rating in rows:
        if rating >= min_rating:
            by_user[user].add(movie)
    item, pair = Counter(), Counter()
    for movies in by_user.values():
        for m in movies:
            item[m] += 1
        for x, y in itertools.combinations(sorted(movies), 2):
            pair[(x, y)] += 1
    return item, pair


def reference(rows, min_rating, min_weight):
    """The recipe, plainly: kept ratings, pair and item counts, PMI, weight, threshold."""
    item, pair = _reference_counts(tuple(rows), min_rating)
    d = math.log(sum(item.values()))
    edges = {}
    for (x, y), n in pair.items():
        pmi = math.log(n) - math.log(item[x]) - math.log(item[y]) + d
        weight = pmi * n
        if weight >= min_weight:
            edges[(x, y)] = (weight, pmi, n)
    return item, pair, edges


def _table(wh, name):
    t = wh.read(name).toArrow()
    return {c: t.column(c).to_numpy() for c in t.column_names}


def _pairs_dict(wh):
    t = _table(wh, "pair_counts")
    assert np.all(t["movie_a"] < t["movie_b"])
    return dict(zip(zip(t["movie_a"].tolist(), t["movie_b"].tolist(), strict=True),
                    t["n"].tolist(), strict=True))


def _close(value: float, expected: float, rel: float, abs_: float) -> bool:
    """``value == pytest.approx(expected, rel=rel, abs=abs_)``, at a plain call's cost."""
    return abs(value - expected) <= max(rel * abs(expected), abs_)


def _check_against_reference(wh, rows, min_rating, min_weight):
    item, pair, edges = reference(rows, min_rating, min_weight)
    ic = _table(wh, "item_counts")
    assert dict(zip(ic["movie_id"].tolist(), ic["n"].tolist(), strict=True)) == dict(item)
    assert _pairs_dict(wh) == dict(pair)
    e = _table(wh, "edges")
    got = {(int(s), int(d)): (w, p, int(n)) for s, d, w, p, n in
           zip(e["src"], e["dst"], e["weight"], e["pmi"], e["n"], strict=True)}
    # An edge whose weight is within rounding of the threshold may fall either way.
    def borderline(key):
        w = edges[key][0] if key in edges else None
        if w is None:
            x, y = key
            n = pair[key]
            w = (math.log(n) - math.log(item[x]) - math.log(item[y])
                 + math.log(sum(item.values()))) * n
        return abs(w - min_weight) <= 1e-9 * max(1.0, abs(min_weight))

    assert {k for k in set(got) ^ set(edges) if not borderline(k)} == set()
    # Plain comparisons: pytest.approx costs ~20 us a call, and the ml-100k checks make
    # 1.57M of them (half a minute); the tolerances are approx's (relative to the
    # reference, or absolute).
    differ = [key for key in set(got) & set(edges)
              if got[key][2] != edges[key][2]
              or not _close(got[key][0], edges[key][0], rel=1e-9, abs_=1e-9)
              or not _close(got[key][1], edges[key][1], rel=1e-9, abs_=1e-12)]
    assert not differ, (f"{len(differ):,} edges differ from the reference, e.g. "
                        f"{differ[0]}: (weight, pmi, n) {got[differ[0]]} != {edges[differ[0]]}")
    _check_vertices(wh, item, got)
    return item, pair, edges


def _check_vertices(wh, item, edges):
    """degree, strength and components of `vertices` against plain loops over the edges."""
    deg, strength = Counter(), defaultdict(float)
    parent = {m: m for m in item}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for (x, y), (w, _, _) in edges.items():
        deg[x] += 1
        deg[y] += 1
        strength[x] += w
        strength[y] += w
        rx, ry = find(x), find(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)
    v = _table(wh, "vertices")
    assert sorted(v["movie_id"].tolist()) == sorted(item)
    for m, d, s, c in zip(v["movie_id"].tolist(), v["degree"].tolist(), v["strength"].tolist(),
                          v["component"].tolist(), strict=True):
        assert d == deg[m]
        assert s == pytest.approx(strength[m], rel=1e-9, abs=1e-9)
        assert c == find(m)


@pytest.fixture(scope="module")
def ml100k_rows(spark, ml100k_dir, tmp_path_factory):
    from moviegraph.tables import Warehouse

    wh = Warehouse(spark, str(tmp_path_factory.mktemp("ml100k") / "warehouse"))
    ingest(spark, wh, str(ml100k_dir))
    return wh, _ratings(wh)


@pytest.mark.parametrize("min_rating,min_weights", [(5, (10,)), (4, (10, 0))])
def test_ml100k_matches_recipe(spark, ml100k_rows, min_rating, min_weights):
    wh, rows = ml100k_rows
    run, summary = _run(spark, wh, run_pairs, f"pairs.min_rating={min_rating}")
    assert run.rows["pairs_counted"] == sum(
        math.comb(n, 2) for n in Counter(u for u, _, r in rows if r >= min_rating).values())
    assert "exact" in summary and run.notes["exact"] is True
    for min_weight in min_weights:
        erun, esummary = _run(spark, wh, run_edges, f"edges.min_weight={min_weight}")
        assert "largest" in esummary
        _, _, edges = _check_against_reference(wh, rows, min_rating, min_weight)
        assert erun.rows["edges"] == pytest.approx(len(edges), abs=2)
        assert 0 < erun.notes["largest_share"] <= 1
    if min_rating == 5:  # the Spark label-propagation fallback agrees with the driver path
        nodes, edges_df = wh.read("item_counts"), wh.read("edges")
        by_spark = {r["movie_id"]: r["component"]
                    for r in components_spark(nodes, edges_df).collect()}
        by_driver = {r["movie_id"]: r["component"]
                     for r in components_driver(spark, nodes, edges_df).collect()}
        assert by_spark == by_driver


def test_ml100k_same_output_for_other_blocks_and_partitions(spark, ml100k_rows):
    wh, rows = ml100k_rows
    _, pair, _ = reference(rows, 5, 10)
    old = spark.conf.get("spark.sql.shuffle.partitions")
    try:
        spark.conf.set("spark.sql.shuffle.partitions", "5")
        run, _ = _run(spark, wh, run_pairs, "pairs.min_rating=5", "pairs.block_size=37")
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", old)
    assert run.notes["partitions"] == 5 and 1 <= run.rows["tasks"] <= 5
    assert run.notes["chunks"] > run.rows["tasks"]  # 37² cells per kernel call at most
    assert _pairs_dict(wh) == dict(pair)


# Hand-made edge cases: user 1 has one movie; movie 10 is rated by everyone; ratings
# exactly at min_rating (5.0, 4.0) next to ones just below (4.5, 3.5); users 2/3 and 4/5
# rate symmetric sets, so several pairs tie on weight.
EDGE_ROWS = [
    (1, 10, 5.0),
    (2, 10, 5.0), (2, 20, 5.0), (2, 30, 5.0), (2, 40, 4.5),
    (3, 10, 5.0), (3, 20, 5.0), (3, 30, 5.0), (3, 50, 4.0),
    (4, 10, 5.0), (4, 60, 5.0), (4, 70, 5.0),
    (5, 10, 5.0), (5, 60, 5.0), (5, 70, 5.0), (5, 80, 3.5),
    (6, 10, 4.0), (6, 80, 4.0), (6, 90, 4.5),
    (7, 90, 1.0),
]


@pytest.mark.parametrize("min_rating,min_weight", [(5, 0), (5, -100), (4, 1), (4, 10)])
def test_hand_made_edge_cases(spark, warehouse, min_rating, min_weight):
    _write_ratings(spark, warehouse, EDGE_ROWS)
    _run(spark, warehouse, run_pairs, f"pairs.min_rating={min_rating}", "pairs.block_size=2")
    erun, _ = _run(spark, warehouse, run_edges, f"edges.min_weight={min_weight}")
    item, pair, _ = _check_against_reference(warehouse, EDGE_ROWS, min_rating, min_weight)
    assert item[10] == (6 if min_rating == 4 else 5) and (min_rating == 4) == (50 in item)
    assert (10, 20) in pair and pair[(10, 20)] == 2
    if min_weight == -100:  # every pair is an edge, the two tied groups alike
        assert erun.rows["edges"] == len(pair)
    if min_weight == 10:  # several components: the Spark loop names them as the reference
        comp = {r["movie_id"]: r["component"] for r in components_spark(
            warehouse.read("item_counts"), warehouse.read("edges")).collect()}
        vert = _table(warehouse, "vertices")
        assert comp == dict(zip(vert["movie_id"].tolist(), vert["component"].tolist(),
                                strict=True))
        assert len(set(comp.values())) > 1


def test_no_kept_rating_is_a_clear_error(spark, warehouse):
    _write_ratings(spark, warehouse, [(1, 1, 1.0), (1, 2, 2.0)])
    run, _ = _run(spark, warehouse, run_pairs, "pairs.min_rating=5")
    assert run.rows["pair_counts"] == 0
    with pytest.raises(ValueError, match="no kept ratings"):
        _run(spark, warehouse, run_edges)


def test_cap_is_reproducible_and_recorded(spark, warehouse):
    rng = np.random.default_rng(5)
    rows = [(u, int(m), 5.0) for u in range(1, 30)
            for m in rng.choice(200, size=int(rng.integers(2, 60)), replace=False)]
    _write_ratings(spark, warehouse, rows)
    run, summary = _run(spark, warehouse, run_pairs, "pairs.max_items_per_user=20",
                        "pairs.block_size=7")
    first = _pairs_dict(warehouse)
    sizes = Counter(u for u, _, _ in rows)
    assert run.notes["cap"]["users_capped"] == sum(n > 20 for n in sizes.values())
    assert run.notes["cap"]["ratings_dropped"] == sum(max(0, n - 20) for n in sizes.values())
    assert run.rows["pairs_counted"] == sum(math.comb(min(n, 20), 2) for n in sizes.values())
    assert "CAPPED" in summary and run.notes["exact"] is False
    _run(spark, warehouse, run_pairs, "pairs.max_items_per_user=20", "pairs.block_size=3")
    assert _pairs_dict(warehouse) == first
    _run(spark, warehouse, run_pairs, "pairs.max_items_per_user=20", "pairs.seed=8")
    assert _pairs_dict(warehouse) != first  # another seed, another sample


def test_load_graphframe_says_what_is_missing(spark, warehouse):
    from moviegraph.session import graphframes_available

    if graphframes_available(spark):
        pytest.skip("GraphFrames is available here")
    with pytest.raises(GraphFramesUnavailable, match="GraphFrames"):
        load_graphframe(spark, warehouse)


def _heavy_user_check(spark, warehouse, heavy_n, block_size):
    """One user with ``heavy_n`` movies (ids 1..heavy_n) plus small users around them."""
    rng = np.random.default_rng(11)
    rows = [(1, m, 5.0) for m in range(1, heavy_n + 1)]
    small = {u: sorted(int(m) for m in rng.choice(heavy_n + 500, size=int(rng.integers(1, 30)),
                                                  replace=False) + 1)
             for u in range(2, 300)}
    rows += [(u, m, 5.0) for u, ms in small.items() for m in ms]
    _write_ratings(spark, warehouse, rows)
    run, _ = _run(spark, warehouse, run_pairs, f"pairs.block_size={block_size}")
    assert run.notes["heavy_users"] == 1 and run.notes["max_user_movies"] == heavy_n
    # Bounded work per kernel call: block_size² cells, or one movie's row when heavier
    # (a row makes at most one count per movie, so memory stays bounded either way).
    assert run.notes["chunk_cells"] == block_size**2
    assert run.notes["chunks"] >= math.comb(heavy_n, 2) // block_size**2
    assert run.notes["largest_chunk"] <= max(block_size**2, 300 * (heavy_n + 500))
    # Independent closed form: every pair of the heavy user counts 1, plus the small
    # users' pairs (a plain loop).
    expected = Counter()
    for ms in small.values():
        for x, y in itertools.combinations(ms, 2):
            expected[(x, y)] += 1
    pc = warehouse.read("pair_counts")
    in_box = (pc.movie_a <= heavy_n) & (pc.movie_b <= heavy_n)
    box = pc.filter(in_box).agg(F.count(F.lit(1)), F.min("n")).first()
    assert box[0] == math.comb(heavy_n, 2) and box[1] >= 1  # every heavy pair, once
    rest = {(r.movie_a, r.movie_b): r.n for r in pc.filter(~in_box | (pc.n >= 2)).collect()}
    want = {k: n + (k[1] <= heavy_n) for k, n in expected.items()}
    assert rest == {k: n for k, n in want.items() if k[1] > heavy_n or n >= 2}
    assert run.rows["pairs_counted"] == math.comb(heavy_n, 2) + sum(expected.values())


def test_heavy_user_small(spark, warehouse):
    _heavy_user_check(spark, warehouse, heavy_n=1500, block_size=200)


@pytest.mark.slow
def test_heavy_user_8000_movies(spark, warehouse):
    """32M pairs from one user, cut into 2,000-movie blocks (4M pairs per task at most)."""
    _heavy_user_check(spark, warehouse, heavy_n=8000, block_size=2000)


def test_ranking_train_part_graph(spark, warehouse):
    """pairs.ratings=ranking_train counts only each user's first 80% (by ts, then movie id)."""
    rng = np.random.default_rng(3)
    rows = []
    for user in range(1, 40):
        n = int(rng.integers(1, 25))
        movies = rng.choice(np.arange(1, 60), size=n, replace=False)
        ts = rng.integers(0, 6, size=n)  # few distinct timestamps: many ties
        rows += [(user, int(m), float(rng.choice([4.0, 5.0])), int(t))
                 for m, t in zip(movies, ts, strict=True)]
    warehouse.write("ratings", spark.createDataFrame(rows, SCHEMAS["ratings"]))
    kept = []
    for user in {r[0] for r in rows}:
        mine = sorted((r for r in rows if r[0] == user), key=lambda r: (r[3], r[1]))
        kept += mine[: len(mine) - max(1, len(mine) // 5)]
    run, summary = _run(spark, warehouse, run_pairs, "pairs.ratings=ranking_train",
                        "pairs.min_rating=4")
    assert "train part" in summary and run.notes["ratings"] == "ranking_train"
    _, pair, _ = reference([(u, m, r) for u, m, r, _ in kept], 4, 0)
    assert _pairs_dict(warehouse) == dict(pair)
    assert run.rows["kept_ratings"] == len(kept) < len(rows)
