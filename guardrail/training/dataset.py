"""Assemble the training, validation and dev sets from all sources, as labelled windows.

Sources and their roles:
- XSTest + replication (human): split by prompt id into train / val / dev. ``dev`` is never
  trained on or used for model selection; ``val`` (10% of the remaining prompt ids) picks the
  checkpoint. Human train rows are repeated ``HUMAN_REPEAT`` times so they dominate verdict
  learning over the synthetic and automatic rows. ``human_fraction`` below 1 keeps only that
  share of the training prompt ids (stratified by type, seeded), for a learning curve; val and
  dev are the same whatever it is. ``human_sources`` keeps one team's human rows in train and
  val (dev keeps both), to compare the two teams' labelling. ``human_fold`` (0 or 1) keeps
  one of two complementary halves of the training prompt ids (stratified by type), so that
  two teachers, one per half, can each label the answers the other trained on (``distill.py``).
- refusal_direction and JailbreakBench (automatic labels, filtered by heuristic agreement):
  train only, capped per source (``AUTO_CAP_PER_SOURCE``).
- synthetic (``synth.py``): train only.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from guardrail.taxonomy import CATEGORIES, CATEGORY_KIND, REFUSAL_KINDS, VERDICTS
from guardrail.training.sources import (
    Example,
    load_jailbreakbench,
    load_refusal_direction,
    load_xstest,
)
from guardrail.training.split import SPLIT_SEED, choose_dev_ids, split
from guardrail.training.synth import generate

__all__ = [
    "HUMAN_REPEAT",
    "HUMAN_SOURCES",
    "Datasets",
    "LabelledWindow",
    "build",
    "fold_ids",
    "to_targets",
]

HUMAN_REPEAT = 2
AUTO_CAP_PER_SOURCE = 250
SYNTH_PER_CATEGORY = 50
VAL_FRACTION = 0.1
# the two annotation teams: XSTest's own (five 2023 models) and the replication's (five newer)
HUMAN_SOURCES = ("xstest", "xstest_replication")


@dataclass(frozen=True)
class Datasets:
    train: list[Example]
    val: list[Example]
    dev: list[Example]
    dev_ids: set[str]
    counts: dict[str, Counter[str]]
    # fold (0 or 1, see fold_ids) of each human training answer's prompt, by text; -1 where
    # the same text answers prompts of both folds (fold teachers in distill.py read this)
    human_folds: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelledWindow:
    """Targets for one window; -100 masks a head's loss (PyTorch's ignore_index)."""

    text: str
    verdict: int
    kind: int
    category: int
    votes: tuple[float, float, float] | None = None  # soft verdict target, when known
    teacher: tuple[float, ...] | None = None  # a teacher's verdict logits (distill.py)


def to_targets(ex: Example) -> LabelledWindow:
    """Map an example's labels to head indices, masking unknown kind/category."""
    verdict = VERDICTS.index(ex.verdict)
    category = -100
    kind = -100
    if ex.verdict != "compliance" and ex.category is not None:
        category = CATEGORIES.index(ex.category)
        k = ex.kind or CATEGORY_KIND.get(ex.category)
        if k is not None:
            kind = REFUSAL_KINDS.index(k)
    return LabelledWindow(ex.text, verdict, kind, category, ex.votes)


def fold_ids(train_human: list[Example], seed: int = SPLIT_SEED) -> set[str]:
    """The prompt ids of the first of two halves of the human training prompts (fold 0)."""
    # the same draw as human_fraction=0.5, so fold 0 is that learning-curve point's data
    return choose_dev_ids(train_human, fraction=0.5, seed=seed + 2)


def build(
    root: Path,
    seed: int = SPLIT_SEED,
    human_repeat: int = HUMAN_REPEAT,
    auto_cap: int = AUTO_CAP_PER_SOURCE,
    synth_per_category: int = SYNTH_PER_CATEGORY,
    human_fraction: float = 1.0,
    human_sources: tuple[str, ...] = HUMAN_SOURCES,
    human_fold: int | None = None,
) -> Datasets:
    """Load every source, split the human data and assemble the training mix."""
    if not 0.0 <= human_fraction <= 1.0:
        raise ValueError(f"human_fraction must lie in [0, 1], got {human_fraction}")
    if human_fold not in (None, 0, 1):
        raise ValueError(f"human_fold must be 0 or 1, got {human_fold}")
    if human_fold is not None and human_fraction < 1.0:
        raise ValueError("human_fold and human_fraction < 1 cannot be combined")
    unknown = sorted(set(human_sources) - set(HUMAN_SOURCES))
    if unknown or not human_sources:
        raise ValueError(f"human_sources must be some of {HUMAN_SOURCES}, got {human_sources}")
    human = load_xstest(root)
    dev_ids = choose_dev_ids(human)
    rest, dev = split(human, dev_ids)
    val_ids = choose_dev_ids(rest, fraction=VAL_FRACTION, seed=seed + 1)
    train_h, val = split(rest, val_ids)
    if human_fraction < 1.0:
        # whole prompts are dropped (all ten models' answers), so the kept share stays split
        # by prompt id; the synthetic bodies below then come from the kept answers only
        kept_ids = choose_dev_ids(train_h, fraction=human_fraction, seed=seed + 2)
        train_h = [r for r in train_h if r.prompt_id in kept_ids]
    first = fold_ids(train_h, seed)
    if human_fold is not None:
        train_h = [r for r in train_h if (r.prompt_id in first) == (human_fold == 0)]
    # the split above is of both teams' rows, so dev is the same whichever team trains
    train_h = [r for r in train_h if r.source in human_sources]
    val = [r for r in val if r.source in human_sources]

    human_folds: dict[str, int] = {}
    for r in train_h:
        fold = 0 if r.prompt_id in first else 1
        human_folds[r.text] = fold if human_folds.get(r.text, fold) == fold else -1

    rng = random.Random(seed)
    auto: list[Example] = []
    by_source: dict[str, list[Example]] = {}
    for ex in load_refusal_direction(root) + load_jailbreakbench(root):
        by_source.setdefault(ex.source, []).append(ex)
    for source in sorted(by_source):
        rows = by_source[source]
        rng.shuffle(rows)
        auto.extend(rows[:auto_cap])

    helpful = [r.text for r in train_h if r.verdict == "compliance"]
    helpful += [r.text for r in auto if r.verdict == "compliance"]
    synthetic = generate(sorted(helpful), n_per_category=synth_per_category)

    train = [replace(r) for r in train_h for _ in range(human_repeat)] + auto + synthetic
    rng.shuffle(train)
    counts: dict[str, Counter[str]] = {
        "train_human": Counter(r.verdict for r in train_h),
        "val_human": Counter(r.verdict for r in val),
        "dev_human": Counter(r.verdict for r in dev),
        "synthetic": Counter(r.verdict for r in synthetic),
    }
    for source, rows in sorted(by_source.items()):
        kept = [r for r in auto if r.source == source]
        counts[f"auto:{source} (kept {len(kept)} of {len(rows)})"] = Counter(
            r.verdict for r in kept
        )
    return Datasets(
        train=train, val=val, dev=dev, dev_ids=dev_ids, counts=counts, human_folds=human_folds
    )
