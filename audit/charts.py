"""Server-rendered SVG charts: geometry computed here, markup in templates/audit/_chart.html.

No JavaScript and no library: a bar chart is a handful of rectangles. The template gives the
chart a <title> and <desc> and a table of the same figures, for screen readers and for print.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from .queries import DayCount

WIDTH = 760
HEIGHT = 220
LEFT = 52  # room for the y-axis labels
RIGHT = 8
TOP = 12
BOTTOM = 28  # room for the day labels


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    kind: str  # "sign-in" or "failure"
    label: str  # the bar's own <title>


@dataclass(frozen=True)
class Tick:
    y: float
    value: int


@dataclass(frozen=True)
class DayLabel:
    x: float
    text: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    baseline: float
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[DayLabel]
    days: list[DayCount]
    total_sign_ins: int
    total_failures: int
    busiest: DayCount | None
    worst: DayCount | None

    @property
    def key(self) -> tuple:
        """What the drawing depends on: the days and their counts (the layout follows)."""
        return tuple(self.days)

    @property
    def first_day(self):
        return self.days[0].day if self.days else None

    @property
    def last_day(self):
        return self.days[-1].day if self.days else None


def nice_ceiling(value: int) -> int:
    """Return a round number at least `value` for the top of the axis (1, 2 or 5 x 10^n)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover


def sign_in_chart(days: list[DayCount]) -> BarChart:
    """Lay out two bars per day (sign-ins, failed attempts) with a round y-axis (the layout of
    the same counts is kept: the days before today never change, and pages ask again and again)."""
    return _laid_out(tuple(days))


@functools.lru_cache(maxsize=256)
def _laid_out(days: tuple[DayCount, ...]) -> BarChart:
    top_value = nice_ceiling(max([d.sign_ins for d in days] + [d.failures for d in days] + [1]))
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_height
    slot = plot_width / max(len(days), 1)
    bar_width = max(slot * 0.38, 1)
    bars, labels = [], []
    for index, day in enumerate(days):
        x0 = LEFT + index * slot + slot * 0.1
        when = f"{day.day:%a} {day.day.day} {day.day:%b}"
        for offset, value, kind, noun in (
            (0, day.sign_ins, "sign-in", "sign-in"),
            (bar_width, day.failures, "failure", "failed attempt"),
        ):
            height = plot_height * value / top_value
            bars.append(
                Bar(
                    x=round(x0 + offset, 2),
                    y=round(baseline - height, 2),
                    width=round(bar_width, 2),
                    height=round(height, 2),
                    kind=kind,
                    label=f"{when}: {value} {noun}{'' if value == 1 else 's'}",
                )
            )
        if index % 5 == 0 or index == len(days) - 1:
            labels.append(DayLabel(round(x0 + bar_width, 2), f"{day.day.day} {day.day:%b}"))
    ticks = [
        Tick(round(baseline - plot_height * n / 4, 2), top_value * n // 4)
        for n in range(5)
        if top_value * n % 4 == 0 or n in (0, 4)
    ]
    return BarChart(
        width=WIDTH,
        height=HEIGHT,
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        baseline=baseline,
        bars=bars,
        ticks=ticks,
        labels=labels,
        days=days,
        total_sign_ins=sum(d.sign_ins for d in days),
        total_failures=sum(d.failures for d in days),
        busiest=max(days, key=lambda d: d.sign_ins) if any(d.sign_ins for d in days) else None,
        worst=max(days, key=lambda d: d.failures) if any(d.failures for d in days) else None,
    )
