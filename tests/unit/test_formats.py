"""Catalogue parsing on the driver: line splitting, encodings, ids (no Spark)."""

from __future__ import annotations

from moviegraph.sources.formats import FORMATS
from tests.conftest import FIXTURES


def outcomes(fmt: str, data: bytes) -> list[tuple[int, object]]:
    """(line number, movie id or rejection reason) per catalogue line."""
    return [(r.line_no, r.reason or r.movie_id) for r in FORMATS[fmt].parse_movies(data)]


def test_line_numbers_break_only_at_cr_and_lf():
    # latin-1 0x85 is NEL and 0x0c a form feed: str.splitlines() would break the line there.
    data = (b"1::A\x85B (1995)::Drama\r\n2::C\x0cD (1996)::Drama\r3::E (1997)::Drama\n"
            b"4::F (1998)::Drama")
    rows = FORMATS["ml-1m"].parse_movies(data)
    assert [(r.line_no, r.movie_id, r.reason) for r in rows] == [
        (1, 1, None), (2, None, "malformed"), (3, 3, None), (4, 4, None)]
    assert rows[0].title == "A\x85B (1995)"  # latin-1: the byte is a character


def test_ids_are_ascii_integers_in_int32():
    lines = [b"1::A (1995)::Drama", b"\xb2::Squared (1995)::Drama",  # latin-1 superscript 2
             b"-3::Neg (1995)::Drama", b"2147483648::Big (1995)::Drama",
             b"9" * 5000 + b"::Huge (1995)::Drama", b" 7 ::Spaced (1995)::Drama",
             b"0002147483647::Max (1995)::Drama"]
    assert outcomes("ml-1m", b"\n".join(lines)) == [
        (1, 1), (2, "malformed"), (3, "id_out_of_range"), (4, "id_out_of_range"),
        (5, "id_out_of_range"), (6, 7), (7, 2**31 - 1)]


def test_utf8_layouts_reject_undecodable_lines_only():
    data = (b"\xef\xbb\xbfmovieId,title,genres\n1,Caf\xc3\xa9 (1995),Drama\n"
            b"2,Caf\xe9 (1995),Drama\n3,Cut \xc3")
    rows = FORMATS["csv"].parse_movies(data)
    assert [(r.line_no, r.reason or r.title) for r in rows] == [
        (2, "Caf\u00e9 (1995)"), (3, "bad_encoding"), (4, "bad_encoding")]
    assert rows[1].raw == "2,Caf\ufffd (1995),Drama"


def test_latin1_layout_reads_a_utf8_copy_as_utf8():
    latin1 = (FIXTURES / "ml-1m" / "movies.dat").read_bytes()
    as_utf8 = latin1.decode("latin-1").encode("utf-8")
    titles = [r.title for r in FORMATS["ml-1m"].parse_movies(latin1)]
    assert "Mis\u00e9rables, Les (1995)" in titles
    assert [r.title for r in FORMATS["ml-1m"].parse_movies(as_utf8)] == titles


def test_header_is_line_one_with_a_letter_and_no_digit():
    # Without its header line the first movie is data; a digit-free line 1 is the header.
    assert outcomes("csv", b"1,A (1995),Drama\n2,B (1996),Drama\n") == [(1, 1), (2, 2)]
    assert outcomes("csv", b"movieId,title,genres\n2,B (1996),Drama\n") == [(2, 2)]
    assert outcomes("csv", b"\n2,B (1996),Drama\n") == [(1, "malformed"), (2, 2)]
    assert outcomes("csv", b"movieId,title,genres\nmovieId,title,genres\n") == [
        (2, "malformed")]


def test_control_characters_and_oversized_csv_fields_are_malformed():
    data = (b"movieId,title,genres\n1,A\x00 (1995),Drama\n2,B\tC (1995),Drama\n"
            b"3,\"" + b"x" * 200_000 + b"\",Drama\n")
    assert outcomes("csv", data) == [(2, "malformed"), (3, 2), (4, "malformed")]
