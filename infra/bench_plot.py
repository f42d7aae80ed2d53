"""The bench's plot: how throughput and tail latency grow with concurrency, Jindou beside the
reference endpoint, one panel per backend. Plain SVG, no plotting library (the file is small,
opens in any browser, and diffs as text)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Protocol

WIDTH, HEIGHT = 420, 260  # one panel
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 28, 40
SERIES = {"http": ("Jindou", "#c0392b"), "ref": ("reference (1 UPDATE + 1 INSERT)", "#7f8c8d")}


class Figure(Protocol):
    backend: str
    name: str

    @property
    def rate(self) -> float: ...

    @property
    def p99_ms(self) -> float | None: ...


@dataclass(frozen=True)
class _Point:
    clients: int
    value: float


def _series(results: Sequence[Figure], backend: str, prefix: str, metric: str) -> list[_Point]:
    points = []
    for figure in results:
        if figure.backend == backend and figure.name.startswith(prefix + "-"):
            value = figure.rate if metric == "rate" else figure.p99_ms
            if value is not None:
                points.append(_Point(int(figure.name.removeprefix(prefix + "-")), float(value)))
    return sorted(points, key=lambda point: point.clients)


def _panel(results: Sequence[Figure], backend: str, metric: str, x0: float, y0: float) -> list[str]:
    title = f"{backend}: {'requests/s' if metric == 'rate' else 'p99 latency, ms'} by concurrent clients"
    lines = {prefix: _series(results, backend, prefix, metric) for prefix in SERIES}
    clients = sorted({point.clients for points in lines.values() for point in points})
    top = max((point.value for points in lines.values() for point in points), default=1.0) * 1.1 or 1.0
    plot_w, plot_h = WIDTH - MARGIN_LEFT - MARGIN_RIGHT, HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def x(count: int) -> float:  # clients are spread evenly (1, 16, 64 read better than on a linear axis)
        return x0 + MARGIN_LEFT + (clients.index(count) + 0.5) * plot_w / max(1, len(clients))

    def y(value: float) -> float:
        return y0 + MARGIN_TOP + plot_h * (1 - value / top)

    svg = [f'<text x="{x0 + MARGIN_LEFT}" y="{y0 + 18}" font-size="13">{escape(title)}</text>',
           f'<line x1="{x0 + MARGIN_LEFT}" y1="{y(0)}" x2="{x0 + WIDTH - MARGIN_RIGHT}" y2="{y(0)}" stroke="#333"/>',
           f'<line x1="{x0 + MARGIN_LEFT}" y1="{y(0)}" x2="{x0 + MARGIN_LEFT}" y2="{y(top)}" stroke="#333"/>']
    for fraction in (0.5, 1.0):
        svg.append(f'<text x="{x0 + MARGIN_LEFT - 6}" y="{y(top / 1.1 * fraction) + 4}" font-size="11" '
                   f'text-anchor="end">{top / 1.1 * fraction:,.0f}</text>')
    for count in clients:
        svg.append(f'<text x="{x(count)}" y="{y(0) + 16}" font-size="11" text-anchor="middle">{count}</text>')
    for prefix, points in lines.items():
        label, colour = SERIES[prefix]
        if points:
            path = " ".join(f"{x(point.clients):.1f},{y(point.value):.1f}" for point in points)
            svg.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            svg += [f'<circle cx="{x(point.clients):.1f}" cy="{y(point.value):.1f}" r="3" fill="{colour}"/>'
                    for point in points]
    return svg


def plot(results: Sequence[Figure]) -> str:
    """An SVG with, per backend that had HTTP runs, throughput and p99 against concurrency."""
    backends = list(dict.fromkeys(f.backend for f in results if f.name.startswith("http-")))
    rows = max(1, len(backends))
    height = HEIGHT * rows + 30
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH * 2}" height="{height}" '
           f'font-family="sans-serif" viewBox="0 0 {WIDTH * 2} {height}">',
           f'<rect width="{WIDTH * 2}" height="{height}" fill="white"/>']
    for row, backend in enumerate(backends):
        svg += _panel(results, backend, "rate", 0, row * HEIGHT)
        svg += _panel(results, backend, "p99", WIDTH, row * HEIGHT)
    for number, (label, colour) in enumerate(SERIES.values()):
        svg.append(f'<rect x="{MARGIN_LEFT + number * 240}" y="{height - 20}" width="12" height="4" fill="{colour}"/>')
        svg.append(f'<text x="{MARGIN_LEFT + number * 240 + 18}" y="{height - 14}" font-size="12">{escape(label)}</text>')
    svg.append("</svg>")
    return "\n".join(svg) + "\n"
