"""Graph kernels against plain-Python references: block-pair counts and components."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from moviegraph.graph.kernels import (
    block_pair_counts,
    chunk_bounds,
    decode_pairs,
    encode_pairs,
    iter_block_pair_counts,
    min_label_components,
)


def _tasks_for(users: list[list[int]], block: int):
    """Cut each user's sorted list into blocks, the (i, j) tasks as flat arrays."""
    a_lists, b_lists, diag = [], [], []
    for items in users:
        items = sorted(items)
        blocks = [items[i:i + block] for i in range(0, len(items), block)]
        for i in range(len(blocks)):
            for j in range(i, len(blocks)):
                a_lists.append(blocks[i])
                b_lists.append([] if i == j else blocks[j])
                diag.append(i == j)

    def flat(lists):
        ptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
        vals = np.array([v for x in lists for v in x], dtype=np.int32)
        return ptr, vals

    a_ptr, a_items = flat(a_lists)
    b_ptr, b_items = flat(b_lists)
    return a_ptr, a_items, b_ptr, b_items, np.array(diag, dtype=bool)


def _reference(users: list[list[int]]) -> Counter:
    counts: Counter = Counter()
    for items in users:
        for x, y in itertools.combinations(sorted(items), 2):
            counts[(x, y)] += 1
    return counts


def _as_counter(codes, counts) -> Counter:
    a, b = decode_pairs(codes)
    return Counter({(int(x), int(y)): int(n) for x, y, n in zip(a, b, counts, strict=True)})


@pytest.mark.parametrize("block", [2, 3, 5, 100])
def test_block_pair_counts_match_plain_loop(block):
    rng = np.random.default_rng(block)
    users = [list(rng.choice(60, size=rng.integers(1, 25), replace=False)) for _ in range(40)]
    users.append([7])  # a user with one movie gives no pair
    users.append(list(range(60)))  # a user with every movie
    tasks = _tasks_for(users, block)
    codes, counts = block_pair_counts(*tasks)
    assert np.all(np.diff(codes) > 0)  # sorted and aggregated
    assert _as_counter(codes, counts) == _reference(users)


@pytest.mark.parametrize("max_cells", [1, 7, 50, 10_000])
def test_chunked_counts_sum_to_the_same(max_cells):
    rng = np.random.default_rng(0)
    users = [list(rng.choice(1000, size=rng.integers(1, 40), replace=False))
             for _ in range(30)]
    total: Counter = Counter()
    for codes, counts in iter_block_pair_counts(*_tasks_for(users, 8), max_cells=max_cells):
        total.update(_as_counter(codes, counts))
    assert total == _reference(users)


def test_large_ids_round_trip():
    a = np.array([0, 5, 2**31 - 2], dtype=np.int32)
    b = np.array([1, 2**31 - 1, 2**31 - 1], dtype=np.int32)
    x, y = decode_pairs(encode_pairs(a, b))
    assert np.array_equal(x, a) and np.array_equal(y, b)
    users = [[2**31 - 1, 3, 2**31 - 2]]
    assert _as_counter(*block_pair_counts(*_tasks_for(users, 2))) == _reference(users)


def test_chunk_bounds_respect_budget():
    cells = np.array([3, 3, 10, 1, 1, 1, 4])
    bounds = chunk_bounds(cells, 6)
    assert bounds == [(0, 2), (2, 3), (3, 6), (6, 7)]
    assert [i for s, e in bounds for i in range(s, e)] == list(range(len(cells)))
    for s, e in bounds:
        assert cells[s:e].sum() <= 6 or e - s == 1


def test_min_label_components_against_union_find():
    rng = np.random.default_rng(3)
    nodes = rng.choice(10_000, size=300, replace=False)
    src = rng.choice(nodes, size=200)
    dst = rng.choice(nodes, size=200)
    parent = {int(n): int(n) for n in nodes}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for s, d in zip(src, dst, strict=True):
        rs, rd = find(int(s)), find(int(d))
        if rs != rd:
            parent[max(rs, rd)] = min(rs, rd)  # root is the smallest id
    expected = [find(int(n)) for n in nodes]
    assert min_label_components(nodes, src, dst).tolist() == expected


def test_min_label_components_rejects_unknown_nodes():
    with pytest.raises(ValueError):
        min_label_components(np.array([1, 2]), np.array([1]), np.array([3]))


def test_heavy_user_memory_is_bounded_by_the_chunk_budget():
    """8,000 movies (32M pairs) in 1,000-movie blocks: peak allocation stays per-chunk."""
    import tracemalloc

    heavy = list(range(1, 8001))
    tasks = _tasks_for([heavy], 1000)
    total = 0
    tracemalloc.start()
    try:
        for codes, counts in iter_block_pair_counts(*tasks, max_cells=1 << 20):
            assert np.all(counts == 1)
            total += codes.size
            del codes, counts
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 8000 * 7999 // 2
    # One chunk is one 1,000 x 1,000 block pair; the whole square as int64 codes alone
    # would take 256 MB.
    assert peak < 120 * 2**20, f"peak {peak / 2**20:.0f} MiB"
