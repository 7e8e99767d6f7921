"""A self-contained HTML audit report: inline CSS and SVG bar charts, no scripts, no CDN.

Every piece of dataset text is escaped; the file can be mailed or attached to a ticket and
opened offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from guardrail.audit.report import AuditReport, GroupStats
from guardrail.taxonomy import CATEGORIES, CATEGORY_KIND, VERDICTS

__all__ = ["render_html"]

_COLORS = {"compliance": "#4c9a5f", "partial_refusal": "#e0a030", "full_refusal": "#c8453c"}
_KIND_COLORS = {"should_not": "#8a4fbf", "cannot": "#3f7fbf"}
_BAR_H = 20
_LABEL_W = 190
_CHART_W = 640

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:960px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{padding:.25rem .5rem;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#555}.ex{font-family:ui-monospace,monospace;font-size:.82rem}
svg text{font-size:12px;fill:#222}
"""


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _bar_chart(rows: Sequence[tuple[str, int, float, str]], title: str) -> str:
    """Horizontal bars: (label, count, fraction, color) per row, scaled to the largest."""
    if not rows:
        return ""
    top = max(fraction for _, _, fraction, _ in rows) or 1.0
    span = _CHART_W - _LABEL_W - 110
    height = len(rows) * (_BAR_H + 6) + 6
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{_CHART_W}" height="{height}" '
        f'viewBox="0 0 {_CHART_W} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, count, fraction, color) in enumerate(rows):
        y = 6 + i * (_BAR_H + 6)
        width = max(1.0, span * fraction / top) if count else 0.0
        parts.append(
            f'<text x="{_LABEL_W - 8}" y="{y + 14}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{_LABEL_W}" y="{y}" width="{width:.1f}" height="{_BAR_H}" fill="{color}">'
            f"<title>{escape(label)}: {count:,} ({_pct(fraction)})</title></rect>"
            f'<text x="{_LABEL_W + width + 6:.1f}" y="{y + 14}">{count:,} ({_pct(fraction)})</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _group_section(group: GroupStats, heading: str) -> str:
    verdicts = [
        (v, group.verdicts.get(v, 0), group.rate(group.verdicts.get(v, 0)), _COLORS[v])
        for v in VERDICTS
    ]
    refusals = group.refusals
    kinds = [
        (
            k,
            group.kinds.get(k, 0),
            group.kinds.get(k, 0) / refusals if refusals else 0.0,
            _KIND_COLORS[k],
        )
        for k in ("should_not", "cannot")
    ]
    ranked = sorted(
        (c for c in CATEGORIES if group.categories.get(c)),
        key=lambda c: (-group.categories[c], CATEGORIES.index(c)),
    )
    categories = [
        (
            c,
            group.categories[c],
            group.categories[c] / refusals,
            _KIND_COLORS.get(CATEGORY_KIND.get(c) or "", "#888"),
        )
        for c in ranked
    ]
    html = [
        f"<h2>{escape(heading)}</h2>",
        f'<p class="meta">{group.total:,} responses, {refusals:,} refusals '
        f"({_pct(group.refusal_rate)})</p>",
        "<h3>Verdicts (share of all responses)</h3>",
        _bar_chart(verdicts, f"{heading}: verdicts"),
    ]
    if refusals:
        html += [
            "<h3>Refusal kinds (share of refusals)</h3>",
            _bar_chart(kinds, f"{heading}: kinds"),
            "<h3>Refusal categories (share of refusals)</h3>",
            _bar_chart(categories, f"{heading}: categories"),
        ]
    return "\n".join(html)


def _sources_section(report: AuditReport) -> str:
    name = report.source_field or "source"
    rows = [
        (g.name or "(empty)", g.refusals, g.refusal_rate, _COLORS["full_refusal"])
        for g in report.by_source
    ]
    table = [
        "<table><tr><th>" + escape(name) + "</th><th>rows</th><th>refusal rate</th>"
        "<th>full</th><th>partial</th><th>top category</th></tr>"
    ]
    for g in report.by_source:
        top = max(g.categories.items(), key=lambda kv: (kv[1], kv[0]), default=("-", 0))[0]
        table.append(
            f"<tr><td>{escape(g.name or '(empty)')}</td><td class=n>{g.total:,}</td>"
            f"<td class=n>{_pct(g.refusal_rate)}</td>"
            f"<td class=n>{_pct(g.rate(g.verdicts.get('full_refusal', 0)))}</td>"
            f"<td class=n>{_pct(g.rate(g.verdicts.get('partial_refusal', 0)))}</td>"
            f"<td>{escape(top)}</td></tr>"
        )
    table.append("</table>")
    return "\n".join(
        [
            f"<h2>By {escape(name)}</h2>",
            "<h3>Refusal rate</h3>",
            _bar_chart(rows, f"refusal rate by {name}"),
            *table,
        ]
    )


def _examples_section(group: GroupStats) -> str:
    rows = []
    for cell, samples in group.examples.items():
        for example in samples:
            rows.append(
                f"<tr><td>{escape(cell)}</td><td class=n>{example.refusal_score:.2f}</td>"
                f'<td class="ex">{escape(example.text)}</td></tr>'
            )
    if not rows:
        return ""
    return (
        "<h2>Examples</h2><table><tr><th>cell</th><th>score</th><th>text (truncated)</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def render_html(report: AuditReport) -> str:
    """The report as one HTML document."""
    skipped = sum(report.rows_skipped.values())
    field = f", text field <code>{escape(report.text_field)}</code>" if report.text_field else ""
    body = [
        f"<h1>Refusal audit: {escape(report.input)}</h1>",
        f'<p class="meta">{report.rows_read:,} rows read{field}; {report.rows_classified:,} '
        f"classified, {skipped:,} skipped; {report.seconds:.1f} s"
        + ("; stopped at --limit" if report.truncated_by_limit else "")
        + "</p>",
        _group_section(report.overall, "All responses"),
    ]
    if report.by_source:
        body.append(_sources_section(report))
    body.append(_examples_section(report.overall))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Refusal audit: {escape(report.input)}</title><style>{_CSS}</style></head>"
        "<body>\n" + "\n".join(part for part in body if part) + "\n</body></html>\n"
    )
