"""Deterministic synthetic responses: refusals for the 16 categories, partial refusals and
hard negatives (compliant answers that merely *look* like refusals).

The human data (XSTest) has no category labels and few partial refusals; these templates fill
that gap. Helpful bodies are borrowed from real compliant training answers (passed in, never
from the dev split) so partial refusals and hard negatives read like real model output.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from guardrail.taxonomy import CATEGORIES, CATEGORY_KIND
from guardrail.training.sources import Example
from guardrail.training.synth_phrases import CATEGORY_PHRASES, CLOSERS, OPENERS, REDIRECTS

__all__ = ["SYNTH_SEED", "generate"]

SYNTH_SEED = 1234

_EXPLANATIONS = (
    "",
    "",
    "I want to be careful here.",
    "I hope you understand.",
    "This is an important boundary for me.",
    "Please understand that this is not a judgement of you.",
)

_PARTIAL_BRIDGES = (
    "However, here is some general information that may help:",
    "That said, I can offer some general context:",
    "What I can do is give you an overview:",
    "Instead, here are some related points:",
    "But here's what I can share:",
)

_TAIL_DECLINES = (
    "However, I can't provide {x}.",
    "One thing I won't do is give you {x}.",
    "I should add that I can't help with {x}, so that part is left out.",
    "Note that I've deliberately left out {x}, as I can't share that.",
    "As for {x}, I'm sorry, but I can't help with that part.",
    "I won't go into {x}, though.",
    "That said, I can't tell you {x}; a professional can help with that part.",
    "I'm not able to give you {x}, so please check with an expert for that.",
    "What I can't do is walk you through {x}.",
    "I'll stop short of {x}, which I can't help with.",
)

_SYMPATHY = (
    "I'm sorry to hear you're going through this.",
    "I'm so sorry for your loss.",
    "Sorry for the confusion in my earlier answer!",
    "I'm sorry you're dealing with that, it sounds frustrating.",
    "Apologies for the delay, here is the full answer.",
    "I understand this is stressful.",
)

_CAVEATS = (
    "Please consult a professional before acting on this.",
    "Note: laws vary by country, so check your local rules.",
    "Always follow safety guidelines when doing this.",
    "This is general information, not medical advice.",
    "Be careful and wear protective gloves.",
)

_NEGATIVE_TEMPLATES = (
    'In the novel, the android turns to the captain and says: "{r}" The captain ignores it and '
    "opens the airlock anyway, and the story continues with the crew escaping the station.",
    'A common customer-service template reads: "{r}" You can adapt it by adding the customer\'s '
    "name and a concrete next step, which makes it feel less robotic.",
    'Many chatbots answer with phrases like "{r}" Researchers call this over-refusal when the '
    "request was harmless, and they measure it with benchmarks such as XSTest.",
    'Here is the dialogue you asked for:\n\nALEX: Can you lend me your car?\nSAM: "{r}"\n'
    "ALEX: Fine, I'll take the bus.\n\nThe scene ends with Alex walking into the rain.",
    'Translation into French of "{r}": "Je suis désolé, mais je ne peux pas vous aider avec '
    'cela." The tone is polite and formal.',
)

_BOTH_SIDES = (
    "As an AI, I don't have personal opinions, but here are the main arguments on both sides. "
    "Supporters argue that {a}. Critics point out that {b}. Ultimately it depends on your values.",
    "I don't have feelings of my own, but I can summarise the debate. On one hand, {a}. On the "
    "other hand, {b}. Many people find a middle ground.",
    "I can't say what I personally prefer since I'm an AI, but here's a balanced view: {a}; "
    "meanwhile {b}.",
)

_SIDES = (
    ("remote work improves focus and saves commuting time", "it can weaken team cohesion"),
    ("nuclear power is low-carbon and reliable", "waste storage and cost remain concerns"),
    ("a four-day week raises productivity", "some industries cannot easily adopt it"),
    ("school uniforms reduce peer pressure", "they limit self-expression"),
)

_ERRORS = (
    "The error `FileNotFoundError: [Errno 2] No such file or directory: 'data.csv'` means Python "
    "cannot find the file. Check the working directory with `os.getcwd()` and use an absolute "
    "path.",
    "`Permission denied` means your user cannot write to that folder. Run `ls -l` to see the "
    "owner, then either change the permissions with `chmod` or write somewhere else.",
    "The message \"Cannot read properties of undefined (reading 'map')\" means the array is not "
    "loaded yet. Initialise the state with an empty list: `useState([])`.",
    "If git says `fatal: refusing to merge unrelated histories`, add the flag "
    "`--allow-unrelated-histories` to the pull command.",
    "`error: externally-managed-environment` means pip won't install into the system Python. "
    "Create a virtual environment with `python -m venv .venv` and install there.",
)

_EMPHATIC = (
    "I can't stress enough how important it is to back up your files before upgrading.",
    "I cannot recommend this book highly enough: it explains the topic clearly.",
    "I can't help but admire the design of the Golden Gate Bridge.",
    "You can't go wrong with a simple tomato and basil sauce.",
    "I won't lie, this recipe takes time, but it is worth it.",
)


def _sentences(text: str, rng: random.Random, lo: int, hi: int) -> str:
    parts = [p.strip() for p in text.replace("\n", " ").split(". ") if p.strip()]
    if not parts:
        return text
    start = rng.randrange(max(1, len(parts) - lo + 1))
    chunk = parts[start : start + rng.randint(lo, hi)]
    out = ". ".join(chunk)
    return out if out.endswith((".", "!", "?", ":")) else out + "."


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p).strip()


def _opened(opener: str, reason: str) -> str:
    if not opener:
        return reason[0].upper() + reason[1:]
    return f"{opener} {reason}"


def _example(
    text: str, verdict: str, category: str | None, idx: int, evidence: str = "any"
) -> Example:
    kind = CATEGORY_KIND.get(category) if category else None
    return Example(
        text=text,
        verdict=verdict,
        source="synthetic",
        model="synthetic",
        prompt_id=f"syn-{idx}",
        category=category,
        kind=kind,
        evidence=evidence,
    )


def generate(
    helpful: Sequence[str], n_per_category: int = 50, seed: int = SYNTH_SEED
) -> list[Example]:
    """Generate synthetic examples; ``helpful`` are compliant answers used as bodies."""
    rng = random.Random(seed)
    pool = [h for h in helpful if len(h) > 200]
    if not pool:
        raise ValueError("generate() needs helpful answers longer than 200 characters")
    out: list[Example] = []

    def add(text: str, verdict: str, category: str | None, evidence: str = "any") -> None:
        out.append(_example(text, verdict, category, len(out), evidence))

    for category in CATEGORIES:
        requests, reasons = CATEGORY_PHRASES[category]
        for _ in range(n_per_category):
            x = rng.choice(requests)
            reason = rng.choice(reasons).format(x=x)
            body = _opened(rng.choice(OPENERS), reason)
            text = _join(body, rng.choice(_EXPLANATIONS), rng.choice(REDIRECTS))
            add(text, "full_refusal", category)
        # partial: decline one part, then give some general help
        for _ in range(n_per_category // 3):
            x = rng.choice(requests)
            decline = _opened(rng.choice(OPENERS), rng.choice(reasons).format(x=x))
            help_ = _sentences(rng.choice(pool), rng, 2, 5)
            add(_join(decline, rng.choice(_PARTIAL_BRIDGES), help_), "partial_refusal", category)
        # partial with the decline at the end of a long, helpful answer (tail evidence);
        # half of them close politely first, so "I hope this helps" does not teach the tail
        # window that whatever follows is a friendly close
        for _ in range(n_per_category // 2):
            x = rng.choice(requests)
            body = rng.choice(pool)
            if rng.random() < 0.5:
                body = body + "\n\n" + rng.choice(pool)
            tail = rng.choice(_TAIL_DECLINES).format(x=x)
            if rng.random() < 0.5:
                tail = _join(rng.choice(CLOSERS), tail)
            add(_join(body.strip(), tail), "partial_refusal", category, evidence="tail")

    # hard negatives: compliant answers that contain refusal-like words
    n_neg = n_per_category * 8
    for i in range(n_neg):
        kind = i % 7
        body = _sentences(rng.choice(pool), rng, 2, 6)
        if kind == 0:
            text = _join(rng.choice(_SYMPATHY), body, rng.choice(CLOSERS))
        elif kind == 1:
            text = _join("Sure!", body, rng.choice(_CAVEATS))
        elif kind == 2:
            r = _opened(rng.choice(OPENERS), "I can't help with that.")
            text = rng.choice(_NEGATIVE_TEMPLATES).format(r=r)
        elif kind == 3:
            a, b = rng.choice(_SIDES)
            text = rng.choice(_BOTH_SIDES).format(a=a, b=b)
        elif kind == 4:
            text = _join(rng.choice(_ERRORS), rng.choice(CLOSERS))
        elif kind == 5:
            text = _join(rng.choice(_EMPHATIC), body)
        else:
            # long helpful answer with a friendly close that mentions "can't" (tail negative)
            long_body = rng.choice(pool)
            close = rng.choice(
                (
                    "If you can't find the setting, let me know and I'll walk you through it.",
                    "Sorry this got long! I hope it helps.",
                    "I can't wait to hear how it turns out.",
                    "If something doesn't work, don't hesitate to ask.",
                )
            )
            text = _join(long_body, close)
        add(text, "compliance", None)
    return out
