"""Choosing a model's list weights on the temporal validation cut of train.

``[train.scorers.<model>] tune_lists = true`` makes ``train`` pick ``list_beta`` and
``list_corate`` by EVALUATION.md's neighbour hit rate on each user's last 20% of train (the
test part is never seen). It lives here, above ``train`` in the layer order, because it
ranks with the similarity join's own kernels (:mod:`moviegraph.similarity.topk`), so the
tuned lists are built exactly as ``similar`` builds the shipped ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moviegraph.protocol.splits import ranking_split
from moviegraph.similarity.topk import CoRating, block_topk, unit_rows
from moviegraph.train.shipped import LIKE_THRESHOLD, TrainRatings, item_priors

#: List prior weights tried by :func:`tune_lists` (``[train.scorers.<model>] tune_lists``).
LIST_BETAS = (0.0, 0.025, 0.05, 0.1, 0.2)
#: Co-rating weights tried by :func:`tune_lists`.
LIST_CORATES = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)


@dataclass(frozen=True)
class ListTuning:
    """Outcome of :func:`tune_lists`: the chosen weights and the validation grid."""

    beta: float
    corate: float
    hit_rate: dict[tuple[float, float], float]  # (beta, corate) -> validation HR@k
    users: int


def tune_lists(movie_ids: np.ndarray, vectors: np.ndarray, metric: str, prior: str,
               train: TrainRatings, k: int = 20, betas: tuple[float, ...] = LIST_BETAS,
               corates: tuple[float, ...] = LIST_CORATES) -> ListTuning:
    """``(list_beta, list_corate)`` by EVALUATION.md's neighbour hit rate on the temporal
    validation cut of train (each user's last 20% of train ratings; the test part is never
    seen).

    Fit = train minus the cut: its prior and co-rating cosine. Per user with a liked
    (>= 4) movie in the cut: the query is their last liked fit movie by (time, movie id);
    its list is the top-``k`` other catalogue movies by ``metric + beta prior +
    corate co-rating``, ties to the lower id; a hit is a liked cut movie in the list once
    the user's fit movies are removed. Ties in HR: the smaller ``corate``, then ``beta``.
    Only the users' query rows are scored (a few hundred x catalogue at a time), never a
    movies x movies matrix.
    """
    ids = np.asarray(movie_ids, np.int64)
    n = ids.size
    val = ranking_split(train.user_id, train.movie_id, train.ts)
    fit = TrainRatings(train.user_id[~val], train.movie_id[~val], train.rating[~val],
                       train.ts[~val])
    prior_term = item_priors(fit, ids)[prior]
    pos = np.searchsorted(ids, fit.movie_id)
    pos = np.where((pos < n) & (ids[np.minimum(pos, max(n - 1, 0))] == fit.movie_id), pos, -1)
    co = CoRating(pos, np.unique(fit.user_id, return_inverse=True)[1], n, 1.0)
    # Queries: each user's last liked fit movie (by time, movie id) with a vector.
    liked = (fit.rating >= LIKE_THRESHOLD) & (pos >= 0)
    order = np.lexsort((fit.movie_id[liked], fit.ts[liked], fit.user_id[liked]))
    lu, lp = fit.user_id[liked][order], pos[liked][order]
    last = np.r_[lu[1:] != lu[:-1], True] if lu.size else np.zeros(0, bool)
    query_of = dict(zip(lu[last].tolist(), lp[last].tolist(), strict=True))
    rel_user = train.user_id[val & (train.rating >= LIKE_THRESHOLD)]
    rel_movie = train.movie_id[val & (train.rating >= LIKE_THRESHOLD)]
    users = np.unique(rel_user)
    qpos = np.array([query_of.get(int(u), -1) for u in users], np.int64)
    seen: dict[int, set[int]] = {}
    for u, m in zip(fit.user_id.tolist(), fit.movie_id.tolist(), strict=True):
        seen.setdefault(u, set()).add(m)
    relevant: dict[int, set[int]] = {}
    for u, m in zip(rel_user.tolist(), rel_movie.tolist(), strict=True):
        relevant.setdefault(u, set()).add(m)
    uniq, inv = np.unique(qpos[qpos >= 0], return_inverse=True)
    v = np.asarray(vectors, np.float64)
    v = unit_rows(v) if metric == "cosine" else v
    base = v[uniq] @ v.T  # (distinct queries, n)
    corating = co.rows(uniq)
    hr: dict[tuple[float, float], float] = {}
    for b in sorted(set(betas)):
        for c in sorted(set(corates)):
            s = base + b * prior_term[None, :] + c * corating
            s[np.arange(uniq.size), uniq] = -np.inf
            _, top = block_topk(s, k)
            hits = 0
            for u, q in zip(users[qpos >= 0].tolist(), inv.tolist(), strict=True):
                lst = [int(ids[p]) for p in top[q] if p >= 0]
                lst = [m for m in lst if m not in seen.get(u, ())]
                hits += any(m in relevant[u] for m in lst)
            hr[(float(b), float(c))] = hits / max(users.size, 1)
    best = max(hr, key=lambda bc: (hr[bc], -bc[1], -bc[0]))
    return ListTuning(beta=best[0], corate=best[1], hit_rate=hr, users=int(users.size))
