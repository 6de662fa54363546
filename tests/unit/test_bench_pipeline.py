"""benchmarks.pipeline's own arithmetic: sizes, the process tree's CPU, the edges reference
and the table's ratios, each against an independent computation."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import types

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from benchmarks import pipeline as bp
from benchmarks.tree_rss import PeakRSS


def test_parse_sizes() -> None:
    assert bp.parse_sizes("ml100k, 1e6,5e6,25e6") == ["ml100k", "1000000", "5000000",
                                                       "25000000"]
    assert bp.parse_sizes("ML-100K") == ["ml100k"]


def test_tree_cpu_counts_children_that_exited() -> None:
    """A child that burns CPU and exits is still counted (its parent reaped it)."""
    burn = ("import time\nt = time.process_time()\n"
            "while time.process_time() - t < 0.6: pass\n")
    shell = subprocess.Popen([sys.executable, "-c",
                              "import subprocess, sys, time\n"
                              f"subprocess.run([sys.executable, '-c', {burn!r}])\n"
                              "time.sleep(1.0)\n"])
    with PeakRSS(shell.pid, interval=0.05) as mem:
        shell.wait()
        # The shell is done: what is left is its own and its reaped child's CPU.
    assert mem.tree_cpu() >= 0.55


def _python_edges(pairs: dict[tuple[int, int], int], items: dict[int, int], min_weight: float,
                  min_count: int, top_k: int, weighting: str = "pmi") -> set[tuple[int, int]]:
    """The recipe plus the k-NN cut as a plain loop (README's pairs / edges section): the
    weight is pmi * n or n / sqrt(n_a n_b); the cut ranks by pmi or by that cosine."""
    d = math.log(sum(items.values()))
    score = {}
    for (a, b), n in pairs.items():
        p = math.log(n) - math.log(items[a]) - math.log(items[b]) + d
        cosine = n / math.sqrt(items[a] * items[b])
        weight = cosine if weighting == "cosine" else p * n
        if weight >= min_weight and n >= min_count:
            score[(a, b)] = cosine if weighting == "cosine" else p
    if top_k <= 0:
        return set(score)
    best: dict[int, list[tuple[float, int, tuple[int, int]]]] = {}
    for (a, b), p in score.items():
        best.setdefault(a, []).append((-p, b, (a, b)))
        best.setdefault(b, []).append((-p, a, (a, b)))
    return {e for lst in best.values() for _, _, e in sorted(lst)[:top_k]}


@pytest.mark.parametrize(("weighting", "chunks"), [("pmi", 1), ("pmi", 7), ("cosine", 1),
                                                  ("cosine", 16)])
def test_ref_edges_matches_a_python_loop(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                         weighting: str, chunks: int) -> None:
    """Either weighting, the top-k cut in one range of movies or in several."""
    monkeypatch.setattr(bp, "EDGE_CUT_CHUNKS", chunks)
    rng = np.random.default_rng(2)
    movies = rng.permutation(np.arange(1, 41))  # item_counts in no particular order
    items = {int(m): int(rng.integers(20, 200)) for m in movies}
    pairs = {(int(a), int(b)): int(rng.integers(1, 15))
             for a, b in itertools.combinations(movies, 2) if rng.random() < 0.5}
    pairs = {(min(a, b), max(a, b)): n for (a, b), n in pairs.items()}  # movie_a < movie_b
    tables = {
        "item_counts": pa.table({"movie_id": list(items), "n": list(items.values())}),
        "pair_counts": pa.table({"movie_a": [a for a, _ in pairs], "movie_b": [b for _, b in
                                                                              pairs],
                                 "n": list(pairs.values())}),
    }
    expected = _python_edges(pairs, items, 0.0, 2, 3, weighting)
    tables["edges"] = pa.table({"src": [a for a, _ in expected]})
    monkeypatch.setattr(bp, "_arrow", lambda wh, name, columns=None: tables[name])
    cfg = types.SimpleNamespace(edges=types.SimpleNamespace(min_weight=0.0, min_count=2,
                                                            top_k=3, weighting=weighting))
    ctx = bp.Context(tmp_path, cfg, 1, tmp_path, None)
    out = bp.ref_edges(ctx)
    written = pq.read_table(tmp_path / "edges.parquet")
    got = set(zip(written.column("src").to_pylist(), written.column("dst").to_pylist(),
                  strict=True))
    assert got == expected
    assert out["work"] == len(pairs) and "(same)" in out["note"]


def test_print_table_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    run = bp.PipelineRun("ml100k", bp.Path("/nonexistent"), [], [])
    run.total = bp.Cost(30.0, 40.0, 2**30)
    run.stages = {"pairs": bp.Cost(10.0, 8.0, 2**29)}
    bp.print_table(run, {"pairs": bp.Work(1000, "pairs")},
                   {"pairs": {"work": 1000, "seconds": 2.0, "cpu": 4.0, "peak": 2**28,
                              "note": "scipy"}})
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("| pairs"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:3] == ["pairs", "10.0", "8.0"]
    assert cells[-2:] == ["5.0x", "2.0x"]  # 10 / 2 wall, 8 / 4 CPU
