"""Inline SVG drawn by our own code: a metric trend chart and a lineage diagram.

Every piece of text that reaches the SVG goes through :func:`esc`, the same
escape the templates use, so a metric name or a data ref cannot inject markup.
The output is a single line (no blank lines), so it survives the Markdown pass
inside an HTML block untouched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

# Characters Markdown (and its extensions) give a meaning to, plus HTML's own.
# Writing them as numeric character references keeps user text inert both inside
# HTML blocks (where Markdown is not applied) and in Markdown text (where a
# reference is never syntax), and the browser still shows the original character.
_ENTITIES = {c: f"&#{ord(c)};" for c in "&<>\"'`*_{}[]()#+!|\\~^=$:"}
_ENTITIES["\n"] = "&#10;"
_ENTITIES["\r"] = ""
_TABLE = str.maketrans(_ENTITIES)


def esc(value: Any) -> Markup:
    """Text → markup that shows the text verbatim in HTML and in Markdown."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    return Markup(str(value).translate(_TABLE))


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _fmt(value: float) -> str:
    if value == 0 or 0.001 <= abs(value) < 100000:
        return f"{value:.4g}"
    return f"{value:.3e}"


STATE_FILL = {"approved": "#2e7d32", "candidate": "#ffffff", "rejected": "#9e9e9e", "deprecated": "#bdbdbd"}


def trend_chart(versions: Sequence[Mapping[str, Any]], metric: str, *, width: int = 360, height: int = 170) -> Markup:
    """One metric across a model's versions: a line, one marker per version.

    Approved versions are filled green, candidates hollow, rejected and deprecated
    grey; versions running on a target carry an outer ring.
    """
    points = []
    for v in versions:
        value = dict(v["metrics"]).get(metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            points.append((v, float(value)))
    title = f"{metric} across versions"
    left, right, top, bottom = 52, 12, 24, 28
    inner_w, inner_h = width - left - right, height - top - bottom
    parts = [
        f'<svg class="catalog-chart" role="img" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
        f'<text x="{left}" y="15" class="chart-title" font-size="12" font-weight="bold" fill="currentColor">'
        f"{esc(_short(metric, 48))}</text>",
        f'<rect x="{left}" y="{top}" width="{inner_w}" height="{inner_h}" fill="none" stroke="#ccc"/>',
    ]
    if not points:
        parts.append(f'<text x="{left + 8}" y="{top + 20}" font-size="11" fill="currentColor">no values</text></svg>')
        return Markup("".join(parts))
    values = [p[1] for p in points]
    low, high = min(values), max(values)
    if high == low:
        pad = abs(high) * 0.05 or 1.0
        low, high = low - pad, high + pad

    def x_of(i: int) -> float:
        return left + (inner_w / 2 if len(points) == 1 else inner_w * i / (len(points) - 1))

    def y_of(value: float) -> float:
        return top + inner_h - inner_h * (value - low) / (high - low)

    parts.append(f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end" fill="currentColor">{esc(_fmt(high))}</text>')
    parts.append(f'<text x="{left - 4}" y="{top + inner_h}" font-size="10" text-anchor="end" fill="currentColor">{esc(_fmt(low))}</text>')
    line = " ".join(f"{_num(x_of(i))},{_num(y_of(val))}" for i, (_, val) in enumerate(points))
    parts.append(f'<polyline points="{line}" fill="none" stroke="#1565c0" stroke-width="1.5"/>')
    step = max(1, math.ceil(len(points) / 12))
    for i, (v, value) in enumerate(points):
        x, y = _num(x_of(i)), _num(y_of(value))
        state = str(v["state"])
        deployed = list(v.get("deployed_to") or [])
        label = f"v{v['version']} {metric} = {_fmt(value)} ({state}"
        label += f"; runs on {', '.join(deployed)})" if deployed else ")"
        parts.append(f'<g class="point state-{esc(state)}{" deployed" if deployed else ""}"><title>{esc(label)}</title>')
        if deployed:
            parts.append(f'<circle cx="{x}" cy="{y}" r="7.5" fill="none" stroke="#ef6c00" stroke-width="2"/>')
        parts.append(f'<circle cx="{x}" cy="{y}" r="4.5" fill="{STATE_FILL.get(state, "#ffffff")}" stroke="#1565c0" stroke-width="1.5"/></g>')
        if i % step == 0 or i == len(points) - 1:
            parts.append(f'<text x="{x}" y="{top + inner_h + 14}" font-size="10" text-anchor="middle" fill="currentColor">v{v["version"]}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


_KIND_FILL = {"model": "#e3f2fd", "data": "#e8f5e9", "code": "#fff3e0", "image": "#f3e5f5", "self": "#1565c0"}
MAX_NODES = 12


def lineage_diagram(model: Mapping[str, Any], root: str, *, width: int = 820) -> Markup:
    """One hop each way: parent models, data, code and image → this model → derived models.

    ``root`` is the relative path from the page to the site root; model nodes link to
    ``{root}models/<name>/``.
    """
    lineage = model["lineage"]
    left_nodes: list[tuple[str, str, str | None]] = []   # (kind, label, model name to link)
    for p in lineage["parents"]:
        left_nodes.append(("model", f"{p['model']} " + ", ".join(f"v{n}" for n in p["versions"]), p["model"]))
    for kind in ("data", "code", "image"):
        for item in lineage[kind]:
            left_nodes.append((kind, item, None))
    right_nodes = [
        ("model", f"{c['model']} " + ", ".join(f"v{n}" for n in c["versions"]), c["model"])
        for c in lineage["children"]
    ]
    left_nodes, left_more = _cap(left_nodes)
    right_nodes, right_more = _cap(right_nodes)
    rows = max(len(left_nodes), len(right_nodes), 1)
    node_h, gap, top = 30, 10, 28
    height = top + rows * (node_h + gap) + 10
    col_w = 250
    xs = (10, (width - col_w) // 2, width - col_w - 10)
    center_y = top + (rows * (node_h + gap) - gap) / 2 - node_h / 2

    parts = [
        f'<svg class="catalog-lineage" role="img" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{esc("lineage of " + model["name"])}">',
        f"<title>{esc('lineage of ' + model['name'])}</title>",
        f'<text x="{xs[0]}" y="16" font-size="11" fill="currentColor">upstream (models, data, code, image)</text>',
        f'<text x="{xs[2]}" y="16" font-size="11" fill="currentColor">derived models</text>',
    ]

    def column(nodes: list[tuple[str, str, str | None]], more: int, x: int, edge_from_left: bool) -> None:
        for i, (kind, label, link) in enumerate(nodes + ([("more", f"+{more} more", None)] if more else [])):
            y = top + i * (node_h + gap)
            x1, x2 = (x + col_w, xs[1]) if edge_from_left else (xs[1] + col_w, x)
            y1, y2 = (y + node_h / 2, center_y + node_h / 2) if edge_from_left else (center_y + node_h / 2, y + node_h / 2)
            mid = (x1 + x2) / 2
            parts.append(
                f'<path d="M{_num(x1)},{_num(y1)} C{_num(mid)},{_num(y1)} {_num(mid)},{_num(y2)} {_num(x2)},{_num(y2)}" '
                f'fill="none" stroke="#90a4ae" stroke-width="1.2"/>'
            )
            parts.append(_node(x, y, col_w, node_h, kind, label, link, root))

    column(left_nodes, left_more, xs[0], True)
    column(right_nodes, right_more, xs[2], False)
    parts.append(_node(xs[1], int(center_y), col_w, node_h, "self", model["name"], None, root))
    parts.append("</svg>")
    return Markup("".join(parts))


def _cap(nodes: list[tuple[str, str, str | None]]) -> tuple[list[tuple[str, str, str | None]], int]:
    if len(nodes) <= MAX_NODES:
        return nodes, 0
    return nodes[: MAX_NODES - 1], len(nodes) - (MAX_NODES - 1)


def _node(x: float, y: float, w: int, h: int, kind: str, label: str, link: str | None, root: str) -> str:
    fill = _KIND_FILL.get(kind, "#eceff1")
    color = "#ffffff" if kind == "self" else "#263238"
    prefix = "" if kind in ("self", "more") else f"{kind}: "
    full = prefix + label
    body = (
        f'<g class="node node-{esc(kind)}"><title>{esc(full)}</title>'
        f'<rect x="{_num(x)}" y="{_num(y)}" width="{w}" height="{h}" rx="5" fill="{fill}" stroke="#78909c"/>'
        f'<text x="{_num(x + 8)}" y="{_num(y + h / 2 + 4)}" font-size="12" fill="{color}">{esc(_short(full, 36))}</text></g>'
    )
    if link is None:
        return body
    return f'<a href="{esc(root)}models/{esc(link)}/">{body}</a>'
