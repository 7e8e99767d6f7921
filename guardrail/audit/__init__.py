"""Refusal composition of a dataset or response log: ``guardrail audit``."""

from guardrail.audit.readers import FileRows, Row, Skip, extract_text
from guardrail.audit.render_html import render_html
from guardrail.audit.render_table import render_table
from guardrail.audit.report import AuditReport, Example, GroupStats
from guardrail.audit.runner import AuditOptions, audit_file

__all__ = [
    "AuditOptions",
    "AuditReport",
    "Example",
    "FileRows",
    "GroupStats",
    "Row",
    "Skip",
    "audit_file",
    "extract_text",
    "render_html",
    "render_table",
]
