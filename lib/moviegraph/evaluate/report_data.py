"""What the HTML report shows, computed from numpy arrays (no Spark, no HTML here).

Nearest neighbours of the recipes' query movies (titles matched robustly), embedding norm
vs popularity, a seeded t-SNE map, graph statistics.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from moviegraph.protocol.metrics import normalize_rows, top_k

#: Query movies of the three recipes (Keras node2vec, the TF lab, the CBOW notebook).
QUERY_TITLES = ("Star Wars", "Toy Story", "Aladdin", "The Lion King", "The Godfather",
                "Terminator 2", "Fargo", "The Matrix")

_ARTICLES = ("the", "a", "an", "le", "la", "les", "il", "el", "der", "die", "das")


def normalize_title(title: str) -> str:
    """Lower case, accents and punctuation dropped, year removed, trailing article moved.

    ``"Godfather, The (1972)"`` and ``"The Godfather"`` both give ``"the godfather"``;
    ``"Star Wars (1977)"`` gives ``"star wars"``; ``"Terminator 2: Judgment Day (1991)"``
    gives ``"terminator 2 judgment day"``.
    """
    t = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    t = re.sub(r"\(\s*\d{4}\s*\)", " ", t)  # (1977)
    t = re.sub(r"\([^)]*\)", " ", t)  # alternative titles "(a.k.a. ...)"
    t = t.strip()
    # "Godfather, The" / "Godfather, The: Part II" -> "the godfather ..."
    m = re.match(r"^(.*?),\s*(" + "|".join(_ARTICLES) + r")\b(.*)$", t)
    if m:
        t = f"{m.group(2)} {m.group(1)}{m.group(3)}"
    t = re.sub(r"[^a-z0-9]+", " ", t)
    return " ".join(t.split())


def _without_article(t: str) -> str:
    first, _, rest = t.partition(" ")
    return rest if first in _ARTICLES and rest else t


def find_movies(queries: Sequence[str], titles: Sequence[str], popularity: np.ndarray
                ) -> dict[str, int]:
    """Position of the movie matching each query, for the queries found.

    A title matches when, articles aside, it equals the query or starts with it followed
    by a word boundary (``"Terminator 2"`` matches ``"Terminator 2: Judgment Day"``);
    exact matches win, then the most rated (``"Star Wars (1977)"`` over a later film of
    the same prefix).
    """
    norm = [_without_article(normalize_title(t)) for t in titles]
    popularity = np.asarray(popularity)
    found: dict[str, int] = {}
    for q in queries:
        nq = _without_article(normalize_title(q))
        if not nq:
            continue
        exact = [i for i, t in enumerate(norm) if t == nq]
        prefix = [i for i, t in enumerate(norm) if t.startswith(nq + " ")]
        cands = exact or prefix
        if cands:
            found[q] = max(cands, key=lambda i: (popularity[i], -i))
    return found


def neighbours(vectors: np.ndarray, has_vector: np.ndarray, query: int, k: int,
               metric: str) -> list[tuple[int, float]]:
    """Top-``k`` other movies with a vector by cosine or dot: ``[(position, score)]``."""
    if not has_vector[query]:
        return []
    v = normalize_rows(vectors) if metric == "cosine" else np.asarray(vectors, np.float64)
    scores = v @ v[query]
    scores[~has_vector] = -np.inf
    scores[query] = -np.inf
    best = top_k(scores[None, :], k)[0]
    return [(int(i), float(scores[i])) for i in best if np.isfinite(scores[i])]


@dataclass
class NeighbourList:
    """One query movie's neighbours under one model and metric (titles resolved)."""

    model: str
    metric: str
    query: str
    items: list[tuple[str, float]]


def neighbour_lists(model: str, vectors: np.ndarray, has_vector: np.ndarray,
                    titles: Sequence[str], popularity: np.ndarray, k: int = 5,
                    queries: Sequence[str] = QUERY_TITLES) -> list[NeighbourList]:
    """Cosine and dot neighbours of every query movie found in ``titles``."""
    out = []
    for _, pos in find_movies(queries, titles, popularity).items():
        for metric in ("cosine", "dot"):
            items = [(titles[i], s) for i, s in neighbours(vectors, has_vector, pos, k, metric)]
            if items:
                out.append(NeighbourList(model, metric, titles[pos], items))
    return out


def tsne_map(vectors: np.ndarray, seed: int, perplexity: float, max_iter: int
             ) -> np.ndarray:
    """2-D t-SNE of the (cosine-normalised) vectors, seeded: (n, 2) float64."""
    from sklearn.manifold import TSNE

    n = vectors.shape[0]
    if n < 3:
        return np.zeros((n, 2))
    x = normalize_rows(vectors)
    perplexity = min(perplexity, (n - 1) / 3.0)  # sklearn requires perplexity < n
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                max_iter=max_iter, metric="euclidean")
    return np.asarray(tsne.fit_transform(x), dtype=np.float64)


def primary_genre(genres: np.ndarray) -> np.ndarray:
    """Index of each movie's first genre (column order), -1 when it has none."""
    genres = np.asarray(genres, dtype=bool)
    first = genres.argmax(axis=1)
    return np.where(genres.any(axis=1), first, -1)


@dataclass
class GraphStats:
    """Summary of the movie graph (``vertices`` / ``edges`` tables)."""

    vertices: int
    edges: int
    components: int
    largest_component_share: float
    degree_bins: list[str] = field(default_factory=list)
    degree_counts: list[int] = field(default_factory=list)
    mean_degree: float = 0.0


def graph_stats(degree: np.ndarray, component: np.ndarray, n_edges: int) -> GraphStats:
    """Vertex and edge counts, components, and a log2-binned degree histogram."""
    degree = np.asarray(degree, dtype=np.int64)
    component = np.asarray(component)
    n = int(degree.shape[0])
    if n == 0:
        return GraphStats(0, int(n_edges), 0, 0.0)
    _, sizes = np.unique(component, return_counts=True)
    top = int(np.ceil(np.log2(max(int(degree.max()), 1) + 1)))
    edges = [0] + [2 ** j for j in range(top + 1)]  # 0 | 1 | 2-3 | 4-7 | ...
    labels, counts = [], []
    for lo, hi in pairwise(edges):
        labels.append(str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}")
        counts.append(int(((degree >= lo) & (degree < hi)).sum()))
    return GraphStats(n, int(n_edges), int(sizes.size), float(sizes.max() / n), labels, counts,
                      float(degree.mean()))


def table_neighbour_lists(model: str, metric: str, lists: np.ndarray, scores: np.ndarray,
                          titles: Sequence[str], popularity: np.ndarray, k: int = 10,
                          queries: Sequence[str] = QUERY_TITLES) -> list[NeighbourList]:
    """The first ``k`` rows of ``similar_movies`` of every query movie found in ``titles``
    (``lists``/``scores``: the table's neighbours and scores by query position and rank),
    exactly what the table holds."""
    out = []
    for _, pos in find_movies(queries, titles, popularity).items():
        items = [(titles[int(j)], float(s)) for j, s in zip(lists[pos, :k], scores[pos, :k],
                                                              strict=True) if j >= 0]
        if items:
            out.append(NeighbourList(model, metric, titles[pos], items))
    return out
