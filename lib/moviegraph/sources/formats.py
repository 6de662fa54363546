"""The MovieLens file formats: where the files are, how a line splits, the rating scale.

Ratings files are large and ASCII, so they are parsed by Spark SQL expressions (no
Python per row). Movie catalogues are small (at most ~90k lines) and some are latin-1,
so they are decoded and parsed on the driver, with exact line numbers.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F

from moviegraph.errors import InputError

# u.genre of MovieLens 100K, in the order of u.item's 19 flag columns.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
NO_GENRES = "(no genres listed)"
_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")


class FormatError(InputError):
    """The input folder holds no known MovieLens layout."""


@dataclass(frozen=True)
class MovieRow:
    """One parsed catalogue line, or the reason it was rejected."""

    line_no: int
    raw: str
    movie_id: int | None = None
    title: str | None = None
    year: int | None = None
    genres: tuple[str, ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class Format:
    """A MovieLens layout: file names, separators, header lines, encodings, scale."""

    name: str
    ratings_file: str
    movies_file: str
    separator: str  # literal separator of the ratings file
    header_lines: int  # lines to skip at the top of the ratings file
    movies_encoding: str
    half_stars: bool  # 0.5..5.0 in half steps; otherwise whole stars 1..5

    def split_ratings(self, raw: Column) -> Column:
        """Array of the fields of a ratings line."""
        return F.split(raw, re.escape(self.separator))

    def valid_rating(self, rating: Column) -> Column:
        """True where ``rating`` is on this format's scale."""
        if self.half_stars:
            return (rating >= 0.5) & (rating <= 5.0) & ((rating * 2) == F.floor(rating * 2))
        return (rating >= 1.0) & (rating <= 5.0) & (rating == F.floor(rating))

    def parse_movies(self, text: str) -> list[MovieRow]:
        """Parse the decoded catalogue file into rows (bad lines carry a reason)."""
        return _MOVIE_PARSERS[self.name](text)


def _year_from_title(title: str) -> int | None:
    m = _YEAR_IN_TITLE.search(title)
    return int(m.group(1)) if m else None


def _parse_ml100k_items(text: str) -> list[MovieRow]:
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        fields = line.split("|")
        if len(fields) != 5 + len(ML100K_GENRES) or not fields[0].isdigit():
            out.append(MovieRow(i, line, reason="malformed"))
            continue
        flags = fields[5:]
        if any(f not in ("0", "1") for f in flags):
            out.append(MovieRow(i, line, reason="malformed"))
            continue
        release = fields[2].strip()
        year = int(release[-4:]) if release[-4:].isdigit() else _year_from_title(fields[1])
        genres = tuple(g for g, f in zip(ML100K_GENRES, flags, strict=True) if f == "1")
        out.append(MovieRow(i, line, int(fields[0]), fields[1], year, genres))
    return out


def _parse_recbole_items(text: str) -> list[MovieRow]:
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        if i == 1:
            continue  # header: item_id:token movie_title:token_seq release_year:token class:...
        fields = line.split("\t")
        if len(fields) != 4 or not fields[0].isdigit():
            out.append(MovieRow(i, line, reason="malformed"))
            continue
        year = int(fields[2]) if fields[2].strip().isdigit() else None
        genres = tuple(fields[3].split())
        out.append(MovieRow(i, line, int(fields[0]), fields[1], year, genres))
    return out


def _parse_ml1m_movies(text: str) -> list[MovieRow]:
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        fields = line.split("::")
        if len(fields) != 3 or not fields[0].isdigit():
            out.append(MovieRow(i, line, reason="malformed"))
            continue
        genres = tuple(g for g in fields[2].split("|") if g and g != NO_GENRES)
        out.append(MovieRow(i, line, int(fields[0]), fields[1], _year_from_title(fields[1]),
                            genres))
    return out


def _parse_csv_movies(text: str) -> list[MovieRow]:
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines, start=1):
        if i == 1:
            continue  # header: movieId,title,genres
        try:
            fields = next(csv.reader(io.StringIO(line), strict=True))
        except (csv.Error, StopIteration):
            fields = []
        if len(fields) != 3 or not fields[0].isdigit():
            out.append(MovieRow(i, line, reason="malformed"))
            continue
        title = fields[1].strip()
        genres = tuple(g for g in fields[2].split("|") if g and g != NO_GENRES)
        out.append(MovieRow(i, line, int(fields[0]), title, _year_from_title(title), genres))
    return out


_MOVIE_PARSERS = {
    "ml-100k": _parse_ml100k_items,
    "recbole": _parse_recbole_items,
    "ml-1m": _parse_ml1m_movies,
    "csv": _parse_csv_movies,
}

FORMATS = {
    "ml-100k": Format("ml-100k", "u.data", "u.item", "\t", 0, "latin-1", False),
    "recbole": Format("recbole", "ml-100k.inter", "ml-100k.item", "\t", 1, "utf-8", False),
    "ml-1m": Format("ml-1m", "ratings.dat", "movies.dat", "::", 0, "latin-1", False),
    "csv": Format("csv", "ratings.csv", "movies.csv", ",", 1, "utf-8", True),
}


def detect(folder: str, exists: Callable[[str], bool], requested: str = "auto") -> Format:
    """The format of the files in ``folder`` (or ``requested``), with a clear error.

    ``exists`` tells whether a path exists (a Hadoop file system check on a cluster).
    """
    if requested != "auto":
        return FORMATS[requested]
    for fmt in FORMATS.values():
        if exists(f"{folder}/{fmt.ratings_file}"):
            return fmt
    known = ", ".join(f"{f.ratings_file} ({f.name})" for f in FORMATS.values())
    raise FormatError(f"{folder}: no MovieLens ratings file found; expected one of {known}")


def detect_file(name: str, requested: str = "auto") -> Format:
    """The format of a single ratings file (``ingest --append FILE``): ``requested``, else
    the format whose ratings file has this name, else the one with its extension."""
    if requested != "auto":
        return FORMATS[requested]
    base = name.rsplit("/", 1)[-1]
    for fmt in FORMATS.values():
        if base == fmt.ratings_file:
            return fmt
    for fmt in FORMATS.values():
        if base.endswith("." + fmt.ratings_file.rsplit(".", 1)[-1]):
            return fmt
    known = ", ".join(f"*.{f.ratings_file.rsplit('.', 1)[-1]} ({f.name})"
                      for f in FORMATS.values())
    raise FormatError(f"{name}: cannot tell the ratings format from the name; expected "
                      f"{known}, or set ingest.format")
