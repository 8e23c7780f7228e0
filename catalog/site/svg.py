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


_EMPTY = Markup("")
_new_markup = str.__new__   # (Markup(text) without Markup.__new__'s checks: text is a str already)
# The escapes of texts printed lately: a page prints the same names, kinds, actors and dates many
# times (every printed value goes through esc), and str.translate costs twenty dict look-ups.
_SEEN: dict[str, Markup] = {}
_SEEN_MAX = 1 << 16
_SEEN_LONGEST = 256


def esc(value: Any) -> Markup:
    """Text → markup that shows the text verbatim in HTML and in Markdown."""
    if value.__class__ is not str:
        if isinstance(value, Markup):
            return value
        if value is None:
            return _EMPTY
        value = str(value)
    found = _SEEN.get(value)
    if found is None:
        if len(value) > _SEEN_LONGEST:
            return _new_markup(Markup, value.translate(_TABLE))
        if len(_SEEN) >= _SEEN_MAX:
            _SEEN.clear()
        found = _SEEN[value] = _new_markup(Markup, value.translate(_TABLE))
    return found


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
LABEL_CHARS = 38

# One node of the diagram: kind, label (first line), detail (second line), model name to link.
_Node = tuple[str, str, str, "str | None"]


def _middle(text: str, limit: int) -> str:
    """``text`` cut in the middle when too long: both ends stay, where references differ."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "\u2026" + text[len(text) - (limit - 1 - head):]


def distinct_labels(labels: Sequence[str], limit: int = LABEL_CHARS) -> list[str]:
    """Each label cut to ``limit`` characters (in the middle), never two alike: labels that
    would read the same are numbered. The full text is on the page beside the diagram."""
    short = [_middle(t, limit) for t in labels]
    seen: dict[str, int] = {}
    for t in short:
        seen[t] = seen.get(t, 0) + 1
    count: dict[str, int] = {}
    out = []
    for t in short:
        if seen[t] > 1:
            count[t] = count.get(t, 0) + 1
            suffix = f" #{count[t]}"
            t = _middle(t, limit - len(suffix)) + suffix if len(t) + len(suffix) > limit else t + suffix
        out.append(t)
    return out


def lineage_diagram(model: Mapping[str, Any], root: str, urls: Mapping[str, str] | None = None, *,
                    width: int = 820) -> Markup:
    """One hop each way: parent models, data, code and image → this model → derived models.

    A dataset, repository or image is one node however many versions used it; its
    second line says how many snapshots (commits, tags) and which versions, and the
    table under the diagram (``_lineage.md.j2``) has every reference in full. Model
    nodes link to ``{root}<url>`` from ``urls`` (model name → page; out of the tab order:
    the table's links are the keyboard's way to the same pages).
    """
    lineage = model["lineage"]
    urls = urls or {}
    left: list[_Node] = []
    for p in lineage["parents"]:
        left.append(("model", f"model: {p['model']}", ", ".join(f"v{n}" for n in p["versions"]), p["model"]))
    for kind in ("data", "code", "image"):
        for group in lineage[kind]:
            left.append((kind, f"{kind}: {group['source']}", group["summary"], None))
    right: list[_Node] = [
        ("model", f"model: {c['model']}", ", ".join(f"v{n}" for n in c["versions"]), c["model"])
        for c in lineage["children"]
    ]
    left, left_more = _cap(left)
    right, right_more = _cap(right)
    rows = max(len(left) + bool(left_more), len(right) + bool(right_more), 1)
    node_h, gap, top = 40, 10, 28
    height = top + rows * (node_h + gap) + 10
    col_w = 260
    xs = (10, (width - col_w) // 2, width - col_w - 10)
    center_y = top + (rows * (node_h + gap) - gap) / 2 - node_h / 2
    short = dict(zip([id(n) for n in left + right], distinct_labels([n[1] for n in left + right])))

    n_up, n_down = len(lineage["parents"]) + sum(len(lineage[k]) for k in ("data", "code", "image")), len(lineage["children"])
    title = f"lineage of {model['name']}: {n_up} upstream, {n_down} derived; every reference is in the table below"
    parts = [
        f'<svg class="catalog-lineage" role="group" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
        f'<text x="{xs[0]}" y="16" font-size="11" fill="currentColor">upstream (models, data, code, image)</text>',
        f'<text x="{xs[2]}" y="16" font-size="11" fill="currentColor">derived models</text>',
    ]

    def column(nodes: list[_Node], more: int, x: int, edge_from_left: bool) -> None:
        extra: list[_Node] = [("more", f"+{more} more (see the table)", "", None)] if more else []
        for i, node in enumerate(nodes + extra):
            kind, label, detail, link = node
            y = top + i * (node_h + gap)
            x1, x2 = (x + col_w, xs[1]) if edge_from_left else (xs[1] + col_w, x)
            y1, y2 = (y + node_h / 2, center_y + node_h / 2) if edge_from_left else (center_y + node_h / 2, y + node_h / 2)
            mid = (x1 + x2) / 2
            parts.append(
                f'<path d="M{_num(x1)},{_num(y1)} C{_num(mid)},{_num(y1)} {_num(mid)},{_num(y2)} {_num(x2)},{_num(y2)}" '
                f'fill="none" stroke="#607d8b" stroke-width="1.2"/>'
            )
            shown = short.get(id(node), label)
            parts.append(_node(x, y, col_w, node_h, kind, shown, label, detail, urls.get(link) if link else None, root))

    column(left, left_more, xs[0], True)
    column(right, right_more, xs[2], False)
    parts.append(_node(xs[1], int(center_y), col_w, node_h, "self", _middle(model["name"], LABEL_CHARS), model["name"],
                       "", None, root))
    parts.append("</svg>")
    return Markup("".join(parts))


def _cap(nodes: list[_Node]) -> tuple[list[_Node], int]:
    if len(nodes) <= MAX_NODES:
        return nodes, 0
    return nodes[: MAX_NODES - 1], len(nodes) - (MAX_NODES - 1)


def _node(x: float, y: float, w: int, h: int, kind: str, label: str, full: str, detail: str, url: str | None,
          root: str) -> str:
    fill = _KIND_FILL.get(kind, "#eceff1")
    color = "#ffffff" if kind == "self" else "#263238"
    text_y = y + h / 2 + 4 if not detail else y + 16
    body = (
        f'<g class="node node-{esc(kind)}"><title>{esc(full + (": " + detail if detail else ""))}</title>'
        f'<rect x="{_num(x)}" y="{_num(y)}" width="{w}" height="{h}" rx="5" fill="{fill}" stroke="#78909c"/>'
        f'<text class="node-label" x="{_num(x + 8)}" y="{_num(text_y)}" font-size="12" fill="{color}">{esc(label)}</text>'
    )
    if detail:
        body += (f'<text class="node-detail" x="{_num(x + 8)}" y="{_num(y + 32)}" font-size="11" fill="{color}">'
                 f"{esc(_middle(detail, LABEL_CHARS + 4))}</text>")
    body += "</g>"
    if url is None:
        return body
    return f'<a href="{esc(root)}{esc(url)}" tabindex="-1">{body}</a>'
