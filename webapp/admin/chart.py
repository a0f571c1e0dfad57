"""Sales over time as plain SVG geometry: bars per period, a line for the running total.

Drawn on the server (no charting library to vendor); the template only
places the shapes this module measures.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from babel.dates import format_datetime
from flask_babel import get_locale, gettext, ngettext

from webapp.services.admin.reports import SalesPoint

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 44, 12, 26
# Babel (CLDR) patterns, so that month names follow the page's language.
_LABEL = {"hour": "dd MMM HH:00", "day": "dd MMM", "week": "dd MMM"}


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass
class Chart:
    unit: str
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    line: str = ""
    dots: list[tuple[float, float]] = field(default_factory=list)
    left_ticks: list[tuple[float, int]] = field(default_factory=list)
    right_ticks: list[tuple[float, int]] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    total: int = 0
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_bottom: int = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not self.bars


def _ticks(top: int) -> list[int]:
    if top <= 4:
        return list(range(top + 1))
    step = max(1, round(top / 4))
    return list(range(0, top + 1, step))


def sales_chart(points: list[SalesPoint], unit: str) -> Chart:
    chart = Chart(unit=unit)
    if not points:
        return chart
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    peak = max(max(p.tickets for p in points), 1)
    running, totals = 0, []
    for p in points:
        running += p.tickets
        totals.append(running)
    chart.total = running
    top_total = max(running, 1)
    slot = plot_w / len(points)
    bar_w = min(max(1.0, slot * 0.7), 36.0)
    line = []
    for i, (p, total) in enumerate(zip(points, totals)):
        h = plot_h * p.tickets / peak
        x = LEFT + i * slot + (slot - bar_w) / 2
        chart.bars.append(Bar(round(x, 1), round(TOP + plot_h - h, 1), round(bar_w, 1), round(h, 1),
                              ngettext("%(label)s: %(num)d ticket", "%(label)s: %(num)d tickets", p.tickets,
                                       label=_bucket_label(p.bucket, unit))))
        point = (round(LEFT + (i + 0.5) * slot, 1), round(TOP + plot_h - plot_h * total / top_total, 1))
        line.append(f"{point[0]},{point[1]}")
        if p.tickets:
            chart.dots.append(point)
    chart.line = " ".join(line)
    chart.left_ticks = [(round(TOP + plot_h - plot_h * v / peak, 1), v) for v in _ticks(peak)]
    chart.right_ticks = [(round(TOP + plot_h - plot_h * v / top_total, 1), v) for v in _ticks(top_total)]
    every = max(1, len(points) // 6)
    chart.x_labels = [(round(LEFT + (i + 0.5) * slot, 1), _bucket_label(points[i].bucket, unit))
                      for i in range(0, len(points), every)]
    return chart


def _bucket_label(bucket, unit: str) -> str:
    # The bucket is already in UTC, as the chart's heading says: no time zone conversion here.
    day = format_datetime(bucket, _LABEL[unit], locale=get_locale())
    return gettext("wk of %(day)s", day=day) if unit == "week" else day
