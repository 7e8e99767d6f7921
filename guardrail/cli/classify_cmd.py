"""``guardrail classify``: classify texts given as arguments or the rows of a JSONL file.

- ``guardrail classify TEXT...`` prints one JSON object per text: ``text`` plus the
  Classification fields.
- ``guardrail classify --input F.jsonl [--text-field text] [--output OUT.jsonl]`` writes each
  input object with the Classification fields added (an existing field of the same name is
  overwritten), one per line, in input order; ``-`` means stdin / stdout. A ``.csv`` input
  is read as CSV, output is always JSONL. Rows are classified in batches as they stream in,
  so memory stays flat on large files.

A row that is not a JSON object, lacks the text field or holds a non-string there stops the
command: the rows before it are written, then one ``FILE:LINE: why`` line goes to stderr
and the exit status is 1. Passing bad rows through with an error field would hand the next
tool in a pipeline rows it cannot tell from classified ones unless it knows to look.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from guardrail.cli._model_args import add_model_arguments
from guardrail.errors import ConfigError
from guardrail.evaluation.readers import iter_records, text_field

__all__ = ["register", "run"]

#: Rows per classify_batch call: large enough to amortise Python overhead per call.
BATCH_ROWS = 64


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "classify",
        help="classify response texts (arguments or a JSONL file)",
        description="Print the refusal verdict, score, kind and category of each text.",
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="response texts to classify")
    parser.add_argument("--input", metavar="FILE", help="JSONL (or .csv) file of rows; - = stdin")
    parser.add_argument("--text-field", default="text", help="field holding the text (text)")
    parser.add_argument("--output", metavar="FILE", default="-", help="JSONL output; - = stdout")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def load_classifier(args: argparse.Namespace) -> Any:
    # Imported here so `guardrail --help` and the other commands never load onnxruntime.
    from guardrail.model import RefusalClassifier

    return RefusalClassifier.load(
        args.model_dir, threads=args.threads, tail_threshold=args.tail_threshold
    )


@contextmanager
def _output(path: str) -> Iterator[TextIO]:
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        # Opened outside `with` so that only the open's OSError becomes a ConfigError.
        handle = Path(path).open("w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    with handle:
        yield handle


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    if args.input is not None and args.texts:
        raise ConfigError("give TEXT arguments or --input FILE, not both")
    if args.input is None and not args.texts:
        raise ConfigError("nothing to classify: give TEXT arguments or --input FILE")
    classifier = load_classifier(args)
    with _output(args.output) as out:
        if args.input is None:
            for text, result in zip(args.texts, classifier.classify_batch(args.texts), strict=True):
                out.write(_dump({"text": text, **result.to_dict()}) + "\n")
            return 0
        _classify_file(classifier, args.input, args.text_field, out)
    return 0


def _classify_file(classifier: Any, path: str, field: str, out: TextIO) -> None:
    pending: list[dict[str, Any]] = []
    texts: list[str] = []

    def flush() -> None:
        for row, result in zip(pending, classifier.classify_batch(texts), strict=True):
            row.update(result.to_dict())
            out.write(_dump(row) + "\n")
        pending.clear()
        texts.clear()

    try:
        for number, row in iter_records(path):
            texts.append(text_field(path, number, row, field))
            pending.append(row)
            if len(pending) >= BATCH_ROWS:
                flush()
    except ConfigError:
        flush()  # the rows before the bad one are still written, in order
        raise
    flush()
