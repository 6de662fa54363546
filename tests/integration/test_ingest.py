"""Ingest: every MovieLens format, every bad-input kind, strict mode, real ml-100k."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from moviegraph.errors import InputError
from moviegraph.sources.ingest import IngestError, ingest
from tests.conftest import FIXTURES

# Expected outcomes, derived by hand from the fixture files (see the line comments there):
# good (user, movie, rating) rows, rejected (file, line, reason) rows, and movies.
CASES = {
    "ml-100k": dict(
        good={(1, 1, 5.0), (1, 2, 3.0), (2, 1, 4.0), (3, 3, 1.0)},
        rejected={("u.data", 4, "rating_out_of_range"), ("u.data", 5, "unknown_movie"),
                  ("u.data", 6, "duplicate_rating"), ("u.data", 7, "malformed"),
                  ("u.data", 9, "rating_out_of_range")},
        movies={1: ("Toy Story (1995)", 1995, ["Animation", "Children's", "Comedy"]),
                2: ("Café Society (1995)", 1995, ["Drama"]),
                3: ("Heat (1995)", 1995, ["Action", "Crime", "Thriller"])},
        first_bad="u.data:4: rating_out_of_range"),
    "recbole": dict(
        good={(10, 1, 3.0), (10, 2, 5.0), (11, 1, 4.0)},
        rejected={("ml-100k.inter", 4, "rating_out_of_range"),
                  ("ml-100k.inter", 6, "duplicate_rating"),
                  ("ml-100k.inter", 7, "unknown_movie"), ("ml-100k.inter", 8, "malformed")},
        movies={1: ("Toy Story", 1995, ["Animation", "Children's", "Comedy"]),
                2: ("GoldenEye", 1995, ["Action", "Adventure", "Thriller"]),
                3: ("Four Rooms", None, ["Thriller"])},
        first_bad="ml-100k.inter:4: rating_out_of_range"),
    "ml-1m": dict(
        good={(1, 1, 5.0), (1, 2, 3.0), (1, 3, 4.0)},
        rejected={("ratings.dat", 4, "rating_out_of_range"), ("ratings.dat", 5, "unknown_movie"),
                  ("ratings.dat", 6, "malformed"), ("ratings.dat", 7, "duplicate_rating")},
        movies={1: ("Toy Story (1995)", 1995, ["Animation", "Children's", "Comedy"]),
                2: ("Jumanji (1995)", 1995, ["Adventure", "Children's", "Fantasy"]),
                3: ("Misérables, Les (1995)", 1995, ["Drama", "Musical"])},
        first_bad="ratings.dat:4: rating_out_of_range"),
    "csv": dict(
        good={(1, 1, 4.0), (1, 2, 3.5), (1, 3, 0.5), (3, 3, 2.5)},
        rejected={("ratings.csv", 5, "rating_out_of_range"), ("ratings.csv", 6, "malformed"),
                  ("ratings.csv", 7, "malformed"), ("ratings.csv", 8, "unknown_movie"),
                  ("ratings.csv", 9, "duplicate_rating"),
                  ("ratings.csv", 10, "rating_out_of_range"),
                  ("movies.csv", 5, "malformed")},
        movies={1: ("Toy Story (1995)", 1995,
                    ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]),
                2: ("American President, The (1995)", 1995, ["Comedy", "Drama", "Romance"]),
                3: ('Movie "Quoted", A (2001)', 2001, [])},
        first_bad="movies.csv:5: malformed"),
}


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_each_format_parses_and_rejects_bad_rows(spark, warehouse, fmt):
    case = CASES[fmt]
    result = ingest(spark, warehouse, str(FIXTURES / fmt))
    assert result.format == fmt
    got = {(r.user_id, r.movie_id, r.rating) for r in warehouse.read("ratings").collect()}
    assert got == case["good"]
    rejected = {(r.source.rsplit("/", 1)[-1], r.line_no, r.reason)
                for r in warehouse.read("rejected").collect()}
    assert rejected == case["rejected"]
    movies = {r.movie_id: (r.title, r.year, list(r.genres))
              for r in warehouse.read("movies").collect()}
    assert movies == case["movies"]
    assert sum(result.rejected.values()) == len(case["rejected"])
    assert result.ratings == len(case["good"])
    assert "rejected" in result.summary()


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_strict_mode_fails_on_first_bad_row_and_writes_nothing(spark, warehouse, fmt):
    with pytest.raises(IngestError) as err:
        ingest(spark, warehouse, str(FIXTURES / fmt), strict=True)
    assert CASES[fmt]["first_bad"] in str(err.value)
    assert not warehouse.exists("ratings") and not warehouse.exists("movies")


def test_missing_and_empty_inputs_are_clear_errors(spark, warehouse, tmp_path):
    with pytest.raises(IngestError, match="input folder not found"):
        ingest(spark, warehouse, str(tmp_path / "nowhere"))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(InputError, match="no MovieLens ratings file"):
        ingest(spark, warehouse, str(empty_dir))
    folder = tmp_path / "csv"
    shutil.copytree(FIXTURES / "csv", folder)
    (folder / "ratings.csv").write_text("")
    with pytest.raises(IngestError, match=r"ratings\.csv: input file is empty"):
        ingest(spark, warehouse, str(folder))
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(IngestError, match="no valid ratings"):
        ingest(spark, warehouse, str(folder))
    (folder / "movies.csv").unlink()
    with pytest.raises(IngestError, match=r"movies\.csv: input file not found"):
        ingest(spark, warehouse, str(folder))


def test_line_numbers_are_exact_across_many_blocks(spark, warehouse, tmp_path):
    """Bad lines planted far apart in a file Spark splits into many blocks."""
    folder = tmp_path / "big"
    folder.mkdir()
    shutil.copy(FIXTURES / "csv" / "movies.csv", folder / "movies.csv")
    bad_lines = {1234, 50_001, 99_999}
    with (folder / "ratings.csv").open("w") as f:
        f.write("userId,movieId,rating,timestamp\n")
        for line_no in range(2, 120_002):
            if line_no in bad_lines:
                f.write(f"bad line {line_no}\n")
            else:
                f.write(f"{line_no},{1 + line_no % 3},4.0,{line_no}\n")
    spark.conf.set("spark.sql.files.maxPartitionBytes", 256 * 1024)
    try:
        ingest(spark, warehouse, str(folder))
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    rejected = (warehouse.read("rejected")
                .where("reason = 'malformed' AND source LIKE '%ratings.csv'").collect())
    assert {r.line_no for r in rejected} == bad_lines
    assert all(r.raw == f"bad line {r.line_no}" for r in rejected)
    # A good row's ts equals its line number by construction.
    assert warehouse.read("ratings").where("user_id != ts").count() == 0


def test_append_adds_new_ratings_and_rejects_pairs_already_there(spark, warehouse, tmp_path):
    ingest(spark, warehouse, str(FIXTURES / "csv"))
    before = warehouse.version("ratings")
    folder = tmp_path / "more"
    folder.mkdir()
    shutil.copy(FIXTURES / "csv" / "movies.csv", folder / "movies.csv")
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,1.0,1\n5,2,3.0,2\n")
    ingest(spark, warehouse, str(folder), append=True)
    assert warehouse.version("ratings") == before + 1
    got = {(r.user_id, r.movie_id, r.rating) for r in warehouse.read("ratings").collect()}
    assert got == CASES["csv"]["good"] | {(5, 2, 3.0)}
    dup = warehouse.read("rejected").where("reason = 'duplicate_rating' AND line_no = 2")
    assert dup.count() == 1


def test_append_file_flag_adds_the_ratings_of_one_file(spark, warehouse, tmp_path):
    """``ingest --append FILE`` (README): a lone ratings file, checked against the movies
    already ingested; its format comes from its extension."""
    from moviegraph.cli import parse
    from moviegraph.pipeline import run_stage

    new = tmp_path / "later" / "week-2.csv"
    new.parent.mkdir()
    new.write_text("userId,movieId,rating,timestamp\n1,1,1.0,1\n6,2,4.5,5\n6,77,4.0,6\n")
    _, first = parse(["ingest", "--set", f"warehouse.root={warehouse.root}",
                      "--set", "ingest.dataset=path", "--path", str(FIXTURES / "csv")])
    run_stage("ingest", spark, first, warehouse, "i1")
    _, cfg = parse(["ingest", "--append", str(new), "--set",
                       f"warehouse.root={warehouse.root}"])
    assert (cfg.ingest.append, cfg.ingest.dataset, cfg.ingest.path) == (True, "path", str(new))
    run_stage("ingest", spark, cfg, warehouse, "i2")
    got = {(r.user_id, r.movie_id, r.rating) for r in warehouse.read("ratings").collect()}
    assert got == CASES["csv"]["good"] | {(6, 2, 4.5)}
    rejected = {(r.source.rsplit("/", 1)[-1], r.line_no, r.reason)
                for r in warehouse.read("rejected").collect() if r.source.endswith("week-2.csv")}
    assert rejected == {("week-2.csv", 2, "duplicate_rating"),
                        ("week-2.csv", 4, "unknown_movie")}
    assert warehouse.read("movies").count() == 3  # the catalogue stays as it was


def test_ml100k_matches_the_raw_files(spark, warehouse, ml100k_dir):
    """Checked against the raw files read with plain Python, not the job's code path."""
    result = ingest(spark, warehouse, str(ml100k_dir))
    raw_lines = (ml100k_dir / "ml-100k.inter").read_text().splitlines()[1:]
    expected = set()
    for line in raw_lines:
        u, m, r, t = line.split("\t")
        expected.add((int(u), int(m), float(r), int(float(t))))
    rows = warehouse.read("ratings").collect()
    assert len(rows) == 100_000 == len(expected)
    assert {(r.user_id, r.movie_id, r.rating, r.ts) for r in rows} == expected
    assert len({r.user_id for r in rows}) == 943
    assert (result.ratings, result.users, result.movies) == (100_000, 943, 1_682)
    assert sum(result.rejected.values()) == 0

    item_lines = (ml100k_dir / "ml-100k.item").read_text().splitlines()[1:]
    raw_genres = Counter(g for line in item_lines for g in line.split("\t")[3].split())
    movies = warehouse.read("movies").collect()
    assert len(movies) == 1_682
    assert Counter(g for m in movies for g in m.genres) == raw_genres
    toy = next(m for m in movies if m.movie_id == 1)
    assert (toy.title, toy.year, list(toy.genres)) == (
        "Toy Story", 1995, ["Animation", "Children's", "Comedy"])
