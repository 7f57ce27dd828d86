"""Self-contained SVG charts for the run report: bars, columns and lines, inline, with no script.

Every element carries its number in `data-*` attributes (and a `<title>` to read on hover), so a
page can be checked by machine as well as read. Series are keyed by the report's names (COLORS,
LABELS): `kept`, the exclusion reasons, `rows_in`, `rows_out`, `granted`, `consented`.
"""

from __future__ import annotations

import html
import math
from typing import Any

from consentgate.rule.semantics import REASONS

COLORS = {
    "kept": "#2f855a",
    "null_subject": "#a0aec0",
    "no_consent": "#718096",
    "denied": "#dd6b20",
    "withdrawn": "#c53030",
    "expired": "#d69e2e",
    "invalid": "#6b46c1",
    "granted": "#2f855a",
    "rows_in": "#2b6cb0",
    "rows_out": "#2f855a",
    "consented": "#2f855a",
}
LABELS = {
    "kept": "kept",
    "rows_in": "rows in",
    "rows_out": "rows out",
    **{r: r.replace("_", " ") for r in REASONS},
}


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def num(n: float | int | None) -> str:
    if n is None:
        return "-"
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.1f}"


def _scale(v: float) -> tuple[float, int]:
    """(axis maximum, number of ticks): the smallest 1/2/2.5/5 x 10^k step reaching v in at most 5 ticks."""
    if v <= 0:
        return 1.0, 1
    k = max(len(str(int(v))) - 2, 0)
    while True:
        for m in (1, 2, 2.5, 5):
            step = m * 10**k
            n = math.ceil(v / step)
            if n <= 5:
                return float(step * n), n
        k += 1


def legend(keys: list[str]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span style="--c:{COLORS[k]}">{esc(LABELS.get(k, k))}</span>' for k in keys)
        + "</div>"
    )


def hbar_chart(chart: str, rows: list[tuple[str, list[tuple[str, int]]]], width: int = 1000) -> str:
    """Horizontal stacked bars, one per row label, segments (key, value) in order."""
    label_w, bar_h, gap, right = 190, 22, 12, 90
    height = len(rows) * (bar_h + gap) + 24
    total_max, ticks = _scale(max((sum(v for _, v in segs) for _, segs in rows), default=0))
    scale = (width - label_w - right) / total_max
    out = [
        f'<svg class="chart" data-chart="{esc(chart)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(chart)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i in range(ticks + 1):
        x = label_w + (width - label_w - right) * i / ticks
        out.append(f'<line class="grid" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 20}"/>')
        out.append(
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">{num(total_max * i / ticks)}</text>'
        )
    for r, (label, segs) in enumerate(rows):
        y = r * (bar_h + gap) + 4
        total = sum(v for _, v in segs)
        out.append(f'<g data-row="{esc(label)}" data-total="{total}">')
        out.append(f'<text x="{label_w - 8}" y="{y + bar_h * 0.7:.1f}" text-anchor="end">{esc(label)}</text>')
        x = float(label_w)
        for key, value in segs:
            w = value * scale
            out.append(
                f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{bar_h}" fill="{COLORS[key]}" '
                f'data-row="{esc(label)}" data-segment="{esc(key)}" data-value="{int(value)}">'
                f"<title>{esc(label)}: {esc(LABELS.get(key, key))} {num(value)}</title></rect>"
            )
            x += w
        out.append(f'<text x="{x + 6:.1f}" y="{y + bar_h * 0.7:.1f}">{num(total)}</text></g>')
    out.append("</svg>")
    return "".join(out)


def column_chart(
    chart: str,
    x: list[tuple[str, str]],
    series: list[tuple[str, list[int]]],
    *,
    stacked: bool = True,
    width: int = 1000,
    height: int = 240,
) -> str:
    """Columns per x (id, label): stacked or side by side series (key, values)."""
    left, bottom, top = 60, 46, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    if stacked:
        peak = max((sum(vals[i] for _, vals in series) for i in range(len(x))), default=0)
    else:
        peak = max((v for _, vals in series for v in vals), default=0)
    ymax, ticks = _scale(peak)
    slot = plot_w / max(len(x), 1)
    out = [
        f'<svg class="chart" data-chart="{esc(chart)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(chart)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    out += _y_axis(left, top, plot_w, plot_h, ymax, ticks)
    inner = slot * 0.7 if stacked else slot * 0.8 / max(len(series), 1)
    for i, (xid, xlabel) in enumerate(x):
        x0 = left + i * slot + (slot - (inner if stacked else inner * len(series))) / 2
        base = 0.0
        out.append(f'<g data-x="{esc(xid)}">')
        for s, (key, vals) in enumerate(series):
            v = vals[i]
            h = v / ymax * plot_h
            bx = x0 if stacked else x0 + s * inner
            by = top + plot_h - h - (base if stacked else 0)
            out.append(
                f'<rect x="{bx:.2f}" y="{by:.2f}" width="{max(inner - 1, 1):.2f}" height="{h:.2f}" '
                f'fill="{COLORS[key]}" data-x="{esc(xid)}" data-series="{esc(key)}" data-value="{int(v)}">'
                f"<title>{esc(xlabel)}: {esc(LABELS.get(key, key))} {num(v)}</title></rect>"
            )
            if stacked:
                base += h
        out.append("</g>")
        out += _x_label(left + i * slot + slot / 2, top + plot_h, xlabel, len(x))
    out.append("</svg>")
    return "".join(out)


def line_chart(
    chart: str,
    x: list[tuple[str, str]],
    series: list[tuple[str, list[int]]],
    *,
    width: int = 1000,
    height: int = 240,
) -> str:
    left, bottom, top = 60, 46, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    ymax, ticks = _scale(max((v for _, vals in series for v in vals), default=0))
    slot = plot_w / max(len(x), 1)
    out = [
        f'<svg class="chart" data-chart="{esc(chart)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(chart)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    out += _y_axis(left, top, plot_w, plot_h, ymax, ticks)
    for key, vals in series:
        pts = [(left + i * slot + slot / 2, top + plot_h - v / ymax * plot_h) for i, v in enumerate(vals)]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{COLORS[key]}" stroke-width="2.5" data-series="{esc(key)}"/>'
        )
        for (px, py), (xid, xlabel), v in zip(pts, x, vals, strict=True):
            out.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{COLORS[key]}" data-x="{esc(xid)}" '
                f'data-series="{esc(key)}" data-value="{int(v)}"><title>{esc(xlabel)}: '
                f"{esc(LABELS.get(key, key))} {num(v)}</title></circle>"
            )
    for i, (_xid, xlabel) in enumerate(x):
        out += _x_label(left + i * slot + slot / 2, top + plot_h, xlabel, len(x))
    out.append("</svg>")
    return "".join(out)


def _y_axis(left: int, top: int, plot_w: float, plot_h: float, ymax: float, ticks: int) -> list[str]:
    out = []
    for i in range(ticks + 1):
        y = top + plot_h - plot_h * i / ticks
        out.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{num(ymax * i / ticks)}</text>')
    out.append(
        f'<line class="axis" x1="{left}" y1="{top + plot_h:.1f}" x2="{left + plot_w:.1f}" y2="{top + plot_h:.1f}"/>'
    )
    return out


def _x_label(cx: float, y: float, label: str, n: int) -> list[str]:
    if n > 12:  # rotate when crowded
        return [
            f'<text x="{cx:.1f}" y="{y + 12:.1f}" text-anchor="end" transform="rotate(-40 {cx:.1f} {y + 12:.1f})">'
            f"{esc(label)}</text>"
        ]
    return [f'<text x="{cx:.1f}" y="{y + 16:.1f}" text-anchor="middle">{esc(label)}</text>']
