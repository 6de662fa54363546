"""The HTML report from small hand-made inputs: self-contained, sections, charts, helpers."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from moviegraph.evaluate import report_data as rd
from moviegraph.evaluate.report import (
    MapPoints,
    ModelCurves,
    NormPoints,
    ReportData,
    render_report,
    write_report,
)
from moviegraph.evaluate.report_charts import nice_ticks


class _Collect(HTMLParser):
    """Tags with their attributes, and the text of table cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_cell = tag in ("td", "th")
        if self._in_cell:
            self.cells.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells[-1] += data


TITLES = ["Toy Story (1995)", "GoldenEye (1995)", "Star Wars (1977)", "Godfather, The (1972)",
          "Godfather: Part II, The (1974)", "Fargo (1996)", "Aladdin (1992)",
          "Aladdin and the King of Thieves (1996)", "Terminator 2: Judgment Day (1991)",
          "Star Wars: Episode I (1999)", "Lion King, The (1994)", "Twelve Monkeys (1995)"]
POP = np.array([452, 111, 583, 413, 209, 508, 219, 26, 295, 40, 220, 392])


def small_data(n_movies: int = 12) -> ReportData:
    rng = np.random.default_rng(1)
    vec = rng.standard_normal((n_movies, 4))
    genres = np.array([i % 3 if i != 5 else -1 for i in range(n_movies)])
    return ReportData(
        run_id="20261125T000000-abcdef",
        created="2026-11-25 00:00 UTC",
        metrics=[("node2vec", "recall@20:cosine", 0.05), ("node2vec", "ndcg@20:cosine", 0.04),
                 ("mf", "rmse", 0.93), ("baseline:mostpop", "recall@20:model", 0.1207),
                 ("walks", "chi2[p=1,q=1]", 2000.0), ("walks", "dof[p=1,q=1]", 1990.0),
                 ("walks", "p_value[p=1,q=1]", 0.4)],
        models={"node2vec": "r1", "mf": "r2"},
        notes={"gensim": "not installed: baseline skipped"},
        graph=rd.graph_stats(np.array([0, 1, 1, 2, 3, 5, 9]), np.array([0, 0, 0, 1, 1, 2, 3]),
                             12),
        curves={"node2vec": ModelCurves([0, 1, 2], [3.0, 2.0, 1.5]),
                "mf": ModelCurves([0, 1], [1.2, 0.9], {"val_rmse": [1.0, 0.95]})},
        neighbours=rd.neighbour_lists("node2vec", vec, np.ones(n_movies, bool), TITLES, POP),
        norms={"node2vec": NormPoints(POP.astype(float), np.linalg.norm(vec, axis=1),
                                      TITLES)},
        tsne=MapPoints("node2vec", rng.standard_normal((n_movies, 2)), genres,
                       ["Action", "Comedy", "Drama"], TITLES),
    )


def test_report_is_self_contained_and_has_every_section(tmp_path):
    text = render_report(small_data())
    parser = _Collect()
    parser.feed(text)
    # Nothing fetched: no external src/href, no stylesheet links, no script files.
    for tag, attrs in parser.tags:
        for key in ("src", "href"):
            assert not re.match(r"\s*(https?:)?//", attrs.get(key, "")), (tag, attrs)
        assert tag != "link" and tag != "iframe"
        assert not (tag == "script" and "src" in attrs)
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", text)
    ids = {a.get("id") for _, a in parser.tags}
    for section in ("metrics", "fidelity", "graph", "training", "neighbours", "norms", "map"):
        assert section in ids
    # Charts: degree, 2 loss curves + mf's val curve, 1 norm scatter, the map.
    charts = [a for t, a in parser.tags if t == "svg" and a.get("class") == "chart"]
    assert {a["id"] for a in charts} == {"chart-degree", "chart-loss-0", "chart-loss-1",
                                         "chart-val-1", "chart-norm-0", "chart-tsne"}
    marks = {a["id"]: int(a["data-marks"]) for a in charts}
    assert marks["chart-tsne"] == 12 and marks["chart-norm-0"] == 12
    assert marks["chart-loss-0"] == 1 + 3  # polyline + dots
    # Metrics table: model rows, baselines after models, values formatted.
    cells = parser.cells
    assert "0.1207" in cells and "0.9300" in cells and "baseline:mostpop" in cells
    assert cells.index("node2vec") < cells.index("baseline:mostpop")
    assert "0.4" in text and "gensim" in text  # fidelity p-value, the note

    path = Path(write_report(text, tmp_path / "reports", "run-1"))
    assert path.read_text() == text
    assert (tmp_path / "reports" / "latest.html").read_text() == text
    assert not list((tmp_path / "reports").glob("*.tmp"))


def test_report_without_optional_parts_still_renders():
    d = ReportData(run_id="x", created="now", metrics=[("m", "recall@20:cosine", float("nan"))])
    text = render_report(d)
    assert "No graph tables" in text and "No 2-D map" in text and "<svg" not in text
    assert "—" in text  # NaN shown as a dash


def test_titles_are_matched_robustly():
    assert rd.normalize_title("Godfather, The (1972)") == "the godfather"
    assert rd.normalize_title("The Godfather") == "the godfather"
    assert rd.normalize_title("Lion King, The (1994)") == "the lion king"
    assert rd.normalize_title("Terminator 2: Judgment Day (1991)") == "terminator 2 judgment day"
    assert rd.normalize_title("Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)") == "amelie"
    found = rd.find_movies(rd.QUERY_TITLES, TITLES, POP)
    assert {q: TITLES[i] for q, i in found.items()} == {
        "Star Wars": "Star Wars (1977)",  # exact beats the prefix match "Episode I"
        "Toy Story": "Toy Story (1995)",
        "Aladdin": "Aladdin (1992)",
        "The Lion King": "Lion King, The (1994)",
        "The Godfather": "Godfather, The (1972)",
        "Terminator 2": "Terminator 2: Judgment Day (1991)",
        "Fargo": "Fargo (1996)",
    }  # no Matrix in this list
    assert "The Matrix" not in found
    # Without an exact title, the most rated prefix match wins.
    only = rd.find_movies(["Star Wars"], ["Star Wars: A (1999)", "Star Wars: B (1980)"],
                          np.array([3, 9]))
    assert only == {"Star Wars": 1}


def test_neighbours_match_a_brute_force_reference():
    rng = np.random.default_rng(4)
    vec = rng.standard_normal((30, 5)) * rng.uniform(0.1, 3, (30, 1))
    has = np.ones(30, bool)
    has[[3, 7]] = False
    for metric in ("cosine", "dot"):
        got = rd.neighbours(vec, has, 0, 4, metric)
        ref = []
        for j in range(30):
            if j == 0 or not has[j]:
                continue
            s = float(vec[0] @ vec[j])
            if metric == "cosine":
                s /= float(np.sqrt(vec[0] @ vec[0]) * np.sqrt(vec[j] @ vec[j]))
            ref.append((s, j))
        ref.sort(key=lambda t: (-t[0], t[1]))
        assert [j for j, _ in got] == [j for _, j in ref[:4]]
        assert np.allclose([s for _, s in got], [s for s, _ in ref[:4]])
    assert rd.neighbours(vec, has, 3, 4, "cosine") == []  # query without a vector


def test_graph_stats_by_hand():
    g = rd.graph_stats(np.array([0, 1, 1, 2, 3, 5, 9]), np.array([0, 0, 0, 1, 1, 2, 3]), 12)
    assert (g.vertices, g.edges, g.components) == (7, 12, 4)
    assert g.largest_component_share == pytest.approx(3 / 7)
    assert g.degree_bins == ["0", "1", "2-3", "4-7", "8-15"]
    assert g.degree_counts == [1, 2, 2, 1, 1]
    assert g.mean_degree == pytest.approx(21 / 7)


@pytest.mark.parametrize(("lo", "hi"), [(0, 1), (0.013, 0.27), (-3, 1234), (5, 5)])
def test_nice_ticks_cover_the_range(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert ticks and all(lo - 1e-9 <= t <= hi + 1e-9 for t in ticks)
    assert ticks == sorted(ticks)
    if hi > lo:
        assert 2 <= len(ticks) <= 11


# ---------------------------------------------------------------- headless Chromium


def chromium_binary() -> str | None:
    """The Chromium executable, if installed."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def render_in_chromium(html_path: Path, out_dir: Path, name: str = "report"
                       ) -> tuple[str, Path]:
    """Headless Chromium: the DOM after scripts ran, and a 1280 x 4000 screenshot."""
    exe = chromium_binary()
    if exe is None:
        pytest.skip("no chromium binary on PATH (bin/ensure-chromium.sh installs Debian's)")
    common = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--virtual-time-budget=5000", f"--user-data-dir={out_dir / 'profile'}"]
    url = html_path.resolve().as_uri()
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    shot = out_dir / f"{name}.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,4000", url],
                   capture_output=True, timeout=120, check=True)
    return dom, shot


def test_small_report_renders_in_headless_chromium(tmp_path):
    path = Path(write_report(render_report(small_data()), tmp_path / "reports", "small"))
    dom, shot = render_in_chromium(path, tmp_path)
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert 'data-charts-expected="6"' in body and 'data-charts-rendered="6"' in body
    assert png_size(shot) == (1280, 4000)
