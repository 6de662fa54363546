"""Embedding Projector TSVs and Parquet copies of one model's vectors (no Spark).

Layout of ``<out>/<model>/``:

* ``embeddings.tsv`` - one movie per line, the vector's components tab-separated, no header
  (load it as "Vectors" in https://projector.tensorflow.org);
* ``metadata.tsv`` - same line order, with a header: ``title, year, genres, rating_count,
  movie_id`` (load it as "Metadata");
* ``embeddings.parquet`` - ``movie_id, title, year, genres list<string>, rating_count,
  vector list<float>``; ``user_embeddings.parquet`` - ``user_id, vector`` when the model has
  user vectors;
* ``run.json`` - model, embeddings run id, counts.

A model's folder is written in a temporary sibling folder and renamed into place, so a
reader never sees a half-written export; the previous export is removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

METADATA_COLUMNS = ("title", "year", "genres", "rating_count", "movie_id")


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder that replaces ``target`` when the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _clean(text: pd.Series) -> pd.Series:
    """Tabs and line breaks would break the TSV's columns and rows."""
    return text.fillna("").astype(str).str.replace(r"[\t\r\n]+", " ", regex=True)


def metadata_frame(movie_ids: np.ndarray, movies: pd.DataFrame) -> pd.DataFrame:
    """Metadata rows in ``movie_ids`` order.

    Args:
        movies: ``movie_id, title, year, genres (list), rating_count``; movies missing from
            it get an empty title, no year, no genres and 0 ratings.
    """
    m = movies.drop_duplicates("movie_id").set_index("movie_id")
    m = m.reindex(pd.Index(np.asarray(movie_ids), name="movie_id")).reset_index()
    m["title"] = m["title"].fillna("")
    m["rating_count"] = m["rating_count"].fillna(0).astype(np.int64)
    m["year"] = m["year"].astype("Int64")
    m["genres"] = [list(g) if isinstance(g, (list, np.ndarray)) else [] for g in m["genres"]]
    return m[list(METADATA_COLUMNS)]


def write_model_export(out: Path, model: str, run_id: str, movie_ids: np.ndarray,
                       vectors: np.ndarray, movies: pd.DataFrame,
                       user_ids: np.ndarray | None = None,
                       user_vectors: np.ndarray | None = None) -> Path:
    """Write ``<out>/<model>/`` (see the module doc) atomically; return that folder.

    Args:
        movie_ids, vectors: the model's movies and their (n, d) vectors, same order.
        movies: metadata (see :func:`metadata_frame`).
        user_ids, user_vectors: optional user vectors.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(movie_ids):
        raise ValueError(f"{len(movie_ids)} movie ids for vectors of shape {vectors.shape}")
    meta = metadata_frame(movie_ids, movies)
    target = Path(out) / model
    with atomic_dir(target) as tmp:
        # %.7g round-trips a float32 closely enough for a viewer, in half the bytes of repr.
        np.savetxt(tmp / "embeddings.tsv", vectors, fmt="%.7g", delimiter="\t")
        tsv = pd.DataFrame({
            "title": _clean(meta["title"]),
            "year": meta["year"].astype(str).replace("<NA>", ""),
            "genres": ["|".join(g) for g in meta["genres"]],
            "rating_count": meta["rating_count"],
            "movie_id": meta["movie_id"],
        })
        tsv.to_csv(tmp / "metadata.tsv", sep="\t", index=False, lineterminator="\n")
        table = pa.Table.from_pandas(meta, preserve_index=False).append_column(
            "vector", _list_column(vectors))
        pq.write_table(table, tmp / "embeddings.parquet")
        n_users = 0
        if user_ids is not None and user_vectors is not None:
            uv = np.asarray(user_vectors, dtype=np.float32)
            n_users = int(uv.shape[0])
            pq.write_table(pa.table({"user_id": pa.array(np.asarray(user_ids, np.int32)),
                                     "vector": _list_column(uv)}),
                           tmp / "user_embeddings.parquet")
        (tmp / "run.json").write_text(json.dumps({
            "model": model, "run_id": run_id, "movies": int(vectors.shape[0]),
            "dim": int(vectors.shape[1]), "users": n_users}, indent=2) + "\n")
    return target


def _list_column(matrix: np.ndarray) -> pa.ListArray:
    n, d = matrix.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * d)
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1), pa.float32()))
