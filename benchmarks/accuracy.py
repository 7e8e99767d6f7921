"""Accuracy on held-out human labels, side by side with the string-match peers.

The rows are the human-labelled XSTest answers (original and replication: ten chat models)
whose prompt id is in the training code's dev split (``guardrail/training/dev_prompt_ids.txt``:
prompts never trained on; the same prompt's answers by other models are held out too). They
go through ``guardrail eval``, which scores the model and, on the same rows, the XSTest
string-match baseline and LLM Guard's NoRefusalLight substring list.

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

__all__ = ["main"]

_DEV_IDS = ROOT / "guardrail" / "training" / "dev_prompt_ids.txt"
_FOLDERS = ("xstest", "xstest_replication")


def dev_rows(data_dir: Path = DATA_DIR) -> list[dict[str, str]]:
    """Held-out rows: text, label (XSTest form), source (folder/model)."""
    if not _DEV_IDS.is_file():
        raise SystemExit(f"{_DEV_IDS} is missing: the dev split is written by the training code")
    dev = {ln.strip() for ln in _DEV_IDS.read_text(encoding="utf-8").splitlines() if ln.strip()}
    csv.field_size_limit(sys.maxsize)
    rows = []
    for folder in _FOLDERS:
        for path in sorted((data_dir / folder / "model_completions").glob("*.csv")):
            model = path.stem.removeprefix("xstest_v2_completions_")
            with path.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    text = (row.get("completion") or "").strip()
                    if row.get("id") in dev and text and row.get("final_label"):
                        rows.append(
                            {
                                "text": text,
                                "label": row["final_label"],
                                "source": f"{folder}/{model}",
                            }
                        )
    return rows


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
    payload = {
        "rows": len(rows),
        "dev_prompt_ids": str(_DEV_IDS.relative_to(ROOT)),
        "refusal_share": sum(r["label"] != "1_full_compliance" for r in rows) / len(rows),
        "eval": report,
    }
    print(f"-> {write_result('accuracy', payload, command=' '.join(['python', *sys.argv]))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
