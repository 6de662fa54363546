"""Incremental ratings: ``ingest --append`` then ``pairs`` MERGEs the appended ratings' counts.

ml-100k is split into a base file and two appended files; base + two incremental pairs
runs (the second after ``maintain``) must give exactly the tables of one full count over
all ratings.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from moviegraph import config
from moviegraph.graph.kernels import cross_pair_counts, decode_pairs, iter_cross_pair_counts
from moviegraph.maintain import MaintainConfig, run_maintain
from moviegraph.pipeline import run_stage
from moviegraph.runs import record_stage
from moviegraph.tables import Warehouse
from tests.conftest import ml100k_folder
from tests.integration.tables_compare import assert_same_tables, delta_table

# Small blocks, so that both the within-new and the new x old tasks split users' lists.
PAIRS = ["pairs.ratings=all", "pairs.min_rating=4", "pairs.block_size=40"]


# ------------------------------------------------------------------ kernel, no Spark


def _reference_cross(tasks: list[tuple[list[int], list[int]]]) -> Counter:
    counts: Counter = Counter()
    for a, b in tasks:
        for x in a:
            for y in b:
                counts[(min(x, y), max(x, y))] += 1
    return counts


def _flatten(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
    items = np.array([v for x in lists for v in x], dtype=np.int32)
    return ptr, items


def test_cross_pair_counts_match_a_plain_double_loop():
    rng = np.random.default_rng(5)
    tasks = []
    for _ in range(60):
        ids = rng.choice(300, size=rng.integers(0, 25), replace=False)
        cut = rng.integers(0, len(ids) + 1)
        # Interleaved ids: old and new movies of a user are not ordered blocks.
        tasks.append((sorted(ids[:cut].tolist()), sorted(ids[cut:].tolist())))
    a_ptr, a_items = _flatten([a for a, _ in tasks])
    b_ptr, b_items = _flatten([b for _, b in tasks])
    codes, counts = cross_pair_counts(a_ptr, a_items, b_ptr, b_items)
    got = dict(zip(zip(*(x.tolist() for x in decode_pairs(codes)), strict=True),
                   counts.tolist(), strict=True))
    assert got == dict(_reference_cross(tasks))
    assert np.all(np.diff(codes) > 0)
    chunked: Counter = Counter()
    for c, n in iter_cross_pair_counts(a_ptr, a_items, b_ptr, b_items, max_cells=50):
        chunked.update(dict(zip(c.tolist(), n.tolist(), strict=True)))
    assert chunked == Counter(dict(zip(codes.tolist(), counts.tolist(), strict=True)))


def test_cross_pair_counts_refuse_shared_movies():
    a_ptr, a_items = _flatten([[1, 5]])
    b_ptr, b_items = _flatten([[5, 9]])
    with pytest.raises(ValueError, match="share a movie"):
        cross_pair_counts(a_ptr, a_items, b_ptr, b_items)


# ------------------------------------------------------------------ Spark, ml-100k


def split_ml100k(out: Path, max_user: int | None) -> dict[str, Path]:
    """ml-100k (users <= max_user) as base + two appended files, and all in one file.

    Split by time; a few users appear only in the first appended file.
    """
    src = ml100k_folder()
    header, *lines = (src / "ml-100k.inter").read_text().splitlines()
    if max_user is not None:
        lines = [r for r in lines if int(r.split("\t")[0]) <= max_user]
    rows = sorted(lines, key=lambda s: (int(float(s.split("\t")[3])), s))
    newcomers = {str(u) for u in range(7, 944, 37)}  # all their ratings come later
    late = [r for r in rows if r.split("\t")[0] in newcomers]
    rest = [r for r in rows if r.split("\t")[0] not in newcomers]
    cut1, cut2 = int(len(rest) * 0.9), int(len(rest) * 0.95)
    parts = {"all": rows, "base": rest[:cut1], "append1": rest[cut1:cut2] + late,
             "append2": rest[cut2:]}
    folders = {}
    for name, part in parts.items():
        folder = out / name
        folder.mkdir()
        (folder / "ml-100k.inter").write_text("\n".join([header, *part]) + "\n")
        (folder / "ml-100k.item").write_bytes((src / "ml-100k.item").read_bytes())
        folders[name] = folder
    return folders


def _cfg(root: str, folder: Path, *extra: str, append: bool = False) -> config.Config:
    return config.load([], [f"warehouse.root={root}", "ingest.dataset=path",
                            f"ingest.path={folder}", f"ingest.append={str(append).lower()}",
                            *PAIRS, *extra])


def _last_pairs_notes(wh: Warehouse) -> tuple[dict, dict]:
    row = (wh.read("runs").where("stage = 'pairs'").orderBy("started_at", ascending=False)
           .first())
    assert row.status == "succeeded"
    return json.loads(row.notes), dict(row.rows)


@pytest.mark.parametrize("max_user", [
    250,  # a quarter of ml-100k: the suite's run
    pytest.param(None, marks=pytest.mark.slow),  # all of it, and edges downstream
])
def test_appended_ratings_update_pair_counts_like_a_full_recount(spark, tmp_path, max_user):
    """Base + two appends counted incrementally equal one full count; the second append
    is counted after ``maintain`` compacted and vacuumed the warehouse (the nightly DAG's
    order), which incremental pairs must survive."""
    split = split_ml100k(tmp_path, max_user)
    inc = Warehouse(spark, str(tmp_path / "incremental"))
    run_stage("ingest", spark, _cfg(inc.root, split["base"]), inc, "i0")
    run_stage("pairs", spark, _cfg(inc.root, split["base"]), inc, "p0")
    notes, _ = _last_pairs_notes(inc)
    assert notes["incremental"] == {"applied": False,
                                    "reason": "no earlier successful pairs run"}

    for step, name in enumerate(("append1", "append2"), start=1):
        cfg = _cfg(inc.root, split[name], append=True)
        before = inc.version("ratings")
        run_stage("ingest", spark, cfg, inc, f"i{step}")
        upkeep = step == 2
        if upkeep:
            # Nightly upkeep between the second append and its pairs run: ratings and the
            # counts are compacted, and VACUUM keeps only what the runs table still names.
            with record_stage(inc, "maintain", "m", f"m{step}") as run:
                summary = run_maintain(spark, inc, MaintainConfig(
                    retain_hours=0, clock_slack_seconds=60, min_files=2), run)
            assert "ratings: " in summary and "(compaction)" in summary
        assert run_stage("pairs", spark, cfg, inc, f"p{step}") is True
        notes, rows = _last_pairs_notes(inc)
        appended = len((split[name] / "ml-100k.inter").read_text().splitlines()) - 1
        assert notes["incremental"]["applied"] is True, notes["incremental"]
        if upkeep:  # compaction commits a version of the same rows after the append
            assert notes["incremental"]["from_version"] >= before
        else:
            assert notes["incremental"]["from_version"] == before
            assert rows["ratings_read"] == appended  # the new rows only, not the table
        assert notes["incremental"]["to_version"] == inc.version("ratings")
        assert rows["old_ratings_read"] > 0

    full = Warehouse(spark, str(tmp_path / "full"))
    run_stage("ingest", spark, _cfg(full.root, split["all"]), full, "f0")
    run_stage("pairs", spark, _cfg(full.root, split["all"]), full, "f1")
    assert_same_tables(inc.root, full.root, ("ratings", "item_counts", "pair_counts"))
    assert delta_table(full.root, "pair_counts").num_rows > (100_000 if max_user else 400_000)

    if max_user is not None:
        return
    # Downstream: edges reruns on the merged counts and equals edges of the full count.
    edges_cfg = _cfg(inc.root, split["all"], "edges.min_weight=5")
    assert run_stage("edges", spark, edges_cfg, inc, "e1") is True
    assert run_stage("edges", spark, _cfg(full.root, split["all"], "edges.min_weight=5"),
                     full, "e2") is True
    assert_same_tables(inc.root, full.root, ("edges", "vertices"))


def test_only_plain_appends_count_as_added_ratings(spark, warehouse):
    df = spark.createDataFrame([(1, 2, 4.0, 10), (1, 3, 5.0, 11)],
                               "user_id int, movie_id int, rating float, ts long")
    warehouse.write("ratings", df)
    warehouse.write("ratings", df.limit(1), mode="append")
    warehouse.write("ratings", df, mode="append")
    added = warehouse.appended_files("ratings", 0, 2)
    assert (added.rows, added.reason) == (3, "") and len(added.files) >= 2
    assert all(Path(f).is_file() for f in added.files)
    assert sorted(warehouse.read_files("ratings", added.files).collect()) == sorted(
        df.limit(1).collect() + df.collect())
    assert warehouse.appended_files("ratings", 1, 2).rows == 2
    warehouse.write("ratings", df)  # v3: an overwrite
    added = warehouse.appended_files("ratings", 0, 3)
    assert (added.files, added.rows) == ([], 0)
    assert "ratings v3 is a WRITE (Overwrite" in added.reason
    (Path(warehouse.path("ratings")) / "_delta_log" / f"{1:020d}.json").unlink()  # log gone
    reason = warehouse.appended_files("ratings", 0, 2).reason
    assert "history of ratings v" in reason, reason


@pytest.fixture(scope="module")
def appended_warehouse(spark, tmp_path_factory) -> Warehouse:
    """ratings v0 counted by a recorded pairs run (table writes only), then v1 appended."""
    from moviegraph.runs import record_stage

    wh = Warehouse(spark, str(tmp_path_factory.mktemp("appended") / "wh"))
    schema = "user_id int, movie_id int, rating float, ts long"
    wh.write("ratings", spark.createDataFrame([(1, 1, 4.0, 1), (1, 2, 5.0, 2)], schema))
    with record_stage(wh, "pairs", _cfg(wh.root, Path("unused")).section_hash("pairs"),
                      "p0") as run:
        run.inputs["ratings"] = 0
        run.outputs["item_counts"] = wh.write(
            "item_counts", spark.createDataFrame([(1, 1), (2, 1)], "movie_id int, n long"))
        run.outputs["pair_counts"] = wh.write(
            "pair_counts", spark.createDataFrame([(1, 2, 1)], "movie_a int, movie_b int, n long"))
        run.rows["pairs_counted"] = 1
    wh.write("ratings", spark.createDataFrame([(9, 1, 4.5, 3), (9, 2, 4.0, 4)], schema),
             mode="append")
    return wh


@pytest.mark.parametrize(("extra", "reason"), [
    (["pairs.ratings=ranking_train"], "pairs.ratings = ranking_train"),
    (["pairs.max_items_per_user=50"], "max_items_per_user = 50"),
    (["pairs.incremental=false"], "pairs.incremental = false"),
    (["pairs.min_rating=3"], "the pairs config changed"),
])
def test_incremental_is_refused_when_it_would_not_equal_a_recount(spark, appended_warehouse,
                                                                  extra, reason):
    from moviegraph.graph.incremental import plan_incremental

    wh = appended_warehouse
    base = _cfg(wh.root, Path("unused"))
    ok = plan_incremental(wh, base.pairs, base.section_hash("pairs"), wh.version("ratings"))
    assert ok.applies, ok.reason
    assert (ok.from_version, ok.to_version, ok.added_rows) == (0, 1, 2)
    assert len(ok.files) >= 1 and all(Path(f).is_file() for f in ok.files)
    cfg = _cfg(wh.root, Path("unused"), *extra)
    refused = plan_incremental(wh, cfg.pairs, cfg.section_hash("pairs"), wh.version("ratings"))
    assert not refused.applies and reason in refused.reason
    assert refused.files == []
