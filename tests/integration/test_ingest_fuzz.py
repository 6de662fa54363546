"""Fuzzed ingest inputs, every format: bad input ends in ``rejected`` or one line, never a trace.

Each case starts from a format's fixture folder (``tests/fixtures``), whose lines' outcomes
are known by hand (``test_ingest.CASES``), and mutates it with a seeded RNG:

* clean cases insert lines with exactly one defect each (the reason each must get is
  written next to it below) and rewrite the files with other line ends, a byte order mark,
  no final newline, no header, or the catalogue in the other encoding; the run must exit 0
  with exactly the expected ``ratings``, ``movies`` and ``rejected`` rows;
* damaged cases cut the files mid-line (mid-character) and flip random bytes; a flipped line
  may stay valid, so the test checks what must hold whatever the flip: every data line is
  in ``ratings``/``movies`` or in ``rejected`` exactly once, untouched lines keep their
  outcome (or lose it only for a reason the damage explains);
* strict cases must exit 3 naming the first bad line; broken folders (empty, header-only,
  missing, UTF-16, a folder where a file belongs, ...) must exit 3 with one line.

The job runs in-process through ``moviegraph.cli.main`` on the shared session; one case
(the reported missing folder) runs as a real process to see the exit code and stderr a
scheduler sees.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

import moviegraph
from moviegraph.cli import main
from tests.conftest import FIXTURES
from tests.integration.test_ingest import CASES

# Independent of the library's own tables: file names, separators, headers, encodings.
LAYOUT = {  # format: ratings file, movies file, separator, header line, catalogue encoding
    "ml-100k": ("u.data", "u.item", "\t", False, "latin-1"),
    "recbole": ("ml-100k.inter", "ml-100k.item", "\t", True, "utf-8"),
    "ml-1m": ("ratings.dat", "movies.dat", "::", False, "latin-1"),
    "csv": ("ratings.csv", "movies.csv", ",", True, "utf-8"),
}
REASONS = {"bad_encoding", "malformed", "id_out_of_range", "timestamp_out_of_range",
           "rating_out_of_range", "unknown_movie", "duplicate_rating", "duplicate_movie"}
# Reasons that depend on the line alone (not on other lines or the catalogue).
LOCAL = {"bad_encoding", "malformed", "id_out_of_range", "timestamp_out_of_range",
         "rating_out_of_range"}
TRACES = ("Traceback", "at org.apache", "Exception in thread", "py4j.protocol")
SEED = 20240612


@dataclass
class Line:
    """One line of a generated file and what ingest must make of it."""

    data: bytes
    expect: str  # "header", "good", or a rejection reason
    value: tuple = ()  # good rating: (user, movie, rating); good movie: (movie_id, title)
    touched: bool = False  # flipped or cut: any outcome is fine for the line itself


@dataclass
class Folder:
    """A generated input folder: both files' lines and how to write them."""

    fmt: str
    ratings: list[Line]
    movies: list[Line]
    line_end: bytes = b"\n"
    bom: bool = False
    final_newline: bool = True
    notes: list[str] = field(default_factory=list)

    def write(self, folder: Path) -> None:
        ratings_name, movies_name, *_ = LAYOUT[self.fmt]
        folder.mkdir(parents=True)
        for name, lines in ((ratings_name, self.ratings), (movies_name, self.movies)):
            body = self.line_end.join(line.data for line in lines)
            # Without a final line end, a blank last line would not be a line at all.
            if lines and (self.final_newline or not lines[-1].data):
                body += self.line_end
            (folder / name).write_bytes((b"\xef\xbb\xbf" if self.bom else b"") + body)


def fixture_folder(fmt: str, catalogue_encoding: str | None = None) -> Folder:
    """The fixture's lines with their hand-checked outcomes (test_ingest.CASES).

    ``catalogue_encoding`` rewrites the catalogue in another encoding.
    """
    ratings_name, movies_name, sep, header, encoding = LAYOUT[fmt]
    case = CASES[fmt]
    bad = {(name, line): reason for name, line, reason in case["rejected"]}

    def lines_of(name: str) -> list[bytes]:
        return (FIXTURES / fmt / name).read_bytes().splitlines()

    ratings = []
    for i, data in enumerate(lines_of(ratings_name), start=1):
        if header and i == 1:
            ratings.append(Line(data, "header"))
        elif (ratings_name, i) in bad:
            ratings.append(Line(data, bad[ratings_name, i]))
        else:
            u, m, r, _ = data.decode().split(sep)
            ratings.append(Line(data, "good", (int(u), int(m), float(r))))
    assert {v.value for v in ratings if v.expect == "good"} == case["good"]
    movies = []
    for i, data in enumerate(lines_of(movies_name), start=1):
        text = data.decode(encoding)
        out = text.encode(catalogue_encoding or encoding)
        if header and i == 1:
            movies.append(Line(out, "header"))
        elif (movies_name, i) in bad:
            movies.append(Line(out, bad[movies_name, i]))
        else:
            movie_id = int(re.split(r"\||\t|::|,", text)[0])
            movies.append(Line(out, "good", (movie_id, case["movies"][movie_id][0])))
    return Folder(fmt, ratings, movies)


def rating_line(fmt: str, u: object, m: object, r: object, ts: object) -> bytes:
    """A ratings line of ``fmt`` from its four fields (any of them may be broken)."""
    return LAYOUT[fmt][2].join(str(f) for f in (u, m, r, ts)).encode()


def movie_text(fmt: str, movie_id: object, title: str) -> str:
    """A catalogue line of ``fmt`` (genre Drama, release 1995)."""
    if fmt == "ml-100k":
        return f"{movie_id}|{title}|01-Jan-1995||http://x|" + "|".join("0" * 8 + "1" + "0" * 10)
    if fmt == "recbole":
        return f"{movie_id}\t{title}\t1995\tDrama"
    if fmt == "ml-1m":
        return f"{movie_id}::{title}::Drama"
    return f'{movie_id},"{title}",Drama'


def bad_ratings(fmt: str, u: int, m: int, ts: int) -> list[tuple[str, bytes, str]]:
    """(kind, line, reason it must get): one defect per line, from a good line's fields."""
    r = "4.0" if fmt == "csv" else "4"
    sep = LAYOUT[fmt][2]
    good = rating_line(fmt, u, m, r, ts)
    return [
        ("non-numeric rating", rating_line(fmt, u, m, "abc", ts), "malformed"),
        ("NaN rating", rating_line(fmt, u, m, "NaN", ts), "malformed"),
        ("infinite rating", rating_line(fmt, u, m, "Infinity", ts), "malformed"),
        ("missing field", sep.join((str(u), str(m), r)).encode(), "malformed"),
        ("extra field", good + f"{sep}7".encode(), "malformed"),
        ("stray delimiter", rating_line(fmt, f"{u}{sep}", m, r, ts), "malformed"),
        ("fractional timestamp", rating_line(fmt, u, m, r, f"{ts}.5"), "malformed"),
        ("non-numeric timestamp", rating_line(fmt, u, m, r, "12:00"), "malformed"),
        ("NUL byte", rating_line(fmt, u, m, r, ts).replace(b"4", b"4\x00", 1), "malformed"),
        ("blank line", b"", "malformed"),
        ("header line again", b"userId,movieId,rating,timestamp", "malformed"),
        ("very long line", b"x" * 300_000, "malformed"),
        ("user id above int32", rating_line(fmt, 2**31, m, r, ts), "id_out_of_range"),
        ("huge movie id", rating_line(fmt, u, 10**40, r, ts), "id_out_of_range"),
        ("negative user id", rating_line(fmt, -u, m, r, ts), "id_out_of_range"),
        ("negative timestamp", rating_line(fmt, u, m, r, -5), "timestamp_out_of_range"),
        ("timestamp after 9999", rating_line(fmt, u, m, r, 10**14), "timestamp_out_of_range"),
        ("rating off the scale", rating_line(fmt, u, m, "7", ts), "rating_out_of_range"),
        ("negative rating", rating_line(fmt, u, m, "-1", ts), "rating_out_of_range"),
        ("unknown movie", rating_line(fmt, u, 424242, r, ts), "unknown_movie"),
        ("latin-1 byte", rating_line(fmt, u, m, r, ts) + b"\xe9", "bad_encoding"),
        ("cut multi-byte character", good + "é".encode()[:1], "bad_encoding"),
    ]


def bad_movies(fmt: str, encoding: str) -> list[tuple[str, bytes, str]]:
    """(kind, catalogue line, reason): one defect per line, in the file's ``encoding``."""
    sep = {"ml-100k": "|", "recbole": "\t", "ml-1m": "::", "csv": ","}[fmt]
    out = [
        ("negative id", movie_text(fmt, -7, "Neg (1990)"), "id_out_of_range"),
        ("id above int32", movie_text(fmt, 99_999_999_999, "Big (1990)"), "id_out_of_range"),
        ("superscript digit id", movie_text(fmt, "\u00b2", "Sq (1990)"), "malformed"),
        ("NUL in title", movie_text(fmt, 61, "N\x00ul (1990)"), "malformed"),
        ("escape in title", movie_text(fmt, 62, "Esc\x1b (1990)"), "malformed"),
        ("extra field", movie_text(fmt, 63, "Extra (1990)") + sep + "x", "malformed"),
        ("blank line", "", "malformed"),
        ("header line again", "movieId,title,genres", "malformed"),
    ]
    lines = [(kind, text.encode(encoding), reason) for kind, text, reason in out]
    if LAYOUT[fmt][4] == "utf-8":
        lines.append(("latin-1 title", movie_text(fmt, 64, "Caf\u00e9 (1999)").encode("latin-1"),
                      "bad_encoding"))
    return lines


def clean_case(fmt: str, rng: random.Random, reencode: bool) -> Folder:
    """Every defect inserted once at random places, in files written a random way.

    ``reencode`` writes the catalogue in the other encoding (UTF-8 for latin-1 layouts,
    latin-1 for UTF-8 ones).
    """
    encoding = LAYOUT[fmt][4]
    header = LAYOUT[fmt][3]
    file_encoding = encoding
    if reencode:
        file_encoding = "utf-8" if encoding == "latin-1" else "latin-1"
    folder = fixture_folder(fmt, file_encoding)
    folder.line_end = rng.choice([b"\n", b"\r\n", b"\r"])
    folder.bom = rng.random() < 0.5
    folder.final_newline = rng.random() < 0.5
    folder.notes.append(f"catalogue written as {file_encoding}, line end "
                        f"{folder.line_end!r}, BOM {folder.bom}, final line end "
                        f"{folder.final_newline}")
    if header and rng.random() < 0.5:  # a file without its header loses no rating
        folder.ratings.pop(0)
        folder.notes.append("ratings header dropped")

    def insert(lines: list[Line], line: Line, after: int = 0) -> None:
        lo = max(after, 1)  # line 1 stays a fixture line: header, or data with digits
        lines.insert(rng.randint(lo, len(lines)), line)

    # A new movie with an accented title: good, unless a UTF-8 layout gets latin-1 bytes.
    accented = "Am\u00e9lie (2001)"
    data = movie_text(fmt, 50, accented).encode(file_encoding)
    ok = encoding == "latin-1" or file_encoding == "utf-8"
    insert(folder.movies, Line(data, "good" if ok else "bad_encoding", (50, accented)))
    for kind, data, reason in bad_movies(fmt, file_encoding):
        if encoding == "utf-8" and file_encoding == "latin-1" and not data.isascii():
            reason = "bad_encoding"  # latin-1 bytes in a UTF-8 layout
        insert(folder.movies, Line(data, reason))
        folder.notes.append(f"movies: {kind}")
    first_good = next(i for i, v in enumerate(folder.movies) if v.expect == "good")
    insert(folder.movies, replace(folder.movies[first_good], expect="duplicate_movie", value=()),
           after=first_good + 1)

    goods = [(i, v) for i, v in enumerate(folder.ratings) if v.expect == "good"]
    i, template = rng.choice(goods)
    u, m, _ = template.value
    for kind, data, reason in bad_ratings(fmt, u, m, 978300000 + i):
        insert(folder.ratings, Line(data, reason))
        folder.notes.append(f"ratings: {kind}")
    i, template = rng.choice([(i, v) for i, v in enumerate(folder.ratings)
                              if v.expect == "good"])
    insert(folder.ratings, Line(template.data, "duplicate_rating"), after=i + 1)
    return folder


def flip(folder: Folder, rng: random.Random, flips: int) -> None:
    """``flips`` random bytes replaced (never by a line end) across both files."""
    for _ in range(flips):
        lines = rng.choice([folder.ratings, folder.movies])
        candidates = [v for v in lines if v.data]
        line = rng.choice(candidates)
        pos = rng.randrange(len(line.data))
        byte = rng.choice([b for b in range(256) if b not in (10, 13)])
        line.data = line.data[:pos] + bytes([byte]) + line.data[pos + 1:]
        line.touched = True
        folder.notes.append(f"flip to {byte:#04x} in {line.data[:40]!r}")


def damaged_case(fmt: str, rng: random.Random, flips: int) -> Folder:
    """Both files cut mid-line (a UTF-8 catalogue inside its last line's 'é'), then
    ``flips`` random bytes replaced."""
    folder = fixture_folder(fmt)
    folder.final_newline = False
    k = rng.randrange(len(folder.ratings) // 2, len(folder.ratings))  # in the second half
    del folder.ratings[k + 1:]
    last = folder.ratings[k]
    last.data = last.data[:rng.randrange(1, len(last.data))]
    last.touched = True
    if LAYOUT[fmt][4] == "utf-8":
        text = movie_text(fmt, 50, "Am\u00e9lie (2001)").encode()
        cut = text[:text.index(b"\xc3") + 1]  # the first byte of a two-byte character
        folder.movies.append(Line(cut, "bad_encoding"))
        folder.notes.append("catalogue cut inside a two-byte character")
    else:
        k = rng.randrange(len(folder.movies) // 2, len(folder.movies))
        del folder.movies[k + 1:]
        last = folder.movies[k]
        last.data = last.data[:rng.randrange(1, len(last.data))]
        last.touched = True
    folder.notes.append(f"ratings cut after {len(folder.ratings)} lines")
    flip(folder, rng, flips)
    return folder


def build_cases(rounds: int) -> list[tuple[str, Folder]]:
    """The seeded, fixed list of fuzz cases: per format and round, a clean and a damaged
    folder (each is one full ingest, 36 Spark jobs: the count is kept small)."""
    rng = random.Random(SEED)
    cases = []
    for r in range(rounds):
        for k, fmt in enumerate(sorted(LAYOUT)):
            # csv and ml-1m (one layout of each encoding) get the other encoding first.
            cases.append((f"{fmt}-clean{r}", clean_case(fmt, rng, (k + r) % 2 == 0)))
            cases.append((f"{fmt}-damaged{r}", damaged_case(fmt, rng, 5)))
    return cases


# More rounds for a deeper local run: MOVIEGRAPH_FUZZ_ROUNDS=10 pytest ...
FUZZ = build_cases(int(os.environ.get("MOVIEGRAPH_FUZZ_ROUNDS", "1")))


def run_cli(capsys, *args: str) -> tuple[int, str]:
    """``python -m moviegraph`` in-process; (exit code, stderr)."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    for trace in TRACES:
        assert trace not in out + err, out + err
    return code, err


def ingest_args(folder: Path | str, warehouse: Path, *extra: str) -> list[str]:
    return ["ingest", "--quiet", "--set", "ingest.dataset=path", "--path", str(folder),
            "--set", f"warehouse.root={warehouse}", *extra]


def one_line_error(err: str) -> str:
    """The single stderr line of a failed job (the test fails unless there is exactly one)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("input error: "), err
    return lines[0]


def data_lines(lines: list[Line]) -> dict[int, Line]:
    """File line number -> line, the header left out (README: line 1 of a layout with a
    header, when it holds a letter and no digit)."""
    out = {}
    for no, line in enumerate(lines, start=1):
        if (no == 1 and line.expect == "header" and re.search(rb"[A-Za-z]", line.data)
                and not re.search(rb"[0-9]", line.data)):
            continue
        out[no] = line
    return out


def allowed(line: Line, kind: str, ratings_touched: bool, movies_touched: bool,
            movie_gone: bool) -> set[str]:
    """Outcomes a ``kind`` ("rating" or "movie") line may have, given the damage elsewhere.

    Untouched lines keep their fixture outcome except where damage to other lines
    explains the change: a rating's movie line flipped or cut off (unknown_movie), an
    earlier line flipped into or out of the same (user, movie) or movie id (duplicates),
    a flipped catalogue line now naming an unknown movie id (good).
    """
    if line.touched:
        return REASONS | {"good"}
    out = {line.expect}
    if line.expect in LOCAL:
        return out
    if kind == "movie":
        return out | ({"good", "duplicate_movie"} if movies_touched else set())
    if movie_gone:
        out.add("unknown_movie")
    if ratings_touched and line.expect in ("good", "duplicate_rating"):
        out |= {"good", "duplicate_rating"}
    if movies_touched and line.expect in ("unknown_movie", "duplicate_rating"):
        out |= {"good", "duplicate_rating", "unknown_movie"}
    return out


def check_tables(spark, folder: Folder, source: Path, wh_root: Path) -> None:
    """Every data line of both files in exactly one place, with the outcome it must have."""
    from moviegraph.tables import Warehouse

    wh = Warehouse(spark, str(wh_root))
    ratings_name, movies_name, *_ = LAYOUT[folder.fmt]
    rejected: dict[str, dict[int, str]] = {ratings_name: {}, movies_name: {}}
    for r in wh.read("rejected").collect():
        name = r.source.rsplit("/", 1)[-1]
        assert r.source == (source / name).resolve().as_uri()
        assert r.line_no not in rejected[name], f"{name}:{r.line_no} rejected twice"
        assert r.reason in REASONS
        rejected[name][r.line_no] = r.reason
    ratings = {(r.user_id, r.movie_id, r.rating) for r in wh.read("ratings").collect()}
    movies = {r.movie_id: r.title for r in wh.read("movies").collect()}

    ratings_touched = any(v.touched for v in folder.ratings)
    movies_touched = any(v.touched for v in folder.movies)
    # Movie ids still on an untouched good catalogue line (cut cases drop lines).
    intact = {v.value[0] for v in folder.movies if v.expect == "good" and not v.touched}
    rows = data_lines(folder.ratings)
    assert set(rejected[ratings_name]) <= set(rows)
    # Conservation: each data line is a ratings row or a rejected row, never dropped.
    assert len(ratings) + len(rejected[ratings_name]) == len(rows)
    for no, line in rows.items():
        got = rejected[ratings_name].get(no, "good")
        movie_gone = bool(line.value) and line.value[1] not in intact
        assert got in allowed(line, "rating", ratings_touched, movies_touched, movie_gone), (
            f"{ratings_name}:{no} {line.data[:60]!r}: got {got}, expected {line.expect}")
        if got == "good" and line.expect == "good":
            assert line.value in ratings
    rows = data_lines(folder.movies)
    assert set(rejected[movies_name]) <= set(rows)
    assert len(movies) + len(rejected[movies_name]) == len(rows)
    for no, line in rows.items():
        got = rejected[movies_name].get(no, "good")
        assert got in allowed(line, "movie", False, movies_touched, False), (
            f"{movies_name}:{no} {line.data[:60]!r}: got {got}, expected {line.expect}")
        if got == "good" and line.expect == "good" and not line.touched:
            assert movies[line.value[0]] == line.value[1]
    if not ratings_touched and not movies_touched:  # clean: the exact tables
        assert ratings == {v.value for v in folder.ratings if v.expect == "good"}
        assert movies == dict(v.value for v in folder.movies if v.expect == "good")


@pytest.mark.parametrize("name", [name for name, _ in FUZZ])
def test_fuzzed_folder_is_ingested_or_refused_in_one_line(spark, tmp_path, capsys, name):
    folder = dict(FUZZ)[name]
    source = tmp_path / "in"
    folder.write(source)
    code, err = run_cli(capsys, *ingest_args(source, tmp_path / "wh"))
    context = f"{name}: " + "; ".join(folder.notes)
    touched = any(v.touched for v in folder.ratings + folder.movies)
    if code == 3 and touched:  # e.g. every catalogue line broken: a one-line refusal
        line = one_line_error(err)
        assert any(f in line for f in LAYOUT[folder.fmt][:2]), line
        return
    assert code == 0, context + "\n" + err
    assert err == "", context + "\n" + err
    check_tables(spark, folder, source, tmp_path / "wh")


@pytest.mark.parametrize("fmt", sorted(LAYOUT))
def test_strict_mode_names_the_first_bad_line(spark, tmp_path, capsys, fmt):
    folder = clean_case(fmt, random.Random(SEED + 1), False)
    source = tmp_path / "in"
    folder.write(source)
    code, err = run_cli(capsys, *ingest_args(source, tmp_path / "wh", "--strict"))
    assert code == 3
    ratings_name, movies_name, *_ = LAYOUT[fmt]
    bad = sorted((name, no, line.expect)
                 for name, lines in ((ratings_name, folder.ratings), (movies_name, folder.movies))
                 for no, line in data_lines(lines).items() if line.expect != "good")
    name, no, reason = bad[0]  # same folder: the URIs sort as the file names do
    line = one_line_error(err)
    assert f"{(source / name).resolve().as_uri()}:{no}: {reason}: " in line, line
    assert f"; {len(bad)} bad rows in all)" in line, line
    assert not (tmp_path / "wh" / "ratings").exists()


# A csv-layout file replaced by these bytes (None: removed) -> the one-line error's text.
BROKEN_FILES = {
    "empty ratings": ("ratings.csv", b"", "ratings.csv: input file is empty"),
    "empty movies": ("movies.csv", b"", "movies.csv: input file is empty"),
    "header-only ratings": ("ratings.csv", b"userId,movieId,rating,timestamp\r\n",
                            "ratings.csv: no valid ratings"),
    "header-only movies": ("movies.csv", b"\xef\xbb\xbfmovieId,title,genres\n",
                           "movies.csv: no valid movie lines"),
    "all ratings bad": ("ratings.csv", b"userId,movieId,rating,timestamp\n\x00\x00\n-1,1,4,5\n",
                        "ratings.csv: no valid ratings"),
    "UTF-16 ratings": ("ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,5\n"
                       .encode("utf-16"), "ratings.csv:1: UTF-16"),
    "missing movies": ("movies.csv", None, "movies.csv: input file not found"),
}


def _broken(tmp_path: Path, kind: str) -> tuple[Path | str, str]:
    """A broken csv-layout folder (or path) and a piece its one-line error must contain."""
    src = tmp_path / "in"
    shutil.copytree(FIXTURES / "csv", src)
    ratings = src / "ratings.csv"
    if kind in BROKEN_FILES:
        name, data, expected = BROKEN_FILES[kind]
        if data is None:
            (src / name).unlink()
        else:
            (src / name).write_bytes(data)
        return src, expected
    if kind == "missing folder":
        return tmp_path / "nowhere", "nowhere: input folder not found"
    if kind == "path is a file":
        return ratings, "ratings.csv: not a folder"
    if kind == "ratings file is a folder":
        ratings.unlink()
        ratings.mkdir()
        (ratings / "part-0").write_text("1,1,4.0,1\n")
        return src, "ratings.csv: a folder where the input file should be"
    if kind == "no known layout":
        ratings.rename(src / "ratings.txt")
        return src, "no MovieLens ratings file found"
    if kind == "wildcard in path":
        odd = tmp_path / "in[1]"
        src.rename(odd)
        return odd, "which Spark reads as a wildcard"
    assert kind == "unknown file system"
    return "nosuchfs://host/folder", "nosuchfs://host/folder: cannot read: "


BROKEN = [*BROKEN_FILES, "missing folder", "path is a file", "ratings file is a folder",
          "no known layout", "wildcard in path", "unknown file system"]


@pytest.mark.parametrize("kind", BROKEN)
def test_broken_folder_is_one_line_input_error(spark, tmp_path, capsys, kind):
    path, expected = _broken(tmp_path, kind)
    code, err = run_cli(capsys, *ingest_args(path, tmp_path / "wh"))
    assert code == 3, err
    assert expected in one_line_error(err)


def _process(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The job as a scheduler runs it (``--quiet``: no progress bars on stderr)."""
    env = dict(os.environ, PYTHONPATH=str(Path(moviegraph.__file__).parents[1]))
    return subprocess.run(
        [sys.executable, "-m", "moviegraph", *args, "--quiet", "--set", "spark.master=local[1]",
         "--set", "spark.driver_memory=1g", "--set", f"warehouse.root={tmp_path / 'wh'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def _stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    # The JVM itself announces the vector module Spark 4.1 enables; nothing else may appear.
    lines = [v for v in proc.stderr.splitlines()
             if v.strip() and not v.startswith("WARNING: Using incubator modules")]
    for trace in TRACES:
        assert trace not in proc.stdout + proc.stderr, proc.stderr
    return lines


def test_process_missing_folder_exits_3_with_one_line(tmp_path):
    """The reported case: the raw-file fingerprint listed the folder before ingest did."""
    proc = _process(tmp_path, "ingest", "--set", "ingest.dataset=path",
                    "--path", "/does/not/exist")
    assert proc.returncode == 3, proc.stderr
    assert _stderr_lines(proc) == ["input error: /does/not/exist: input folder not found"]


def test_latin1_byte_in_csv_catalogue(spark, tmp_path, capsys):
    """The other reported case: one latin-1 'é' in a UTF-8 movies.csv; strict names it."""
    src = tmp_path / "in"
    shutil.copytree(FIXTURES / "csv", src)
    lines = (src / "movies.csv").read_bytes().splitlines()
    lines.insert(1, b"7,Caf\xe9 Society (1995),Drama")  # line 2, before the fixture's bad one
    (src / "movies.csv").write_bytes(b"\n".join(lines) + b"\n")
    code, err = run_cli(capsys, *ingest_args(src, tmp_path / "wh", "--strict"))
    assert code == 3, err
    # The fixture's 7 bad rows and this one; U+FFFD stands for the byte.
    assert one_line_error(err) == (
        f"input error: {(src / 'movies.csv').resolve().as_uri()}:2: bad_encoding: "
        "'7,Caf\ufffd Society (1995),Drama' (strict mode; 8 bad rows in all)")
