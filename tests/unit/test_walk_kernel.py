"""Tests of the node2vec walk kernel: exactness, determinism, edge cases, validation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from moviegraph.walks.csr import CSRGraph
from moviegraph.walks.exact import second_order_probs, transition_chi_square
from moviegraph.walks.kernel import random_walks, validate_walk_params
from moviegraph.walks.rng import next_uniform, stream_state, stream_uniforms
from tests.graphs import GRAPHS, random_weighted, star, triangle_plus_tail

PQ_SETTINGS = [(1.0, 1.0), (0.25, 4.0), (4.0, 0.25)]


# ---------------------------------------------------------------- graphs: tests/graphs.py


# Walks per start and walk length, chosen so each graph gets enough transitions per context
# for the chi-square approximation while the whole test stays around a second.
WALK_PLAN = {"triangle_tail": (600, 30), "star": (600, 30), "random50": (300, 40)}


def build(name: str) -> CSRGraph:
    src, dst, w, n = GRAPHS[name]()
    return CSRGraph.from_edges(src, dst, w, n)


def all_walks(g: CSRGraph, rounds: int, length: int, p: float, q: float, seed: int, **kw):
    starts = np.repeat(np.arange(g.num_nodes), rounds)
    rnds = np.tile(np.arange(rounds), g.num_nodes)
    return random_walks(g, starts, rnds, length, p, q, seed, **kw)


# ---------------------------------------------------------------- (1) + (2) fidelity, teeth


@pytest.mark.parametrize("method", ["split", "basic"])
@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize(("p", "q"), PQ_SETTINGS)
def test_transitions_match_exact_node2vec(name, p, q, method):
    g = build(name)
    rounds, length = WALK_PLAN[name]
    walks = all_walks(g, rounds, length, p, q, seed=11, method=method)
    chi2, dof, pval = transition_chi_square(walks, g, p, q)
    assert dof > 10
    assert pval > 1e-3, f"{name} p={p} q={q}: chi2={chi2:.1f} dof={dof} p={pval:.2e}"

    # Teeth: walks drawn with the wrong bias must be rejected by the same check.
    wrong = (q, p) if p != q else (0.25, 4.0)
    bad_walks = all_walks(g, rounds, length, *wrong, seed=11, method=method)
    _, _, bad_p = transition_chi_square(bad_walks, g, p, q)
    assert bad_p < 1e-6, f"{name}: walks with (p, q)={wrong} passed as {(p, q)}: p={bad_p}"


def test_exact_probs_match_hand_computation():
    """Independent check of the reference itself, by hand on the star and triangle."""
    g = build("star")
    # From leaf 2 to centre 0: x=2 is the return (w=2, /p); others unreachable from 2 (/q).
    p, q = 0.5, 3.0
    un = {1: 1 / q, 2: 2 / p, 3: 3 / q, 4: 4 / q, 5: 5 / q}
    z = sum(un.values())
    got = second_order_probs(g, 2, 0, p, q)
    assert got.keys() == un.keys()
    for x in un:
        assert got[x] == pytest.approx(un[x] / z)
    # Triangle: from 0 to 2, neighbours of 2 are 0 (return, w=3), 1 (adjacent to 0, w=2),
    # 3 (not adjacent to 0, w=5).
    g = build("triangle_tail")
    un = {0: 3 / p, 1: 2.0, 3: 5 / q}
    z = sum(un.values())
    got = second_order_probs(g, 0, 2, p, q)
    assert {x: round(v, 12) for x, v in got.items()} == {x: round(v / z, 12) for x, v in un.items()}


def test_impossible_transition_fails_chi_square():
    g = build("triangle_tail")
    walks = np.array([[0, 1, 2, 3], [4, 3, 2, 1]], dtype=np.int32)
    assert transition_chi_square(walks, g, 1, 1)[2] > 0
    forged = np.array([[0, 1, 3, -1]], dtype=np.int32)  # 1-3 is not an edge
    assert transition_chi_square(forged, g, 1, 1)[2] == 0.0


@pytest.mark.parametrize("method", ["split", "basic"])
def test_directed_graph_fidelity(method):
    # A directed cycle with chords; every node has an out-edge so walks run full length.
    src = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0])
    dst = np.array([1, 2, 3, 0, 2, 3, 0, 1, 3])
    w = np.array([1.0, 2.0, 1.5, 1.0, 2.5, 0.7, 1.0, 3.0, 1.0])
    g = CSRGraph.from_edges(src, dst, w, 4, directed=True)
    walks = all_walks(g, 800, 30, 0.25, 4.0, seed=5, method=method)
    assert (walks >= 0).all()
    _, dof, pval = transition_chi_square(walks, g, 0.25, 4.0)
    assert dof > 5 and pval > 1e-3
    assert transition_chi_square(walks, g, 4.0, 0.25)[2] < 1e-6


# ---------------------------------------------------------------- (3) first step


def test_first_step_proportional_to_weights():
    src, dst, w, n = star()
    g = CSRGraph.from_edges(src, dst, w, n)
    rounds = 30_000
    walks = random_walks(g, np.zeros(rounds, dtype=np.int64), np.arange(rounds), 2, 0.3, 7.0, 1)
    counts = np.bincount(walks[:, 1], minlength=6)[1:]
    assert counts.sum() == rounds
    expected = rounds * w / w.sum()
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    # Teeth: uniform proportions are clearly rejected with this many draws.
    assert stats.chisquare(counts, np.full(5, rounds / 5)).pvalue < 1e-6


# ---------------------------------------------------------------- (4) determinism


def test_determinism_subsets_order_threads_and_seed():
    g = build("random50")
    starts = np.repeat(np.arange(g.num_nodes), 4)
    rounds = np.tile(np.arange(4), g.num_nodes)
    full = random_walks(g, starts, rounds, 20, 0.25, 4.0, seed=42)
    again = random_walks(g, starts, rounds, 20, 0.25, 4.0, seed=42)
    np.testing.assert_array_equal(full, again)

    rng = np.random.default_rng(0)
    subset = rng.choice(len(starts), size=37, replace=False)
    sub = random_walks(g, starts[subset], rounds[subset], 20, 0.25, 4.0, seed=42)
    np.testing.assert_array_equal(sub, full[subset])

    perm = rng.permutation(len(starts))
    shuffled = random_walks(g, starts[perm], rounds[perm], 20, 0.25, 4.0, seed=42)
    np.testing.assert_array_equal(shuffled, full[perm])

    one = random_walks(g, starts, rounds, 20, 0.25, 4.0, seed=42, num_threads=1)
    two = random_walks(g, starts, rounds, 20, 0.25, 4.0, seed=42, num_threads=2)
    np.testing.assert_array_equal(one, full)
    np.testing.assert_array_equal(two, full)

    basic = random_walks(g, starts[perm], rounds[perm], 20, 0.25, 4.0, seed=42, method="basic")
    np.testing.assert_array_equal(
        basic, random_walks(g, starts, rounds, 20, 0.25, 4.0, seed=42, method="basic")[perm]
    )

    other = random_walks(g, starts, rounds, 20, 0.25, 4.0, seed=43)
    assert (other != full).mean() > 0.5
    # Different rounds of the same start are different walks.
    assert (full[0] != full[1]).any()


def test_stream_depends_only_on_key():
    a = stream_state(1, 2, 3)
    assert a == stream_state(1, 2, 3)
    keys = [(1, 2, 3), (1, 3, 2), (2, 1, 3), (0, 2, 3), (1, 2, 4)]
    assert len({int(stream_state(*k)) for k in keys}) == len(keys)
    # Uniforms are in [0, 1) and look uniform.
    us = stream_uniforms(0, 0, 0, 20_000)
    _, u = next_uniform(stream_state(0, 0, 0))
    assert u == us[0]
    np.testing.assert_array_equal(us[:100], stream_uniforms(0, 0, 0, 100))
    assert not np.array_equal(us[:100], stream_uniforms(0, 0, 1, 100))
    assert us.min() >= 0.0 and us.max() < 1.0
    assert stats.kstest(us, "uniform").pvalue > 1e-3


# ---------------------------------------------------------------- (5) isolated, padding, directed


def test_isolated_node_and_padding():
    src, dst, w, _ = triangle_plus_tail()
    g = CSRGraph.from_edges(src, dst, w, 7)  # nodes 5 and 6 are isolated
    walks = random_walks(g, np.array([5, 0, 6]), np.array([0, 0, 3]), 6, 1.0, 1.0, 0)
    assert walks.dtype == np.int32 and walks.shape == (3, 6)
    np.testing.assert_array_equal(walks[0], [5, -1, -1, -1, -1, -1])
    np.testing.assert_array_equal(walks[2], [6, -1, -1, -1, -1, -1])
    assert (walks[1] >= 0).all()


def test_directed_walk_stops_at_sink():
    # 0 -> 1 -> 2, node 2 has no out-neighbours; 3 -> 0.
    g = CSRGraph.from_edges(np.array([0, 1, 3]), np.array([1, 2, 0]), np.ones(3), 4, directed=True)
    assert g.num_edges == 3 and g.degree(2) == 0 and g.degree(0) == 1
    walks = random_walks(g, np.array([0, 3, 2]), np.zeros(3, dtype=np.int64), 6, 0.5, 2.0, 9)
    np.testing.assert_array_equal(walks[0], [0, 1, 2, -1, -1, -1])
    np.testing.assert_array_equal(walks[1], [3, 0, 1, 2, -1, -1])
    np.testing.assert_array_equal(walks[2], [2, -1, -1, -1, -1, -1])


# ---------------------------------------------------------------- (6) validation


@pytest.mark.parametrize(
    ("walk_length", "p", "q", "name"),
    [
        (1, 1.0, 1.0, "walk_length"),
        (0, 1.0, 1.0, "walk_length"),
        (2.5, 1.0, 1.0, "walk_length"),
        (True, 1.0, 1.0, "walk_length"),
        (10, 0.0, 1.0, "p"),
        (10, -1.0, 1.0, "p"),
        (10, float("nan"), 1.0, "p"),
        (10, float("inf"), 1.0, "p"),
        (10, 1.0, 0.0, "q"),
        (10, 1.0, -2.0, "q"),
        (10, 1.0, float("nan"), "q"),
        (10, 1.0, "2", "q"),
    ],
)
def test_parameter_validation(walk_length, p, q, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        validate_walk_params(walk_length, p, q)
    g = build("star")
    with pytest.raises(ValueError, match=rf"^{name} "):
        random_walks(g, np.array([0]), np.array([0]), walk_length, p, q, 0)


def test_valid_parameters_pass():
    validate_walk_params(2, 1, 1)
    validate_walk_params(np.int64(80), 0.25, np.float32(4.0))


def test_bad_batch_arguments():
    g = build("star")
    with pytest.raises(ValueError, match="starts"):
        random_walks(g, np.array([0, 9]), np.array([0, 0]), 5, 1, 1, 0)
    with pytest.raises(ValueError, match="rounds"):
        random_walks(g, np.array([0, 1]), np.array([0]), 5, 1, 1, 0)
    with pytest.raises(ValueError, match="seed"):
        random_walks(g, np.array([0]), np.array([0]), 5, 1, 1, -1)
    with pytest.raises(ValueError, match="method"):
        random_walks(g, np.array([0]), np.array([0]), 5, 1, 1, 0, method="alias")
    with pytest.raises(ValueError, match="num_threads"):
        random_walks(g, np.array([0]), np.array([0]), 5, 1, 1, 0, num_threads=0)


def test_csr_construction_errors():
    with pytest.raises(ValueError, match="duplicate edge 0->1"):
        CSRGraph.from_edges(np.array([0, 1]), np.array([1, 0]), np.ones(2), 2)
    with pytest.raises(ValueError, match="duplicate edge"):
        CSRGraph.from_edges(np.array([0, 0]), np.array([1, 1]), np.ones(2), 2, directed=True)
    # The same pair both ways is fine when directed.
    CSRGraph.from_edges(np.array([0, 1]), np.array([1, 0]), np.ones(2), 2, directed=True)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="weight"):
            CSRGraph.from_edges(np.array([0, 1]), np.array([1, 2]), np.array([1.0, bad]), 3)
    with pytest.raises(ValueError, match="node ids"):
        CSRGraph.from_edges(np.array([0]), np.array([3]), np.ones(1), 3)
    with pytest.raises(ValueError, match="lengths"):
        CSRGraph.from_edges(np.array([0]), np.array([1, 2]), np.ones(1), 3)


def test_csr_layout_against_plain_adjacency():
    src, dst, w, n = random_weighted(30, 0.2, seed=8)
    g = CSRGraph.from_edges(src, dst, w, n)
    adj: dict[int, dict[int, float]] = {v: {} for v in range(n)}
    for a, b, c in zip(src.tolist(), dst.tolist(), w.tolist(), strict=True):
        adj[a][b] = c
        adj[b][a] = c
    assert g.num_nodes == n and g.num_edges == 2 * len(src)
    assert g.indices.dtype == np.int32 and g.indptr.dtype == np.int64
    assert g.nbytes == g.indptr.nbytes + g.indices.nbytes + 2 * g.weights.nbytes
    for v in range(n):
        lo, hi = g.indptr[v], g.indptr[v + 1]
        assert g.degree(v) == len(adj[v])
        assert g.indices[lo:hi].tolist() == sorted(adj[v])
        ws = [adj[v][x] for x in sorted(adj[v])]
        np.testing.assert_allclose(g.weights[lo:hi], ws)
        np.testing.assert_allclose(g.cumw[lo:hi], np.cumsum(ws))


# ---------------------------------------------------------------- (7) walks follow edges


@pytest.mark.parametrize("method", ["split", "basic"])
@pytest.mark.parametrize("directed", [False, True])
def test_every_step_is_an_edge(directed, method):
    src, dst, w, n = random_weighted(40, 0.08, seed=21)
    g = CSRGraph.from_edges(src, dst, w, n, directed=directed)
    edges = set(zip(src.tolist(), dst.tolist(), strict=True))
    if not directed:
        edges |= {(b, a) for a, b in edges}
    walks = all_walks(g, 20, 25, 0.5, 2.0, seed=1, method=method)
    for walk in walks.tolist():
        path = [x for x in walk if x >= 0]
        # Padding only ever follows the walk, never interrupts it.
        assert walk[: len(path)] == path
        assert all((a, b) in edges for a, b in itertools.pairwise(path))
        if len(path) < len(walk):
            # The walk stopped only because the last node has no out-neighbours.
            assert not any(a == path[-1] for a, _ in edges)
