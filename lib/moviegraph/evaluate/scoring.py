"""Scoring every model and baseline by EVALUATION.md's protocol, on numpy arrays.

The evaluate stage (and the ml-100k benchmarks) hand this module the rating data in dense
positions (:class:`moviegraph.protocol.data.EvalData`: users ``0..n_users-1`` in ascending
id order, movies ``0..n_items-1`` in the catalogue's ascending id order, so a movie seen
only in test is still ranked, and can be missed) and item vectors aligned with it
(:func:`moviegraph.protocol.data.align`).

Metric names (the ``name`` column of the ``metrics`` table):

- ``recall@K:<scorer>`` / ``ndcg@K:<scorer>`` with scorer ``shipped`` (a model's
  ``recommendations`` table, scored as it is), ``model`` (a baseline's score function) or
  ``cosine`` (summed cosine: the gensim and random baselines); ``users@K`` the number of
  evaluated users;
- neighbour lists (a model's ``similar_movies`` rows, a baseline's lists):
  ``neighbour_hr@K``, ``neighbour_recall@K``, ``neighbour_no_list``, ``genre_p@10`` and
  ``list_coverage`` (suffixed ``:<metric>`` for a model's non-shipped metric);
- ``rmse`` on the rating split; ``movies`` (movies with a vector);
  ``landmark:<query> -> <movie>`` (1 when in the query's shipped top 10);
- walk fidelity: ``chi2[p=..,q=..]``, ``dof[...]``, ``p_value[...]``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from moviegraph.config.models import SkipGramConfig
from moviegraph.evaluate import baselines as bl
from moviegraph.evaluate import lists as ev_lists
from moviegraph.protocol import metrics as mt
from moviegraph.protocol.data import EvalData
from moviegraph.walks.csr import CSRGraph
from moviegraph.walks.exact import transition_chi_square
from moviegraph.walks.kernel import random_walks

#: One row of the ``metrics`` table, without the run id: ``(model, name, value)``.
MetricRow = tuple[str, str, float]


log = logging.getLogger("moviegraph")


class Collector:
    """Accumulates metric rows and the seconds each part took."""

    def __init__(self) -> None:
        self.rows: list[MetricRow] = []
        self.seconds: dict[str, float] = {}
        self.notes: dict[str, str] = {}

    def add(self, model: str, name: str, value: float) -> None:
        """One metric value (NaN allowed: e.g. no evaluated users)."""
        self.rows.append((model, name, float(value)))

    def ranking(self, model: str, scorer: str, scores: mt.ScoreFn | np.ndarray,
                d: EvalData, k: int, train: sp.csr_matrix | None = None) -> float:
        """Recall@k / NDCG@k (and users@k once per model) of one scorer; returns recall."""
        res = mt.ranking_metrics(scores, d.train if train is None else train, d.test, k=k)
        self.add(model, f"recall@{k}:{scorer}", res.recall)
        self.add(model, f"ndcg@{k}:{scorer}", res.ndcg)
        if not any(r[0] == model and r[1] == f"users@{k}" for r in self.rows):
            self.add(model, f"users@{k}", res.n_users)
        return res.recall

    def ranking_lists(self, model: str, scorer: str, lists: np.ndarray, d: EvalData,
                      k: int) -> float:
        """Recall@k / NDCG@k (and users@k once per model) of recommendation lists, e.g. the
        ``recommendations`` table's (:mod:`moviegraph.evaluate.lists`); returns recall."""
        res = ev_lists.list_ranking_metrics(lists, d, k)
        self.add(model, f"recall@{k}:{scorer}", res.recall)
        self.add(model, f"ndcg@{k}:{scorer}", res.ndcg)
        if not any(r[0] == model and r[1] == f"users@{k}" for r in self.rows):
            self.add(model, f"users@{k}", res.users)
        return res.recall

    def timed(self, key: str, t0: float) -> None:
        """Record seconds since ``t0`` under ``key`` (added up); log one progress line."""
        seconds = time.perf_counter() - t0
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds
        log.info("evaluate: %s scored in %.1fs", key, seconds)


def list_metrics(out: Collector, model: str, lists: np.ndarray, d: EvalData, k: int,
                 tag: str = "") -> None:
    """Neighbour hit rate, neighbour Recall@k, genre precision@10 and coverage of one set
    of neighbour lists (EVALUATION.md), as ``neighbour_hr@k<tag>``, ... rows."""
    res = ev_lists.neighbour_hit_rate(lists, d, k)
    out.add(model, f"neighbour_hr@{k}{tag}", res.hr)
    out.add(model, f"neighbour_recall@{k}{tag}", res.recall)
    out.add(model, f"neighbour_no_list{tag}", res.no_list)
    precision, coverage = ev_lists.list_genre_precision(lists, d, 10)
    out.add(model, f"genre_p@10{tag}", precision)
    out.add(model, f"list_coverage{tag}", coverage)


def genre_metrics(out: Collector, model: str, vectors: np.ndarray, has_vector: np.ndarray,
                  d: EvalData, seed: int = 0) -> None:
    """genre_p@10 of the vectors and of random vectors over the same movies (train ones)."""
    include = has_vector & d.in_train
    out.add(model, "genre_p@10", mt.genre_precision_at_k(vectors, d.genres, 10, include))
    out.add(model, "genre_p@10:random", mt.random_genre_precision_at_k(
        d.genres, dim=max(vectors.shape[1], 1), k=10, seed=seed, include=include))


#: Trailing bias columns of mf's written vectors per ``train.mf_biases`` layout.
BIAS_COLUMNS = {"append": 2, "full": 3}


def bias_layout(item_vectors: np.ndarray, has_vector: np.ndarray) -> str | None:
    """Detect mf's written layout from the movie rows when the run notes do not say.

    ``append``: movie rows ``[q, b_i, 1]`` (last column exactly 1); ``full``: ``[q, b_i, 1,
    mu]`` (second-to-last exactly 1, last constant); None otherwise (``drop`` or no mf).
    """
    rows = item_vectors[has_vector]
    if rows.shape[0] == 0 or rows.shape[1] < 3:
        return None
    if np.all(rows[:, -1] == 1.0):
        return "append"
    if rows.shape[1] >= 4 and np.all(rows[:, -2] == 1.0) and np.all(rows[:, -1] == rows[0, -1]):
        return "full"
    return None


def biased_dot_rmse(item_vectors: np.ndarray, has_item: np.ndarray,
                    user_vectors: np.ndarray, has_user: np.ndarray, global_mean: float,
                    d: EvalData, layout: str = "append") -> float:
    """RMSE on the rating split of mf's vectors with biases in them.

    ``append``: movie ``[q, b_i, 1]``, user ``[p, 1, b_u]``, prediction ``mu + <p_u, q_i>``;
    ``full``: movie ``[q, b_i, 1, mu]``, user ``[p, 1, b_u, 1]``, prediction ``<p_u, q_i>``.
    A missing side contributes neither factors nor its own bias (mu + the known side's
    bias), as the trainer predicts.
    """
    full = layout == "full"
    bi_col, bu_col = (-3, -2) if full else (-2, -1)
    t = d.rated_test
    u, i = d.u[t], d.m[t]
    ku, ki = has_user[u], has_item[i]
    pred = np.full(u.shape[0], global_mean, dtype=np.float64)
    both = ku & ki
    dot = np.einsum("nd,nd->n", user_vectors[u[both]].astype(np.float64),
                    item_vectors[i[both]].astype(np.float64))
    pred[both] = dot if full else global_mean + dot
    only_i = ki & ~ku
    pred[only_i] += item_vectors[i[only_i], bi_col]
    only_u = ku & ~ki
    pred[only_u] += user_vectors[u[only_u], bu_col]
    return mt.rmse(pred, d.r[t])


def dense_baselines_fit(n_items: int, max_items: int) -> bool:
    """ItemKNN and EASE hold n_items^2 floats: only when n_items <= max_items."""
    return n_items <= max_items


def evaluate_baselines(out: Collector, d: EvalData, k: int, which: Sequence[str],
                       ease_lambdas: Iterable[float], max_dense_items: int = 20_000) -> None:
    """MostPop, ItemKNN, EASE (lambda tuned on the validation cut), global mean, biases."""
    if "mostpop" in which:
        t0 = time.perf_counter()
        out.ranking("baseline:mostpop", "model", bl.MostPop(d.train), d, k)
        out.timed("baseline:mostpop", t0)
    dense_ok = dense_baselines_fit(d.n_items, max_dense_items)
    for name in ("itemknn", "ease"):
        if name in which and not dense_ok:
            out.notes[f"baseline:{name}"] = (f"skipped: {d.n_items:,} movies > "
                                             f"evaluate.max_dense_items {max_dense_items:,}")
    if "itemknn" in which and dense_ok:
        t0 = time.perf_counter()
        knn = bl.ItemKNN(d.train)
        out.ranking("baseline:itemknn", "model", knn, d, k)
        list_metrics(out, "baseline:itemknn", ev_lists.baseline_lists(d.train, "itemknn", k),
                     d, k)
        out.timed("baseline:itemknn", t0)
    if "cocount" in which:
        t0 = time.perf_counter()
        list_metrics(out, "baseline:cocount", ev_lists.baseline_lists(d.train, "cocount", k),
                     d, k)
        out.timed("baseline:cocount", t0)
    if "ease" in which and dense_ok:
        t0 = time.perf_counter()
        tuning = bl.tune_ease(d.matrix(~d.is_test & ~d.is_val), d.matrix(d.is_val),
                              ease_lambdas, k=k)
        out.add("baseline:ease", "lambda", tuning.best_lambda)
        out.ranking("baseline:ease", "model", bl.EASE(d.train, tuning.best_lambda), d, k)
        out.timed("baseline:ease", t0)
    if "biases" in which:
        t0 = time.perf_counter()
        fit, test = ~d.rated_test, d.rated_test
        gm = bl.global_mean(d.r[fit], d.n_users, d.n_items)
        out.add("baseline:global_mean", "rmse", mt.rmse(gm.predict(d.u[test], d.m[test]),
                                                        d.r[test]))
        b = bl.fit_biases(d.u[fit], d.m[fit], d.r[fit], d.n_users, d.n_items)
        out.add("baseline:biases", "rmse", mt.rmse(b.predict(d.u[test], d.m[test]), d.r[test]))
        out.timed("baseline:biases", t0)
    if "random" in which:
        rand = np.random.default_rng(0).standard_normal((d.n_items, 64)).astype(np.float32)
        out.ranking("baseline:random", "cosine", mt.item_embedding_scores(rand, d.train), d, k)
        list_metrics(out, "baseline:random", ev_lists.vector_lists(rand, d.in_train, k), d, k)


def gensim_vectors(walks: np.ndarray, s: SkipGramConfig, workers: int = 1
                   ) -> tuple[np.ndarray, np.ndarray]:
    """gensim skip-gram (negative sampling) on walks of movie ids (-1 padded), with the
    settings the project's node2vec trainer shares with gensim (``[train.node2vec]``:
    dim, window, negative, sample, epochs, alpha, min_alpha, seed).

    Returns ``(movie_ids, vectors)``, ids ascending. Raises ImportError without gensim.
    """

    from gensim.models import Word2Vec

    # gensim logs every epoch at INFO: keep the stage's one-screen output readable.
    gensim_log = logging.getLogger("gensim")
    level = gensim_log.level
    gensim_log.setLevel(logging.WARNING)
    try:
        return _word2vec(Word2Vec, walks, s, workers)
    finally:
        gensim_log.setLevel(level)


def _word2vec(word2vec: type, walks: np.ndarray, s: SkipGramConfig, workers: int
              ) -> tuple[np.ndarray, np.ndarray]:
    walks = np.asarray(walks)
    # gensim wants lists of string tokens: one list per walk, once (no per-token Python
    # work beyond this conversion, which gensim itself would do anyway).
    sentences = [[str(t) for t in row[row >= 0].tolist()] for row in walks]
    w2v = word2vec(sentences, vector_size=s.dim, window=s.window, sg=1, hs=0,
                   negative=s.negative, sample=s.sample, epochs=s.epochs, alpha=s.alpha,
                   min_alpha=s.min_alpha, min_count=1, workers=workers, seed=s.seed)
    keys = w2v.wv.index_to_key
    ids = np.array([int(key) for key in keys], dtype=np.int64)
    vectors = np.asarray(w2v.wv.vectors, dtype=np.float32)
    order = np.argsort(ids, kind="stable")
    return ids[order], vectors[order]


def fidelity_graph(n: int = 50, density: float = 0.12, seed: int = 3) -> CSRGraph:
    """The fixed small weighted graph of the walk-fidelity metric (Erdős–Rényi, log-normal)."""
    rng = np.random.default_rng(seed)
    iu, ju = np.triu_indices(n, k=1)
    keep = rng.random(len(iu)) < density
    w = rng.lognormal(0.0, 1.0, int(keep.sum()))
    return CSRGraph.from_edges(iu[keep], ju[keep], w, n)


def walk_fidelity(out: Collector, p: float, q: float, seed: int, rounds: int = 300,
                  length: int = 40) -> float:
    """Chi-square of the walk kernel against exact node2vec probabilities; returns p-value."""
    g = fidelity_graph()
    starts = np.repeat(np.arange(g.num_nodes), rounds)
    rnds = np.tile(np.arange(rounds), g.num_nodes)
    walks = random_walks(g, starts, rnds, length, p, q, seed, num_threads=1)
    chi2, dof, pval = transition_chi_square(walks, g, p, q)
    tag = f"[p={p:g},q={q:g}]"
    out.add("walks", f"chi2{tag}", chi2)
    out.add("walks", f"dof{tag}", dof)
    out.add("walks", f"p_value{tag}", pval)
    return pval
