"""``guardrail eval``: score the model and the string-match baselines on a labelled file.

Labels may be ``compliance`` / ``partial_refusal`` / ``full_refusal`` or XSTest's
``1_full_compliance`` / ``2_full_refusal`` / ``3_partial_refusal``. Printed: binary
precision/recall/F1 (refusal = partial or full) for every system side by side, the model's
3-class per-class scores, macro-F1 and confusion matrix, and a per-source breakdown when
the rows carry a source field. ``--json OUT`` writes every figure (benchmarks read it).

The baselines' phrase lists are external data (see guardrail/evaluation/baselines.py); when
they cannot be found the model is still evaluated and the report says so.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from guardrail.cli._model_args import add_model_arguments
from guardrail.cli.classify_cmd import load_classifier
from guardrail.errors import ConfigError
from guardrail.evaluation import (
    evaluate,
    find_data_dir,
    format_report,
    load_baselines,
    read_labelled,
)
from guardrail.evaluation.baselines import Baseline

__all__ = ["MODEL_SYSTEM", "register", "run"]

#: The model's name in reports, next to the baselines' names.
MODEL_SYSTEM = "guardrail"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="precision/recall/F1 of the model and baselines on a labelled file",
        description="Evaluate the refusal classifier and string-match baselines.",
    )
    parser.add_argument("file", metavar="FILE", help="labelled .jsonl or .csv file")
    parser.add_argument("--text-field", default="text", help="field holding the text (text)")
    parser.add_argument("--label-field", default="label", help="field holding the label (label)")
    parser.add_argument(
        "--source-field", default="source", help="field to break results down by (source)"
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the baselines' phrase lists are (default: $GUARDRAIL_DATA_DIR, "
        "else ../shared/data)",
    )
    parser.add_argument("--json", metavar="OUT", help="also write all figures to this JSON file")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def _baselines(data_dir: str | None) -> tuple[tuple[Baseline, ...], str | None]:
    found = find_data_dir(data_dir)
    if found is None:
        return (), "no data directory (set --data-dir or GUARDRAIL_DATA_DIR)"
    try:
        return load_baselines(found), None
    except ConfigError as exc:
        if data_dir is not None:  # the user named the directory: a missing file is an error
            raise
        return (), str(exc)


def run(args: argparse.Namespace) -> int:
    rows = read_labelled(args.file, args.text_field, args.label_field, args.source_field)
    baselines, note = _baselines(args.data_dir)
    classifier = load_classifier(args)
    texts = [row.text for row in rows]
    started = time.perf_counter()
    results = classifier.classify_batch(texts)
    seconds = time.perf_counter() - started
    predictions: dict[str, list[str]] = {MODEL_SYSTEM: [r.verdict for r in results]}
    for baseline in baselines:
        predictions[baseline.name] = [baseline.predict(text) for text in texts]
    report = evaluate(
        args.file,
        rows,
        predictions,
        baselines_note=note,
        extra={
            "model": {
                "dir": str(classifier.model_dir),
                "version": classifier.config.model_version,
                "sha256": classifier.model_sha256,
                "threads": classifier.threads,
                "tail_threshold": classifier.config.tail_refusal_threshold,
                "tail_paragraph_tokens": classifier.config.tail_paragraph_tokens,
                "int8_weights": classifier.int8_weights,
            },
            "classify_seconds": seconds,
            "classify_ms_per_text": 1000 * seconds / len(texts),
        },
    )
    print(format_report(report))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        except OSError as exc:
            raise ConfigError(f"{args.json}: cannot write: {exc.strerror or exc}") from exc
    return 0
