"""Tiny server-side SVG charts for the admin dashboard: bars, stacked bars and lines.

No JavaScript, no external packages, no CDN: each function returns an inline `<svg>` element that
the template drops into the page. Every bar or point can carry a link (the changelist behind the
number) and a tooltip (`<title>`). Colours use the admin's CSS variables where one fits, so the
charts follow the light and dark themes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

#: Series colours, readable on the admin's light and dark backgrounds.
PALETTE = ("#417690", "#e0a526", "#5b9e4d", "#c0504d", "#8064a2", "#4bacc6", "#9b7d5a")
#: Space kept for the axis labels.
LEFT, BOTTOM, TOP = 44, 18, 8


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    title: str = ""
    href: str = ""


@dataclass(frozen=True)
class Series:
    name: str
    #: None is a gap (no value that day): bars draw nothing, lines break.
    values: Sequence[float | None]
    #: One link per value (optional).
    hrefs: Sequence[str] = ()


def _number(value: float) -> str:
    """Axis and tooltip numbers: integers plainly, others to two significant decimals."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def _linked(element: str, href: str) -> str:
    return f'<a href="{escape(href)}">{element}</a>' if href else element


def _frame(width: int, height: int, label: str, body: list[str], top: float) -> SafeString:
    """The `<svg>` with a baseline, the maximum on the y axis and the chart body."""
    base = height - BOTTOM
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
        f'<line x1="{LEFT}" y1="{base}" x2="{width}" y2="{base}" '
        'style="stroke: var(--hairline-color, #ccc)"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end" font-size="10" '
        f'style="fill: var(--body-quiet-color, #666)">{escape(_number(top))}</text>',
        f'<text x="{LEFT - 4}" y="{base}" text-anchor="end" font-size="10" '
        'style="fill: var(--body-quiet-color, #666)">0</text>',
        *body,
        "</svg>",
    ]
    return mark_safe("".join(parts))  # every text and attribute above is escaped


def _x_labels(
    labels: Sequence[str], x_of: list[float], width: int, height: int, every: int
) -> list[str]:
    """Every `every`-th label and the last one; the last is right-aligned to stay inside."""
    last = len(labels) - 1
    return [
        f'<text x="{width - 1 if index == last and index else x:.1f}" y="{height - 4}" '
        f'text-anchor="{"end" if index == last and index else "middle"}" font-size="10" '
        f'style="fill: var(--body-quiet-color, #666)">{escape(label)}</text>'
        for index, (label, x) in enumerate(zip(labels, x_of, strict=True))
        if (index % every == 0 and last - index >= every / 2) or index == last
    ]


def _label_step(count: int) -> int:
    return max(1, count // 6)


def bar_chart(
    bars: Sequence[Bar], *, label: str, width: int = 720, height: int = 140, color: str = ""
) -> SafeString:
    """Vertical bars, one per item, scaled to the largest value (≥ 1)."""
    return stacked_bar_chart(
        [bar.label for bar in bars],
        [Series(label, [bar.value for bar in bars], [bar.href for bar in bars])],
        label=label,
        width=width,
        height=height,
        titles=[bar.title for bar in bars],
        colors=(color or PALETTE[0],),
    )


def stacked_bar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label: str,
    width: int = 720,
    height: int = 140,
    titles: Sequence[str] = (),
    colors: Sequence[str] = PALETTE,
) -> SafeString:
    """One column per label, the series stacked bottom-up in order."""
    count = len(labels)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(count)]
    top = max([1.0, *totals])
    plot_h = height - BOTTOM - TOP
    slot = (width - LEFT) / max(count, 1)
    bar_w = max(slot * 0.8, 1.0)
    body: list[str] = []
    for i in range(count):
        x = LEFT + i * slot + (slot - bar_w) / 2
        y = float(height - BOTTOM)
        for index, one in enumerate(series):
            value = one.values[i]
            if value is None or value <= 0:
                continue
            h = value / top * plot_h
            y -= h
            tip = titles[i] if titles and len(series) == 1 else ""
            tip = tip or f"{labels[i]} · {one.name}: {_number(value)}"
            rect = (
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{escape(colors[index % len(colors)])}"><title>{escape(tip)}</title></rect>'
            )
            href = one.hrefs[i] if i < len(one.hrefs) else ""
            body.append(_linked(rect, href))
    centres = [LEFT + i * slot + slot / 2 for i in range(count)]
    body += _x_labels(labels, centres, width, height, _label_step(count))
    return _frame(width, height, label, body, top)


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label: str,
    width: int = 720,
    height: int = 140,
    top: float | None = None,
    colors: Sequence[str] = PALETTE,
) -> SafeString:
    """One polyline per series over the labels, with a dot (and link) per point."""
    count = len(labels)
    values = [v for s in series for v in s.values if v is not None]
    ceiling = top if top is not None else max([1.0, *values])
    plot_h = height - BOTTOM - TOP
    step = (width - LEFT - 8) / max(count - 1, 1)
    xs = [LEFT + 4 + i * step for i in range(count)]
    body: list[str] = []
    for index, one in enumerate(series):
        color = escape(colors[index % len(colors)])
        points = [
            None if v is None else (xs[i], height - BOTTOM - min(v, ceiling) / ceiling * plot_h)
            for i, v in enumerate(one.values)
        ]
        segment: list[str] = []
        for point in [*points, None]:  # a gap (or the end) closes the current segment
            if point is not None:
                segment.append(f"{point[0]:.1f},{point[1]:.1f}")
                continue
            if len(segment) > 1:
                body.append(
                    f'<polyline fill="none" stroke-width="1.5" stroke="{color}" '
                    f'points="{" ".join(segment)}"/>'
                )
            segment = []
        for i, point in enumerate(points):
            if point is None:
                continue
            dot = (
                f'<circle cx="{point[0]:.1f}" cy="{point[1]:.1f}" r="2.5" fill="{color}"><title>'
                f"{escape(f'{labels[i]} · {one.name}: {_number(one.values[i] or 0)}')}"
                "</title></circle>"
            )
            body.append(_linked(dot, one.hrefs[i] if i < len(one.hrefs) else ""))
    body += _x_labels(labels, xs, width, height, _label_step(count))
    return _frame(width, height, label, body, ceiling)


def legend(names: Sequence[str], colors: Sequence[str] = PALETTE) -> SafeString:
    """Coloured swatches with the series names, as HTML (placed under a chart)."""
    items = "".join(
        f'<span class="legend-item"><span class="swatch" '
        f'style="background: {escape(colors[i % len(colors)])}"></span>{escape(name)}</span>'
        for i, name in enumerate(names)
    )
    return mark_safe(f'<div class="legend">{items}</div>')  # escaped above
