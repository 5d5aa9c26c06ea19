"""Small server-side SVG charts for the stats page: no JavaScript, no network, scale with CSS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 480, 200
LEFT, RIGHT, TOP, BOTTOM = 64, 10, 14, 28


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    css: str  # a class in style.css that sets the colour


def _nice_max(value: float) -> float:
    """A round top for the y axis (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 1.0
    while power * 10 <= value:
        power *= 10
    while power > value:
        power /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _frame(labels: Sequence[str], top: float, unit: str, title: str) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + plot_h * (1 - fraction)
        value = top * fraction
        text = f"{value:.0f}" if top >= 10 or value == int(value) else f"{value:.1f}"
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y}" y2="{y}"/>')
        parts.append(
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4}" text-anchor="end">'
            f"{escape(text)}{escape(unit)}</text>"
        )
    if labels:
        picks = sorted({0, len(labels) // 2, len(labels) - 1})
        for index in picks:
            x = LEFT + plot_w * (index + 0.5) / len(labels)
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                f"{escape(labels[index][5:])}</text>"
            )
    return parts


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, unit: str = "") -> Markup:
    """One bar per label; hovering a bar shows its exact value."""
    top = _nice_max(max(values, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = _frame(labels, top, unit, title)
    slot = plot_w / max(1, len(labels))
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot_h * value / top
        x = LEFT + slot * index + slot * 0.15
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - height:.1f}" '
            f'width="{slot * 0.7:.1f}" height="{height:.1f}">'
            f"<title>{escape(label)}: {value:g}{escape(unit)}</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(
    labels: Sequence[str], series: Sequence[Series], title: str, unit: str = ""
) -> Markup:
    """One polyline per series (gaps where a day has no value) with a legend underneath."""
    present = [v for s in series for v in s.values if v is not None]
    top = _nice_max(max(present, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = _frame(labels, top, unit, title)
    slot = plot_w / max(1, len(labels))
    for line in series:
        runs: list[list[str]] = [[]]
        for index, value in enumerate(line.values):
            if value is None:
                runs.append([])
                continue
            x = LEFT + slot * (index + 0.5)
            y = TOP + plot_h * (1 - value / top)
            runs[-1].append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle class="dot {line.css}" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                f"<title>{escape(line.name)} {escape(labels[index])}: "
                f"{value:.1f}{escape(unit)}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline class="line {line.css}" points="{" ".join(run)}"/>')
    parts.append("</svg>")
    legend = "".join(f'<span class="key {line.css}">{escape(line.name)}</span>' for line in series)
    return Markup("".join(parts) + f'<p class="legend">{legend}</p>')
