"""The ``neighbours`` job: print a movie's neighbours from the ``similar_movies`` table.

``./spark-submit.sh neighbours "Star Wars" [--model M] [--k 10] [--metric cosine]``: the
movie is a movie id or a title, matched forgivingly (case, accents, punctuation, a
trailing ", The", the year: :func:`moviegraph.evaluate.report_data.normalize_title`;
then prefixes, then the closest titles by :mod:`difflib`); among equally good matches
the most rated movie wins. No match is an input error (exit code 3) with one line that
names the closest titles. The rows printed are the table's own: what a user of the
table gets. Run on its own, never by ``pipeline``; it writes no table.
"""

from __future__ import annotations

import difflib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import SparkSession

from moviegraph.config import Config
from moviegraph.errors import InputError
from moviegraph.evaluate.report_data import find_movies, normalize_title
from moviegraph.runs import StageRun
from moviegraph.stages.base import Flag, Stage
from moviegraph.tables import Warehouse

#: Shortest difflib similarity ratio accepted as a fuzzy title match.
FUZZY_CUTOFF = 0.6


def match_movie(query: str, movie_ids: np.ndarray, titles: list[str],
                popularity: np.ndarray) -> int:
    """Position of the movie ``query`` names: an id, an exact or prefix title
    (:func:`~moviegraph.evaluate.report_data.find_movies`), else the closest title by
    difflib (ties: the most rated).

    Raises:
        InputError: nothing matches; the message names the closest titles, if any.
    """
    text = query.strip()
    if not text:
        raise InputError("neighbours: give a movie title or id")
    if text.isdigit():
        pos = np.flatnonzero(np.asarray(movie_ids) == int(text))
        if pos.size:
            return int(pos[0])
    found = find_movies([text], titles, popularity)
    if text in found:
        return found[text]
    norm = [normalize_title(t) for t in titles]
    close = difflib.get_close_matches(normalize_title(text), norm, n=5, cutoff=FUZZY_CUTOFF)
    if close:
        best = close[0]
        cands = [i for i, t in enumerate(norm) if t == best]
        return max(cands, key=lambda i: (popularity[i], -i))
    hint = difflib.get_close_matches(normalize_title(text), norm, n=3, cutoff=0.3)
    names = [titles[norm.index(h)] for h in hint]
    raise InputError(f"neighbours: no movie matches {query!r}"
                     + (f" (closest: {'; '.join(names)})" if names else ""))


def run_neighbours(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """The neighbours of ``neighbours.movie`` in ``similar_movies`` (one model, one metric)."""
    nc = cfg.neighbours
    movies = wh.read_arrow("movies", ["movie_id", "title"]).sort_by("movie_id")
    movie_ids = movies.column("movie_id").to_numpy()
    titles = [t or "" for t in movies.column("title").to_pylist()]
    sims = wh.read_arrow("similar_movies")
    models = sorted(set(sims.column("model").to_pylist()))
    if not models:
        raise InputError("neighbours: similar_movies is empty; run the similar stage first")
    model = nc.model or ("node2vec" if "node2vec" in models else models[0])
    if model not in models:
        raise InputError(f"neighbours: model {model!r} has no rows in similar_movies "
                         f"(models: {', '.join(models)})")
    rows = sims.filter(pc.equal(sims.column("model"), model))
    metrics = sorted(set(rows.column("metric").to_pylist()))
    metric = nc.metric or metrics[0]
    if metric not in metrics:
        raise InputError(f"neighbours: {model} has no {metric!r} lists (metrics: "
                         f"{', '.join(metrics)})")
    rows = rows.filter(pc.equal(rows.column("metric"), metric))
    # Popularity to break ties between equally good title matches: list appearances.
    pop = np.bincount(np.searchsorted(movie_ids, rows.column("neighbor_id").to_numpy()),
                      minlength=len(movie_ids) + 1)[:len(movie_ids)]
    pos = match_movie(nc.movie, movie_ids, titles, pop)
    mid = int(movie_ids[pos])
    mine = rows.filter(pc.equal(rows.column("movie_id"), pa.scalar(mid, pa.int32())))
    mine = mine.sort_by("rank")
    lines = [f"neighbours of {mid} {titles[pos]} ({model}, {metric}; similar_movies):"]
    if mine.num_rows == 0:
        lines.append("  (no list: the movie has no vector in this model)")
    for rank, nbr, score in zip(mine.column("rank").to_pylist()[: nc.k],
                                mine.column("neighbor_id").to_pylist()[: nc.k],
                                mine.column("score").to_pylist()[: nc.k], strict=True):
        j = int(np.searchsorted(movie_ids, nbr))
        title = titles[j] if j < len(movie_ids) and movie_ids[j] == nbr else ""
        lines.append(f"  {rank:>3}. {nbr:>7} {title} ({score:.3f})")
    run.notes.update({"movie_id": mid, "model": model, "metric": metric,
                      "rows": min(mine.num_rows, nc.k)})
    return "\n".join(lines)


STAGE = Stage(
    name="neighbours", summary="print a movie's neighbours from similar_movies (title or id, "
    "fuzzy title match)",
    reads_doc="`similar_movies`, `movies`",
    writes_doc="– (prints the movie's top-k rows of `similar_movies`: "
               "`neighbours \"Star Wars\" [--model M] [--k 10] [--metric cosine]`)",
    sections=("neighbours",), run=run_neighbours,
    flags=(Flag("movie", "neighbours.movie", "movie title (fuzzy) or id", metavar="MOVIE"),
           Flag("--model", "neighbours.model",
                "model (default node2vec, else the first)", metavar="MODEL"),
           Flag("--k", "neighbours.k", "rows to print", metavar="K"),
           Flag("--metric", "neighbours.metric", "metric of the lists (default: the "
                "model's only or first one)", metavar="METRIC")))
