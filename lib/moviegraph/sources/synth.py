"""Deterministic generator of MovieLens-25M-shaped ratings, written in ML-25M's CSV format.

The model, in short:

* Movies have a popularity curve ``c(r) = C / (1 + r / r0) ** a`` over their popularity rank
  (Zipf-like head, a long tail of movies rated once or a few times); every rated movie gets
  one "guaranteed" rater, so exactly ``movies`` movies are rated. Sampling weights are
  calibrated so that, after heavy users saturate the head, the realised counts follow it.
  ``movies.csv`` also lists a few never-rated movies (ML-25M lists 62,423; 59,047 are rated).
* Users have ``20 + X`` ratings with ``X`` log-normal plus a heavier extreme tail, scaled so
  the total is exactly the requested number of ratings. Each user prefers
  ``genres_per_taste`` genres: a share of their picks comes from those genres, and their
  ratings of movies in those genres are higher.
* A user's movies are distinct: light users draw with replacement and keep the first distinct
  draws (successive sampling = sampling without replacement, proportional to weight), topping
  up the few who fall short; heavy users use Gumbel-top-k over the whole catalogue.
* Ratings come from a latent score (user bias + movie quality + taste match + noise) cut into
  half-stars by rank, so the histogram is ML-25M's.

Everything of one user block comes from a random stream derived from ``(seed, block)``; the
block size is a fixed constant, so the same arguments give byte-identical files.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# --- MovieLens 25M reference figures -------------------------------------------------------
ML25M_RATINGS = 25_000_095
ML25M_USERS = 162_541
ML25M_MOVIES = 59_047  # rated movies; movies.csv lists 62,423
ML25M_CATALOG = 62_423
ML25M_MIN_PER_USER = 20
ML25M_MEDIAN_PER_USER = 71
ML25M_MAX_PER_USER = 32_202
ML25M_MAX_PER_MOVIE = 81_491
HALF_STARS = np.arange(1, 11, dtype=np.float64) / 2.0
#: Ratings per half-star 0.5 .. 5.0 in ML-25M (they sum to 25,000,095).
ML25M_RATING_COUNTS = np.array(
    [393_068, 776_815, 399_490, 1_640_868, 1_262_797,
     4_896_928, 3_177_318, 6_639_798, 2_200_539, 3_612_474],
    dtype=np.int64,
)  # fmt: skip
RATING_SHARES = ML25M_RATING_COUNTS / ML25M_RATING_COUNTS.sum()

#: MovieLens genres (alphabetical, as ML lists them) with their ML-25M catalogue counts.
GENRE_COUNTS: dict[str, int] = {
    "Action": 7348, "Adventure": 4145, "Animation": 2929, "Children": 2935, "Comedy": 16870,
    "Crime": 5319, "Documentary": 5605, "Drama": 25606, "Fantasy": 2731, "Film-Noir": 353,
    "Horror": 5989, "IMAX": 195, "Musical": 1054, "Mystery": 2925, "Romance": 7719,
    "Sci-Fi": 3595, "Thriller": 8654, "War": 1874, "Western": 1399,
}  # fmt: skip
GENRES: tuple[str, ...] = tuple(GENRE_COUNTS)
NO_GENRES = "(no genres listed)"

RATINGS_HEADER = b"userId,movieId,rating,timestamp\n"
MOVIES_HEADER = "movieId,title,genres\n"

# --- model constants (changing any of them changes the output) -----------------------------
_BLOCK_USERS = 2048  # users per random stream / write chunk
_FIRST_TS = 789_652_009  # 1995-01-09 11:46:49, ML-25M's first rating
_LAST_TS = 1_574_327_703  # 2019-11-21 09:15:03, ML-25M's last rating
# Relative number of users starting in each year 1995..2019 (ML's bumps: 1996, 2000, 2015-16).
_START_YEAR_WEIGHTS = np.array(
    [0.2, 6, 3, 2, 3.5, 6, 3, 3, 3.5, 3.5, 4.5, 3.5, 3, 3, 3, 2.5, 2.5, 2.5, 2.5, 3,
     5, 6, 5.5, 4.5, 4.0]
)  # fmt: skip
_POP_EXPONENT = 2.26  # a in c(r) = C / (1 + r / r0) ** a; with r0 = 385 it fits ML-25M's
_TOP_MOVIE_SHARE = ML25M_MAX_PER_MOVIE / ML25M_USERS  # C: max 81,491 and 25M ratings
_USER_EXTRA_MEDIAN = 51.0  # ratings beyond the minimum: log-normal around this median
_USER_SIGMA = 1.40
_USER_TAIL = 0.12  # extra log-activity for the top ~2% (ML's heaviest users exceed a log-normal)
_MAX_USER_SHARE = 0.55  # the most active ML-25M user rated 32,202 of 59,047 movies
_LIGHT_ROUNDS = 6  # top-up rounds before a light user falls back to Gumbel-top-k
_TASTE_SHARE = 0.6  # share of a user's picks drawn from their preferred genres
_TASTE_BONUS = 0.7  # latent-score bonus for a movie in a preferred genre
_USER_BIAS_SD = 0.45
_NOISE_SD = 0.8


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` wrote."""

    files: dict[str, Path]
    n_ratings: int
    n_users: int
    n_movies: int  # movies with at least one rating (movies.csv lists a few more)
    seconds: float


@dataclass
class _Model:
    """Global (user- and movie-level) draws shared by all blocks."""

    seed: int
    n_movies: int
    counts: np.ndarray  # ratings per user
    taste: np.ndarray  # (users, genres_per_taste) genre indices
    taste_mask: np.ndarray  # uint32 bit mask of preferred genres
    bias: np.ndarray  # per-user rating bias
    start: np.ndarray  # first timestamp of each user
    span: np.ndarray  # seconds each user is active
    guaranteed_user: np.ndarray  # sorted user of each guaranteed (user, movie)
    guaranteed_movie: np.ndarray
    movie_id: np.ndarray  # MovieLens id of rated movie m (m = popularity rank)
    movie_mask: np.ndarray  # uint32 genre mask of rated movie m
    quality: np.ndarray  # per-movie latent quality
    pop_cum: np.ndarray  # cumulative popularity, last element 1.0
    genre_cum: np.ndarray  # g + cumulative popularity within genre g, genres concatenated
    genre_members: np.ndarray  # rated movies of each genre, concatenated in the same order
    genre_weights: np.ndarray  # (movies, genres): popularity within genre, columns sum to 1
    pop_prob: np.ndarray  # popularity as probabilities
    light_max: int  # users with at most this many ratings sample with replacement + dedupe


# --- sizes ---------------------------------------------------------------------------------


def default_sizes(ratings: int, users: int = 0, movies: int = 0) -> tuple[int, int]:
    """Users and rated movies for a requested number of ratings (0 = scale from ML-25M).

    Users scale linearly (keeping ML-25M's ~154 ratings per user, at least 20 each); movies
    scale as ``ratings ** 0.6``, because small MovieLens sets have far fewer movies per rating
    than a proportional cut of 25M would give movies with a single rating.
    """
    if ratings < 1:
        raise ValueError(f"ratings must be positive, got {ratings}")
    scale = ratings / ML25M_RATINGS
    if users <= 0:
        users = max(1, round(ML25M_USERS * scale))
        users = min(users, max(1, ratings // ML25M_MIN_PER_USER))
    if movies <= 0:
        movies = max(round(ML25M_MOVIES * scale**0.6), 40)
        movies = min(movies, ratings)
    return users, movies


def _user_counts(rng: np.random.Generator, ratings: int, users: int, movies: int) -> np.ndarray:
    """Ratings per user: a minimum plus a heavy-tailed excess, summing exactly to ``ratings``."""
    low = min(ML25M_MIN_PER_USER, ratings // users)
    cap = max(low, min(movies, math.floor(_MAX_USER_SHARE * movies)))
    if ratings > users * cap:
        raise ValueError(
            f"{ratings} ratings do not fit {users} users x at most {cap} movies each; "
            "ask for more users or movies"
        )
    z = rng.standard_normal(users)
    extra = _USER_EXTRA_MEDIAN * np.exp(_USER_SIGMA * z + _USER_TAIL * np.maximum(z - 2.0, 0) ** 2)

    def total(s: float) -> float:
        return float(np.minimum(cap, low + s * extra).sum())

    lo, hi = 0.0, 1.0
    while total(hi) < ratings:
        hi *= 2.0
    for _ in range(200):  # bisection on the scale of the excess
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if total(mid) < ratings else (lo, mid)
    real = np.minimum(cap, low + hi * extra)
    counts = np.floor(real).astype(np.int64)
    short = ratings - int(counts.sum())
    if short > 0:  # largest fractional parts (below the cap) get one more; ties by user id
        frac = np.where(counts < cap, real - counts, -1.0)
        counts[np.argsort(-frac, kind="stable")[:short]] += 1
    elif short < 0:
        counts[np.argsort(-(counts - low), kind="stable")[:-short]] -= 1
    return counts


# --- movies --------------------------------------------------------------------------------


def _popularity(movies: int, ratings: int, users: int) -> np.ndarray:
    """Expected ratings of the movie at each popularity rank, summing to ``ratings``.

    ``c(r) = C / (1 + r / r0) ** a`` with ``C`` half the users (ML-25M's most rated movie was
    rated by half its users) and the knee ``r0`` solved so the curve sums to ``ratings``.
    """
    r = np.arange(movies, dtype=np.float64)
    top = _TOP_MOVIE_SHARE * users

    def curve(log_knee: float) -> np.ndarray:
        return top * (1.0 + r / math.exp(log_knee)) ** -_POP_EXPONENT

    lo, hi = math.log(1e-3), math.log(1e12)
    if curve(hi).sum() < ratings:  # too dense for the head to stay at half the users
        return np.full(movies, ratings / movies)
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if curve(mid).sum() < ratings else (lo, mid)
    out = curve(hi)
    return out * (ratings / out.sum())


def _gumbel_top_k(rng: np.random.Generator, log_w: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Row-wise weighted sampling without replacement: a bool mask of k[i] picks per row."""
    keys = log_w + rng.gumbel(size=log_w.shape)
    order = np.argsort(-keys, axis=1, kind="stable")
    picked = np.zeros(log_w.shape, dtype=bool)
    rank_ok = np.arange(log_w.shape[1])[None, :] < k[:, None]
    np.put_along_axis(picked, order, rank_ok, axis=1)
    return picked


def _catalog(rng: np.random.Generator, movies: int) -> dict[str, np.ndarray]:
    """The movies.csv catalogue: ids, years, genre masks, title variants, popularity order."""
    n_cat = movies + round(movies * (ML25M_CATALOG / ML25M_MOVIES - 1.0))
    # Non-contiguous ids like MovieLens (62,423 movies spread over ids 1..209,171).
    gaps = 1 + (rng.random(n_cat) < 0.3) * rng.geometric(0.12, n_cat)
    ids = np.cumsum(gaps) - gaps[0] + 1
    # Popularity rank loosely follows id order: old catalogue entries are the well-known ones.
    by_rank = np.argsort(np.arange(n_cat) / n_cat + rng.normal(0.0, 0.3, n_cat), kind="stable")
    rank_of = np.empty(n_cat, dtype=np.int64)
    rank_of[by_rank] = np.arange(n_cat)
    # 1-4 genres each, drawn by ML's genre frequencies; "(no genres listed)" mostly in the tail.
    n_genres = rng.choice(4, size=n_cat, p=[0.45, 0.33, 0.17, 0.05]) + 1
    log_w = np.broadcast_to(np.log(np.array(list(GENRE_COUNTS.values()), float)), (n_cat, 19))
    picked = _gumbel_top_k(rng, log_w, n_genres)
    masks = (picked * (1 << np.arange(len(GENRES), dtype=np.uint32))).sum(1).astype(np.uint32)
    no_genre = rng.random(n_cat) < 0.16 * rank_of / n_cat
    masks[no_genre] = 0
    years = np.clip(2019 - np.floor(rng.exponential(16.0, n_cat)), 1902, 2019).astype(np.int64)
    # Title variants: 0 plain, 1 "..., The" (4%, needs CSV quoting), 2 with quotes (1%).
    u = rng.random(n_cat)
    variant = np.where(u < 0.04, 1, np.where(u < 0.05, 2, 0))
    return {"ids": ids, "by_rank": by_rank, "masks": masks, "years": years, "variant": variant}


def _csv_field(values: np.ndarray) -> np.ndarray:
    """Quote string fields the way MovieLens (and csv.QUOTE_MINIMAL) does."""
    strs = np.strings
    needs = (strs.find(values, ",") >= 0) | (strs.find(values, '"') >= 0)
    quoted = strs.add(strs.add('"', strs.replace(values, '"', '""')), '"')
    return np.where(needs, quoted, values)


def _genre_strings(masks: np.ndarray) -> np.ndarray:
    """``Action|Comedy`` strings for genre masks; one Python step per distinct mask only."""
    uniq, inverse = np.unique(masks, return_inverse=True)
    names = [
        "|".join(g for i, g in enumerate(GENRES) if m >> i & 1) or NO_GENRES for m in uniq.tolist()
    ]
    return np.array(names, dtype=object)[inverse].astype(str)


def _write_movies(path: Path, cat: dict[str, np.ndarray]) -> None:
    strs = np.strings
    ids = cat["ids"].astype(str)
    years = strs.add(strs.add(" (", cat["years"].astype(str)), ")")
    base = strs.add("Synthetic Movie ", ids)
    titles = np.where(
        cat["variant"] == 1,
        strs.add(base, ", The"),
        np.where(cat["variant"] == 2, strs.add('"Synthetic" Movie ', ids), base),
    )
    titles = _csv_field(strs.add(titles, years))
    lines = strs.add(
        strs.add(strs.add(strs.add(ids, ","), titles), ","), _genre_strings(cat["masks"])
    )
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(MOVIES_HEADER)
        fh.write("\n".join(lines.tolist()))
        fh.write("\n")


# --- the global model ----------------------------------------------------------------------


def _calibrate(
    target: np.ndarray, member: np.ndarray, taste_share: np.ndarray, draws: np.ndarray
) -> np.ndarray:
    """Sampling weights whose expected picks per movie approach ``target``.

    Each user takes ``draws[u]`` distinct movies by successive sampling, so a popular movie
    saturates (a heavy user rates it at most once) and weight leaks to the tail. Hájek's
    approximation gives movie j's inclusion probability for a user as ``1 - exp(-λ_u e_j)``,
    with ``e`` the movie's share of picks (popularity mixed with genre tastes, see
    :func:`_draw_movies`) and ``λ_u`` set so the user's inclusions sum to ``draws[u]``;
    the weights are corrected multiplicatively until the expected counts meet the target.
    ``member`` is the (movies, genres) membership, ``taste_share`` each genre's share of
    taste picks.
    """
    grid = np.geomspace(1e-2, 1e10, 240)
    # Users binned onto the λ grid (linear in log λ): mass[i] users sit at grid[i].
    ks, n_users = np.unique(draws[draws > 0], return_counts=True)
    w = np.maximum(target, 1e-9)
    member_f = member.astype(np.float64)
    for _ in range(25):
        genre_mass = w @ member_f
        per_genre = np.divide(taste_share, genre_mass, out=np.zeros_like(genre_mass),
                              where=genre_mass > 0)  # fmt: skip
        share = (1 - _TASTE_SHARE) * w / w.sum() + _TASTE_SHARE * w * (member_f @ per_genre)
        share /= share.sum()
        incl = -np.expm1(-np.outer(grid, share))  # (grid, movies)
        filled = incl.sum(axis=1)  # distinct picks at each λ, increasing
        pos = np.interp(ks, filled, np.arange(grid.size))
        lo = np.minimum(np.floor(pos).astype(np.int64), grid.size - 2)
        frac = pos - lo
        mass = np.bincount(lo, n_users * (1 - frac), grid.size)
        mass += np.bincount(lo + 1, n_users * frac, grid.size)
        got = mass @ incl
        w *= np.clip(target / np.maximum(got, 1e-12), 0.25, 4.0) ** 0.8
    return w


def _build_model(
    seed: int, ratings: int, users: int, movies: int, genres_per_taste: int
) -> tuple[_Model, dict[str, np.ndarray]]:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    n_genres = len(GENRES)
    cat = _catalog(rng, movies)
    rated = cat["by_rank"][:movies]  # catalogue position of the movie of popularity rank m
    movie_mask = cat["masks"][rated]
    member = (movie_mask[:, None] >> np.arange(n_genres, dtype=np.uint32) & 1).astype(bool)
    has_members = member.any(axis=0)
    expected = _popularity(movies, ratings, users)
    counts = _user_counts(rng, ratings, users, movies)

    # Guaranteed raters: every rated movie to one user, at most half of anyone's ratings.
    capacity = np.maximum(counts // 2, 1)
    if capacity.sum() < movies:
        raise ValueError(f"{ratings} ratings over {users} users cannot cover {movies} movies")
    slots = rng.choice(int(capacity.sum()), size=movies, replace=False)
    g_user = np.searchsorted(np.cumsum(capacity), slots, side="right")
    g_movie = rng.permutation(movies)
    order = np.lexsort((g_movie, g_user))

    # Tastes: genres drawn by their share of ratings (flattened).
    genre_mass = expected @ member
    k = min(genres_per_taste, int(has_members.sum()))
    # sqrt: flatter than the genre mass, so niche tastes exist (the calibration absorbs it).
    log_mass = 0.5 * np.log(genre_mass, out=np.full(n_genres, -np.inf), where=has_members)
    taste_pick = _gumbel_top_k(rng, np.broadcast_to(log_mass, (users, n_genres)), np.full(users, k))
    taste = np.nonzero(taste_pick)[1].reshape(users, k)
    taste_mask = (taste_pick * (1 << np.arange(n_genres, dtype=np.uint32))).sum(1)

    # Each rated movie has one guaranteed rater, so sampling covers the rest.
    draws = counts - np.bincount(g_user, minlength=users)
    weight = _calibrate(
        np.maximum(expected - 1.0, 0.02), member, taste_pick.mean(axis=0) / k, draws
    )
    pop_prob = weight / weight.sum()
    pop_cum = np.cumsum(pop_prob)
    pop_cum /= pop_cum[-1]
    cum_parts, member_parts = [], []
    genre_weights = np.zeros((movies, n_genres))
    for g in range(n_genres):
        members = np.flatnonzero(member[:, g])
        member_parts.append(members)
        if members.size == 0:
            cum_parts.append(np.empty(0))
            continue
        w = weight[members]
        genre_weights[members, g] = w / w.sum()
        cum = np.cumsum(w)
        cum_parts.append(g + cum / cum[-1])

    # Quality leans on popularity a little: well-known films are rated higher in ML.
    z_pop = np.log(expected)
    quality = 0.35 * (z_pop - z_pop.mean()) / max(z_pop.std(), 1e-9) + rng.normal(0, 0.5, movies)
    bias = rng.normal(0.0, _USER_BIAS_SD, users)

    year = rng.choice(
        len(_START_YEAR_WEIGHTS), users, p=_START_YEAR_WEIGHTS / _START_YEAR_WEIGHTS.sum()
    )
    year_start = (
        (np.datetime64("1995", "Y") + np.arange(26).astype("timedelta64[Y]"))
        .astype("datetime64[s]")
        .astype(np.int64)
    )
    start = year_start[year] + rng.random(users) * (year_start[year + 1] - year_start[year])
    start = np.clip(start, _FIRST_TS, _LAST_TS - 60).astype(np.int64)
    # Most users rate in one sitting; heavy users stay for years.
    log_span = (
        np.log(3600.0)
        + 0.9 * np.log(counts / ML25M_MIN_PER_USER)
        + 2.5 * rng.standard_normal(users)
    )
    span = np.minimum(np.exp(log_span), _LAST_TS - start).astype(np.float64)

    model = _Model(
        seed=seed,
        n_movies=movies,
        counts=counts,
        taste=taste,
        taste_mask=taste_mask.astype(np.uint32),
        bias=bias,
        start=start,
        span=span,
        guaranteed_user=g_user[order],
        guaranteed_movie=g_movie[order],
        movie_id=cat["ids"][rated],
        movie_mask=movie_mask,
        quality=quality,
        pop_cum=pop_cum,
        genre_cum=np.concatenate(cum_parts),
        genre_members=np.concatenate(member_parts),
        genre_weights=genre_weights,
        pop_prob=pop_prob,
        light_max=max(ML25M_MIN_PER_USER, min(1000, movies // 8)),
    )
    return model, cat


# --- one block of users --------------------------------------------------------------------


def _draw_movies(rng: np.random.Generator, mdl: _Model, users: np.ndarray) -> np.ndarray:
    """One movie per entry of ``users``: from the user's genres or from overall popularity."""
    n = users.size
    u01 = rng.random(n)
    in_taste = rng.random(n) < _TASTE_SHARE
    genre = mdl.taste[users, rng.integers(0, mdl.taste.shape[1], n)]
    out = mdl.genre_members[
        np.minimum(
            np.searchsorted(mdl.genre_cum, genre + u01, side="right"), mdl.genre_members.size - 1
        )
    ]
    pop = np.minimum(np.searchsorted(mdl.pop_cum, u01, side="right"), mdl.n_movies - 1)
    return np.where(in_taste, out, pop)


def _light_picks(
    rng: np.random.Generator, mdl: _Model, users: np.ndarray, n: np.ndarray,
    g_u: np.ndarray, g_m: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """First ``n`` distinct movies per user from successive draws (guaranteed ones first).

    Returns the picks of the users served and a mask of the users served: a user whose draws
    keep repeating popular movies is left to :func:`_heavy_picks` after a few top-up rounds.
    """
    cand_u, cand_m = [g_u], [g_m]
    deficit = n - np.bincount(np.searchsorted(users, g_u), minlength=users.size)
    for _ in range(_LIGHT_ROUNDS):
        todo = np.flatnonzero(deficit > 0)
        if todo.size == 0:
            break
        draws = deficit[todo] + np.ceil(0.25 * deficit[todo]).astype(np.int64) + 4
        uu = np.repeat(users[todo], draws)
        cand_u.append(uu)
        cand_m.append(_draw_movies(rng, mdl, uu))
        key = np.concatenate(cand_u) * mdl.n_movies + np.concatenate(cand_m)
        key.sort()  # sort-based distinct: np.unique's hash path is much slower here
        distinct_u = key[np.concatenate(([True], key[1:] != key[:-1]))] // mdl.n_movies
        deficit = n - np.bincount(np.searchsorted(users, distinct_u), minlength=users.size)
    served = deficit <= 0
    all_u, all_m = np.concatenate(cand_u), np.concatenate(cand_m)
    _, first = np.unique(all_u * mdl.n_movies + all_m, return_index=True)
    first.sort()  # back to draw order
    first = first[served[np.searchsorted(users, all_u[first])]]
    by_user = first[np.argsort(all_u[first], kind="stable")]
    fu = all_u[by_user]
    local = np.searchsorted(users, fu)
    starts = np.concatenate(([0], np.cumsum(np.bincount(local, minlength=users.size))[:-1]))
    keep = np.arange(fu.size) - starts[local] < n[local]
    return fu[keep], all_m[by_user[keep]], served


def _heavy_picks(
    rng: np.random.Generator, mdl: _Model, users: np.ndarray, g_u: np.ndarray, g_m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gumbel-top-k over all movies for users who rate a large share of them."""
    out_u, out_m = [], []
    k = mdl.taste.shape[1]
    for lo in range(0, users.size, 32):  # bounded (movies x 32) weight matrix
        chunk = users[lo : lo + 32]
        genre_part = mdl.genre_weights[:, mdl.taste[chunk]].sum(axis=2) / k  # (movies, users)
        w = (1 - _TASTE_SHARE) * mdl.pop_prob[:, None] + _TASTE_SHARE * genre_part
        for j, u in enumerate(chunk.tolist()):
            keys = np.log(w[:, j]) + rng.gumbel(size=mdl.n_movies)
            keys[g_m[g_u == u]] = np.inf
            top = np.argpartition(-keys, mdl.counts[u] - 1)[: mdl.counts[u]]
            out_u.append(np.full(top.size, u))
            out_m.append(top)
    if not out_u:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(out_u), np.concatenate(out_m)


def _format_int(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-aligned ASCII digits (rows x width) and a mask of the digits to keep."""
    digits = np.empty((values.size, width), dtype=np.uint8)
    rest = values.astype(np.int64)
    for col in range(width - 1, -1, -1):
        digits[:, col] = 48 + rest % 10
        rest = rest // 10
    n_digits = np.maximum(1, np.floor(np.log10(np.maximum(values, 1))).astype(np.int64) + 1)
    keep = np.arange(width)[None, :] >= (width - n_digits)[:, None]
    return digits, keep


_RATING_TEXT = np.frombuffer(
    b"".join(f"{r:.1f}".encode() for r in HALF_STARS), dtype=np.uint8
).reshape(10, 3)


def format_ratings(user: np.ndarray, movie: np.ndarray, code: np.ndarray, ts: np.ndarray) -> bytes:
    """ML-25M CSV rows (no header) for integer columns and rating codes 0..9 (= 0.5..5.0)."""
    n = user.size
    cols, keeps = [], []
    comma = np.full((n, 1), ord(","), dtype=np.uint8)
    ones = np.ones((n, 1), dtype=bool)
    for values in (user, movie):
        d, k = _format_int(values, max(1, len(str(int(values.max(initial=0))))))
        cols += [d, comma]
        keeps += [k, ones]
    cols += [_RATING_TEXT[code], comma]
    keeps += [np.ones((n, 3), dtype=bool), ones]
    d, k = _format_int(ts, max(1, len(str(int(ts.max(initial=0))))))
    cols += [d, np.full((n, 1), ord("\n"), dtype=np.uint8)]
    keeps += [k, ones]
    return np.hstack(cols)[np.hstack(keeps)].tobytes()


def _block_bytes(mdl: _Model, block: int) -> tuple[bytes, int]:
    """CSV rows of one block of users, sorted by (userId, movieId), and their count."""
    rng = np.random.default_rng(np.random.SeedSequence(mdl.seed, spawn_key=(1, block)))
    first = block * _BLOCK_USERS
    users = np.arange(first, min(first + _BLOCK_USERS, mdl.counts.size))
    lo, hi = np.searchsorted(mdl.guaranteed_user, [users[0], users[-1] + 1])
    g_u, g_m = mdl.guaranteed_user[lo:hi], mdl.guaranteed_movie[lo:hi]
    n = mdl.counts[users]
    light = n <= mdl.light_max
    in_light = light[np.searchsorted(users, g_u)]
    lu, lm, served = _light_picks(rng, mdl, users[light], n[light], g_u[in_light], g_m[in_light])
    heavy = np.union1d(users[~light], users[light][~served])
    hu, hm = _heavy_picks(rng, mdl, heavy, g_u, g_m)
    u, m = np.concatenate([lu, hu]), np.concatenate([lm, hm])

    match = np.bitwise_count(mdl.taste_mask[u] & mdl.movie_mask[m]) > 0
    score = mdl.bias[u] + mdl.quality[m] + _TASTE_BONUS * match + rng.normal(0, _NOISE_SD, u.size)
    # Cut the block's scores into half-stars by rank: ML-25M's histogram, exactly per block.
    bounds = np.round(np.cumsum(RATING_SHARES) * u.size).astype(np.int64)
    code = np.empty(u.size, dtype=np.int64)
    code[np.argsort(score, kind="stable")] = np.searchsorted(
        bounds, np.arange(u.size), side="right"
    )
    ts = mdl.start[u] + np.floor(rng.random(u.size) * mdl.span[u]).astype(np.int64)

    mid = mdl.movie_id[m]
    order = np.lexsort((mid, u))
    return format_ratings(u[order] + 1, mid[order], code[order], ts[order]), int(u.size)


# --- public entry points -------------------------------------------------------------------


def generate(
    out_dir: Path,
    ratings: int = ML25M_RATINGS,
    users: int = 0,
    movies: int = 0,
    seed: int = 42,
    genres_per_taste: int = 3,
    progress: bool = True,
) -> SynthSummary:
    """Write ``ratings.csv`` and ``movies.csv`` shaped like MovieLens 25M into ``out_dir``.

    ``users``/``movies`` of 0 scale ML-25M's 162,541 users and 59,047 rated movies to
    ``ratings`` (see :func:`default_sizes`). Exactly ``ratings`` rows are written and exactly
    ``movies`` movies are rated; the files are byte-identical for the same arguments.
    """
    t0 = time.perf_counter()
    users, movies = default_sizes(ratings, users, movies)
    if genres_per_taste < 1:
        raise ValueError(f"genres_per_taste must be >= 1, got {genres_per_taste}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mdl, cat = _build_model(seed, ratings, users, movies, genres_per_taste)
    movies_csv, ratings_csv = out_dir / "movies.csv", out_dir / "ratings.csv"
    _write_movies(movies_csv, cat)

    n_blocks = -(-users // _BLOCK_USERS)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=ratings, unit="rating", unit_scale=True, desc="synth")
    written = 0
    tmp = ratings_csv.with_name(ratings_csv.name + ".part")
    with tmp.open("wb") as fh:
        fh.write(RATINGS_HEADER)
        for b in range(n_blocks):
            data, rows = _block_bytes(mdl, b)
            fh.write(data)
            written += rows
            if bar is not None:
                bar.update(rows)
    if bar is not None:
        bar.close()
    if written != ratings:  # a bug, not a user error: never leave a wrong file behind
        tmp.unlink()
        raise RuntimeError(f"wrote {written} ratings, expected {ratings}")
    tmp.replace(ratings_csv)
    return SynthSummary(
        files={"ratings": ratings_csv, "movies": movies_csv},
        n_ratings=written,
        n_users=users,
        n_movies=movies,
        seconds=time.perf_counter() - t0,
    )


# --- shape report --------------------------------------------------------------------------

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


def shape_report(ratings_csv: Path) -> dict:
    """Shape statistics of a MovieLens-format ``ratings.csv`` (read whole with pyarrow).

    Returns counts (ratings, users, movies), min/max ratings per user, max per movie,
    quantiles of ratings per user and per movie, half-star histogram shares and the
    timestamp range.
    """
    import pyarrow as pa
    from pyarrow import csv as pacsv

    table = pacsv.read_csv(
        ratings_csv,
        read_options=pacsv.ReadOptions(block_size=64 << 20),
        convert_options=pacsv.ConvertOptions(
            column_types={
                "userId": pa.int64(),
                "movieId": pa.int64(),
                "rating": pa.float64(),
                "timestamp": pa.int64(),
            }
        ),
    )
    user = table.column("userId").to_numpy()
    per_user = np.bincount(user)
    per_user = per_user[per_user > 0]
    del user
    per_movie = np.bincount(table.column("movieId").to_numpy())
    per_movie = per_movie[per_movie > 0]
    codes = np.rint(table.column("rating").to_numpy() * 2).astype(np.int64)
    hist = np.bincount(codes, minlength=11)
    ts = table.column("timestamp").to_numpy()
    n = table.num_rows
    return {
        "n_ratings": n,
        "n_users": int(per_user.size),
        "min_per_user": int(per_user.min()),
        "max_per_user": int(per_user.max()),
        "mean_per_user": float(per_user.mean()),
        "n_movies": int(per_movie.size),
        "min_per_movie": int(per_movie.min()),
        "max_per_movie": int(per_movie.max()),
        "user_quantiles": dict(
            zip(QUANTILES, np.quantile(per_user, QUANTILES).tolist(), strict=True)
        ),
        "movie_quantiles": dict(
            zip(QUANTILES, np.quantile(per_movie, QUANTILES).tolist(), strict=True)
        ),
        "movies_with_1_rating": int((per_movie == 1).sum()),
        "rating_shares": {float(c) / 2: float(hist[c]) / n for c in range(1, 11)},
        "other_ratings": int(n - hist[1:11].sum()),
        "first_timestamp": int(ts.min()),
        "last_timestamp": int(ts.max()),
    }


#: Known ML-25M figures for the comparison (None where not a published/known figure).
ML25M_REFERENCE: dict = {
    "n_ratings": ML25M_RATINGS,
    "n_users": ML25M_USERS,
    "min_per_user": ML25M_MIN_PER_USER,
    "max_per_user": ML25M_MAX_PER_USER,
    "mean_per_user": ML25M_RATINGS / ML25M_USERS,
    "n_movies": ML25M_MOVIES,
    "min_per_movie": 1,
    "max_per_movie": ML25M_MAX_PER_MOVIE,
    "user_quantiles": {0.5: ML25M_MEDIAN_PER_USER},
    "rating_shares": dict(zip(HALF_STARS.tolist(), RATING_SHARES.tolist(), strict=True)),
    "first_timestamp": _FIRST_TS,
    "last_timestamp": _LAST_TS,
}


def format_shape_comparison(report: dict, reference: dict | None = None) -> str:
    """A text table of a :func:`shape_report` beside the known MovieLens 25M figures."""
    ref = ML25M_REFERENCE if reference is None else reference

    def cell(value: Any, share: bool = False) -> str:
        if value is None:
            return "-"
        if share:
            return f"{100 * float(value):.1f}%"
        if isinstance(value, float) and not value.is_integer():
            return f"{value:,.1f}"
        return f"{int(value):,}"

    rows = [("", "synthetic", "MovieLens 25M")]
    for key, label in [
        ("n_ratings", "ratings"), ("n_users", "users"), ("min_per_user", "min ratings/user"),
        ("max_per_user", "max ratings/user"), ("mean_per_user", "mean ratings/user"),
        ("n_movies", "rated movies"), ("min_per_movie", "min ratings/movie"),
        ("max_per_movie", "max ratings/movie"), ("movies_with_1_rating", "movies with 1 rating"),
    ]:  # fmt: skip
        rows.append((label, cell(report.get(key)), cell(ref.get(key))))
    for q in QUANTILES:
        rows.append(
            (f"ratings/user q{q:g}", cell(report["user_quantiles"].get(q)),
             cell(ref.get("user_quantiles", {}).get(q)))
        )  # fmt: skip
    for q in QUANTILES:
        rows.append(
            (f"ratings/movie q{q:g}", cell(report["movie_quantiles"].get(q)),
             cell(ref.get("movie_quantiles", {}).get(q)))
        )  # fmt: skip
    for star in HALF_STARS.tolist():
        rows.append(
            (f"rating {star:.1f}", cell(report["rating_shares"].get(star), True),
             cell(ref.get("rating_shares", {}).get(star), True))
        )  # fmt: skip
    for key, label in [("first_timestamp", "first rating"), ("last_timestamp", "last rating")]:

        def day(v: Any) -> str:
            return "-" if v is None else str(np.datetime64(int(v), "s"))

        rows.append((label, day(report.get(key)), day(ref.get(key))))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows)
