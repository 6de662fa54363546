"""One self-contained HTML report per evaluate run: tables, inline SVG charts, no fetches.

:func:`render_report` turns a :class:`ReportData` (plain numbers and arrays) into HTML;
:func:`write_report` writes ``<dir>/<run_id>.html`` and ``<dir>/latest.html`` atomically.
Nothing is loaded from elsewhere: CSS and a tiny script are inline, and the script, once
the page has laid out, counts the charts that rendered (non-zero size, at least one
mark) into ``document.body.dataset.chartsRendered`` (and ``chartMarks``,
``chartsExpected``), which a headless browser test reads back from the DOM.
"""

from __future__ import annotations

import html
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moviegraph import fs
from moviegraph.evaluate import report_charts as ch
from moviegraph.evaluate.report_data import GraphStats, NeighbourList
from moviegraph.fs import Storage


@dataclass
class ModelCurves:
    """Per-epoch training record of one model: epochs, losses, extra metrics by name."""

    epochs: list[int]
    train_loss: list[float]
    metrics: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class NormPoints:
    """Embedding norm vs popularity of one model's movies."""

    popularity: np.ndarray
    norm: np.ndarray
    titles: list[str]


@dataclass
class MapPoints:
    """2-D map of movies: coordinates, genre index per movie (-1 none), genre names."""

    model: str
    xy: np.ndarray
    genre: np.ndarray
    genre_names: list[str]
    titles: list[str]


@dataclass
class ReportData:
    """Everything the report shows (see :mod:`moviegraph.evaluate.report_data`)."""

    run_id: str
    created: str
    metrics: list[tuple[str, str, float]]
    models: dict[str, str] = field(default_factory=dict)  # model -> embeddings run id
    notes: dict[str, str] = field(default_factory=dict)  # short remarks, shown as a list
    settings: dict[str, object] = field(default_factory=dict)
    graph: GraphStats | None = None
    curves: dict[str, ModelCurves] = field(default_factory=dict)
    neighbours: list[NeighbourList] = field(default_factory=list)
    norms: dict[str, NormPoints] = field(default_factory=dict)
    tsne: MapPoints | None = None


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1320px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;
margin-top:32px}h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px}
th{background:#f4f4f4;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:16px}
svg.chart{background:#fff;border:1px solid #e4e4e4;font-size:11px;max-width:100%;
height:auto}svg .title{font-size:13px;font-weight:600}svg .axis{stroke:#555}
svg .grid{stroke:#eee}.muted{color:#777}.legend span{display:inline-block;margin:2px 10px 2px 0}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}
table.neighbours{font-size:12.5px}table.neighbours td{max-width:560px}
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var charts = document.querySelectorAll('svg.chart'), ok = 0, marks = 0;
  charts.forEach(function (svg) {
    var box = svg.getBoundingClientRect(), n = svg.querySelectorAll('.mark').length;
    if (box.width > 0 && box.height > 0 && n > 0) {
      ok += 1; marks += n; svg.setAttribute('data-rendered', 'true');
    }
  });
  document.body.dataset.chartsExpected = String(charts.length);
  document.body.dataset.chartsRendered = String(ok);
  document.body.dataset.chartMarks = String(marks);
});
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if float(v).is_integer() and abs(v) >= 1:
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.1f}"
    return f"{v:.4f}"


def _ordered_models(rows: Sequence[tuple[str, str, float]], models_first: Sequence[str]
                    ) -> list[str]:
    models = list(dict.fromkeys(r[0] for r in rows))
    models.sort(key=lambda m: (m.startswith("baseline:"),
                               models_first.index(m) if m in models_first else 99))
    return models


#: Columns of the per-model table (metric name -> header), after the ranking table.
_MODEL_COLUMNS = {"rmse": "RMSE (rating split)",
                  "neighbour_hr@20": "neighbour HR@20 (similar_movies)",
                  "neighbour_recall@20": "neighbour Recall@20",
                  "genre_p@10": "genre P@10 of the lists", "list_coverage":
                  "train movies with a list", "genre_p@10:random":
                  "genre P@10, random vectors", "movies": "movies with a vector",
                  "prior_beta": "prior beta", "lambda": "EASE lambda"}


def metrics_table(rows: Sequence[tuple[str, str, float]], models_first: Sequence[str] = ()
                  ) -> str:
    """Two tables: ranking (model, scorer) x Recall/NDCG; then RMSE, genre precision, etc.

    The project's models come first (in ``models_first`` order), baselines after.
    """
    rows = [r for r in rows if r[0] != "walks"]
    value = {(m, n): v for m, n, v in rows}
    models = _ordered_models(rows, models_first)
    ks = sorted({n.split(":")[0][len("recall@"):] for _, n, _ in rows
                 if n.startswith("recall@")}, key=int)
    ranking = []
    for m in models:
        scorers = list(dict.fromkeys(n.split(":", 1)[1] for mm, n, _ in rows
                                     if mm == m and n.startswith("recall@") and ":" in n))
        for s in scorers:
            cells = "".join(
                f'<td class="n">{_num(value.get((m, f"{kind}@{k}:{s}"), math.nan))}</td>'
                for k in ks for kind in ("recall", "ndcg"))
            users = _num(value.get((m, f"users@{ks[0]}"), math.nan)) if ks else ""
            ranking.append(f"<tr><th>{_esc(m)}</th><td>{_esc(s)}</td>{cells}"
                           f'<td class="n">{users}</td></tr>')
    head = "".join(f"<th>Recall@{k}</th><th>NDCG@{k}</th>" for k in ks)
    out = (f'<table id="metrics-table"><thead><tr><th>model</th><th>scorer</th>{head}'
           f"<th>users</th></tr></thead><tbody>{''.join(ranking)}</tbody></table>")
    cols = [c for c in _MODEL_COLUMNS if any(n == c for _, n, _ in rows)]
    other = []
    for m in models:
        if not any((m, c) in value for c in cols):
            continue
        cells = "".join(f'<td class="n">{_num(value[(m, c)]) if (m, c) in value else ""}</td>'
                        for c in cols)
        other.append(f"<tr><th>{_esc(m)}</th>{cells}</tr>")
    if other:
        head = "".join(f"<th>{_esc(_MODEL_COLUMNS[c])}</th>" for c in cols)
        out += (f'<table id="model-table"><thead><tr><th>model</th>{head}</tr></thead>'
                f"<tbody>{''.join(other)}</tbody></table>")
    return out


def _fidelity_table(rows: Sequence[tuple[str, str, float]]) -> str:
    walk = [(n, v) for m, n, v in rows if m == "walks"]
    if not walk:
        return '<p class="muted">No walk-fidelity check in this run.</p>'
    settings = list(dict.fromkeys(n[n.index("["):] for n, _ in walk if "[" in n))
    value = dict(walk)
    body = "".join(
        f"<tr><td>{_esc(s)}</td><td class='n'>{_num(value.get('chi2' + s, math.nan))}</td>"
        f"<td class='n'>{_num(value.get('dof' + s, math.nan))}</td>"
        f"<td class='n'>{value.get('p_value' + s, math.nan):.3g}</td></tr>" for s in settings)
    return ("<table id='fidelity-table'><thead><tr><th>(p, q)</th><th>chi-square</th>"
            f"<th>dof</th><th>p-value</th></tr></thead><tbody>{body}</tbody></table>")


def _graph_section(g: GraphStats | None) -> str:
    if g is None:
        return '<p class="muted">No graph tables (vertices, edges) in the warehouse.</p>'
    table = ("<table id='graph-table'><tbody>"
             f"<tr><th>vertices</th><td class='n'>{g.vertices:,}</td></tr>"
             f"<tr><th>edges</th><td class='n'>{g.edges:,}</td></tr>"
             f"<tr><th>mean degree</th><td class='n'>{g.mean_degree:.2f}</td></tr>"
             f"<tr><th>components</th><td class='n'>{g.components:,}</td></tr>"
             f"<tr><th>largest component</th><td class='n'>{g.largest_component_share:.1%}"
             "</td></tr></tbody></table>")
    chart = ""
    if g.degree_counts:
        chart = ch.bar_chart("chart-degree", g.degree_bins, g.degree_counts,
                             "Degree histogram (log2 bins)", "degree", "movies")
    return f'<div class="charts"><div>{table}</div>{chart}</div>'


def _is_quality_metric(name: str) -> bool:
    return any(w in name for w in ("loss", "rmse", "recall", "ndcg", "val", "acc"))


def _curves_section(curves: dict[str, ModelCurves]) -> str:
    if not curves:
        return '<p class="muted">No training history for these runs.</p>'
    charts, closed_form = [], []
    for j, (model, c) in enumerate(curves.items()):
        if not np.isfinite(np.asarray(c.train_loss, dtype=np.float64)).any():
            closed_form.append(model)  # fitted in closed form (edlae): no loss curve
            continue
        series = {"train loss": (np.asarray(c.epochs) + 1, np.asarray(c.train_loss))}
        charts.append(ch.line_chart(f"chart-loss-{j}", series, f"{model}: training loss",
                                    "epoch", "loss"))
        # Quality metrics only (validation loss / RMSE ...), not throughput counters.
        extra = {k: (np.asarray(c.epochs[-len(v):]) + 1, np.asarray(v))
                 for k, v in c.metrics.items() if v and _is_quality_metric(k)}
        if extra:
            charts.append(ch.line_chart(f"chart-val-{j}", extra, f"{model}: epoch metrics",
                                        "epoch", "value"))
    note = (f'<p class="muted">No loss curve (fitted in closed form): '
            f'{html.escape(", ".join(closed_form))}.</p>' if closed_form else "")
    return f'<div class="charts">{"".join(charts)}</div>{note}'


def _neighbour_section(lists: Sequence[NeighbourList]) -> str:
    if not lists:
        return '<p class="muted">None of the query movies is in the catalogue.</p>'
    parts = []
    for model in dict.fromkeys(n.model for n in lists):
        by_query: dict[str, dict[str, NeighbourList]] = {}
        for n in lists:
            if n.model == model:
                by_query.setdefault(n.query, {})[n.metric] = n
        shown = list(dict.fromkeys(m for ms in by_query.values() for m in ms))
        rows = []
        for query, metrics in by_query.items():
            cells = []
            for metric in shown:
                found = metrics.get(metric)
                items = "" if found is None else "; ".join(
                    f"{_esc(t)} <span class='muted'>{s:.2f}</span>" for t, s in found.items)
                cells.append(f"<td>{items}</td>")
            rows.append(f"<tr><th>{_esc(query)}</th>{''.join(cells)}</tr>")
        heads = "".join(f"<th>{_esc(m)}</th>" for m in shown)
        parts.append(f"<h3>{_esc(model)}</h3><table class='neighbours'><thead><tr>"
                     f"<th>query</th>{heads}</tr></thead>"
                     f"<tbody>{''.join(rows)}</tbody></table>")
    return "".join(parts)


def _norm_section(norms: dict[str, NormPoints]) -> str:
    if not norms:
        return '<p class="muted">No embeddings.</p>'
    charts = []
    for j, (model, pts) in enumerate(norms.items()):
        charts.append(ch.scatter(f"chart-norm-{j}", pts.popularity, pts.norm,
                                 f"{model}: embedding norm vs popularity",
                                 "train ratings of the movie", "vector norm",
                                 labels=pts.titles, log_x=True, radius=2.0))
    return f'<div class="charts">{"".join(charts)}</div>'


def _map_section(m: MapPoints | None) -> str:
    if m is None:
        return '<p class="muted">No 2-D map in this run.</p>'
    chart = ch.scatter("chart-tsne", m.xy[:, 0], m.xy[:, 1],
                       f"{m.model}: t-SNE map, coloured by first genre", "t-SNE 1", "t-SNE 2",
                       groups=m.genre, labels=m.titles, radius=2.5)
    used = sorted(set(int(g) for g in m.genre if g >= 0))
    legend = "".join(f'<span><i style="background:{ch.color(g)}"></i>'
                     f"{_esc(m.genre_names[g])}</span>" for g in used)
    legend += '<span><i style="background:#999999"></i>no genre</span>'
    return f'{chart}<div class="legend">{legend}</div>'


def render_report(d: ReportData) -> str:
    """The whole report as one HTML string (no external resources)."""
    models = "".join(f"<li>{_esc(m)}: embeddings run {_esc(r)}</li>" for m, r in d.models.items())
    notes = "".join(f"<li><b>{_esc(k)}</b>: {_esc(v)}</li>" for k, v in d.notes.items())
    settings = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>"
                       for k, v in d.settings.items())
    sections = [
        ("metrics", "Metrics (EVALUATION.md protocol)",
         metrics_table(d.metrics, list(d.models)) + (f"<ul>{notes}</ul>" if notes else "")),
        ("fidelity", "Walk fidelity (walker vs exact node2vec probabilities)",
         _fidelity_table(d.metrics)),
        ("graph", "Movie graph", _graph_section(d.graph)),
        ("training", "Training curves", _curves_section(d.curves)),
        ("norms", "Embedding norm vs popularity", _norm_section(d.norms)),
        ("map", "2-D map of the movies", _map_section(d.tsne)),
        ("neighbours", "Nearest neighbours of the recipes' query movies (the top 10 "
         "rows of similar_movies, as shipped)",
         _neighbour_section(d.neighbours)),
    ]
    body = "".join(f'<section id="{sid}"><h2>{_esc(title)}</h2>{content}</section>'
                   for sid, title, content in sections)
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>moviegraph evaluation {_esc(d.run_id)}</title><style>{_CSS}</style>"
            f"</head><body><h1>moviegraph evaluation — run {_esc(d.run_id)}</h1>"
            f"<p class='muted'>{_esc(d.created)}</p><ul>{models}</ul>"
            + (f"<details><summary>settings</summary><table>{settings}</table></details>"
               if settings else "")
            + body + f"<script>{_SCRIPT}</script></body></html>")


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(text: str, report_dir: str | Path, run_id: str,
                 storage: Storage | None = None) -> str:
    """Write ``<report_dir>/<run_id>.html`` and ``latest.html`` (each atomically); return
    the first one's path.

    With ``storage`` the folder is a URI (HDFS, S3A, ABFS, file://) written through the
    session's Hadoop FileSystem; without, a local folder.
    """
    if storage is not None:
        uri = fs.join(str(report_dir), f"{run_id}.html")
        storage.write_text(uri, text)
        storage.write_text(fs.join(str(report_dir), "latest.html"), text)
        return uri
    folder = Path(report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.html"
    _atomic_write(path, text)
    _atomic_write(folder / "latest.html", text)
    return str(path)
