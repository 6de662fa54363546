"""Inline SVG charts for the HTML report: no library, no external file.

Every chart is one ``<svg class="chart" id=...>`` whose data marks (points, bars, lines)
carry ``class="mark"``, so a browser (or a test parsing the DOM) can count what rendered.
Coordinates are rounded to 0.1 px to keep the file small.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

WIDTH, HEIGHT = 600, 340
MARGIN = {"left": 64, "right": 16, "top": 32, "bottom": 48}

#: Colour-blind-friendly palette (Okabe-Ito) followed by Tableau-like extras.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000", "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF", "#9467BD", "#FF9896",
           "#AEC7E8", "#98DF8A", "#C49C94", "#F7B6D2", "#DBDB8D", "#9EDAE5")


def color(i: int) -> str:
    """The ``i``-th palette colour (cycling)."""
    return PALETTE[i % len(PALETTE)]


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    step = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * step:
            step *= mult
            break
    start = math.ceil(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.1e}"
    return f"{v:g}"


class _Frame:
    """Maps data coordinates to the plot area and draws axes."""

    def __init__(self, xlim: tuple[float, float], ylim: tuple[float, float],
                 width: int = WIDTH, height: int = HEIGHT) -> None:
        self.w, self.h = width, height
        self.x0, self.x1 = MARGIN["left"], width - MARGIN["right"]
        self.y0, self.y1 = height - MARGIN["bottom"], MARGIN["top"]
        self.xlim = xlim if xlim[1] > xlim[0] else (xlim[0] - 0.5, xlim[0] + 0.5)
        self.ylim = ylim if ylim[1] > ylim[0] else (ylim[0] - 0.5, ylim[0] + 0.5)

    def px(self, x: np.ndarray | float) -> np.ndarray:
        lo, hi = self.xlim
        return self.x0 + (np.asarray(x, dtype=float) - lo) / (hi - lo) * (self.x1 - self.x0)

    def py(self, y: np.ndarray | float) -> np.ndarray:
        lo, hi = self.ylim
        return self.y0 + (np.asarray(y, dtype=float) - lo) / (hi - lo) * (self.y1 - self.y0)

    def axes(self, title: str, xlabel: str, ylabel: str, xticks: list[float] | None = None,
             xtick_labels: list[str] | None = None, integer_x: bool = False) -> list[str]:
        out = [f'<text x="{self.w / 2:.0f}" y="18" text-anchor="middle" '
               f'class="title">{_esc(title)}</text>',
               f'<line x1="{self.x0}" y1="{self.y0}" x2="{self.x1}" y2="{self.y0}" '
               'class="axis"/>',
               f'<line x1="{self.x0}" y1="{self.y0}" x2="{self.x0}" y2="{self.y1}" '
               'class="axis"/>']
        xt = nice_ticks(*self.xlim) if xticks is None else xticks
        if integer_x and xticks is None:  # epochs: no 1.5th epoch
            xt = [t for t in xt if float(t).is_integer()] or xt
        labels = xtick_labels or [_fmt(t) for t in xt]
        for t, lab in zip(xt, labels, strict=False):
            x = float(self.px(t))
            out.append(f'<line x1="{x:.1f}" y1="{self.y0}" x2="{x:.1f}" y2="{self.y0 + 4}" '
                       'class="axis"/>')
            out.append(f'<text x="{x:.1f}" y="{self.y0 + 16}" text-anchor="middle">'
                       f"{_esc(lab)}</text>")
        for t in nice_ticks(*self.ylim):
            y = float(self.py(t))
            out.append(f'<line x1="{self.x0 - 4}" y1="{y:.1f}" x2="{self.x1}" y2="{y:.1f}" '
                       'class="grid"/>')
            out.append(f'<text x="{self.x0 - 6}" y="{y + 4:.1f}" text-anchor="end">'
                       f"{_fmt(t)}</text>")
        out.append(f'<text x="{(self.x0 + self.x1) / 2:.0f}" y="{self.h - 8}" '
                   f'text-anchor="middle">{_esc(xlabel)}</text>')
        out.append(f'<text x="14" y="{(self.y0 + self.y1) / 2:.0f}" text-anchor="middle" '
                   f'transform="rotate(-90 14 {(self.y0 + self.y1) / 2:.0f})">'
                   f"{_esc(ylabel)}</text>")
        return out


def _svg(chart_id: str, body: list[str], marks: int, width: int = WIDTH,
         height: int = HEIGHT) -> str:
    return (f'<svg class="chart" id="{_esc(chart_id)}" data-marks="{marks}" '
            f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img">' + "".join(body) + "</svg>")


def _limits(values: Sequence[np.ndarray]) -> tuple[float, float]:
    finite = [v[np.isfinite(v)] for v in values if len(v)]
    finite = [v for v in finite if v.size]
    if not finite:
        return (0.0, 1.0)
    return (float(min(v.min() for v in finite)), float(max(v.max() for v in finite)))


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    out = []
    for j, (label, col) in enumerate(items):
        yy = y + 14 * j
        out.append(f'<rect x="{x:.0f}" y="{yy - 8:.0f}" width="10" height="10" '
                   f'fill="{col}"/>')
        out.append(f'<text x="{x + 14:.0f}" y="{yy + 1:.0f}">{_esc(label)}</text>')
    return out


def line_chart(chart_id: str, series: dict[str, tuple[np.ndarray, np.ndarray]], title: str,
               xlabel: str, ylabel: str) -> str:
    """One polyline (plus dots) per series; ``series[name] = (x, y)``."""
    xs = [np.asarray(x, float) for x, _ in series.values()]
    ys = [np.asarray(y, float) for _, y in series.values()]
    f = _Frame(_limits(xs), _limits(ys))
    integer_x = all(np.all(np.mod(x[np.isfinite(x)], 1) == 0) for x in xs)
    body = f.axes(title, xlabel, ylabel, integer_x=integer_x)
    marks = 0
    for j, (name, (x, y)) in enumerate(series.items()):
        x, y = np.asarray(x, float), np.asarray(y, float)
        ok = np.isfinite(x) & np.isfinite(y)
        px, py = f.px(x[ok]), f.py(y[ok])
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
        body.append(f'<polyline class="mark" fill="none" stroke="{color(j)}" '
                    f'stroke-width="2" points="{pts}"><title>{_esc(name)}</title></polyline>')
        for a, b, xv, yv in zip(px, py, x[ok], y[ok], strict=True):
            body.append(f'<circle class="mark" cx="{a:.1f}" cy="{b:.1f}" r="3" '
                        f'fill="{color(j)}"><title>{_esc(name)}: {xv:g}, {yv:.4g}</title>'
                        "</circle>")
        marks += 1 + int(ok.sum())
    body += _legend([(n, color(j)) for j, n in enumerate(series)], f.x1 - 150, f.y1 + 10)
    return _svg(chart_id, body, marks)


def bar_chart(chart_id: str, labels: Sequence[str], counts: Sequence[float], title: str,
              xlabel: str, ylabel: str) -> str:
    """Vertical bars, one per label (e.g. a histogram with labelled bins)."""
    heights = np.asarray(counts, float)
    n = len(labels)
    f = _Frame((0.0, float(max(n, 1))), (0.0, float(heights.max()) if n else 1.0))
    step = max(1, n // 12)  # at most ~12 tick labels
    ticks = [i + 0.5 for i in range(0, n, step)]
    body = f.axes(title, xlabel, ylabel, xticks=ticks,
                  xtick_labels=[labels[i] for i in range(0, n, step)])
    bw = (f.x1 - f.x0) / max(n, 1)
    for i, (lab, c) in enumerate(zip(labels, heights, strict=True)):
        top = float(f.py(c))
        body.append(f'<rect class="mark" x="{f.x0 + i * bw + 1:.1f}" y="{top:.1f}" '
                    f'width="{max(bw - 2, 1):.1f}" height="{max(f.y0 - top, 0):.1f}" '
                    f'fill="{color(0)}"><title>{_esc(lab)}: {c:g}</title></rect>')
    return _svg(chart_id, body, n)


def scatter(chart_id: str, x: np.ndarray, y: np.ndarray, title: str, xlabel: str,
            ylabel: str, groups: np.ndarray | None = None,
            group_names: Sequence[str] | None = None, labels: Sequence[str] | None = None,
            log_x: bool = False, radius: float = 2.5) -> str:
    """Points coloured by integer ``groups`` (legend from ``group_names``); hover labels.

    ``log_x`` plots ``log10(1 + x)`` (popularity counts span orders of magnitude).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    xv = np.log10(1.0 + np.maximum(x, 0)) if log_x else x
    ok = np.isfinite(xv) & np.isfinite(y)
    f = _Frame(_limits([xv[ok]]), _limits([y[ok]]))
    xticks = xlabels = None
    if log_x:
        hi = f.xlim[1]
        xticks = [math.log10(1 + 10 ** e) for e in range(0, math.ceil(hi) + 1)
                  if math.log10(1 + 10 ** e) <= hi]
        xlabels = [f"{10 ** e:g}" for e in range(len(xticks))]
    body = f.axes(title, xlabel + (" (log scale)" if log_x else ""), ylabel, xticks, xlabels)
    g = np.zeros(len(x), int) if groups is None else np.asarray(groups, int)
    px, py = f.px(xv), f.py(y)
    for i in np.flatnonzero(ok):
        tip = f"{labels[int(i)]}: " if labels is not None else ""
        col = "#999999" if g[i] < 0 else color(int(g[i]))
        body.append(f'<circle class="mark" cx="{px[i]:.1f}" cy="{py[i]:.1f}" r="{radius}" '
                    f'fill="{col}" fill-opacity="0.7"><title>{_esc(tip)}{x[i]:g}, {y[i]:.3g}'
                    "</title></circle>")
    if group_names:
        body += _legend([(n, color(j)) for j, n in enumerate(group_names)], f.x1 - 120,
                        f.y1 + 6)
    return _svg(chart_id, body, int(ok.sum()))
