"""The calibration charts, drawn on the server as SVG (pygal, and a small heat map of our own):
nothing is loaded from outside and no JavaScript runs, so the page works offline."""

from __future__ import annotations

import re
from collections import defaultdict

import pygal
from django.utils.html import escape
from django.utils.safestring import mark_safe
from pygal.style import Style

STYLE = Style(
    background="transparent",
    plot_background="transparent",
    font_family="system-ui, sans-serif",
    colors=("#1565c0", "#c62828", "#2e7d32", "#b26a00", "#6a1b9a"),
    title_font_size=14,
    label_font_size=11,
    legend_font_size=11,
)
_SCRIPT = re.compile(r"<script.*?</script>", re.S)


def _svg(chart) -> str:
    # pygal embeds its config in a <script> for optional tooltips (loaded from a CDN when `js`
    # is set); we set no `js` and drop the inline config too: a static picture.
    return mark_safe(_SCRIPT.sub("", chart.render(is_unicode=True)))


def _chart(kind, title: str, **config):
    return kind(
        title=title,
        style=STYLE,
        js=[],
        disable_xml_declaration=True,
        width=720,
        height=320,
        legend_at_bottom=True,
        explicit_size=True,
        print_values=False,
        **config,
    )


def _hours(value) -> float | None:
    return None if value is None else round(value.total_seconds() / 3600, 2)


def progress_bars(progress_by_state: list[dict]) -> str:
    chart = _chart(
        pygal.Bar, "Business time to progress per state (hours)", y_title="business hours"
    )
    chart.x_labels = [row["state"] for row in progress_by_state]
    chart.add("p50", [_hours(row["p50_to_progress"]) for row in progress_by_state])
    chart.add("p90", [_hours(row["p90_to_progress"]) for row in progress_by_state])
    return _svg(chart)


def team_bars(teams: list[dict]) -> str:
    chart = _chart(pygal.Bar, "Auto-reassignments and reverts per team")
    chart.x_labels = [row["team"] for row in teams]
    chart.add("auto-reassignments", [row["auto_reassignments"] for row in teams])
    chart.add("reverts (misfires)", [row["reverts"] for row in teams])
    chart.add("no candidate", [row["no_candidate"] for row in teams])
    return _svg(chart)


def notification_bars(notifications: list[dict]) -> str:
    totals: dict = defaultdict(lambda: defaultdict(int))
    for row in notifications:
        t = totals[row["persona"] or "?"]
        t["acted"] += row["acted_on"]
        t["ignored"] += row["ignored"]
        t["other"] += row["stage_messages"] - row["acted_on"] - row["ignored"]
        t["failed"] += row["failed"]
    personas = sorted(totals)
    chart = _chart(pygal.StackedBar, "Warnings and breach notices per persona: what followed")
    chart.x_labels = personas
    chart.add("acted on", [totals[p]["acted"] for p in personas])
    chart.add("ignored", [totals[p]["ignored"] for p in personas])
    chart.add("neither (cancelled, running)", [totals[p]["other"] for p in personas])
    chart.add("failed", [totals[p]["failed"] for p in personas])
    return _svg(chart)


def _heat(rate: float | None) -> str:
    if rate is None:
        return "#eeeeee"
    # white (0 %) to deep red (≥ 60 %)
    t = min(rate / 0.6, 1.0)
    r, g, b = 255, round(255 - 200 * t), round(255 - 200 * t)
    return f"rgb({r},{g},{b})"


def breach_heat_map(by_source: list[dict]) -> str:
    """Breach rate as a market × source grid, each cell with the rate and the timers behind it."""
    markets = sorted({row["market"] for row in by_source})
    sources = sorted({row["source"] for row in by_source})
    cells = {(row["market"], row["source"]): row for row in by_source}
    cell_w, cell_h, left, top = 120, 44, 70, 58
    width, height = left + cell_w * max(len(sources), 1) + 10, top + cell_h * len(markets) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heat-map" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" '
        'font-size="12" role="img" aria-label="Breach rate by market and source">',
        '<text x="0" y="16" font-size="14">Breach rate by market × source</text>',
    ]
    for j, source in enumerate(sources):
        x = left + j * cell_w + cell_w / 2
        parts.append(f'<text x="{x}" y="{top - 8}" text-anchor="middle">{escape(source)}</text>')
    for i, market in enumerate(markets):
        y = top + i * cell_h
        parts.append(
            f'<text x="{left - 10}" y="{y + 27}" text-anchor="end">{escape(market)}</text>'
        )
        for j, source in enumerate(sources):
            row = cells.get((market, source))
            rate = row["breach_rate"] if row else None
            x = left + j * cell_w
            label = "–" if rate is None else f"{rate * 100:.0f} %"
            n = f"{row['breached']}/{row['settled']}" if row else ""
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{_heat(rate)}" stroke="#ccc"><title>{escape(market)} · '
                f"{escape(source)}: {label} ({n})</title></rect>"
                f'<text x="{x + cell_w / 2}" y="{y + 20}" text-anchor="middle" '
                f'font-weight="bold">{label}</text>'
                f'<text x="{x + cell_w / 2}" y="{y + 35}" text-anchor="middle" '
                f'fill="#555">{n}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))
