"""moviegraph.protocol: EVALUATION.md's protocol as plain numpy, the bottom of the model layers.

Splits (:mod:`~moviegraph.protocol.splits`), metrics and the dense-position matrices they
take (:mod:`~moviegraph.protocol.metrics`), the rating data in positions with the splits'
masks (:mod:`~moviegraph.protocol.data`) and one grid search for everything tuned on a
validation cut (:mod:`~moviegraph.protocol.tuning`). Both the trainers (:mod:`moviegraph.train`)
and the evaluation (:mod:`moviegraph.evaluate`) build on it; it imports neither.

Kernels take dense positions (users ``0..n_users-1``, movies ``0..n_items-1``); see
:mod:`moviegraph.protocol.metrics` for the id <-> position mapping.
"""

from moviegraph.protocol.data import EvalData, MovieLens100K, align, load_ml100k, prepare
from moviegraph.protocol.metrics import (
    RankingResult,
    binarize,
    genre_matrix,
    genre_precision_at_k,
    index_ids,
    item_embedding_scores,
    random_genre_precision_at_k,
    ranking_metrics,
    rmse,
    user_item_matrix,
)
from moviegraph.protocol.splits import ranking_split, rating_split, validation_cut
from moviegraph.protocol.tuning import GridResult, grid_search, recall_search

__all__ = [
    "EvalData",
    "GridResult",
    "MovieLens100K",
    "RankingResult",
    "align",
    "binarize",
    "genre_matrix",
    "genre_precision_at_k",
    "grid_search",
    "index_ids",
    "item_embedding_scores",
    "load_ml100k",
    "prepare",
    "random_genre_precision_at_k",
    "ranking_metrics",
    "ranking_split",
    "rating_split",
    "recall_search",
    "rmse",
    "user_item_matrix",
    "validation_cut",
]
