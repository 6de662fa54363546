"""One grid search for every setting tuned on a validation cut (EASE's lambda, the
popularity prior's beta, EDLAE's rank / dropout / ridge, the tower blend's beta)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import scipy.sparse as sp

from moviegraph.protocol.metrics import ScoreFn, ranking_metrics

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True)
class GridResult(Generic[T]):
    """The best candidate and the score of every candidate tried, in the order tried."""

    best: T
    scores: dict[T, float]


def _smaller_first(candidate: Any) -> Any:
    """Sort key under which a smaller number (or tuple of numbers) ranks higher."""
    if isinstance(candidate, tuple):
        return tuple(-c for c in candidate)
    return -candidate


def grid_search(candidates: Iterable[T], score: Callable[[T], float]) -> GridResult[T]:
    """Score every candidate (in the order given); the best has the highest score, ties
    going to the smallest candidate (numbers, or tuples of numbers compared in order).

    Raises ValueError when there is no candidate.
    """
    scores = {c: float(score(c)) for c in candidates}
    if not scores:
        raise ValueError("grid_search: no candidate to try")
    best = max(scores, key=lambda c: (scores[c], _smaller_first(c)))
    return GridResult(best=best, scores=scores)


def recall_search(candidates: Iterable[T], scorer: Callable[[T], ScoreFn],
                  train: sp.spmatrix, validation: sp.spmatrix, k: int = 20) -> GridResult[T]:
    """:func:`grid_search` by validation Recall@k: ``scorer(candidate)`` ranks the movies
    outside ``train`` for the users of ``validation`` (relevant = rating >= 4)."""
    return grid_search(candidates,
                       lambda c: ranking_metrics(scorer(c), train, validation, k=k).recall)
