"""Deterministic train/test splits of EVALUATION.md (no random state to share).

All functions take parallel arrays (one entry per rating, ids as given in the data, any
order) and return a boolean mask aligned with those arrays, ``True`` marking a held-out row.

Ranking split, exactly: each user's ratings are ordered by ``(ts, movie id)`` (the movie id
breaks timestamp ties, so the split does not depend on input order); the last
``n_test = max(1, floor(0.2 * n))`` of a user's ``n`` ratings are test. ``floor`` (not
``round`` or ``ceil``) because "the last 20% (at least one)" only needs its "at least one"
clause with ``floor``; it is computed in integers (``n // 5``) so no float rounding creeps
in. A user with a single rating therefore has no train rows at all.
"""

from __future__ import annotations

import numpy as np

#: Multiplier of the rating-split hash; ``(user * RATING_SPLIT_PRIME + movie) % 10 == 0``.
RATING_SPLIT_PRIME = 1_000_003


def n_test_per_user(n: np.ndarray, test_fraction_inverse: int = 5) -> np.ndarray:
    """Number of test ratings of a user with ``n`` ratings: ``max(1, n // 5)``.

    Args:
        n: int array of per-user rating counts (each >= 1).
        test_fraction_inverse: ``1 / test fraction``; 5 means 20%.
    """
    n = np.asarray(n, dtype=np.int64)
    return np.maximum(1, n // test_fraction_inverse)


def ranking_split(
    user: np.ndarray,
    movie: np.ndarray,
    ts: np.ndarray,
    test_fraction_inverse: int = 5,
) -> np.ndarray:
    """Per-user temporal split: the last 20% (at least one) of each user's ratings are test.

    Args:
        user: user ids, shape (n,).
        movie: movie ids, shape (n,).
        ts: timestamps (any numeric type), shape (n,).
        test_fraction_inverse: ``1 / test fraction`` (5 = the protocol's 20%).

    Returns:
        bool array, shape (n,): ``True`` where the rating is test.
    """
    user = np.asarray(user)
    movie = np.asarray(movie)
    ts = np.asarray(ts)
    n_rows = user.shape[0]
    if not (movie.shape[0] == ts.shape[0] == n_rows):
        raise ValueError("user, movie and ts must have the same length")
    if n_rows == 0:
        return np.zeros(0, dtype=bool)
    # np.lexsort sorts by the last key first: user, then ts, then movie id.
    order = np.lexsort((movie, ts, user))
    sorted_user = user[order]
    starts = np.flatnonzero(np.r_[True, sorted_user[1:] != sorted_user[:-1]])
    sizes = np.diff(np.r_[starts, n_rows])
    # Position of each sorted row counted from the end of its user's group (0 = last).
    pos_from_end = np.repeat(starts + sizes, sizes) - 1 - np.arange(n_rows)
    n_test = np.repeat(n_test_per_user(sizes, test_fraction_inverse), sizes)
    is_test = np.empty(n_rows, dtype=bool)
    is_test[order] = pos_from_end < n_test
    return is_test


def rating_split(user: np.ndarray, movie: np.ndarray) -> np.ndarray:
    """Hash split for rating prediction: test when ``(user * 1000003 + movie) % 10 == 0``.

    Computed in int64 (ids up to ~9e12 / 1e6 stay exact), on the raw ids of the data.

    Returns:
        bool array, shape (n,): ``True`` where the rating is test.
    """
    u = np.asarray(user, dtype=np.int64)
    m = np.asarray(movie, dtype=np.int64)
    return (u * RATING_SPLIT_PRIME + m) % 10 == 0


def validation_cut(
    user: np.ndarray,
    movie: np.ndarray,
    ts: np.ndarray,
    is_test: np.ndarray,
    test_fraction_inverse: int = 5,
) -> np.ndarray:
    """A validation part of train, for tuning and early stopping, never touching test.

    The ranking split's rule applied again to the train rows only (``~is_test``): per user,
    the last 20% (at least one) of their *train* ratings by ``(ts, movie id)``.

    Returns:
        bool array aligned with the inputs: ``True`` for validation rows (always ``False`` on
        test rows). Fit on ``~is_test & ~is_val``, tune on ``is_val``.
    """
    is_test = np.asarray(is_test, dtype=bool)
    train_rows = np.flatnonzero(~is_test)
    is_val = np.zeros(is_test.shape[0], dtype=bool)
    is_val[train_rows] = ranking_split(
        np.asarray(user)[train_rows],
        np.asarray(movie)[train_rows],
        np.asarray(ts)[train_rows],
        test_fraction_inverse,
    )
    return is_val
