"""The evaluate stage on MovieLens 100K: metrics rows, a plain MostPop recomputation, the
HTML report, and the report rendered by headless Chromium.

One small pipeline for the module (ingest -> pairs -> edges -> walks -> train -> evaluate,
through ``run_stage`` so the stage wiring is exercised), small models and few walks, on
the ratings of ML-100K's users 1..500 (the whole catalogue): every check below recomputes
from those same files, and half the users halve the pipeline's work.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from moviegraph import config
from moviegraph.runs import new_run_id
from tests.unit.test_report import png_size, render_in_chromium

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

MODELS = ("node2vec", "cbow", "mf", "softmax", "edlae")
BASELINES = ("mostpop", "itemknn", "cocount", "ease", "gensim", "biases", "random")


#: Users kept from ML-100K (ids 1..USERS).
USERS = 500


@pytest.fixture(scope="module")
def ml100k_part(ml100k_dir, tmp_path_factory):
    """A RecBole-format folder with ML-100K's catalogue and the ratings of users 1..USERS,
    lines in their original order."""
    folder = tmp_path_factory.mktemp("ml100k-part")
    lines = (ml100k_dir / "ml-100k.inter").read_text().splitlines(keepends=True)
    kept = [line for line in lines[1:] if int(line.split("\t", 1)[0]) <= USERS]
    (folder / "ml-100k.inter").write_text(lines[0] + "".join(kept))
    (folder / "ml-100k.item").write_bytes((ml100k_dir / "ml-100k.item").read_bytes())
    return folder


@pytest.fixture(scope="module")
def evaluated(spark, ml100k_part, tmp_path_factory):
    """A warehouse after the whole pipeline, the evaluate run id and its config."""
    from moviegraph.pipeline import run_stage
    from moviegraph.tables import Warehouse

    tmp = tmp_path_factory.mktemp("evaluate")
    wh = Warehouse(spark, str(tmp / "warehouse"))
    cfg = config.load([], [
        f"warehouse.root={wh.root}", "ingest.dataset=path", f"ingest.path={ml100k_part}",
        "spark.progress=false", "walks.num_walks=3", "walks.walk_length=20",
        "train.models=node2vec,cbow,mf,softmax,edlae", f"train.checkpoint_dir={tmp / 'ckpt'}",
        "train.threads=1", "train.node2vec.dim=16", "train.node2vec.epochs=2",
        "train.cbow.dim=8", "train.cbow.epochs=2", "train.cbow.loss=negative",
        "train.mf.method=adam",  # a few quick epochs, not Gibbs sweeps
        "train.mf.adam.dim=16", "train.mf.adam.epochs=3", "train.mf.biases=append",
        "train.softmax.dim=8", "train.softmax.epochs=2", "train.edlae.dim=16",
        "evaluate.baselines=" + ",".join(BASELINES),  # gensim too, off by default
        "evaluate.ease_lambdas=50,200", "evaluate.fidelity_pq=0.25:4",
        "evaluate.tsne_max_movies=300", "evaluate.tsne_max_iter=500",
        f"evaluate.report_dir={(tmp / 'reports').as_uri()}",  # outputs are URIs
    ])
    run_id = new_run_id()
    for stage in ("ingest", "pairs", "edges", "walks", "train", "similar", "evaluate"):
        assert run_stage(stage, spark, cfg, wh, run_id, force=True)
    return wh, run_id, cfg, tmp / "reports"


def _metrics(wh, run_id) -> dict[tuple[str, str], float]:
    rows = wh.read("metrics").where(f"run_id = '{run_id}'").collect()
    return {(r["model"], r["name"]): r["value"] for r in rows}


def test_metrics_rows_for_every_model_and_baseline(evaluated):
    wh, run_id, cfg, _ = evaluated
    m = _metrics(wh, run_id)
    models = {k[0] for k in m}
    for model in MODELS:
        assert model in models
        # Scored from the tables: recommendations, and the shipped lists.
        assert 0 <= m[(model, "recall@20:shipped")] <= 1
        assert 0 <= m[(model, "ndcg@20:shipped")] <= 1
        assert 0 < m[(model, "neighbour_hr@20")] <= 1
        assert 0 < m[(model, "neighbour_recall@20")] <= m[(model, "neighbour_hr@20")]
        assert 0 < m[(model, "genre_p@10")] <= 1
        assert m[(model, "list_coverage")] > 0.5
        # No scorer of evaluate's own any more (user towers, tuned priors, summed cosine).
        assert not {n for mm, n in m if mm == model} & {
            "recall@20:cosine", "recall@20:own", "recall@20:prior", "recall@20:dot",
            "prior_beta"}
    # node2vec: every train movie has a vector (fold-in) and so a list.
    assert m[("node2vec", "list_coverage")] == 1.0
    for b in ("itemknn", "cocount", "random"):
        assert 0 < m[(f"baseline:{b}", "neighbour_hr@20")] <= 1
        assert 0 < m[(f"baseline:{b}", "genre_p@10")] <= 1
    assert m[("baseline:random", "genre_p@10")] < 0.6  # the reference for genre precision
    assert m[("baseline:itemknn", "neighbour_hr@20")] > m[("baseline:random", "neighbour_hr@20")]
    for b in ("mostpop", "itemknn", "ease"):
        assert 0 < m[(f"baseline:{b}", "recall@20:model")] <= 1
    if _has_gensim():
        assert 0 <= m[("baseline:gensim", "recall@20:cosine")] <= 1
    assert m[("baseline:ease", "lambda")] in (50.0, 200.0)
    # RMSE: mf (biases appended) beats the global mean; the biases baseline too.
    gm, biases, mf = (m[("baseline:global_mean", "rmse")], m[("baseline:biases", "rmse")],
                      m[("mf", "rmse")])
    assert 0.8 < biases < gm < 1.3 and mf < gm
    # mf's RMSE recomputed from the vectors equals the train stage's own test RMSE.
    import json

    notes = json.loads(wh.read("runs").where(f"run_id = '{run_id}' AND stage = 'train'")
                       .first()["notes"])
    assert mf == pytest.approx(notes["models"]["mf"]["test_rmse"], abs=1e-4)
    # Walk fidelity for the configured (walks.p, walks.q) and the extra (0.25, 4).
    configured = f"[p={cfg.walks.p:g},q={cfg.walks.q:g}]"
    for tag in (configured, "[p=0.25,q=4]"):
        assert m[("walks", f"dof{tag}")] > 100
        assert m[("walks", f"p_value{tag}")] > 1e-4
    assert all(math.isfinite(v) for v in m.values())
    # Ranking models evaluated on the same users.
    users = {v for (model, name), v in m.items() if name == "users@20"}
    assert len(users) == 1


def _has_gensim() -> bool:
    try:
        import gensim  # noqa: F401
    except ImportError:
        return False
    return True


def test_mostpop_recall_matches_a_plain_recomputation(evaluated, ml100k_part):
    wh, run_id, _, _ = evaluated
    r = pd.read_csv(ml100k_part / "ml-100k.inter", sep="\t")
    r.columns = ["user_id", "movie_id", "rating", "ts"]
    assert r.user_id.nunique() == USERS
    catalogue = sorted(pd.read_csv(ml100k_part / "ml-100k.item", sep="\t").iloc[:, 0])
    r = r.sort_values(["user_id", "ts", "movie_id"])
    from_end = r.groupby("user_id").cumcount(ascending=False)
    n = r.groupby("user_id")["movie_id"].transform("size")
    is_test = from_end < np.maximum(1, n // 5)
    train, test = r[~is_test], r[is_test]
    pop = train.groupby("movie_id").size()
    # All movies, most popular first, ties by lower movie id.
    ranked = sorted(catalogue, key=lambda mid: (-pop.get(mid, 0), mid))
    seen = train.groupby("user_id")["movie_id"].apply(set)
    recalls = []
    for user, rows in test.groupby("user_id"):
        relevant = set(rows.movie_id[rows.rating >= 4])
        if not relevant:
            continue
        known = seen.get(user, set())
        top = [mid for mid in ranked if mid not in known][:20]
        recalls.append(len(relevant & set(top)) / len(relevant))
    m = _metrics(wh, run_id)
    assert m[("baseline:mostpop", "recall@20:model")] == pytest.approx(np.mean(recalls),
                                                                        abs=1e-9)
    assert m[("baseline:mostpop", "users@20")] == len(recalls)


def _pandas_split(folder):
    """Train / test of the ranking split and each user's query movie, in pandas."""
    r = pd.read_csv(folder / "ml-100k.inter", sep="\t")
    r.columns = ["user_id", "movie_id", "rating", "ts"]
    r = r.sort_values(["user_id", "ts", "movie_id"])
    from_end = r.groupby("user_id").cumcount(ascending=False)
    n = r.groupby("user_id")["movie_id"].transform("size")
    is_test = from_end < np.maximum(1, n // 5)
    train, test = r[~is_test], r[is_test]
    liked = train[train.rating >= 4]
    query = liked.groupby("user_id")["movie_id"].last()  # sorted by (ts, movie id)
    relevant = test[test.rating >= 4].groupby("user_id")["movie_id"].apply(set)
    seen = train.groupby("user_id")["movie_id"].apply(set)
    return query, relevant, seen


def test_table_scores_equal_a_pandas_recomputation(evaluated, ml100k_part):
    """The evaluate stage's neighbour HR@20 / Recall@20 of each model's similar_movies and
    Recall@20 of its recommendations equal a plain pandas recomputation from the tables."""
    wh, run_id, _, _ = evaluated
    query, relevant, seen = _pandas_split(ml100k_part)
    sims = wh.read("similar_movies").toPandas()
    recs = wh.read("recommendations").toPandas()
    m = _metrics(wh, run_id)
    for model in MODELS:
        mine = sims[sims.model == model]
        assert mine.metric.nunique() == 1  # similar.metric = model: the shipped metric only
        lists = (mine[mine["rank"] <= 20].sort_values(["movie_id", "rank"])
                 .groupby("movie_id")["neighbor_id"].apply(list))
        hits, recalls = [], []
        for user, rel in relevant.items():
            q = query.get(user)
            answer = [x for x in lists.get(q, []) if x not in seen.get(user, set())]
            h = len(rel & set(answer))
            hits.append(h > 0)
            recalls.append(h / min(20, len(rel)))
        assert m[(model, "neighbour_hr@20")] == pytest.approx(np.mean(hits), abs=1e-12)
        assert m[(model, "neighbour_recall@20")] == pytest.approx(np.mean(recalls), abs=1e-12)
        top = (recs[(recs.model == model) & (recs["rank"] <= 20)]
               .groupby("user_id")["movie_id"].apply(set))
        rec_recall = [len(rel & top.get(user, set())) / len(rel)
                      for user, rel in relevant.items()]
        assert m[(model, "recall@20:shipped")] == pytest.approx(np.mean(rec_recall), abs=1e-12)
        assert m[(model, "users@20")] == len(relevant)


def test_rerun_replaces_the_rows_of_its_run_only(spark, evaluated):
    from moviegraph.stages.evaluate import write_metrics

    wh, run_id, _, _ = evaluated
    before = wh.read("metrics").where(f"run_id = '{run_id}'").count()
    write_metrics(spark, wh, "other-run", [("x", "y", 1.0)])
    write_metrics(spark, wh, "other-run", [("x", "y", 2.0), ("x", "z", 3.0)])
    assert wh.read("metrics").where(f"run_id = '{run_id}'").count() == before
    other = {(r.name, r.value) for r in wh.read("metrics").where("run_id = 'other-run'")
             .collect()}
    assert other == {("y", 2.0), ("z", 3.0)}


def test_report_file_has_sections_and_no_external_resources(evaluated):
    _, run_id, _, reports = evaluated
    path = reports / f"{run_id}.html"
    text = path.read_text()
    assert (reports / "latest.html").read_text() == text
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", text)
    for section in ("metrics", "fidelity", "graph", "training", "neighbours", "norms", "map"):
        assert f'id="{section}"' in text
    assert "<th>Star Wars</th>" in text and "<th>Toy Story</th>" in text  # queries found
    assert 'id="chart-tsne"' in text and 'id="chart-degree"' in text
    # Every model: a loss curve and a norm scatter.
    # A loss curve per model trained by epochs; edlae (closed form) gets a line of text.
    assert len(re.findall(r'id="chart-loss-\d+"', text)) == len(MODELS) - 1
    assert "No loss curve (fitted in closed form): edlae" in text
    assert len(re.findall(r'id="chart-norm-\d+"', text)) == len(MODELS)
    # Models in the train stage's order (the default model first), baselines after: in
    # the metrics table and in the query movies' neighbour tables.
    table = text[text.index('id="model-table"'):]
    body = table[table.index("<tbody>"):table.index("</tbody>")]
    rows = re.findall(r"<tr><th>([^<]+)</th>", body)
    assert rows[:len(MODELS)] == list(MODELS)
    assert all(r.startswith("baseline:") for r in rows[len(MODELS):])
    section = text[text.index('id="neighbours"'):]
    assert re.findall(r"<h3>([^<]+)</h3>", section)[:len(MODELS)] == list(MODELS)


def test_report_renders_in_headless_chromium(evaluated, tmp_path):
    _, run_id, _, reports = evaluated
    html_path = reports / f"{run_id}.html"
    dom, shot = render_in_chromium(html_path, tmp_path)
    expected = len(re.findall(r'<svg class="chart"', html_path.read_text()))
    assert expected >= 1 + 2 * len(MODELS)  # degree, loss (not edlae) + norm per model, map
    body = re.search(r"<body([^>]*)>", dom).group(1)
    rendered = int(re.search(r'data-charts-rendered="(\d+)"', body).group(1))
    assert int(re.search(r'data-charts-expected="(\d+)"', body).group(1)) == expected
    assert rendered == expected
    assert int(re.search(r'data-chart-marks="(\d+)"', body).group(1)) > 1000
    assert dom.count('data-rendered="true"') == expected
    assert png_size(shot) == (1280, 4000)
    # Non-trivial: a page of charts compresses far worse than a blank page of the same size.
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    _, blank_shot = render_in_chromium(blank, tmp_path, "blank")
    assert png_size(blank_shot) == (1280, 4000)
    assert shot.stat().st_size > 10 * blank_shot.stat().st_size


#: Modules whose functions rank movies for a model (None: every public function and
#: class), or read what is ranked.
SCORING_MODULES = {"moviegraph.similarity.topk": None, "moviegraph.similarity.joins": None,
                   "moviegraph.train.shipped": None, "moviegraph.train.scorers": None,
                   "moviegraph.train.tower": None,
                   "moviegraph.protocol.metrics": ("item_embedding_scores", "ranking_metrics",
                                                   "top_k", "profile_weights",
                                                   "EmbeddingScorer")}


def _spy(monkeypatch, calls: set[str]) -> None:
    """Record every call into SCORING_MODULES' functions and classes' methods, wherever a
    module imported them (``from x import f`` copies the name)."""
    import functools
    import importlib
    import inspect
    import sys

    def wrap(name, fn):
        @functools.wraps(fn)
        def spy(*args, **kwargs):
            calls.add(name)
            return fn(*args, **kwargs)
        return spy

    loaded = [mod for key, mod in list(sys.modules.items())
              if key.startswith("moviegraph") and mod is not None]
    for mod_name, names in SCORING_MODULES.items():
        mod = importlib.import_module(mod_name)
        for attr, obj in list(vars(mod).items()):
            if getattr(obj, "__module__", None) != mod_name or attr.startswith("_"):
                continue
            if names is not None and attr not in names:
                continue
            if inspect.isclass(obj):
                for meth in ("__init__", "__call__", "search"):
                    if meth in vars(obj):
                        monkeypatch.setattr(obj, meth, wrap(f"{attr}.{meth}",
                                                            vars(obj)[meth]))
            elif inspect.isfunction(obj):
                spy = wrap(attr, obj)
                for other in loaded:
                    if getattr(other, attr, None) is obj:
                        monkeypatch.setattr(other, attr, spy)


def test_neighbours_job_prints_the_rows_of_similar_movies(evaluated, capsys):
    """`neighbours "Star Wars"` (through the pipeline's run_stage, as the command line runs
    it) prints node2vec's top rows of similar_movies for movie 50, as Spark reads them; a
    title that matches nothing is a one-line InputError naming it."""
    from dataclasses import replace

    from moviegraph.errors import InputError
    from moviegraph.pipeline import run_stage

    wh, _, cfg, _ = evaluated
    ask = replace(cfg, neighbours=replace(cfg.neighbours, movie="star wars", k=7))
    capsys.readouterr()
    assert run_stage("neighbours", wh.spark, ask, wh, new_run_id(), force=True)
    out = capsys.readouterr().out
    assert re.search(r"^\[stage\] neighbours done in [\d.]+s$", out, re.M), out
    expected = (wh.read("similar_movies")
                .where("model = 'node2vec' AND metric = 'cosine' AND movie_id = 50")
                .orderBy("rank").limit(7).collect())
    assert len(expected) == 7
    printed = re.findall(r"^\s+(\d+)\.\s+(\d+) .* \(([-\d.]+)\)$", out, re.M)
    assert [(int(r), int(n)) for r, n, _ in printed] == [(r["rank"], r["neighbor_id"])
                                                          for r in expected]
    assert [float(v) for _, _, v in printed] == pytest.approx(
        [r["score"] for r in expected], abs=5e-4)
    assert "neighbours of 50 Star Wars (node2vec, cosine; similar_movies):" in out
    nothing = replace(cfg, neighbours=replace(cfg.neighbours, movie="qqqqzzzz xxxx"))
    with pytest.raises(InputError, match="no movie matches 'qqqqzzzz xxxx'"):
        run_stage("neighbours", wh.spark, nothing, wh, new_run_id(), force=True)


def test_evaluate_calls_no_scorer_that_similar_does_not_use(evaluated, monkeypatch):
    """Spy on every ranking function: what evaluate calls (models, no baselines) is a
    subset of what similar calls on the driver, and none of it scores a model. (Runs
    last: its evaluate run writes the report's latest.html.)"""
    from dataclasses import replace

    from moviegraph.runs import StageRun
    from moviegraph.stages.evaluate import run_evaluate
    from moviegraph.stages.similar import run_similar

    wh, _, cfg, _ = evaluated
    # No baselines: they are rankers of their own, not a model's.
    cfg = replace(cfg, evaluate=replace(cfg.evaluate, baselines=[], fidelity_pq=[]))
    by_similar: set[str] = set()
    by_evaluate: set[str] = set()
    with monkeypatch.context() as mp:
        _spy(mp, by_similar)
        run_similar(wh.spark, cfg, wh, StageRun(stage="similar", run_id="spy-s",
                                                config_hash="x"))
    with monkeypatch.context() as mp:
        _spy(mp, by_evaluate)
        run_evaluate(wh.spark, cfg, wh, StageRun(stage="evaluate", run_id="spy-e",
                                                 config_hash="x"))
    assert by_similar >= {"select_runs", "vectors_of", "similar_movies", "recommendations"}
    assert by_evaluate <= by_similar, by_evaluate - by_similar
    scorers = {"similar_movies", "recommendations", "Searcher.search", "profile_queries",
               "item_embedding_scores", "ranking_metrics", "PopularityScorer.__call__",
               "tower_scores", "fit_timed_tower", "train_tower", "own_scorer",
               "EmbeddingScorer.__call__", "top_k"}
    assert not by_evaluate & scorers
