"""Movie-range pair counts and the numpy edge kernels against plain-Python references."""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict

import numpy as np
import pytest

from moviegraph.graph import ranges as R
from moviegraph.graph import weights as W


def _lists(seed: int, users: int = 120, heavy: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    movies = np.arange(3, 600, 7)  # sparse, non-contiguous ids
    out = [sorted(rng.choice(movies, size=int(rng.integers(1, 25)), replace=False).tolist())
           for _ in range(users)]
    if heavy:
        out.insert(users // 2, movies[:heavy].tolist())  # one user rates the first `heavy`
    return out


def _incidence(lists: list[list[int]]) -> R.Incidence:
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in lists])])
    values = np.array([m for x in lists for m in x], dtype=np.int32)
    return R.build_incidence(offsets, values)


def _reference(lists: list[list[int]]) -> dict[tuple[int, int], int]:
    pairs: Counter = Counter()
    for ms in lists:
        pairs.update(itertools.combinations(sorted(ms), 2))
    return dict(pairs)


def _count(inc: R.Incidence, bounds: np.ndarray, work: np.ndarray, max_cells: int):
    rows: list[tuple[int, int, int]] = []
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        for a, b, n in R.iter_range_pair_counts(inc, lo, hi, work, max_cells):
            rows += zip(a.tolist(), b.tolist(), n.tolist(), strict=True)
    return rows


@pytest.mark.parametrize("tasks,max_cells", [(1, 1 << 30), (4, 50), (13, 7), (10_000, 1)])
def test_ranges_count_every_pair_once_in_order(tasks, max_cells):
    lists = _lists(1, heavy=60)
    inc = _incidence(lists)
    work = R.row_work(inc)
    # Work = Σ over users of n(n+1)/2: the pairs, plus one per rating.
    assert int(work.sum()) == sum(len(x) * (len(x) + 1) // 2 for x in lists)
    bounds = R.split_ranges(work, tasks)
    assert bounds[0] == 0 and bounds[-1] == inc.movies and np.all(np.diff(bounds) > 0)
    assert len(bounds) - 1 <= min(tasks, inc.movies)
    rows = _count(inc, bounds, work, max_cells)
    keys = [(a, b) for a, b, _ in rows]
    assert keys == sorted(set(keys))  # each pair once, sorted by (a, b) across tasks
    assert {(a, b): n for a, b, n in rows} == _reference(lists)


def test_range_split_balances_work_and_isolates_heavy_movies():
    work = np.array([1, 1, 1, 100, 1, 1, 1, 1, 50, 50, 1, 1], dtype=np.int64)
    bounds = R.split_ranges(work, 4)
    sums = [int(work[lo:hi].sum()) for lo, hi in itertools.pairwise(bounds)]
    assert sum(sums) == int(work.sum())
    # The 100-work movie closes a range of its own: no range exceeds it by much.
    assert max(sums) <= 100 + 3 and len(sums) <= 4
    assert R.split_ranges(np.ones(5, np.int64), 1).tolist() == [0, 5]
    assert R.split_ranges(np.ones(3, np.int64), 10).tolist() == [0, 1, 2, 3]
    assert R.split_ranges(np.empty(0, np.int64), 4).tolist() == [0]


def test_heavy_user_work_is_chunked_within_budget():
    lists = _lists(2, users=40, heavy=80)
    inc = _incidence(lists)
    work = R.row_work(inc)
    bounds = R.split_ranges(work, 3)
    chunks, largest = R.chunk_count(work, bounds, 100)
    # A chunk exceeds the budget only when one movie's row alone does.
    assert largest <= max(100, int(work.max()))
    assert chunks >= int(work.sum()) // max(100, int(work.max()))
    assert {(a, b): n for a, b, n in _count(inc, bounds, work, 100)} == _reference(lists)


def test_empty_and_single_movie_users():
    inc = _incidence([[5], [9], [5]])
    work = R.row_work(inc)
    assert _count(inc, R.split_ranges(work, 2), work, 10) == []
    empty = R.build_incidence(np.zeros(1, np.int64), np.empty(0, np.int32))
    assert empty.movies == 0 and R.split_ranges(R.row_work(empty), 3).tolist() == [0]


def _edge_reference(pairs, item, weighting, min_weight, k):
    d = math.log(sum(item.values()))
    edges = {}
    for (x, y), n in pairs.items():
        pmi = math.log(n) - math.log(item[x]) - math.log(item[y]) + d
        w = n / math.sqrt(item[x] * item[y]) if weighting == "cosine" else pmi * n
        if w >= min_weight:
            edges[(x, y)] = (w, pmi, w if weighting == "cosine" else pmi)
    if not k:
        return edges
    by_node = defaultdict(list)
    for (x, y), (_, _, s) in edges.items():
        by_node[x].append((-s, y))
        by_node[y].append((-s, x))
    keep = {(min(v, o), max(v, o)) for v, lst in by_node.items() for _, o in sorted(lst)[:k]}
    return {e: v for e, v in edges.items() if e in keep}


@pytest.mark.parametrize("weighting,min_weight,k,batches",
                         [("cosine", 0.0, 2, 1), ("cosine", 0.0, 3, 7), ("pmi", -50.0, 1, 5),
                          ("pmi", 1.0, 0, 3)])
def test_weights_and_two_pass_top_k_match_reference(weighting, min_weight, k, batches):
    lists = _lists(3, users=60)
    pairs = _reference(lists)
    item = Counter(m for ms in lists for m in ms)
    ids = np.array(sorted(item), dtype=np.int32)
    counts = np.array([item[m] for m in ids.tolist()], dtype=np.int64)
    d = math.log(sum(item.values()))
    keys = list(pairs)
    a = np.array([x for x, _ in keys], np.int32)
    b = np.array([y for _, y in keys], np.int32)
    n = np.array([pairs[key] for key in keys], np.int64)
    w, p = W.scores(a, b, n, ids, counts, d, weighting)
    s = w if weighting == "cosine" else p
    keep = w >= min_weight
    a, b, n, w, p, s = a[keep], b[keep], n[keep], w[keep], p[keep], s[keep]
    if k:
        # Pass 1 over arbitrary batches, pass 2 per node over all candidates.
        parts = np.array_split(np.random.default_rng(0).permutation(len(a)), batches)
        cand = [np.concatenate(x) for x in zip(*(
            (node[i], other[i], score[i]) for node, other, score in
            (W.both_ends(a[j], b[j], s[j]) for j in parts)
            for i in [W.local_top_k(node, other, score, k)]), strict=True)]
        kept = W.top_k_mask(a, b, s, *W.kth_best(*cand, k))
        a, b, n, w, p = a[kept], b[kept], n[kept], w[kept], p[kept]
    got = {(x, y): (wv, pv) for x, y, wv, pv in zip(a.tolist(), b.tolist(), w.tolist(),
                                                     p.tolist(), strict=True)}
    want = _edge_reference(pairs, item, weighting, min_weight, k)
    assert set(got) == set(want) and len(want) > 0
    for e, (wv, pv) in got.items():
        assert wv == pytest.approx(want[e][0], rel=1e-12, abs=1e-12)
        assert pv == pytest.approx(want[e][1], rel=1e-12, abs=1e-12)
    if k:
        assert len(want) < len(_edge_reference(pairs, item, weighting, min_weight, 0))


def test_a_pair_without_item_count_is_a_clear_error():
    with pytest.raises(ValueError, match="no item count"):
        W.scores(np.array([1]), np.array([2]), np.array([1]), np.array([1], np.int32),
                 np.array([3]), 1.0, "cosine")


@pytest.mark.parametrize("chunk_rows", [1, 50, 1 << 21])
def test_candidate_pass_keeps_every_node_top_k(monkeypatch, chunk_rows):
    """The candidate pass (running top-k, rows below a node's k-th best dropped on arrival)
    over many small batches, then the thresholds: the cut equals the plain reference."""
    from types import SimpleNamespace

    import pyarrow as pa

    from moviegraph.graph import pmi

    monkeypatch.setattr(pmi, "CANDIDATE_CHUNK_ROWS", chunk_rows)
    lists = _lists(4, users=80)
    pairs = _reference(lists)
    item = Counter(m for ms in lists for m in ms)
    ids = np.array(sorted(item), dtype=np.int32)
    counts = np.array([item[m] for m in ids.tolist()], dtype=np.int64)
    rule = pmi.EdgeRule("cosine", 0.0, 1, 3, math.log(sum(item.values())))
    keys = sorted(pairs)
    batches = [pa.RecordBatch.from_arrays(
        [pa.array([a for a, _ in part], pa.int32()), pa.array([b for _, b in part], pa.int32()),
         pa.array([pairs[key] for key in part], pa.int64())], names=["movie_a", "movie_b", "n"])
        for part in (keys[i:i + 37] for i in range(0, len(keys), 37))]
    shipped = SimpleNamespace(value=(ids, counts))
    cand = pa.Table.from_batches(list(pmi._candidates(shipped, rule)(iter(batches))))
    kth = pa.Table.from_batches(list(pmi._thresholds(3)(iter(cand.to_batches()))))
    cut = (kth.column("node").to_numpy(), kth.column("score").to_numpy(),
           kth.column("other").to_numpy())
    edges = pa.Table.from_batches(list(pmi._edges(SimpleNamespace(value=((ids, counts), cut)),
                                                  rule)(iter(batches))))
    got = set(zip(edges.column("src").to_pylist(), edges.column("dst").to_pylist(),
                  strict=True))
    assert got == set(_edge_reference(pairs, item, "cosine", 0.0, 3))
