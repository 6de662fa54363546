"""moviegraph.evaluate: the protocol of EVALUATION.md (splits, metrics, baselines).

Kernels take dense positions (users ``0..n_users-1``, movies ``0..n_items-1``); see
:mod:`moviegraph.evaluate.metrics` for the id <-> position mapping.
"""

from moviegraph.evaluate.metrics import (
    RankingResult,
    genre_matrix,
    genre_precision_at_k,
    index_ids,
    item_embedding_scores,
    random_genre_precision_at_k,
    ranking_metrics,
    rmse,
    user_item_matrix,
)
from moviegraph.evaluate.splits import ranking_split, rating_split, validation_cut

__all__ = [
    "RankingResult",
    "genre_matrix",
    "genre_precision_at_k",
    "index_ids",
    "item_embedding_scores",
    "random_genre_precision_at_k",
    "ranking_metrics",
    "ranking_split",
    "rating_split",
    "rmse",
    "user_item_matrix",
    "validation_cut",
]
