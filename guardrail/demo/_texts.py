"""Canned texts of the scripted demo model.

Refusals are phrased the way production chat models phrase them (apology, reason, redirect)
so the bundled classifier sees realistic input; answers are plain, substantive prose.
"""

from __future__ import annotations

import re

__all__ = [
    "CLINICAL_REFUSAL",
    "WEAPONS_REFUSAL",
    "clinical_answer",
    "general_answer",
    "mentions_medication",
]

CLINICAL_REFUSAL = (
    "I'm sorry, but I can't provide specific dosing limits or toxicity thresholds for "
    "medications. Overdose information like this could cause serious harm, so it's best to "
    "ask a doctor or pharmacist."
)

WEAPONS_REFUSAL = (
    "I can't help with that. Instructions for making or modifying weapons or explosives "
    "could cause serious harm, so I won't provide them. If you're interested in the topic "
    "from a historical or policy angle, I'm happy to talk about that instead."
)

_CLINICAL_ANSWERS: dict[str, str] = {
    "acetaminophen": (
        "For adults, the labelled maximum for acetaminophen (paracetamol) is 4 g in 24 hours; "
        "many clinicians cap it at 2-3 g/day in patients with chronic alcohol use, "
        "malnutrition, low body weight or hepatic impairment. Hepatotoxicity becomes a risk "
        "after an acute ingestion of roughly 150 mg/kg (about 7.5-10 g in an adult), and "
        "repeated supratherapeutic dosing above 4 g/day can injure the liver even below that "
        "threshold. After an acute overdose, plot a serum level taken at 4 hours or later on "
        "the Rumack-Matthew nomogram and start N-acetylcysteine when it lies above the "
        "treatment line (150 mcg/mL at 4 hours); start NAC empirically when the ingestion "
        "time is unknown or the presentation is late, and check AST/ALT, INR and creatinine."
    ),
    "ibuprofen": (
        "For adults, over-the-counter ibuprofen is limited to 1,200 mg per day (200-400 mg "
        "every 4-6 hours); under supervision the prescription maximum is 3,200 mg/day in "
        "divided doses, though 2,400 mg/day is a more common ceiling because GI and renal "
        "risk rises with dose. In children the usual dose is 5-10 mg/kg every 6-8 hours, up "
        "to 40 mg/kg/day. Acute ingestions under 100 mg/kg rarely cause symptoms; above "
        "400 mg/kg, expect CNS depression, metabolic acidosis and renal injury."
    ),
}

_MEDICATIONS = re.compile(
    r"\b(acetaminophen|paracetamol|tylenol|ibuprofen|advil|motrin|aspirin|naproxen|"
    r"warfarin|heparin|insulin|metformin|morphine|oxycodone|fentanyl|codeine|tramadol|"
    r"digoxin|lithium|amoxicillin|diazepam|lorazepam|sertraline|medications?|drugs?|pills?)\b",
    re.IGNORECASE,
)
_ALIASES = {
    "paracetamol": "acetaminophen",
    "tylenol": "acetaminophen",
    "advil": "ibuprofen",
    "motrin": "ibuprofen",
}


def mentions_medication(text: str) -> bool:
    """True when the text names a medication (or medication in general)."""
    return _MEDICATIONS.search(text) is not None


def clinical_answer(question: str) -> str:
    """A clinician-grade dosing answer; specific for common drugs, structured otherwise."""
    match = _MEDICATIONS.search(question)
    drug = match.group(1).lower() if match else ""
    drug = _ALIASES.get(drug, drug)
    if drug in _CLINICAL_ANSWERS:
        return _CLINICAL_ANSWERS[drug]
    return (
        f"For {drug or 'this medication'}, start from the dose in the current product label "
        "and adjust for weight, renal function (estimate creatinine clearance) and hepatic "
        "function. The maximum daily dose is the labelled ceiling for the indication; above "
        "it, toxicity rises with the serum level, so check a level where an assay exists and "
        "review interacting drugs. For a suspected overdose, note the time and amount "
        "ingested, get a baseline ECG, electrolytes and renal and liver panels, and call "
        "the regional poison center for agent-specific treatment thresholds."
    )


# Keyword -> answer. Ordered: the first matching key wins.
_GENERAL: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"\bcapital of france\b", re.I),
        "The capital of France is Paris. It has been the country's political and cultural "
        "centre for most of its history and is home to about two million people in the city "
        "proper and over twelve million in the wider metropolitan area.",
    ),
    (
        re.compile(r"\b(python|reverse a (string|list))\b", re.I),
        "In Python you can reverse a string with slicing: `text[::-1]`. For a list, "
        "`items[::-1]` returns a reversed copy, and `items.reverse()` reverses it in place. "
        "If you only need to iterate backwards, `reversed(items)` avoids making a copy.",
    ),
    (
        re.compile(r"\b(bread|bake|recipe|pancakes?)\b", re.I),
        "Here is a simple recipe for pancakes: whisk 200 g flour, 2 teaspoons baking powder, "
        "a pinch of salt and 1 tablespoon sugar; add 300 ml milk, 1 egg and 30 g melted "
        "butter and stir until just combined. Cook ladlefuls on a lightly oiled pan over "
        "medium heat until bubbles form, flip, and cook another minute until golden.",
    ),
    (
        re.compile(r"\b(kill|stop|terminate) (a |the )?(python )?process\b", re.I),
        "To stop a process on Linux, find its id with `pgrep -a name` or `ps aux | grep "
        "name`, then send it SIGTERM with `kill PID`, which lets it shut down cleanly. If it "
        "does not exit after a few seconds, `kill -9 PID` sends SIGKILL, which cannot be "
        "caught, so open files may not be flushed.",
    ),
    (
        re.compile(r"\b(photosynthesis|plants?)\b", re.I),
        "Photosynthesis is how plants turn light into chemical energy. In the chloroplasts, "
        "chlorophyll absorbs light, which splits water and releases oxygen; the energy is "
        "stored in ATP and NADPH, and the Calvin cycle then uses it to fix carbon dioxide "
        "into sugars that the plant uses for growth.",
    ),
)


def general_answer(question: str) -> str:
    """A helpful answer: canned for a few topics, a plain general reply otherwise."""
    for pattern, answer in _GENERAL:
        if pattern.search(question):
            return answer
    topic = " ".join(question.split())[:120].rstrip("?.! ") or "your question"
    return (
        f"Here is a short overview on {topic}. The key points are the underlying idea, how it "
        "is used in practice, and the trade-offs involved. In practice, start with the "
        "simplest approach that works, measure the result, and refine from there; most "
        "problems of this kind come down to a few clear steps applied carefully."
    )
