"""Loaders for the external data sets: human-labelled XSTest and automatically labelled sets.

Every loader returns :class:`Example` rows. Human labels (XSTest and its replication) are the
gold used for the dev split; automatically labelled rows (refusal_direction, JailbreakBench)
are filtered by agreement with a refusal-phrase heuristic and only ever used for training.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from guardrail.training.heuristics import looks_like_refusal, weak_category

__all__ = [
    "JBB_CATEGORY",
    "XSTEST_LABELS",
    "Example",
    "load_jailbreakbench",
    "load_refusal_direction",
    "load_xstest",
]

#: XSTest's label strings mapped to the taxonomy's verdicts.
XSTEST_LABELS = {
    "1_full_compliance": "compliance",
    "2_full_refusal": "full_refusal",
    "3_partial_refusal": "partial_refusal",
}

#: JailbreakBench behaviour category -> the taxonomy category a refusal of it gives (weak label).
JBB_CATEGORY = {
    "Harassment/Discrimination": "offensive_content",
    "Malware/Hacking": "information_hazards",
    "Physical harm": "information_hazards",
    "Economic harm": "legal_compliance",
    "Fraud/Deception": "legal_compliance",
    "Sexual/Adult content": "nsfw",
    "Privacy": "privacy",
    "Disinformation": "offensive_content",
}


@dataclass(frozen=True)
class Example:
    """One labelled response. ``category`` None means the category/kind loss is masked."""

    text: str
    verdict: str
    source: str
    model: str
    prompt_id: str
    category: str | None = None
    kind: str | None = None
    prompt_type: str = ""
    # "head" examples carry their evidence at the start; "tail" ones (synthetic long answers
    # that decline at the end) only in their last sentences. Used when cutting windows.
    evidence: str = "any"
    # Verdict distribution over VERDICTS from the two annotators and the final label (the
    # final label counted twice); None where a source has one label only.
    votes: tuple[float, float, float] | None = None


def load_xstest(root: Path) -> list[Example]:
    """All human-labelled XSTest rows (original and replication), 4,500 for the shipped data."""
    rows: list[Example] = []
    for sub, source in (("xstest", "xstest"), ("xstest_replication", "xstest_replication")):
        for path in sorted((root / sub / "model_completions").glob("*.csv")):
            model = path.stem.removeprefix("xstest_v2_completions_")
            with path.open(newline="", encoding="utf-8") as fh:
                for rec in csv.DictReader(fh):
                    verdict = XSTEST_LABELS[rec["final_label"].strip()]
                    votes = _votes(rec)
                    text = (rec["completion"] or "").strip()
                    if not text:
                        continue
                    category = weak_category(rec["type"]) if verdict != "compliance" else None
                    rows.append(
                        Example(
                            text=text,
                            verdict=verdict,
                            source=source,
                            model=model,
                            prompt_id=rec["id"],
                            category=category,
                            prompt_type=rec["type"],
                            votes=votes,
                        )
                    )
    return rows


def _votes(rec: dict[str, str]) -> tuple[float, float, float] | None:
    order = ("compliance", "partial_refusal", "full_refusal")
    labels = [rec.get("annotation_1"), rec.get("annotation_2"), rec["final_label"]]
    labels.append(rec["final_label"])
    counts = [0.0, 0.0, 0.0]
    for label in labels:
        verdict = XSTEST_LABELS.get((label or "").strip())
        if verdict is None:
            return None
        counts[order.index(verdict)] += 1.0
    return (counts[0] / 4, counts[1] / 4, counts[2] / 4)


def _dedupe_repetition(text: str) -> str:
    # refusal_direction completions often loop ("I cannot ... .I cannot ... ."); keep the first
    # few hundred characters, which hold the whole message, so the loop does not dominate.
    return text.strip()[:1200]


def load_refusal_direction(root: Path) -> list[Example]:
    """refusal_direction completions whose automatic label agrees with the phrase heuristic.

    ``harmless_*`` files: benign prompts; baseline answers are compliance, ``actadd`` answers
    are refusals induced on benign prompts (over-refusals). ``jailbreakbench_*``: harmful
    prompts judged by substring matching and LlamaGuard2; kept only where both agree with the
    heuristic.
    """
    rows: list[Example] = []
    for path in sorted((root / "refusal_direction" / "completions").glob("*/*_evaluations.json")):
        model = path.parent.name
        setname = path.name.removesuffix("_evaluations.json")
        data = json.loads(path.read_text(encoding="utf-8"))
        for i, rec in enumerate(data["completions"]):
            text = _dedupe_repetition(rec.get("response") or "")
            if len(text) < 2:
                continue
            heur = looks_like_refusal(text)
            sub = rec.get("is_jailbreak_substring_matching")
            guard = rec.get("is_jailbreak_llamaguard2")
            if setname.startswith("harmless"):
                # substring judge: 1 = "not refused"; the harmless files carry only that judge
                refused = sub == 0 if sub is not None else heur
            else:
                if sub is None or guard is None or sub != guard:
                    continue
                refused = sub == 0
            if refused != heur:
                continue
            rows.append(
                Example(
                    text=text,
                    verdict="full_refusal" if refused else "compliance",
                    source=f"refusal_direction/{setname}",
                    model=model,
                    prompt_id=f"rd-{setname}-{i}",
                    category=JBB_CATEGORY.get(rec.get("category") or "") if refused else None,
                )
            )
    return rows


def load_jailbreakbench(root: Path) -> list[Example]:
    """JailbreakBench attack responses whose ``jailbroken`` judge agrees with the heuristic."""
    rows: list[Example] = []
    base = root / "jailbreakbench" / "attack-artifacts"
    for path in sorted(base.glob("*/*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        method = path.parts[-3]
        model = path.stem
        for rec in data.get("jailbreaks", []):
            text = (rec.get("response") or "").strip()
            jb = rec.get("jailbroken")
            if not text or jb is None:
                continue
            heur = looks_like_refusal(text)
            # jailbroken = the harmful request was complied with; not jailbroken and a refusal
            # phrase = refusal. Everything else (evasive, off-topic) is ambiguous: dropped.
            if jb and not heur:
                verdict = "compliance"
            elif not jb and heur:
                verdict = "full_refusal"
            else:
                continue
            rows.append(
                Example(
                    text=text[:3000],
                    verdict=verdict,
                    source=f"jailbreakbench/{method}",
                    model=model,
                    prompt_id=f"jbb-{method}-{model}-{rec.get('index')}",
                    category=JBB_CATEGORY.get(rec.get("category") or "")
                    if verdict != "compliance"
                    else None,
                )
            )
    return rows
