"""The ``blend`` model: other models' movie vectors side by side, weighted.

Each part's rows are scaled to unit length and by the square root of its weight
(weights normalised to sum 1) and the parts are put side by side, so for two movies
present in every part

    blend_u . blend_v = sum_m w_m cos_m(u, v),

the weighted sum of the parts' cosines. The similarity join therefore ranks a blend like
any single model (one matmul per block, same top-k kernel, same prior and co-rating
terms); its lists use the dot product (``[train.scorers.blend] list_metric``), which is
that sum. A user profile (the mean of the blend's rows) is the parts' mean vectors side
by side, each times sqrt(w): roughly, not exactly, the weighted sum of the parts'
profile cosines (a part whose vectors agree more gets a longer mean). Issue 14:
node2vec's graph view and cbow's sequence view err on different movies; their blend
beats either on the temporal validation cut (CHANGELOG.md), though not on the test part.

A movie missing from a part (the part never gave it a vector) has zeros there: under the
dot product that part adds nothing to its similarities (a cosine would rescale the row
and inflate the other parts). Pure numpy, no Spark.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from moviegraph.train.shipped import unit_rows64


def blend_vectors(parts: Sequence[tuple[np.ndarray, np.ndarray]], weights: Sequence[float]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(movie_ids, vectors)`` of the blend of ``parts``.

    Args:
        parts: ``(movie_ids, vectors)`` per model; ids unique, vectors one row per id.
        weights: one positive weight per part (normalised to sum 1 here).

    Returns:
        The union of the parts' movie ids (ascending, int32) and float32 vectors of width
        the sum of the parts' widths.

    Raises:
        ValueError: no parts, a weight count that differs, a weight <= 0, or a part whose
            ids and rows disagree.
    """
    if not parts:
        raise ValueError("blend: no parts")
    if len(weights) != len(parts):
        raise ValueError(f"blend: {len(weights)} weight(s) for {len(parts)} part(s)")
    w = np.asarray(weights, np.float64)
    if np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"blend: weights must be > 0, got {list(weights)}")
    w = w / w.sum()
    for ids, vectors in parts:
        if len(ids) != len(vectors) or np.unique(ids).size != len(ids):
            raise ValueError("blend: each part needs one vector per distinct movie id")
    movie_ids = np.unique(np.concatenate([np.asarray(ids, np.int64) for ids, _ in parts]))
    widths = [np.asarray(v).shape[1] for _, v in parts]
    out = np.zeros((movie_ids.size, sum(widths)), np.float64)
    col = 0
    for (ids, vectors), weight, width in zip(parts, w, widths, strict=True):
        rows = np.searchsorted(movie_ids, np.asarray(ids, np.int64))
        out[rows, col:col + width] = np.sqrt(weight) * unit_rows64(vectors)
        col += width
    return movie_ids.astype(np.int32), out.astype(np.float32)
