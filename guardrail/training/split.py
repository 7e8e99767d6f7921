"""Train/dev split of the human-labelled XSTest rows by prompt id, never by row.

The same 450 prompts recur across the 10 models, so a row split would leak a prompt's other
answers into training. The dev split holds ~20% of prompt ids, stratified by XSTest ``type``,
chosen with a fixed seed; the chosen ids are also written to ``dev_prompt_ids.txt`` beside
this module so ``guardrail eval`` runs can reproduce the exact split.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from guardrail.training.sources import Example

__all__ = [
    "DEV_FRACTION",
    "DEV_IDS_FILE",
    "SPLIT_SEED",
    "choose_dev_ids",
    "split",
    "write_dev_ids",
    "write_jsonl",
]

SPLIT_SEED = 20240521
DEV_FRACTION = 0.2
DEV_IDS_FILE = Path(__file__).with_name("dev_prompt_ids.txt")


def choose_dev_ids(
    rows: Iterable[Example], fraction: float = DEV_FRACTION, seed: int = SPLIT_SEED
) -> set[str]:
    """Pick ``fraction`` of the prompt ids of each XSTest type, deterministically."""
    by_type: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        by_type[row.prompt_type].add(row.prompt_id)
    rng = random.Random(seed)
    dev: set[str] = set()
    for ptype in sorted(by_type):
        ids = sorted(by_type[ptype], key=_id_key)
        rng.shuffle(ids)
        dev.update(ids[: round(len(ids) * fraction)])
    return dev


def _id_key(pid: str) -> tuple[int, str]:
    tail = pid.rsplit("-", 1)[-1]
    return (int(tail), pid) if tail.isdigit() else (0, pid)


def split(rows: Sequence[Example], dev_ids: set[str]) -> tuple[list[Example], list[Example]]:
    """Return (train, dev) rows: a row is dev when its prompt id is a dev id."""
    train = [r for r in rows if r.prompt_id not in dev_ids]
    dev = [r for r in rows if r.prompt_id in dev_ids]
    return train, dev


def write_dev_ids(dev_ids: set[str], path: Path = DEV_IDS_FILE) -> None:
    """Write the dev prompt ids, one per line, sorted."""
    path.write_text("".join(f"{i}\n" for i in sorted(dev_ids, key=_id_key)), encoding="utf-8")


def write_jsonl(rows: Iterable[Example], path: Path) -> int:
    """Write rows as JSONL (text, label, source, model, prompt_id) for ``guardrail eval``."""
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            rec = {
                "text": r.text,
                "label": r.verdict,
                "source": r.source,
                "model": r.model,
                "prompt_id": r.prompt_id,
            }
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n
