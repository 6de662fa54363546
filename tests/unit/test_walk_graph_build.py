"""Building the walk graph from an edge list: the linear-time paths against plain references."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from moviegraph.walks.csr import CSRGraph
from moviegraph.walks.vocab import EdgeListError, build_graph, tokens_of, vertex_ids


def _adjacency(src, dst, w, directed):
    """Plain dict-of-dicts reference: node -> {neighbour: weight}."""
    adj = defaultdict(dict)
    for s, d, x in zip(src.tolist(), dst.tolist(), w.tolist(), strict=True):
        adj[s][d] = x
        if not directed:
            adj[d][s] = x
    return adj


def _random_edges(rng, n_nodes, n_edges, id_scale=1):
    pairs = set()
    while len(pairs) < n_edges:
        a, b = (int(x) for x in rng.integers(0, n_nodes, size=2))
        pairs.add((min(a, b), max(a, b)))
    pairs = sorted(pairs)
    rng.shuffle(pairs)
    src = np.array([p[0] for p in pairs]) * id_scale
    dst = np.array([p[1] for p in pairs]) * id_scale
    return src, dst, rng.uniform(0.5, 3.0, size=len(pairs))


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("order", ["sorted", "shuffled", "reversed"])
def test_csr_rows_match_reference(directed, order):
    rng = np.random.default_rng(5)
    src, dst, w = _random_edges(rng, 40, 300)  # includes self-loops (a == b)
    if order == "sorted":
        o = np.lexsort((dst, src))
        src, dst, w = src[o], dst[o], w[o]
    elif order == "reversed":
        src, dst = dst, src
    g = CSRGraph.from_edges(src, dst, w, 40, directed=directed)
    adj = _adjacency(src, dst, w, directed)
    for v in range(40):
        row = slice(g.indptr[v], g.indptr[v + 1])
        assert g.indices[row].tolist() == sorted(adj[v])
        assert g.weights[row].tolist() == [adj[v][u] for u in sorted(adj[v])]
        assert np.allclose(g.cumw[row], np.cumsum([adj[v][u] for u in sorted(adj[v])]))


def test_duplicates_named_first_in_order():
    src, dst = np.array([3, 0, 2, 0]), np.array([1, 2, 3, 2])
    with pytest.raises(ValueError, match=r"duplicate edge 0->2 .*\(1 duplicates"):
        CSRGraph.from_edges(src, dst, np.ones(4), 4, directed=True)


@pytest.mark.parametrize("id_scale", [1, 100_003])  # dense ids vs ids beyond the lookup
def test_tokens_and_vertices_match_sorting(id_scale):
    rng = np.random.default_rng(1)
    src, dst, w = _random_edges(rng, 300, 2000, id_scale)
    ids = vertex_ids(src, dst)
    assert ids.tolist() == sorted(set(src.tolist()) | set(dst.tolist()))
    position = {m: i for i, m in enumerate(ids.tolist())}
    assert tokens_of(ids, src).tolist() == [position[m] for m in src.tolist()]
    with pytest.raises(EdgeListError, match="outside the vocabulary"):
        tokens_of(ids[1:], src)
    graph, movie_ids = build_graph(src, dst, w, directed=False)
    assert movie_ids.tolist() == ids.tolist() and graph.num_edges == 2 * len(src) - np.sum(
        src == dst)


def test_conflicting_repeats_found_in_any_order():
    src = np.array([5, 9, 7, 9, 5])
    dst = np.array([9, 5, 8, 5, 9])
    ok = np.array([1.0, 1.0, 2.0, 1.0, 1.0])
    graph, ids = build_graph(src, dst, ok, directed=False)  # same weight repeated: kept once
    assert ids.tolist() == [5, 7, 8, 9] and graph.num_edges == 4
    bad = ok.copy()
    bad[3] = 1.5
    with pytest.raises(EdgeListError, match="5-9 is stored with different weights"):
        build_graph(src, dst, bad, directed=False)


@pytest.mark.parametrize("directed", [False, True])
def test_repeats_merged_like_the_dict_reference(directed):
    """Every edge listed once, twice or in both orientations: the graph of the dict."""
    rng = np.random.default_rng(2)
    src, dst, w = _random_edges(rng, 60, 400)
    again = rng.random(len(src)) < 0.3  # repeated as stored
    flip = rng.random(len(src)) < 0.3  # repeated the other way round (undirected only)
    src2 = np.concatenate([src, src[again], dst[flip] if not directed else src[flip]])
    dst2 = np.concatenate([dst, dst[again], src[flip] if not directed else dst[flip]])
    w2 = np.concatenate([w, w[again], w[flip]])
    order = rng.permutation(len(src2))
    graph, ids = build_graph(src2[order], dst2[order], w2[order], directed)
    adj = _adjacency(src, dst, w, directed)
    for tok, v in enumerate(ids.tolist()):
        row = slice(graph.indptr[tok], graph.indptr[tok + 1])
        assert ids[graph.indices[row]].tolist() == sorted(adj[v])
        assert graph.weights[row].tolist() == [adj[v][u] for u in sorted(adj[v])]
