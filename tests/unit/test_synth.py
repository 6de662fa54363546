"""Tests of the MovieLens-25M-shaped synthetic generator (small sizes)."""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from pyarrow import csv as pacsv

from moviegraph.sources import synth

HALF_STARS = {f"{i / 2:.1f}" for i in range(1, 11)}
TITLE = re.compile(r'^(?:"Synthetic"|Synthetic) Movie (\d+)(?:, The)? \((\d{4})\)$')
ALL_GENRES = {*synth.GENRES, synth.NO_GENRES}
# Big enough for two user blocks (> 2048 users), a heavy tail and a popularity tail.
N_RATINGS = 400_000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[synth.SynthSummary, dict]:
    """One generated data set, read back with the csv module (independently of the code)."""
    out = tmp_path_factory.mktemp("synth")
    summary = synth.generate(out, ratings=N_RATINGS, seed=7, progress=False)
    with summary.files["ratings"].open(newline="") as fh:
        rows = list(csv.reader(fh))
    with summary.files["movies"].open(newline="", encoding="utf-8") as fh:
        movie_rows = list(csv.reader(fh))
    return summary, {"ratings": rows, "movies": movie_rows}


def _ratings(rows: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    body = np.array(rows[1:])
    return (
        body[:, 0].astype(np.int64),
        body[:, 1].astype(np.int64),
        body[:, 2].astype(np.float64),
        body[:, 3].astype(np.int64),
    )


def test_headers_and_row_layout(data) -> None:
    summary, parsed = data
    raw = summary.files["ratings"].read_text().splitlines()
    assert raw[0] == "userId,movieId,rating,timestamp"
    assert parsed["movies"][0] == ["movieId", "title", "genres"]
    line = re.compile(r"^[1-9]\d*,[1-9]\d*,\d\.\d,\d{9,10}$")
    assert all(line.match(r) for r in raw[1:])
    assert {r.split(",")[2] for r in raw[1:]} <= HALF_STARS


def test_exact_counts_and_summary(data) -> None:
    summary, parsed = data
    user, movie, _, _ = _ratings(parsed["ratings"])
    assert len(parsed["ratings"]) - 1 == N_RATINGS == summary.n_ratings
    assert np.unique(user).tolist() == list(range(1, summary.n_users + 1))
    assert np.unique(movie).size == summary.n_movies
    # Scaled from ML-25M: ~154 ratings per user.
    assert summary.n_users == round(synth.ML25M_USERS * N_RATINGS / synth.ML25M_RATINGS)


def test_sorted_like_movielens_and_no_duplicates(data) -> None:
    _, parsed = data
    user, movie, _, _ = _ratings(parsed["ratings"])
    pairs = list(zip(user.tolist(), movie.tolist(), strict=True))
    assert pairs == sorted(pairs)
    assert len(set(pairs)) == len(pairs)


def test_every_user_has_twenty_ratings_and_a_heavy_tail(data) -> None:
    _, parsed = data
    per_user = np.array(list(Counter(r[0] for r in parsed["ratings"][1:]).values()))
    assert per_user.min() >= 20
    assert per_user.max() >= 10 * np.median(per_user)
    assert 50 <= np.median(per_user) <= 100  # ML-25M: 71


def test_popularity_is_long_tailed(data) -> None:
    summary, parsed = data
    per_movie = np.array(list(Counter(r[1] for r in parsed["ratings"][1:]).values()))
    assert per_movie.size == summary.n_movies
    assert (per_movie <= 5).mean() > 0.1  # many movies with one to a few ratings
    assert per_movie.max() >= 50 * np.median(per_movie)
    assert per_movie.max() <= summary.n_users


def test_ratings_are_half_stars_with_movielens_histogram(data) -> None:
    _, parsed = data
    _, _, rating, ts = _ratings(parsed["ratings"])
    assert set(np.unique(rating * 2).tolist()) == set(range(1, 11))
    shares = np.bincount((rating * 2).astype(int), minlength=11)[1:] / rating.size
    expected = synth.ML25M_RATING_COUNTS / synth.ML25M_RATING_COUNTS.sum()
    np.testing.assert_allclose(shares, expected, atol=0.002)
    assert ts.min() >= 789_652_009 and ts.max() <= 1_574_327_703  # 1995-01-09 .. 2019-11-21


def test_movies_csv_titles_quotes_and_genres(data) -> None:
    summary, parsed = data
    movies = parsed["movies"][1:]
    ids = [int(r[0]) for r in movies]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert len(movies) > summary.n_movies  # a few never-rated movies, as in ML-25M
    for movie_id, title, genres in movies:
        match = TITLE.match(title)
        assert match and match.group(1) == movie_id, title
        parts = genres.split("|")
        assert set(parts) <= ALL_GENRES and parts == sorted(parts)
        assert synth.NO_GENRES not in parts or parts == [synth.NO_GENRES]
    titles = [r[1] for r in movies]
    assert any(", The (" in t for t in titles) and any(t.startswith('"') for t in titles)
    assert any(r[2] == synth.NO_GENRES for r in movies)
    # Raw lines are quoted exactly as MovieLens quotes them (minimal quoting, doubled quotes).
    raw = summary.files["movies"].read_text(encoding="utf-8").splitlines()[1:]
    for line, (movie_id, title, genres) in zip(raw, movies, strict=True):
        quoted = '"' + title.replace('"', '""') + '"' if ("," in title or '"' in title) else title
        assert line == f"{movie_id},{quoted},{genres}"


def test_pyarrow_reads_the_same_values(data) -> None:
    summary, parsed = data
    movies = pacsv.read_csv(summary.files["movies"])
    assert movies.column("title").to_pylist() == [r[1] for r in parsed["movies"][1:]]
    ratings = pacsv.read_csv(summary.files["ratings"])
    assert ratings.schema.types == [pa.int64(), pa.int64(), pa.float64(), pa.int64()]
    user, movie, rating, ts = _ratings(parsed["ratings"])
    assert np.array_equal(ratings.column("userId").to_numpy(), user)
    assert np.array_equal(ratings.column("rating").to_numpy(), rating)
    assert np.array_equal(ratings.column("timestamp").to_numpy(), ts)
    known = {int(r[0]) for r in parsed["movies"][1:]}
    assert set(np.unique(movie).tolist()) <= known


def _genre_lift(rows: list[list[str]], genres: dict[int, set[str]]) -> tuple[float, float]:
    """Pick share and mean-rating gap of each user's top genres, learnt on half their ratings.

    A user's top-3 genres are those most over-represented (against all ratings) among their
    even-numbered ratings; they are scored on the odd-numbered ones: the share of picks in
    those genres, and the mean rating inside minus outside them.
    """

    def named(movie: str) -> set[str]:
        return genres[int(movie)] - {synth.NO_GENRES}

    overall = Counter(g for r in rows[1:] for g in named(r[1]))
    share = {g: c / (len(rows) - 1) for g, c in overall.items()}
    by_user: dict[str, list[tuple[set[str], float]]] = defaultdict(list)
    for r in rows[1:]:
        by_user[r[0]].append((named(r[1]), float(r[2])))
    hits = picks = 0
    gaps = []
    for items in by_user.values():
        seen = Counter(g for gs, _ in items[0::2] for g in gs)
        n = len(items[0::2])
        top = set(sorted(share, key=lambda g: -(seen[g] + 1) / (n * share[g] + 1))[:3])
        inside = [r for gs, r in items[1::2] if gs & top]
        outside = [r for gs, r in items[1::2] if not gs & top]
        hits += len(inside)
        picks += len(inside) + len(outside)
        if len(inside) >= 3 and len(outside) >= 3:
            gaps.append(np.mean(inside) - np.mean(outside))
    return hits / picks, float(np.mean(gaps))


def test_genre_tastes_show_in_choices_and_ratings(data) -> None:
    """Users pick and rate higher their preferred genres; moving ratings across users kills it."""
    _, parsed = data
    genres = {int(r[0]): set(r[2].split("|")) for r in parsed["movies"][1:]}
    rows = parsed["ratings"][:150_001]  # the first ~1,000 users are plenty and keep it quick
    share, gap = _genre_lift(rows, genres)
    # Null model: each row's (movie, rating) goes to the user of a random other row.
    perm = np.random.default_rng(0).permutation(len(rows) - 1) + 1
    null = [rows[0]] + [[rows[i][0], *rows[j][1:]] for i, j in enumerate(perm.tolist(), 1)]
    null_share, null_gap = _genre_lift(null, genres)
    assert share > null_share + 0.15, (share, null_share)
    assert gap > null_gap + 0.15, (gap, null_gap)


def test_same_seed_same_bytes(data, tmp_path: Path) -> None:
    summary, _ = data  # two user blocks, so both per-block streams are covered
    again = synth.generate(tmp_path, ratings=N_RATINGS, seed=7, progress=True)
    for name in ("ratings", "movies"):
        assert again.files[name].read_bytes() == summary.files[name].read_bytes()


def test_other_seed_differs(tmp_path: Path) -> None:
    a = synth.generate(tmp_path / "a", ratings=30_000, seed=3, progress=False)
    b = synth.generate(tmp_path / "b", ratings=30_000, seed=4, progress=False)
    for name in ("ratings", "movies"):
        assert a.files[name].read_bytes() != b.files[name].read_bytes()


def test_explicit_sizes_are_respected(tmp_path: Path) -> None:
    s = synth.generate(tmp_path, ratings=12_345, users=90, movies=700, seed=1, progress=False)
    with s.files["ratings"].open(newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    assert len(rows) == 12_345
    assert len({r[0] for r in rows}) == 90 and len({r[1] for r in rows}) == 700
    assert min(Counter(r[0] for r in rows).values()) >= 20


def test_more_tastes_per_user(tmp_path: Path) -> None:
    s = synth.generate(tmp_path, ratings=20_000, genres_per_taste=5, seed=2, progress=False)
    assert s.n_ratings == 20_000


def test_infeasible_requests_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="do not fit"):
        synth.generate(tmp_path, ratings=10_000, users=10, movies=100, progress=False)
    with pytest.raises(ValueError):
        synth.generate(tmp_path, ratings=0, progress=False)


def test_format_ratings_matches_plain_python() -> None:
    rng = np.random.default_rng(5)
    n = 2_000
    user = rng.integers(1, 200_000, n)
    user[:3] = [1, 9, 10]
    movie = rng.integers(1, 300_000, n)
    code = rng.integers(0, 10, n)
    ts = rng.integers(789_652_009, 1_574_327_703, n)
    ts[:2] = [999_999_999, 1_000_000_000]
    expected = "".join(
        f"{u},{m},{(c + 1) / 2:.1f},{t}\n"
        for u, m, c, t in zip(
            user.tolist(), movie.tolist(), code.tolist(), ts.tolist(), strict=True
        )
    )
    assert synth.format_ratings(user, movie, code, ts).decode() == expected


def test_shape_report_against_plain_count(data) -> None:
    summary, parsed = data
    report = synth.shape_report(summary.files["ratings"])
    per_user = Counter(r[0] for r in parsed["ratings"][1:])
    per_movie = Counter(r[1] for r in parsed["ratings"][1:])
    stars = Counter(r[2] for r in parsed["ratings"][1:])
    assert report["n_ratings"] == N_RATINGS
    assert report["n_users"] == len(per_user) and report["n_movies"] == len(per_movie)
    assert report["min_per_user"] == min(per_user.values())
    assert report["max_per_user"] == max(per_user.values())
    assert report["max_per_movie"] == max(per_movie.values())
    assert report["user_quantiles"][0.5] == float(np.median(list(per_user.values())))
    assert report["movie_quantiles"][0.5] == float(np.median(list(per_movie.values())))
    assert report["rating_shares"][4.0] == stars["4.0"] / N_RATINGS
    text = synth.format_shape_comparison(report)
    for figure in ("25,000,095", "162,541", "32,202", "59,047", "81,491", f"{N_RATINGS:,}"):
        assert figure in text
