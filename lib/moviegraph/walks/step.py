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

from moviegraph.walks.kernel import _contains, _find, _search_cumw
from moviegraph.walks.rng import next_uniform, stream_state


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
    env = max(1.0, inv_q)
    acc_near = 1.0 / env
    acc_far = inv_q / env
    need_adj = acc_near != acc_far
    unbiased = inv_p == 1.0 and inv_q == 1.0
    for i in range(n):
        lo = nbr_off[i]
        hi = nbr_off[i + 1]
        if lo == hi:
            continue
        _row_cumw(wts, lo, hi, cumw)
        total = cumw[hi - 1]
        s = state[i]
        t = prev[i]
        if t < 0 or unbiased:
            s, u = next_uniform(s)
            out[i] = nbrs[_search_cumw(cumw, lo, hi, u * total)]
            new_state[i] = s
            continue
        t_lo = prev_off[i]
        t_hi = prev_off[i + 1]
        jt = _find(nbrs, lo, hi, t)
        if jt >= 0:
            w_t = wts[jt]
            before_t = cumw[jt] - w_t
        else:
            w_t = 0.0
            before_t = total
        mass_ret = w_t * inv_p
        mass_rest = env * (total - w_t)
        while True:
            s, u = next_uniform(s)
            r = u * (mass_ret + mass_rest)
            if r < mass_ret:
                x = t
                break
            r = (r - mass_ret) / env
            if r >= before_t:
                r += w_t
            x = nbrs[_search_cumw(cumw, lo, hi, r)]
            if x == t:
                continue
            if not need_adj:
                break
            acc = acc_near if _contains(prev_nbrs, t_lo, t_hi, x) else acc_far
            if acc >= 1.0:
                break
            s, u = next_uniform(s)
            if u < acc:
                break
        out[i] = x
        new_state[i] = s
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
