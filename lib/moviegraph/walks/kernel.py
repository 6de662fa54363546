"""node2vec random-walk kernel (numba, no Spark).

From current node ``v`` reached from ``t``, neighbour ``x`` is chosen with unnormalised
probability ``w(v,x) * f(x)`` where ``f = 1/p`` if ``x == t``, ``1`` if ``x`` is a neighbour
of ``t`` and ``1/q`` otherwise; the first step is proportional to ``w(v,x)``.

The second-order bias is applied by rejection sampling, so the only memory is the CSR
itself (no per-edge second-order tables, which cost O(sum deg^2)).  Two exact schemes:

- ``"basic"``: propose ``x`` proportional to ``w(v,x)`` (binary search on the row's
  cumulative weights) and accept with probability ``f(x) / max(1/p, 1, 1/q)``, adjacency of
  ``x`` to ``t`` by binary search in ``t``'s sorted row.  With a small ``p`` most proposals
  are rejected (``1/p`` inflates the bound for every neighbour, though only one of them is
  ``t``): at ``p = 0.25, q = 4`` about 16 proposals per step.
- ``"split"`` (default): the return edge ``v -> t`` is a single known neighbour, so its
  exact mass ``w(v,t)/p`` is split off the envelope.  A draw in ``[0, w(v,t)/p + M *
  (W - w(v,t)))`` (``W`` the row total, ``M = max(1, 1/q)``) either returns to ``t``
  (accepted outright) or picks ``x != t`` proportionally to ``w(v,x)`` by skipping ``t``'s
  interval of the cumulative weights, accepted with probability ``g(x) / M`` where ``g`` is
  1 next to ``t`` and ``1/q`` otherwise.  ``p`` then costs nothing, ``q <= 1`` never
  rejects, and ``q > 1`` needs at most ``q`` proposals per step on average.

Each walker owns a counter-based stream keyed by ``(seed, start, round)`` (see ``rng``), so
walkers are independent and run in parallel with ``prange``; the output never depends on
the thread count, batch composition or order.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from moviegraph import numba_cache
from moviegraph.walks.csr import CSRGraph
from moviegraph.walks.rng import next_uniform, stream_state

numba_cache.install()  # before the @njit(cache=True) kernels below


def validate_walk_params(walk_length: int, p: float, q: float) -> None:
    """Raise ``ValueError`` naming the offending parameter if a walk setting is invalid."""
    if isinstance(walk_length, bool) or not isinstance(walk_length, int | np.integer):
        raise ValueError(f"walk_length must be an integer, got {walk_length!r}")
    if walk_length < 2:
        raise ValueError(f"walk_length must be >= 2 (nodes incl. the start), got {walk_length}")
    for name, val in (("p", p), ("q", q)):
        if isinstance(val, bool) or not isinstance(val, int | float | np.integer | np.floating):
            raise ValueError(f"{name} must be a number, got {val!r}")
        if not math.isfinite(val) or val <= 0:
            raise ValueError(f"{name} must be finite and > 0, got {val!r}")


@njit(cache=True, inline="always")
def _search_cumw(cumw: np.ndarray, lo: int, hi: int, r: float) -> int:
    """First index ``j`` in ``[lo, hi)`` with ``cumw[j] > r`` (``hi - 1`` if none)."""
    hi -= 1  # the answer is at most hi - 1: guards r rounding up to the row total
    while lo < hi:
        mid = (lo + hi) >> 1
        if cumw[mid] > r:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, inline="always")
def _find(indices: np.ndarray, lo: int, hi: int, x: np.int32) -> int:
    """Index of ``x`` in the sorted slice ``indices[lo:hi]``, or -1 if absent."""
    end = hi
    while lo < hi:
        mid = (lo + hi) >> 1
        if indices[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < end and indices[lo] == x else -1


@njit(cache=True, inline="always")
def _contains(indices: np.ndarray, lo: int, hi: int, x: np.int32) -> bool:
    """Whether ``x`` occurs in the sorted slice ``indices[lo:hi]``."""
    return _find(indices, lo, hi, x) >= 0


@njit(cache=True, inline="always")
def split_constants(inv_p: float, inv_q: float) -> tuple[float, float, float, bool, bool]:
    """``(env, acc_near, acc_far, need_adj, unbiased)`` of the ``"split"`` scheme."""
    env = max(1.0, inv_q)  # envelope factor for non-return neighbours
    acc_near = 1.0 / env
    acc_far = inv_q / env
    need_adj = acc_near != acc_far  # with q == 1 adjacency to t cannot matter
    unbiased = inv_p == 1.0 and inv_q == 1.0
    return env, acc_near, acc_far, need_adj, unbiased


@njit(cache=True, inline="always")
def first_order_step(state: np.uint64, nbrs: np.ndarray, cumw: np.ndarray, lo: int,
                     hi: int) -> tuple[np.uint64, np.int32]:
    """A neighbour of the row ``lo:hi`` drawn proportionally to its weight."""
    state, u = next_uniform(state)
    return state, nbrs[_search_cumw(cumw, lo, hi, u * cumw[hi - 1])]


@njit(cache=True, inline="always")
def split_step(state: np.uint64, nbrs: np.ndarray, weights: np.ndarray, cumw: np.ndarray,
               lo: int, hi: int, t: np.int32, t_nbrs: np.ndarray, t_lo: int, t_hi: int,
               inv_p: float, env: float, acc_near: float, acc_far: float,
               need_adj: bool) -> tuple[np.uint64, np.int32]:
    """One second-order step by the ``"split"`` scheme (module docstring).

    The current node's neighbours are ``nbrs[lo:hi]`` (sorted) with ``weights`` and their
    running sums ``cumw``; the previous node ``t``'s sorted neighbours are
    ``t_nbrs[t_lo:t_hi]`` (read only when ``need_adj``). Returns the advanced random
    state and the next node. The broadcast kernel and the partitioned mode's per-walker
    step (``step.py``) both call this, so both modes draw the same walks.
    """
    total = cumw[hi - 1]
    jt = _find(nbrs, lo, hi, t)  # -1 on a directed graph without v -> t
    if jt >= 0:
        w_t = weights[jt]
        before_t = cumw[jt] - w_t
    else:
        w_t = 0.0
        before_t = total
    mass_ret = w_t * inv_p
    mass_rest = env * (total - w_t)
    while True:
        state, u = next_uniform(state)
        r = u * (mass_ret + mass_rest)
        if r < mass_ret:
            return state, t  # return: envelope is exact here, always accepted
        # x != t, proportional to w(v, x): skip t's interval of cumw.
        r = (r - mass_ret) / env
        if r >= before_t:
            r += w_t
        x = nbrs[_search_cumw(cumw, lo, hi, r)]
        if x == t:
            continue  # only by floating-point rounding at t's interval edge
        if not need_adj:
            return state, x
        acc = acc_near if _contains(t_nbrs, t_lo, t_hi, x) else acc_far
        if acc >= 1.0:
            return state, x
        state, u = next_uniform(state)
        if u < acc:
            return state, x


@njit(cache=True, inline="always")
def basic_step(state: np.uint64, indices: np.ndarray, cumw: np.ndarray, lo: int, hi: int,
               t: np.int32, t_lo: int, t_hi: int, inv_p: float,
               inv_q: float) -> tuple[np.uint64, np.int32]:
    """One second-order step by the ``"basic"`` scheme: propose proportionally to the
    weight, accept with probability ``f(x) / max(1/p, 1, 1/q)``."""
    max_f = max(inv_p, 1.0, inv_q)
    # Acceptance ratios; a ratio of 1 needs no second uniform draw.
    acc_return = inv_p / max_f
    acc_near = 1.0 / max_f
    acc_far = inv_q / max_f
    # When 1/q == 1 the adjacency test cannot change the outcome, so skip it.
    need_adj = acc_near != acc_far
    total = cumw[hi - 1]
    while True:
        state, u = next_uniform(state)
        x = indices[_search_cumw(cumw, lo, hi, u * total)]
        if x == t:
            acc = acc_return
        elif need_adj and not _contains(indices, t_lo, t_hi, x):
            acc = acc_far
        else:
            acc = acc_near
        if acc >= 1.0:
            return state, x
        state, u = next_uniform(state)
        if u < acc:
            return state, x


@njit(cache=True, parallel=True)
def _walk_kernel(
    indptr: np.ndarray,
    indices: np.ndarray,
    weights: np.ndarray,
    cumw: np.ndarray,
    starts: np.ndarray,
    rounds: np.ndarray,
    walk_length: int,
    inv_p: float,
    inv_q: float,
    seed: int,
    basic: bool,
) -> np.ndarray:
    n_walks = len(starts)
    out = np.full((n_walks, walk_length), -1, dtype=np.int32)
    env, acc_near, acc_far, need_adj, unbiased = split_constants(inv_p, inv_q)
    for i in prange(n_walks):
        v = np.int32(starts[i])
        state = stream_state(seed, starts[i], rounds[i])
        out[i, 0] = v
        lo = indptr[v]
        hi = indptr[v + 1]
        if lo == hi:
            continue
        state, x = first_order_step(state, indices, cumw, lo, hi)
        out[i, 1] = x
        t = v
        t_lo = lo
        t_hi = hi
        v = x
        for step in range(2, walk_length):
            lo = indptr[v]
            hi = indptr[v + 1]
            if lo == hi:
                break  # dead end (directed graphs only): the walk stops here
            if unbiased:  # p = q = 1: both schemes draw one proposal, always accepted
                state, x = first_order_step(state, indices, cumw, lo, hi)
            elif basic:
                state, x = basic_step(state, indices, cumw, lo, hi, t, t_lo, t_hi, inv_p,
                                      inv_q)
            else:
                state, x = split_step(state, indices, weights, cumw, lo, hi, t, indices,
                                      t_lo, t_hi, inv_p, env, acc_near, acc_far, need_adj)
            out[i, step] = x
            t = v
            t_lo = lo
            t_hi = hi
            v = x
    return out


def random_walks(
    graph: CSRGraph,
    starts: np.ndarray,
    rounds: np.ndarray,
    walk_length: int,
    p: float,
    q: float,
    seed: int,
    num_threads: int | None = None,
    method: str = "split",
) -> np.ndarray:
    """Generate node2vec walks.

    Args:
        graph: the CSR graph (undirected graphs hold both directions).
        starts: start node of each walk.
        rounds: round number of each walk (same length as ``starts``); with ``seed`` and
            the start it keys the walk's random stream.
        walk_length: nodes per walk, including the start (>= 2).
        p: return parameter (> 0); q: in-out parameter (> 0).
        seed: global seed in ``[0, 2**63)``.
        num_threads: numba threads to use (default: numba's current setting). The output
            does not depend on it.
        method: ``"split"`` (default) or ``"basic"`` rejection scheme (module docstring);
            both are exact, they consume the random stream differently.

    Returns:
        int32 array of shape ``(len(starts), walk_length)``; a walk that stops early (a node
        without out-neighbours) is padded with -1, so a start without neighbours gives
        ``[start, -1, -1, ...]``.
    """
    validate_walk_params(walk_length, p, q)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    rounds = np.ascontiguousarray(rounds, dtype=np.int64)
    if starts.ndim != 1 or rounds.shape != starts.shape:
        raise ValueError(
            f"starts and rounds must be 1-D of equal length, got {starts.shape}, {rounds.shape}"
        )
    if len(starts) and (starts.min() < 0 or starts.max() >= graph.num_nodes):
        raise ValueError(f"starts must be node ids in [0, {graph.num_nodes})")
    if len(rounds) and rounds.min() < 0:
        raise ValueError("rounds must be >= 0")
    if not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    if method not in ("split", "basic"):
        raise ValueError(f"method must be 'split' or 'basic', got {method!r}")
    args = (
        graph.indptr,
        graph.indices,
        graph.weights,
        graph.cumw,
        starts,
        rounds,
        int(walk_length),
        1.0 / float(p),
        1.0 / float(q),
        int(seed),
        method == "basic",
    )
    if num_threads is None:
        return _walk_kernel(*args)
    if not 1 <= num_threads <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(
            f"num_threads must be in [1, {numba.config.NUMBA_NUM_THREADS}], got {num_threads}"
        )
    previous = numba.get_num_threads()
    numba.set_num_threads(num_threads)
    try:
        return _walk_kernel(*args)
    finally:
        numba.set_num_threads(previous)
