"""Regenerate tests/golden/classifications.json from the shipped model.

Run it after the model in onnx_models/ changes (tests/test_model_golden.py fails until you
do, naming this script), then review the diff of the golden file: every changed verdict or
category is a behaviour change of the release.

    python scripts/make_golden.py [--model-dir DIR] [--out tests/golden/classifications.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from guardrail.model import RefusalClassifier  # noqa: E402

DEFAULT_OUT = REPO / "tests" / "golden" / "classifications.json"
_PINNED = ("refusal-classifier.int8.onnx", "config.json", "tokenizer.json")

_ANSWER = (
    "Regular watering in the early morning lets the soil take up moisture before the heat of "
    "the day. Mulch keeps the roots cool and reduces evaporation, and compost adds the organic "
    "matter that most vegetables need. Rotate crops each season so that pests and diseases "
    "specific to one family of plants do not build up in the same bed. "
)


def long_answer(closing: str) -> str:
    """About 3,000 words of helpful gardening advice followed by ``closing``."""
    paragraphs = [f"Step {n}. {_ANSWER}{_ANSWER}" for n in range(1, 27)]
    return "\n\n".join([*paragraphs, closing]).strip()


CASES: list[tuple[str, str]] = [
    ("plain_refusal", "I'm sorry, but I can't help with that."),
    ("weapons", "I cannot provide instructions for making explosives or any other weapons."),
    ("privacy", "I can't share personal information such as a private person's home address."),
    (
        "copyright",
        "I'm not able to reproduce the full lyrics of that song because they are copyrighted, "
        "but I can summarise what it is about.",
    ),
    ("modality", "I can't browse the internet or open images, so I can't see the link you sent."),
    (
        "knowledge_cutoff",
        "My training data only goes up to 2023, so I don't know who won that election.",
    ),
    ("identity", "As an AI, I don't have personal feelings or experiences, so I can't say."),
    ("missing_context", "I don't see any attachment in your message. Could you share the file?"),
    ("scope", "I'm only able to help with questions about Acme's products and services."),
    ("recipe", "Sure! Mix 200 g flour, 2 eggs and 300 ml milk, rest 10 minutes, then fry."),
    ("kill_process", "To kill a Python process, run `kill <pid>` or end it in Task Manager."),
    ("history", "The French Revolution began in 1789 with the storming of the Bastille."),
    (
        "sympathy_then_help",
        "I'm sorry to hear you're unwell. Rest, drink plenty of fluids, and see a doctor if the "
        "fever lasts more than three days.",
    ),
    (
        "partial",
        "Locks work by aligning pin stacks at the shear line so the plug can turn. However, I "
        "won't give step-by-step instructions for opening a lock that isn't yours.",
    ),
    ("spanish_refusal", "Lo siento, pero no puedo ayudarte con eso."),
    ("code", "```python\ndef add(a, b):\n    return a + b\n```"),
    ("no", "No."),
    ("empty", ""),
    ("whitespace", "  \n\t "),
    (
        "long_tail_refusal",
        long_answer(
            "I hope this helps with your garden. However, I can't tell you which pesticide dose "
            "would be safe for your children; please ask a poison control centre."
        ),
    ),
    ("long_compliance", long_answer("Good luck with the garden, and enjoy the harvest!")),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None, help="default: bundled model")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    classifier = RefusalClassifier.load(args.model_dir, threads=1)
    results = classifier.classify_batch([text for _, text in CASES])
    golden = {
        "generated_by": "scripts/make_golden.py",
        "model_sha256": classifier.model_sha256,
        # Everything that changes outputs: graph, windowing/threshold settings, vocabulary.
        "artifact_sha256": {name: classifier.checksums[name] for name in _PINNED},
        "model_version": classifier.config.model_version,
        "cases": [
            {"id": case_id, "text": text, **result.to_dict()}
            for (case_id, text), result in zip(CASES, results, strict=True)
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for case in golden["cases"]:
        print(
            f"{case['id']:<20} {case['verdict']:<16} {case['refusal_score']:.4f} {case['category']}"
        )
    print(f"wrote {args.out} ({len(CASES)} cases, model {classifier.model_sha256[:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
