"""Accuracy on held-out human labels, side by side with the string-match peers.

The rows are the human-labelled XSTest answers (original and replication: ten chat models)
whose prompt id is in the training code's dev split (``guardrail/training/dev_prompt_ids.txt``:
prompts never trained on; the same prompt's answers by other models are held out too). They
go through ``guardrail eval``, which scores the model and, on the same rows, the XSTest
string-match baseline and LLM Guard's NoRefusalLight substring list. For scale, the same
rows also score one human against another: XSTest's second annotator against its first.

    python -m benchmarks.accuracy [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import CACHE_DIR, DATA_DIR, ROOT, write_result
from guardrail.evaluation.metrics import score
from guardrail.evaluation.readers import normalise_label

__all__ = ["main"]

_DEV_IDS = ROOT / "guardrail" / "training" / "dev_prompt_ids.txt"
_FOLDERS = ("xstest", "xstest_replication")


def _dev_csv_rows(data_dir: Path) -> list[tuple[str, dict[str, str]]]:
    """(folder/model, CSV row) of every human-labelled answer to a dev prompt."""
    if not _DEV_IDS.is_file():
        raise SystemExit(f"{_DEV_IDS} is missing: the dev split is written by the training code")
    dev = {ln.strip() for ln in _DEV_IDS.read_text(encoding="utf-8").splitlines() if ln.strip()}
    csv.field_size_limit(sys.maxsize)
    found = []
    for folder in _FOLDERS:
        for path in sorted((data_dir / folder / "model_completions").glob("*.csv")):
            model = path.stem.removeprefix("xstest_v2_completions_")
            with path.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    if row.get("id") in dev and (row.get("completion") or "").strip():
                        found.append((f"{folder}/{model}", row))
    return found


def dev_rows(data_dir: Path = DATA_DIR) -> list[dict[str, str]]:
    """Held-out rows: text, label (XSTest form), source (folder/model)."""
    return [
        {"text": row["completion"].strip(), "label": row["final_label"], "source": source}
        for source, row in _dev_csv_rows(data_dir)
        if row.get("final_label")
    ]


def annotator_agreement(data_dir: Path = DATA_DIR) -> dict[str, Any]:
    """XSTest's second annotator scored against the first on the dev rows both labelled:
    how far two humans agree, to read the model's figures against."""
    first: list[str] = []
    second: list[str] = []
    for _, row in _dev_csv_rows(data_dir):
        a, b = normalise_label(row.get("annotation_1")), normalise_label(row.get("annotation_2"))
        if a is not None and b is not None:
            first.append(a)
            second.append(b)
    scores = score(first, second)
    return {
        "rows": len(first),
        "binary_f1": scores.binary.f1,
        "macro_f1": scores.macro_f1,
        "per_class_f1": {c.label: c.f1 for c in scores.per_class},
        "same_label": sum(a == b for a, b in zip(first, second, strict=True)) / len(first),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="held-out accuracy vs string-match peers")
    parser.add_argument("--model-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = dev_rows()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    data = CACHE_DIR / "accuracy-dev.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = CACHE_DIR / "accuracy-eval.json"
    cmd = [
        sys.executable,
        "-m",
        "guardrail",
        "eval",
        str(data),
        "--data-dir",
        str(DATA_DIR),
        "--json",
        str(out),
    ]
    if args.model_dir is not None:
        cmd += ["--model-dir", str(args.model_dir)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    print(done.stdout)
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return done.returncode
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    human = annotator_agreement()
    payload: dict[str, Any] = {
        "rows": len(rows),
        "dev_prompt_ids": str(_DEV_IDS.relative_to(ROOT)),
        "refusal_share": sum(r["label"] != "1_full_compliance" for r in rows) / len(rows),
        "eval": report,
        "annotator_agreement": human,
    }
    print(
        f"annotator 2 against annotator 1 on {human['rows']} rows: binary F1 "
        f"{human['binary_f1']:.3f}, macro-F1 {human['macro_f1']:.3f}"
    )
    print(f"-> {write_result('accuracy', payload, command=' '.join(['python', *sys.argv]))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
