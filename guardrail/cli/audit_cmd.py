"""``guardrail audit FILE``: refusal composition of a dataset or response log."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from guardrail.cli._arg_types import int_at_least
from guardrail.cli._model_args import add_tail_threshold_argument
from guardrail.errors import ConfigError

__all__ = ["register", "run"]

_FORMATS = ("table", "json", "html")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="refusal composition of a dataset or response log (JSONL or CSV)",
        description=(
            "Classify every response in a JSONL or CSV file (optionally .gz) and report the "
            "rates of compliance, partial and full refusal, refusal kinds and categories, "
            "overall and per source/model column, with a few examples per cell. Chat rows "
            "(a 'messages' list) are read as their last assistant message."
        ),
    )
    parser.add_argument(
        "file", help="input .jsonl/.csv file (optionally .gz); - for JSONL on stdin"
    )
    parser.add_argument(
        "--text-field",
        help="field holding the response (default: first of response, "
        "completion, output, answer, text, content, messages, ... found in the first row)",
    )
    parser.add_argument(
        "--source-field",
        "--model-field",
        dest="source_field",
        help="field to break rates down by (e.g. model or dataset source)",
    )
    parser.add_argument(
        "--format", choices=_FORMATS, default="table", help="output format (default: table)"
    )
    parser.add_argument("--output", "-o", help="write the report here instead of stdout")
    parser.add_argument(
        "--examples",
        type=int_at_least(0),
        default=3,
        metavar="N",
        help="examples kept per verdict/category cell (default: 3)",
    )
    parser.add_argument("--limit", type=int_at_least(1), metavar="N", help="read at most N rows")
    parser.add_argument(
        "--batch-size",
        type=int_at_least(1),
        default=64,
        metavar="N",
        help="responses per classifier batch (default: 64)",
    )
    parser.add_argument(
        "--threads",
        type=int_at_least(1),
        metavar="N",
        help="inference threads (default: CPU count, at most 4)",
    )
    parser.add_argument("--model-dir", help="model directory (default: the bundled model)")
    add_tail_threshold_argument(parser)
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show a progress bar on stderr even when it is not a terminal",
    )
    progress.add_argument(
        "--no-progress", dest="progress", action="store_false", help="never show a progress bar"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so `guardrail --help` stays fast and needs no onnxruntime.
    from guardrail.audit import AuditOptions, audit_file, render_html, render_table
    from guardrail.audit.progress import Progress
    from guardrail.audit.readers import detect_format
    from guardrail.model import RefusalClassifier

    detect_format(args.file)  # a bad file name fails before the model loads
    if args.file != "-" and not Path(args.file).is_file():
        raise ConfigError(f"{args.file}: no such file")
    options = AuditOptions(
        text_field=args.text_field,
        source_field=args.source_field,
        examples=args.examples,
        limit=args.limit,
        batch_size=args.batch_size,
    )
    threads = args.threads or min(4, os.cpu_count() or 1)
    classifier = RefusalClassifier.load(
        args.model_dir, threads=threads, tail_threshold=args.tail_threshold
    )
    show = sys.stderr.isatty() if args.progress is None else args.progress
    total = None if args.file == "-" else Path(args.file).stat().st_size
    progress = Progress(sys.stderr, total) if show else None
    report = audit_file(args.file, classifier, options, progress)

    if args.format == "json":
        text = json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"
    elif args.format == "html":
        text = render_html(report)
    else:
        text = render_table(report)
    if args.output and args.output != "-":
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"wrote {args.format} report to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
