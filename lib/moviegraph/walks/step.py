"""One node2vec step for a batch of walkers, each carrying its own rows (no Spark).

Partitioned mode never holds the graph in one place: a walker row arrives joined with the
adjacency row of its current node ``v`` and carries the neighbour list of its previous
node ``t`` from the step before. With those and the walker's counter-based random state,
this module draws the next node by exactly the ``"split"`` rejection scheme of
``kernel.py`` -- the same draws in the same order -- so a walk comes out identical to the
broadcast kernel's, step by step. (A test compares the two modes walk for walk.)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from moviegraph import numba_cache
from moviegraph.walks.kernel import first_order_step, split_constants, split_step
from moviegraph.walks.rng import stream_state

numba_cache.install()  # before the @njit(cache=True) kernels below


@njit(cache=True)
def initial_states(seed: int, starts: np.ndarray, rounds: np.ndarray) -> np.ndarray:
    """Stream state of each walk ``(start, round)`` (uint64), as the kernel starts it."""
    out = np.empty(len(starts), dtype=np.uint64)
    for i in range(len(starts)):
        out[i] = stream_state(seed, starts[i], rounds[i])
    return out


@njit(cache=True)
def _row_cumw(weights: np.ndarray, lo: int, hi: int, out: np.ndarray) -> None:
    # The same left-to-right sum as csr._row_cumsum, so the floats are bit-identical.
    acc = 0.0
    for j in range(lo, hi):
        acc += weights[j]
        out[j] = acc


@njit(cache=True)
def advance(prev: np.ndarray, state: np.ndarray,
            nbr_off: np.ndarray, nbrs: np.ndarray, wts: np.ndarray,
            prev_off: np.ndarray, prev_nbrs: np.ndarray,
            inv_p: float, inv_q: float) -> tuple[np.ndarray, np.ndarray]:
    """Next node of every walker (``-1``: the current node has no out-neighbours).

    Args:
        prev: previous node of each walker, ``-1`` before the first step.
        state: each walker's random state (uint64), advanced as the kernel would.
        nbr_off, nbrs, wts: current node's neighbours (sorted) and weights, as list
            offsets/values (walker ``i``'s row is ``nbr_off[i]:nbr_off[i + 1]``).
        prev_off, prev_nbrs: previous node's sorted neighbours (only read when the
            adjacency of ``x`` to ``t`` matters, i.e. ``q != 1``).

    Returns:
        ``(next_node int32, new_state uint64)``.
    """
    n = len(prev)
    out = np.full(n, -1, dtype=np.int32)
    new_state = state.copy()
    cumw = np.empty_like(wts)
    env, acc_near, acc_far, need_adj, unbiased = split_constants(inv_p, inv_q)
    for i in range(n):
        lo = nbr_off[i]
        hi = nbr_off[i + 1]
        if lo == hi:
            continue
        _row_cumw(wts, lo, hi, cumw)
        t = prev[i]
        if t < 0 or unbiased:
            new_state[i], out[i] = first_order_step(state[i], nbrs, cumw, lo, hi)
        else:
            new_state[i], out[i] = split_step(state[i], nbrs, wts, cumw, lo, hi, t, prev_nbrs,
                                              prev_off[i], prev_off[i + 1], inv_p, env,
                                              acc_near, acc_far, need_adj)
    return out, new_state


@njit(cache=True)
def append_to_lists(offsets: np.ndarray, values: np.ndarray, extra: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """List arrays with ``extra[i]`` appended to list ``i`` (offsets int64 in and out)."""
    n = len(offsets) - 1
    new_off = np.empty(n + 1, dtype=np.int64)
    new_val = np.empty(len(values) + n, dtype=values.dtype)
    new_off[0] = 0
    k = 0
    for i in range(n):
        for j in range(offsets[i], offsets[i + 1]):
            new_val[k] = values[j]
            k += 1
        new_val[k] = extra[i]
        k += 1
        new_off[i + 1] = k
    return new_off, new_val
