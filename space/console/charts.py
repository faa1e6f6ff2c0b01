"""The console's charts, drawn by pygal as SVG on the server. No script reaches the browser:
``js=[]`` drops pygal's tooltip script, which it would otherwise load from the internet, and
:func:`_static` removes the inline configuration script pygal writes into every chart."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pygal
from pygal.style import Style

# pygal appends a legacy import hook for its map plugins (pygal.maps.*), which we don't use;
# every later import that reaches it raises an ImportWarning (Python 3.11 calls find_module as a
# fallback). Take it out again.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

OUTCOME_COLOURS = {"succeeded": "#2e7d32", "withheld": "#6d4c41", "denied": "#ef6c00", "failed": "#c62828"}
WIDTH = 1200  # drawn as wide as the page shows it (full width), so type keeps its size
FONT = "'Noto Sans CJK SC', 'WenQuanYi Zen Hei', 'PingFang SC', 'Microsoft YaHei', sans-serif"


def _style(colours: Sequence[str] = ("#1565c0", "#6a1b9a", "#00838f", "#ad1457", "#558b2f")) -> Style:
    return Style(
        background="white",
        plot_background="white",
        font_family=FONT,
        label_font_size=11,
        major_label_font_size=11,
        legend_font_size=12,
        title_font_size=14,
        no_data_font_size=14,  # an empty chart says so in body type, not across the plot
        colors=tuple(colours),
    )


def _config(title: str, empty: str, **extra: Any) -> dict[str, Any]:
    return {
        "print_values": False,
        "title": title,
        "no_data_text": empty,
        "truncate_label": -1,
        "js": [],
        "width": WIDTH,
        "height": 320,
        "legend_at_bottom": True,
        "show_y_guides": True,
        **extra,
    }


SCRIPT = re.compile(rb"<script\b[^>]*>.*?</script>", re.S)


def _static(svg: bytes) -> bytes:
    return SCRIPT.sub(b"", svg)


def _whole_ticks(largest: int) -> list[int]:
    """Counts are whole numbers: about five ticks, never fractions."""
    step = max(1, -(-largest // 5))
    return list(range(0, largest + step + 1, step))


def usage_per_day(
    title: str,
    empty: str,
    days: Sequence[str],
    per_day: Mapping[str, Mapping[str, int]],
    labels: Mapping[str, str],
    today: str,
) -> bytes:
    """Stacked bars: uses per day, one colour per outcome; the last bar, labelled ``today``, is
    today's so far."""
    chart = pygal.StackedBar(
        style=_style([OUTCOME_COLOURS[o] for o in labels]),
        x_label_rotation=45,
        show_minor_x_labels=False,
        **_config(title, empty),
    )
    chart.x_labels = [d[5:] for d in days[:-1]] + [today]
    chart.x_labels_major = [d[5:] for d in days[:-1:5]] + [today]
    if per_day:  # y labels without a series make pygal fail: an empty chart shows ``empty``
        chart.y_labels = _whole_ticks(max(sum(v.values()) for v in per_day.values()))
        for outcome, label in labels.items():
            chart.add(label, [per_day.get(day, {}).get(outcome, 0) for day in days])
    return _static(chart.render())


def fees_by_sector(
    title: str, empty: str, fees_yuan: Mapping[str, float], money: Callable[[float], str]
) -> bytes:
    chart = pygal.HorizontalBar(
        style=_style(),
        show_legend=True,
        y_labels_major_count=5,
        show_minor_y_labels=False,
        **_config(title, empty, print_values=True),
    )
    chart.value_formatter = money
    for sector, amount in fees_yuan.items():
        chart.add(sector, amount)
    return _static(chart.render())


def price_index(title: str, empty: str, points: Sequence[Mapping[str, Any]]) -> bytes:
    """One line per sector: the chained price index over settled periods."""
    periods = sorted({p["period"] for p in points})
    chart = pygal.Line(style=_style(), x_label_rotation=0, **_config(title, empty))
    chart.x_labels = periods
    sectors: dict[str, dict[str, float]] = {}
    for point in points:
        sectors.setdefault(point["sector"], {})[point["period"]] = point["chained_index"]
    for sector, values in sorted(sectors.items()):
        chart.add(sector, [values.get(period) for period in periods])
    return _static(chart.render())
