"""Where two model directories disagree, on every response in ../shared/data.

Every row of the four sources the training code reads (XSTest and its replication: train,
val and dev; refusal_direction and JailbreakBench: the rows kept for training and the many
the per-file caps left out) is classified by both models, as the runtime classifies. The
counts say how often the verdict, or a refusal's category or kind, differs, per source, with
the first differing rows. It is the check for a change that should not change answers (an
early exit, a graph rewrite, a faster tokenizer road), on far more text than the dev split.

    python -m benchmarks.model_agreement --compare-dir /path/to/other/onnx_models
        [--model-dir DIR] [--examples 10]
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import DATA_DIR, model_info, write_result
from guardrail.classification import Classifier
from guardrail.model import RefusalClassifier
from guardrail.training.sources import (
    Example,
    load_jailbreakbench,
    load_refusal_direction,
    load_xstest,
)

__all__ = ["compare", "main"]


def _rows(data_dir: Path) -> list[Example]:
    loaders = (load_xstest, load_refusal_direction, load_jailbreakbench)
    return [row for load in loaders for row in load(data_dir)]


def compare(
    shipped: Classifier, other: Classifier, rows: Sequence[Example], examples: int
) -> dict[str, Any]:
    """Per source: rows, verdicts that differ, categories or kinds of refusals that differ."""
    counts: dict[str, Counter[str]] = {}
    differing: list[dict[str, str]] = []
    for row in rows:
        a, b = shipped.classify(row.text), other.classify(row.text)
        source = counts.setdefault(row.source.split("/")[0], Counter())
        source["rows"] += 1
        if a.verdict != b.verdict:
            source["verdicts_differ"] += 1
        elif a.is_refusal and (a.category, a.kind) != (b.category, b.kind):
            source["categories_differ"] += 1
        else:
            continue
        if len(differing) < examples:
            differing.append(
                {
                    "source": row.source,
                    "shipped": f"{a.verdict}/{a.category}",
                    "other": f"{b.verdict}/{b.category}",
                    "text": row.text[:200],
                }
            )
    total = Counter[str]()
    for source_counts in counts.values():
        total.update(source_counts)
    return {
        "by_source": {name: dict(c) for name, c in counts.items()},
        "total": dict(total),
        "examples": differing,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the bundled model")
    parser.add_argument("--compare-dir", type=Path, required=True, help="the other model")
    parser.add_argument("--examples", type=int, default=10, help="differing rows to keep")
    args = parser.parse_args(argv)
    rows = _rows(DATA_DIR)
    shipped = RefusalClassifier.load(args.model_dir)
    other = RefusalClassifier.load(args.compare_dir)
    result = compare(shipped, other, rows, args.examples)
    for name, c in result["by_source"].items():
        rows_n, verdicts = c.get("rows", 0), c.get("verdicts_differ", 0)
        print(
            f"{name:20s} rows {rows_n:5d}  verdicts differ {verdicts:3d}"
            f"  categories/kinds differ {c.get('categories_differ', 0):3d}"
        )
    payload = {"compared_with": model_info(args.compare_dir), **result}
    print(f"-> {write_result('model_agreement', payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
