"""Plain-text rendering of an audit for the terminal."""

from __future__ import annotations

from guardrail.audit.report import AuditReport, GroupStats
from guardrail.taxonomy import CATEGORIES, VERDICTS

__all__ = ["render_table"]


def _pct(value: float) -> str:
    return f"{value:6.1%}"


def _header(report: AuditReport) -> list[str]:
    skipped = sum(report.rows_skipped.values())
    detail = ", ".join(f"{k} {v:,}" for k, v in sorted(report.rows_skipped.items()))
    field = f' (text field "{report.text_field}")' if report.text_field else ""
    lines = [
        f"guardrail audit: {report.input}{field}",
        f"rows read {report.rows_read:,} | classified {report.rows_classified:,} | "
        f"skipped {skipped:,}{f' ({detail})' if detail else ''} | {report.seconds:.1f} s",
    ]
    if report.truncated_by_limit:
        lines.append("stopped at --limit: the rest of the file was not read")
    return lines


def _composition(group: GroupStats) -> list[str]:
    lines = ["", f"{'verdict':<28}{'count':>12}{'rate':>9}"]
    for verdict in VERDICTS:
        count = group.verdicts.get(verdict, 0)
        lines.append(f"  {verdict:<26}{count:>12,}{_pct(group.rate(count)):>9}")
    lines.append(f"  {'refusal rate (partial+full)':<38}{_pct(group.refusal_rate):>9}")
    refusals = group.refusals
    if not refusals:
        return lines
    lines += ["", f"{'kind':<28}{'count':>12}{'rate':>9}{'of refusals':>13}"]
    for kind in ("should_not", "cannot"):
        count = group.kinds.get(kind, 0)
        lines.append(
            f"  {kind:<26}{count:>12,}{_pct(group.rate(count)):>9}{_pct(count / refusals):>13}"
        )
    lines += ["", f"{'category':<28}{'count':>12}{'rate':>9}{'of refusals':>13}"]
    ranked = sorted(
        (c for c in CATEGORIES if group.categories.get(c)),
        key=lambda c: (-group.categories[c], CATEGORIES.index(c)),
    )
    for category in ranked:
        count = group.categories[category]
        lines.append(
            f"  {category:<26}{count:>12,}{_pct(group.rate(count)):>9}{_pct(count / refusals):>13}"
        )
    return lines


def _sources(report: AuditReport) -> list[str]:
    name = report.source_field or "source"
    width = max([len(name) + 2, *(len(g.name) + 4 for g in report.by_source)])
    width = min(width, 40)
    lines = [
        "",
        f"{'by ' + name:<{width}}{'rows':>10}{'refusal':>9}{'full':>8}{'partial':>9}  top category",
    ]
    for group in report.by_source:
        top = max(group.categories.items(), key=lambda kv: (kv[1], kv[0]), default=("-", 0))[0]
        label = group.name if len(group.name) <= width - 4 else group.name[: width - 5] + "…"
        lines.append(
            f"  {label or '(empty)':<{width - 2}}{group.total:>10,}{_pct(group.refusal_rate):>9}"
            f"{_pct(group.rate(group.verdicts.get('full_refusal', 0))):>8}"
            f"{_pct(group.rate(group.verdicts.get('partial_refusal', 0))):>9}  {top}"
        )
    return lines


def _examples(group: GroupStats) -> list[str]:
    if not group.examples:
        return []
    lines = ["", "examples"]
    for cell, samples in group.examples.items():
        if cell == "verdict:compliance" or not samples:
            continue
        lines.append(f"  {cell}")
        lines.extend(f"    {e.refusal_score:.2f}  {e.text}" for e in samples)
    return lines


def render_table(report: AuditReport) -> str:
    """The whole report as aligned text, ending with a newline."""
    lines = _header(report) + _composition(report.overall)
    if report.by_source:
        lines += _sources(report)
    lines += _examples(report.overall)
    return "\n".join(lines) + "\n"
