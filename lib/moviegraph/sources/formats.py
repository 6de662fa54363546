"""The MovieLens file formats: where the files are, how a line splits, the rating scale.

Ratings files are large and ASCII, so they are parsed by Spark SQL expressions (no
Python per row). Movie catalogues are small (at most ~90k lines) and some are latin-1,
so they are decoded and parsed on the driver, with exact line numbers.

Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (as Spark's text reader splits them), a
UTF-8 byte order mark at the start of a file is ignored, and a header line (the CSV and
RecBole layouts) is recognised by holding a letter and no digit, so a file that lacks its
header loses no data line. Encodings: the CSV and RecBole files are UTF-8, and a
catalogue line that is not valid UTF-8 is rejected (``bad_encoding``) rather than guessed
at. The 100K and 1M catalogues are latin-1, where every byte is a character; a copy
re-encoded as UTF-8 (the whole file valid UTF-8, with non-ASCII characters) is read as
UTF-8.
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
_YEAR_IN_TITLE = re.compile(r"\(([0-9]{4})\)\s*$")
# ASCII digits only: str.isdigit() also accepts "²" (a latin-1 byte), which int() refuses.
_INTEGER = re.compile(r"-?[0-9]+")
# C0 controls other than tab, and DEL: never in a MovieLens catalogue; a NUL or a stray
# control byte means the line is corrupt.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
INT32_MAX = 2**31 - 1
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


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
    header: bool  # ratings and movies files start with a header line
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

    def parse_movies(self, data: bytes) -> list[MovieRow]:
        """Parse the raw catalogue file into rows (bad lines carry a reason)."""
        out = []
        for line_no, line, bad_encoding in decode_lines(data, self.movies_encoding):
            if line_no == 1 and self.header and is_header(line):
                continue
            if bad_encoding:
                out.append(MovieRow(line_no, line, reason="bad_encoding"))
                continue
            parsed = _parse_movie_line(self.name, line)
            if isinstance(parsed, str):
                out.append(MovieRow(line_no, line, reason=parsed))
            else:
                movie_id, title, year, genres = parsed
                out.append(MovieRow(line_no, line, movie_id, title, year, genres))
        return out


def is_header(line: str) -> bool:
    """Whether line 1 of a layout with a header is that header: a letter and no digit."""
    return bool(re.search("[A-Za-z]", line)) and not re.search("[0-9]", line)


def decode_lines(data: bytes, encoding: str) -> list[tuple[int, str, bool]]:
    """``(line_no, text, bad_encoding)`` per line of ``data``, numbered like Spark's reader.

    ``encoding`` is "utf-8" (each line decoded on its own; an undecodable line comes back
    with U+FFFD replacements and ``bad_encoding``) or "latin-1" (a file that is entirely
    valid UTF-8 with non-ASCII characters is a re-encoded copy, decoded as UTF-8).
    """
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    if encoding == "latin-1":
        try:
            data.decode("utf-8")
            encoding = "utf-8"  # the same text for ASCII; a re-encoded copy otherwise
        except UnicodeDecodeError:
            pass
    out = []
    # bytes.splitlines() breaks at \n, \r\n and \r only, as Spark's text reader does
    # (str.splitlines() would also break at \x85, \x0c, \u2028, ...). Neither byte occurs
    # inside a UTF-8 multi-byte character, so splitting before decoding is safe.
    for i, line in enumerate(data.splitlines(), start=1):
        try:
            out.append((i, line.decode(encoding), False))
        except UnicodeDecodeError:
            out.append((i, line.decode(encoding, errors="replace"), True))
    return out


def _year_from_title(title: str) -> int | None:
    m = _YEAR_IN_TITLE.search(title)
    return int(m.group(1)) if m else None


def _movie_id(token: str) -> int | str:
    """The movie id in ``token``, or the reason it is not one."""
    token = token.strip(" ")
    if not _INTEGER.fullmatch(token):
        return "malformed"
    # Digits counted first: int() refuses strings of over 4,300 digits.
    if len(token.lstrip("-").lstrip("0")) > 10:
        return "id_out_of_range"
    value = int(token)
    return value if 0 <= value <= INT32_MAX else "id_out_of_range"


ParsedMovie = tuple[int, str, int | None, tuple[str, ...]]


def _ml100k_item(movie_id: int, fields: list[str]) -> ParsedMovie | str:
    flags = fields[5:]
    if any(f not in ("0", "1") for f in flags):
        return "malformed"
    release = fields[2].strip()
    year = (int(release[-4:]) if re.fullmatch("[0-9]{4}", release[-4:])
            else _year_from_title(fields[1]))
    genres = tuple(g for g, f in zip(ML100K_GENRES, flags, strict=True) if f == "1")
    return movie_id, fields[1], year, genres


def _recbole_item(movie_id: int, fields: list[str]) -> ParsedMovie:
    year = int(fields[2].strip()) if re.fullmatch("[0-9]{4}", fields[2].strip()) else None
    return movie_id, fields[1], year, tuple(fields[3].split())


def _ml1m_movie(movie_id: int, fields: list[str]) -> ParsedMovie:
    genres = tuple(g for g in fields[2].split("|") if g and g != NO_GENRES)
    return movie_id, fields[1], _year_from_title(fields[1]), genres


def _csv_fields(line: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(line), strict=True))
    except (csv.Error, StopIteration):  # also a field over csv's 128 KiB limit
        return []


def _csv_movie(movie_id: int, fields: list[str]) -> ParsedMovie:
    title = fields[1].strip()
    genres = tuple(g for g in fields[2].split("|") if g and g != NO_GENRES)
    return movie_id, title, _year_from_title(title), genres


# Per layout: how a catalogue line splits, how many fields it has, and the row from its
# fields once the movie id (field 0) is known to be good.
_CATALOGUES: dict[str, tuple[Callable[[str], list[str]], int,
                             Callable[[int, list[str]], ParsedMovie | str]]] = {
    "ml-100k": (lambda line: line.split("|"), 5 + len(ML100K_GENRES), _ml100k_item),
    "recbole": (lambda line: line.split("\t"), 4, _recbole_item),
    "ml-1m": (lambda line: line.split("::"), 3, _ml1m_movie),
    "csv": (_csv_fields, 3, _csv_movie),
}


def _parse_movie_line(fmt: str, line: str) -> ParsedMovie | str:
    """The movie on one decoded catalogue line, or the reason it is rejected."""
    split, n_fields, build = _CATALOGUES[fmt]
    fields = split(line)
    if _CONTROL.search(line) or len(fields) != n_fields:
        return "malformed"
    movie_id = _movie_id(fields[0])
    return movie_id if isinstance(movie_id, str) else build(movie_id, fields)


FORMATS = {
    "ml-100k": Format("ml-100k", "u.data", "u.item", "\t", False, "latin-1", False),
    "recbole": Format("recbole", "ml-100k.inter", "ml-100k.item", "\t", True, "utf-8", False),
    "ml-1m": Format("ml-1m", "ratings.dat", "movies.dat", "::", False, "latin-1", False),
    "csv": Format("csv", "ratings.csv", "movies.csv", ",", True, "utf-8", True),
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
