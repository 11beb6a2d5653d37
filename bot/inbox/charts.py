"""The programme dashboard's charts, drawn on the server as inline SVG: a funnel, weekly stacked bars, plain bars.

Pure: plain data in, `Markup` out. The inbox's Content-Security-Policy allows no script and no inline style, so
the drawing uses SVG presentation attributes (fill, stroke, font-size) and the `chart-*` classes of
static/inbox.css. Every label and number goes through markupsafe: labels come from data (partner names, sources).
A value of `None` is a small count the dashboard hides (under 5): drawn as a hatched stub labelled `hidden`, never
as a number. The title names the SVG for screen readers (`<title>`, with a `<desc>` of the values in words) and is
not drawn: the page writes it as the chart's heading. The same input always gives the same SVG (ids are a slug of
the title and a hash of the data).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Mapping, Sequence

from markupsafe import Markup

# Okabe and Ito's colours, told apart under every common colour-vision deficiency. Blue first (a lone series);
# yellow late, as it is pale on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
INK = "#1d1d1f"  # the page's --ink
MUTED = "#6b6b70"  # the page's --muted
LINE = "#e2e2e6"  # the page's --line

WIDTH = 640  # of the viewBox; the SVG itself scales to its container
CHAR = 0.6  # an average glyph is about this many font-sizes wide: enough to keep labels apart
TOP = 4  # the page writes the title above the chart (as a heading); the SVG names itself with <title>

# Horizontal bars: a label line, then the bar with its count just after its end.
ROW_H = 42
BAR_H = 16
VALUE_ROOM = 80  # right of the longest bar, for its count
STUB = 10  # the width of a hidden value's stub

# Weekly bars.
WEEKLY_H = 250
AXIS_W = 44
WEEK_LABEL_H = 22
MARK_H = 4  # a hidden cell's mark on top of its week's stack

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # HTML shrugs, but the SVG must stay XML


def funnel(
    steps: Sequence[tuple[str, int | None]],
    *,
    title: str,
    hidden: str = "< 5",
    drop_label: str = "−{pct}%",
    empty: str = "No data",
) -> Markup:
    """Horizontal bars, one per step, as wide as their share of the first, with the drop between steps."""
    uid = _uid("funnel", title, steps, hidden, drop_label, empty)
    if not steps:
        return _empty(uid, title, empty)
    steps = [(_clean(label), value) for label, value in steps]
    hidden = _clean(hidden)
    drops = [""] + [_drop(prev, cur, _clean(drop_label)) for (_, prev), (_, cur) in itertools.pairwise(steps)]
    rows = [(label, value, _count(value, hidden)) for label, value in steps]
    # A funnel's first step is its largest; the largest visible keeps a bar within the chart if data disagrees.
    scale = max((max(0, value) for _, value in steps if value is not None), default=0)
    desc = "; ".join(
        f"{label}: {text}" + (f" ({drop})" if drop else "") for (label, _, text), drop in zip(rows, drops, strict=True)
    )
    return _horizontal(uid, title, rows, scale, drops, desc)


def bars(
    rows: Sequence[tuple[str, int | None]],
    *,
    title: str,
    hidden: str = "< 5",
    percent: bool = False,
    empty: str = "No data",
) -> Markup:
    """Horizontal bars, one per row: counts scaled to the largest, or shares (0..100) when `percent`."""
    uid = _uid("bars", title, rows, hidden, percent, empty)
    if not rows:
        return _empty(uid, title, empty)
    shown = [(_clean(label), value, _count(value, _clean(hidden), percent)) for label, value in rows]
    scale = 100 if percent else max((max(0, value) for _, value in rows if value is not None), default=0)
    desc = "; ".join(f"{label}: {text}" for label, _, text in shown)
    return _horizontal(uid, title, shown, scale, [""] * len(shown), desc)


def weekly_bars(
    weeks: Sequence[str],
    series: Mapping[str, Sequence[int | None]],
    *,
    title: str,
    hidden: str = "< 5",
    empty: str = "No data",
) -> Markup:
    """Stacked vertical bars per week, one colour per series, with a legend and a y axis of round ticks.

    A hidden cell counts as 0 in its stack and is marked by a hatched notch on top of it."""
    names = list(series)
    for name in names:
        if len(series[name]) != len(weeks):
            raise ValueError(f"series {name!r} has {len(series[name])} values for {len(weeks)} weeks")
    uid = _uid("weekly", title, list(weeks), [(name, list(series[name])) for name in names], hidden, empty)
    if not weeks or not names:
        return _empty(uid, title, empty)
    weeks = [_clean(week) for week in weeks]
    series = {_clean(name): series[name] for name in names}
    names, hidden = list(series), _clean(hidden)

    totals = [sum(max(0, series[name][i] or 0) for name in names) for i in range(len(weeks))]
    marks = [sum(series[name][i] is None for name in names) for i in range(len(weeks))]
    any_hidden = any(marks)
    ticks = _ticks(max(totals))

    parts: list[Markup] = []
    legend, legend_bottom = _legend(uid, names, hidden if any_hidden else None, top=TOP)
    parts.append(legend)

    top = legend_bottom + 8 + MARK_H * max(marks)  # room for the marks above the tallest stack
    bottom = WEEKLY_H - WEEK_LABEL_H
    left, right = AXIS_W, WIDTH - 4
    height = bottom - top

    def y(value: float) -> float:
        return bottom - value / ticks[-1] * height

    axis: list[Markup] = []
    for tick in ticks:
        axis.append(
            Markup(
                '<line class="chart-grid" x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="1"/>'
                '<text x="{}" y="{}" font-size="11" fill="{}" text-anchor="end">{}</text>'
            ).format(
                left,
                right,
                _num(y(tick)),
                _num(y(tick)),
                INK if tick == 0 else LINE,
                left - 6,
                _num(y(tick) + 4),
                MUTED,
                tick,
            )
        )
    parts.append(Markup('<g class="chart-axis">{}</g>').format(Markup("").join(axis)))

    slot = (right - left) / len(weeks)
    bar_w = max(1.0, slot * 0.72)
    widest = max(len(week) for week in weeks) * CHAR * 11 + 8
    every = max(1, math.ceil(widest / slot))  # thin the week labels so they never overlap
    for i, week in enumerate(weeks):
        x = left + i * slot + (slot - bar_w) / 2
        base = 0.0
        cells: list[Markup] = []
        for n, name in enumerate(names):
            value = series[name][i]
            if value is None or value <= 0:
                continue
            cells.append(
                Markup(
                    '<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>'
                ).format(
                    _num(x),
                    _num(y(base + value)),
                    _num(bar_w),
                    _num(y(base) - y(base + value)),
                    PALETTE[n % len(PALETTE)],
                    f"{week}, {name}: {value}",
                )
            )
            base += value
        stack_top = y(base)
        for name in names:
            if series[name][i] is None:
                stack_top -= MARK_H
                cells.append(
                    Markup(
                        '<rect class="chart-hidden" x="{}" y="{}" width="{}" height="{}" fill="url(#{}-hatch)" '
                        'stroke="{}" stroke-width="0.5"><title>{}</title></rect>'
                    ).format(_num(x), _num(stack_top), _num(bar_w), MARK_H, uid, MUTED, f"{week}, {name}: {hidden}")
                )
        if i % every == 0:
            cells.append(
                Markup('<text x="{}" y="{}" font-size="11" fill="{}" text-anchor="middle">{}</text>').format(
                    _num(left + (i + 0.5) * slot), WEEKLY_H - 6, MUTED, week
                )
            )
        parts.append(Markup('<g class="chart-week">{}</g>').format(Markup("").join(cells)))

    desc = "; ".join(
        f"{week}: " + ", ".join(f"{name} {_count(series[name][i], hidden)}" for name in names)
        for i, week in enumerate(weeks)
    )
    return _svg(uid, title, desc, WEEKLY_H, Markup("").join(parts), hatch=any_hidden)


def _horizontal(
    uid: str, title: str, rows: list[tuple[str, int | None, str]], scale: float, notes: list[str], desc: str
) -> Markup:
    """Bars under their labels, `scale` filling the width; `notes` are written at the right of the labels."""
    room = WIDTH - VALUE_ROOM
    parts: list[Markup] = []
    for i, ((label, value, text), note) in enumerate(zip(rows, notes, strict=True)):
        top = TOP + i * ROW_H
        bar_y = top + 18
        if value is None:
            width: float = STUB
            bar = Markup(
                '<rect class="chart-bar chart-hidden" x="0" y="{}" width="{}" height="{}" fill="url(#{}-hatch)" '
                'stroke="{}" stroke-width="0.5"><title>{}</title></rect>'
            ).format(bar_y, STUB, BAR_H, uid, MUTED, f"{label}: {text}")
        else:
            width = min(room, max(0, value) / scale * room) if scale else 0.0
            bar = Markup(
                '<rect class="chart-bar" x="0" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>'
            ).format(bar_y, _num(width), BAR_H, PALETTE[0], f"{label}: {text}")
        parts.append(
            Markup(
                '<g class="chart-row"><text class="chart-label" x="0" y="{}" font-size="13" fill="{}">{}</text>'
                '{}<text class="chart-value" x="{}" y="{}" font-size="13" fill="{}">{}</text>{}</g>'
            ).format(
                top + 13,
                INK,
                label,
                bar,
                _num(width + 6),
                bar_y + 12.5,
                MUTED if value is None else INK,
                text,
                Markup(
                    '<text class="chart-drop" x="{}" y="{}" font-size="12" fill="{}" text-anchor="end">{}</text>'
                ).format(WIDTH, top + 13, MUTED, note)
                if note
                else "",
            )
        )
    hatch = any(value is None for _, value, _ in rows)
    return _svg(uid, title, desc, TOP + len(rows) * ROW_H, Markup("").join(parts), hatch=hatch)


def _legend(uid: str, names: list[str], hidden: str | None, *, top: float) -> tuple[Markup, float]:
    """The series' swatches and names, in rows that fit the width (and the hidden mark's, when there is one)."""
    entries: list[tuple[str, str, str]] = [
        ("chart-legend-item", PALETTE[n % len(PALETTE)], name) for n, name in enumerate(names)
    ]
    if hidden is not None:
        entries.append(("chart-legend-hidden", f"url(#{uid}-hatch)", hidden))
    x, y = 0.0, top
    items: list[Markup] = []
    for cls, fill, name in entries:
        width = 12 + 6 + len(name) * CHAR * 12 + 16
        if x and x + width > WIDTH:
            x, y = 0.0, y + 18
        items.append(
            Markup(
                '<g class="{}"><rect x="{}" y="{}" width="12" height="12" fill="{}" stroke="{}" stroke-width="0.5"/>'
                '<text x="{}" y="{}" font-size="12" fill="{}">{}</text></g>'
            ).format(cls, _num(x), _num(y), fill, MUTED, _num(x + 18), _num(y + 10.5), INK, name)
        )
        x += width
    return Markup('<g class="chart-legend">{}</g>').format(Markup("").join(items)), y + 12


def _svg(uid: str, title: str, desc: str, height: float, body: Markup, *, hatch: bool = False) -> Markup:
    """The chart's frame: named by its title, described in words for screen readers, scaling to its container."""
    defs = (
        Markup(
            '<defs><pattern id="{}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f0f0f3"/>'
            '<line x1="0" y1="0" x2="0" y2="6" stroke="#a0a0a8" stroke-width="2"/></pattern></defs>'
        ).format(uid)
        if hatch
        else Markup("")
    )
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-labelledby="{0}-title {0}-desc" '
        'viewBox="0 0 {1} {2}" width="100%" preserveAspectRatio="xMinYMin meet">'
        '<title id="{0}-title">{3}</title><desc id="{0}-desc">{4}</desc>{5}{6}</svg>'
    ).format(uid, WIDTH, _num(height), _clean(title), _clean(desc), defs, body)


def _empty(uid: str, title: str, empty: str) -> Markup:
    """A small chart that says there is nothing to draw."""
    body = Markup('<text class="chart-empty" x="0" y="{}" font-size="13" fill="{}">{}</text>').format(
        TOP + 14, MUTED, _clean(empty)
    )
    return _svg(uid, title, empty, TOP + 22, body)


def _count(value: int | None, hidden: str, percent: bool = False) -> str:
    """A value as written on the chart: the hidden label for a small count, a share with its percent sign."""
    if value is None:
        return hidden
    return f"{value}%" if percent else str(value)


def _drop(prev: int | None, cur: int | None, template: str) -> str:
    """The fall from one step to the next in percent, from visible counts only ("" when it cannot be said)."""
    if prev is None or cur is None or prev <= 0:
        return ""
    pct = math.floor((prev - cur) * 100 / prev + 0.5)
    # A later step larger than its previous (counts from different windows) is a rise, not a negative drop.
    return template.replace("{pct}", str(pct)) if pct >= 0 else f"+{-pct}%"


def _ticks(top: int) -> list[int]:
    """3 to 5 round ticks (1, 2 or 5 times a power of ten apart) from 0 to at least `top`."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if math.ceil(top / (step * factor)) <= 4:
                step *= factor
                return [step * k for k in range(max(2, math.ceil(top / step)) + 1)]
        step *= 10


def _uid(kind: str, title: str, *data: object) -> str:
    """Ids for one chart: the same for the same input, and apart from another chart's on the page."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:24].strip("-") or kind
    digest = hashlib.sha256(repr((kind, title, data)).encode("utf-8", "replace")).hexdigest()[:8]
    return f"chart-{slug}-{digest}"


def _clean(text: str) -> str:
    """Text without the control characters XML does not allow."""
    return _NOT_XML.sub("", text)


def _num(x: float) -> str:
    """A coordinate with at most one decimal."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text
