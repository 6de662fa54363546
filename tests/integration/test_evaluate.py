"""The evaluate stage on MovieLens 100K: metrics rows, a plain MostPop recomputation, the
HTML report, and the report rendered by headless Chromium.

One small pipeline for the module (ingest -> pairs -> edges -> walks -> train -> evaluate,
through ``run_stage`` so the stage wiring is exercised), small models and few walks.
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
BASELINES = ("mostpop", "itemknn", "ease", "gensim", "biases", "random")


@pytest.fixture(scope="module")
def evaluated(spark, ml100k_dir, tmp_path_factory):
    """A warehouse after the whole pipeline, the evaluate run id and its config."""
    from moviegraph.pipeline import run_stage
    from moviegraph.tables import Warehouse

    tmp = tmp_path_factory.mktemp("evaluate")
    wh = Warehouse(spark, str(tmp / "warehouse"))
    cfg = config.load([], [
        f"warehouse.root={wh.root}", "ingest.dataset=path", f"ingest.path={ml100k_dir}",
        "spark.progress=false", "walks.num_walks=3", "walks.walk_length=20",
        "train.models=node2vec,cbow,mf,softmax,edlae", f"train.checkpoint_dir={tmp / 'ckpt'}",
        "train.threads=1", "train.node2vec.dim=16", "train.node2vec.epochs=2",
        "train.cbow.dim=8", "train.cbow.epochs=2", "train.cbow.loss=negative",
        "train.mf.method=adam",  # a few quick epochs, not Gibbs sweeps
        "train.mf.adam.dim=16", "train.mf.adam.epochs=3", "train.mf.biases=append",
        "train.softmax.dim=8", "train.softmax.epochs=2", "train.edlae.dim=16",
        "evaluate.own_scorers=false",  # the user towers take minutes: prior scorer here
        "evaluate.ease_lambdas=50,200", "evaluate.fidelity_pq=0.25:4",
        "evaluate.tsne_max_movies=300", "evaluate.tsne_max_iter=500",
        f"evaluate.report_dir={(tmp / 'reports').as_uri()}",  # outputs are URIs
    ])
    run_id = new_run_id()
    for stage in ("ingest", "pairs", "edges", "walks", "train", "evaluate"):
        assert run_stage(stage, spark, cfg, wh, run_id, force=True)
    return wh, run_id, cfg, tmp / "reports"


def _metrics(wh, run_id) -> dict[tuple[str, str], float]:
    rows = wh.read("metrics").where(f"run_id = '{run_id}'").collect()
    return {(r["model"], r["name"]): r["value"] for r in rows}


def test_metrics_rows_for_every_model_and_baseline(evaluated):
    wh, run_id, _, _ = evaluated
    m = _metrics(wh, run_id)
    models = {k[0] for k in m}
    for model in MODELS:
        assert model in models
        assert 0 <= m[(model, "recall@20:cosine")] <= 1
        assert 0 <= m[(model, "ndcg@20:cosine")] <= 1
        assert 0 < m[(model, "genre_p@10")] <= 1
        assert 0 < m[(model, "genre_p@10:random")] < 0.6
    for model in ("mf", "softmax", "edlae"):  # user vectors: dot product
        assert 0 <= m[(model, "recall@20:dot")] <= 1
    for model in ("node2vec", "cbow"):  # own scorers off: the tuned popularity prior
        assert 0 <= m[(model, "recall@20:prior")] <= 1
        assert m[(model, "prior_beta")] >= 0
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
    # Walk fidelity for the configured (1, 1) and the extra (0.25, 4).
    for tag in ("[p=1,q=1]", "[p=0.25,q=4]"):
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


def test_mostpop_recall_matches_a_plain_recomputation(evaluated, ml100k_dir):
    wh, run_id, _, _ = evaluated
    r = pd.read_csv(ml100k_dir / "ml-100k.inter", sep="\t")
    r.columns = ["user_id", "movie_id", "rating", "ts"]
    catalogue = sorted(pd.read_csv(ml100k_dir / "ml-100k.item", sep="\t").iloc[:, 0])
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
