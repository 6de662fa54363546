"""Exact node2vec transition probabilities and a chi-square fidelity check.

Written plainly, for tests and the walk-fidelity metric: it is the reference the fast
kernel is judged against, so it shares none of the kernel's tricks (no rejection, no
binary searches).
"""

from __future__ import annotations

import numpy as np

from moviegraph.walks.csr import CSRGraph

# Context key used for first steps, which have no previous node.
FIRST_STEP = -1


def _neighbours(graph: CSRGraph, v: int) -> dict[int, float]:
    """Out-neighbours of ``v`` with their weights."""
    lo, hi = int(graph.indptr[v]), int(graph.indptr[v + 1])
    pairs = zip(graph.indices[lo:hi].tolist(), graph.weights[lo:hi].tolist(), strict=True)
    return dict(pairs)


def first_step_probs(graph: CSRGraph, v: int) -> dict[int, float]:
    """P(first step goes to x | start v) = w(v, x) / sum of v's weights; {} if v has none."""
    nbrs = _neighbours(graph, v)
    total = sum(nbrs.values())
    return {x: w / total for x, w in nbrs.items()}


def second_order_probs(graph: CSRGraph, t: int, v: int, p: float, q: float) -> dict[int, float]:
    """P(next = x | previous t, current v) under node2vec's (p, q) bias; {} if v has none.

    Unnormalised weight: w(v,x)/p if x == t; w(v,x) if t -> x is an edge; w(v,x)/q else.
    """
    nbrs = _neighbours(graph, v)
    t_nbrs = set(_neighbours(graph, t))
    unnorm = {}
    for x, w in nbrs.items():
        if x == t:
            unnorm[x] = w / p
        elif x in t_nbrs:
            unnorm[x] = w
        else:
            unnorm[x] = w / q
    total = sum(unnorm.values())
    return {x: u / total for x, u in unnorm.items()}


def count_transitions(
    walks: np.ndarray, include_first_step: bool = True
) -> dict[tuple[int, int], dict[int, int]]:
    """Count ``(t, v) -> x`` transitions in padded walks (``t = FIRST_STEP`` for first steps)."""
    walks = np.asarray(walks, dtype=np.int64)
    counts: dict[tuple[int, int], dict[int, int]] = {}
    triples = []
    if include_first_step and walks.shape[1] >= 2:
        first = walks[:, :2]
        first = first[first[:, 1] >= 0]
        triples.append(np.column_stack([np.full(len(first), FIRST_STEP), first]))
    for k in range(walks.shape[1] - 2):
        tri = walks[:, k : k + 3]
        triples.append(tri[tri[:, 2] >= 0])
    if not triples:
        return counts
    tri = np.concatenate(triples)
    base = int(tri.max()) + 2 if len(tri) else 1
    if base**3 < 2**62:
        # Encode each triple as one integer: a 1-D unique is far faster than axis=0.
        code = ((tri[:, 0] + 1) * base + tri[:, 1]) * base + tri[:, 2]
        ucode, n = np.unique(code, return_counts=True)
        uniq = np.column_stack([ucode // (base * base) - 1, ucode // base % base, ucode % base])
    else:
        uniq, n = np.unique(tri, axis=0, return_counts=True)
    for (t, v, x), c in zip(uniq.tolist(), n.tolist(), strict=True):
        counts.setdefault((t, v), {})[x] = c
    return counts


def _pooled_chi2(
    observed: np.ndarray, expected: np.ndarray, min_expected: float
) -> tuple[float, int]:
    """Chi-square statistic and degrees of freedom of one context after pooling.

    Cells with expected count below ``min_expected`` are lumped into one cell; if that
    lump is still too small it joins the smallest remaining cell.
    """
    order = np.argsort(expected, kind="stable")
    obs, exp = observed[order], expected[order]
    small = exp < min_expected
    if small.any():
        pooled_o, pooled_e = obs[small].sum(), exp[small].sum()
        obs, exp = obs[~small], exp[~small]
        if pooled_e < min_expected and len(exp):
            obs = np.concatenate([[pooled_o + obs[0]], obs[1:]])
            exp = np.concatenate([[pooled_e + exp[0]], exp[1:]])
        else:
            obs = np.concatenate([[pooled_o], obs])
            exp = np.concatenate([[pooled_e], exp])
    if len(exp) < 2:
        return 0.0, 0
    return float(((obs - exp) ** 2 / exp).sum()), len(exp) - 1


def transition_chi_square(
    walks: np.ndarray,
    graph: CSRGraph,
    p: float,
    q: float,
    min_expected: float = 5,
    include_first_step: bool = True,
) -> tuple[float, int, float]:
    """Goodness of fit of the walks' transitions to exact node2vec probabilities.

    For every observed context ``(t, v)`` (and first steps from ``v`` if
    ``include_first_step``), compares the counts of next nodes ``x`` with
    ``n(t, v) * P(x | t, v)``, pooling cells with expected count below ``min_expected``,
    and sums the per-context statistics and degrees of freedom.

    Returns:
        ``(chi2, dof, p_value)``.  A transition that is impossible under the exact law
        (not an edge) gives ``(inf, dof, 0.0)``.
    """
    from scipy import stats  # imported here so `moviegraph.walks` loads without scipy

    chi2_total, dof_total, impossible = 0.0, 0, False
    for (t, v), nexts in count_transitions(walks, include_first_step).items():
        if t == FIRST_STEP:
            probs = first_step_probs(graph, v)
        else:
            probs = second_order_probs(graph, t, v, p, q)
        if any(x not in probs for x in nexts):
            impossible = True
            continue
        n = sum(nexts.values())
        cells = sorted(probs)
        observed = np.array([nexts.get(x, 0) for x in cells], dtype=np.float64)
        expected = np.array([n * probs[x] for x in cells], dtype=np.float64)
        chi2, dof = _pooled_chi2(observed, expected, min_expected)
        chi2_total += chi2
        dof_total += dof
    if impossible:
        return float("inf"), dof_total, 0.0
    p_value = float(stats.chi2.sf(chi2_total, dof_total)) if dof_total else 1.0
    return chi2_total, dof_total, p_value
