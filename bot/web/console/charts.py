"""Server-rendered SVG charts for the analytics page: no JavaScript library, no inline styles (the
console's CSP allows none), accessible (`role="img"`, `<title>` and `<desc>` naming the chart and
its numbers; the page shows the same numbers in a table beside each chart)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 640, 220
PAD_L, PAD_R, PAD_T, PAD_B = 44, 12, 12, 36


def _fmt(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}"


def _svg(chart_id: str, title: str, desc: str, body: list[str], height: int = HEIGHT) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'viewBox="0 0 {WIDTH} {height}" '
            f'aria-labelledby="{chart_id}-t {chart_id}-d"><title id="{chart_id}-t">{escape(title)}</title>'
            f'<desc id="{chart_id}-d">{escape(desc)}</desc>' + "".join(body) + "</svg>")


def _axis(top: float, height: int, label_max: str) -> list[str]:
    base = height - PAD_B
    return [f'<line class="axis" x1="{PAD_L}" y1="{base}" x2="{WIDTH - PAD_R}" y2="{base}"/>',
            f'<line class="axis" x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{base}"/>',
            f'<text class="tick" x="{PAD_L - 4}" y="{PAD_T + 4}" text-anchor="end">'
            f'{escape(label_max)}</text>',
            f'<text class="tick" x="{PAD_L - 4}" y="{base}" text-anchor="end">0</text>']


def _labels(labels: Sequence[str], xs: Sequence[float], height: int) -> list[str]:
    """At most 8 x labels, evenly spaced (a month of days would overlap)."""
    n = len(labels)
    step = max(1, -(-n // 8))
    return [f'<text class="tick" x="{xs[i]:.1f}" y="{height - PAD_B + 16}" text-anchor="middle">'
            f'{escape(labels[i][5:])}</text>' for i in range(0, n, step)]


def bars(chart_id: str, title: str, labels: Sequence[str], series: dict[str, Sequence[float]],
         unit: str = "") -> str:
    """Grouped vertical bars, one group per label, one bar per series (at most 3 series)."""
    names = list(series)
    top = max([max(v, default=0) for v in series.values()] + [0]) or 1
    n = max(len(labels), 1)
    plot_w = WIDTH - PAD_L - PAD_R
    group_w = plot_w / n
    bar_w = max(group_w * 0.8 / max(len(names), 1), 1)
    plot_h = HEIGHT - PAD_T - PAD_B
    body = _axis(top, HEIGHT, _fmt(top) + unit)
    centres = []
    for i, label in enumerate(labels):
        x0 = PAD_L + i * group_w + group_w * 0.1
        centres.append(PAD_L + (i + 0.5) * group_w)
        for j, name in enumerate(names):
            v = series[name][i]
            h = plot_h * v / top
            body.append(f'<rect class="s{j}" x="{x0 + j * bar_w:.1f}" y="{HEIGHT - PAD_B - h:.1f}" '
                        f'width="{bar_w:.1f}" height="{h:.1f}"><title>{escape(label)} {escape(name)}: '
                        f'{_fmt(v)}{escape(unit)}</title></rect>')
    body += _labels(labels, centres, HEIGHT)
    body += _legend(names)
    desc = "; ".join(f"{name}: " + ", ".join(f"{lab} {_fmt(v)}{unit}"
                                             for lab, v in zip(labels, vals, strict=True))
                     for name, vals in series.items())
    return _svg(chart_id, title, desc or "no data", body)


def line(chart_id: str, title: str, labels: Sequence[str], values: Sequence[float | None],
         top: float = 1.0, percent: bool = True) -> str:
    """One line (gaps where a value is None), for rates between 0 and `top`."""
    n = max(len(labels), 1)
    plot_w = WIDTH - PAD_L - PAD_R
    plot_h = HEIGHT - PAD_T - PAD_B
    xs = [PAD_L + (i + 0.5) * plot_w / n for i in range(len(labels))]
    body = _axis(top, HEIGHT, "100%" if percent else _fmt(top))
    segment: list[str] = []
    segments = []
    for x, v in zip(xs, values, strict=True):
        if v is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        y = HEIGHT - PAD_B - plot_h * v / top
        segment.append(f"{x:.1f},{y:.1f}")
        body.append(f'<circle class="s0" cx="{x:.1f}" cy="{y:.1f}" r="3"/>')
    if segment:
        segments.append(segment)
    body += [f'<polyline class="line s0" points="{" ".join(s)}"/>' for s in segments]
    body += _labels(labels, xs, HEIGHT)

    def show(v: float | None) -> str:
        return "no conversations" if v is None else (f"{v * 100:.1f}%" if percent else _fmt(v))

    desc = ", ".join(f"{lab} {show(v)}" for lab, v in zip(labels, values, strict=True))
    return _svg(chart_id, title, desc or "no data", body)


def hbars(chart_id: str, title: str, items: Sequence[tuple[str, float]], unit: str = "") -> str:
    """Horizontal bars, one per item (labels on the left): reasons, intents, FAQ entries."""
    row = 22
    height = max(len(items), 1) * row + 16
    label_w = 200
    top = max([v for _, v in items] + [0]) or 1
    body = []
    for i, (label, v) in enumerate(items):
        y = 8 + i * row
        w = (WIDTH - label_w - 70) * v / top
        body.append(f'<text class="tick" x="{label_w - 6}" y="{y + 14}" text-anchor="end">'
                    f'{escape(label[:32])}</text>')
        body.append(f'<rect class="s0" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}"/>')
        body.append(f'<text class="tick" x="{label_w + w + 6:.1f}" y="{y + 14}">'
                    f'{_fmt(v)}{escape(unit)}</text>')
    if not items:
        body.append(f'<text class="tick" x="{WIDTH / 2}" y="24" text-anchor="middle">no data</text>')
    desc = ", ".join(f"{label}: {_fmt(v)}{unit}" for label, v in items)
    return _svg(chart_id, title, desc or "no data", body, height)


def _legend(names: list[str]) -> list[str]:
    out = []
    x = PAD_L
    for j, name in enumerate(names):
        out.append(f'<rect class="s{j}" x="{x}" y="{HEIGHT - 14}" width="10" height="10"/>')
        out.append(f'<text class="tick" x="{x + 14}" y="{HEIGHT - 5}">{escape(name)}</text>')
        x += 24 + 8 * len(name)
    return out


def report_charts(report: dict) -> dict[str, str]:
    """The page's charts from `Analytics.report(...).as_dict()`."""
    series = report["series"]
    labels = [s["bucket"] for s in series]
    return {
        "volume": bars("volume", "Conversations and messages", labels,
                       {"conversations": [s["conversations"] for s in series],
                        "messages": [s["messages"] for s in series]}),
        "resolution": line("resolution", "Automated resolution rate", labels,
                           [s["resolution_rate"] for s in series]),
        "handoff_reasons": hbars("handoff_reasons", "Hand-offs by reason",
                                 [(r["reason"], r["conversations"]) for r in report["handoff_reasons"]]),
        "satisfaction": bars("satisfaction", "Thumbs and answers confirmed", labels,
                             {"thumbs up": [s["up"] for s in series],
                              "thumbs down": [s["down"] for s in series],
                              "answer: no": [s["no"] for s in series]}),
        "intents": hbars("intents", "Top intents",
                         [(r["intent"], r["turns"]) for r in report["top_intents"]]),
    }
