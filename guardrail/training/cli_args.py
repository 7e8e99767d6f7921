"""The command line of ``python -m guardrail.training``: stages, options and their checks.

Kept apart from the stages (``__main__.py``) and free of torch, so ``--help`` and usage errors
answer at once, before any training code is imported.
"""

from __future__ import annotations

import argparse

from guardrail.cli._arg_types import number_between
from guardrail.training.dataset import HUMAN_SOURCES
from guardrail.training.paths import REPO_ROOT

__all__ = ["build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m guardrail.training")
    p.add_argument(
        "stage",
        choices=[
            "stats",
            "dev-jsonl",
            "train",
            "score",
            "export",
            "early-exit",
            "evaluate",
            "tidy",
            "requantize",
            "windowing",
            "soup",
            "all",
        ],
    )
    p.add_argument(
        "--data-dir", default=None, help="default: $GUARDRAIL_DATA_DIR or ../shared/data"
    )
    p.add_argument("--out", default=str(REPO_ROOT / "onnx_models"), help="artifact directory")
    p.add_argument("--run-dir", default=str(REPO_ROOT / "training_runs" / "run"))
    p.add_argument("--checkpoint", default=None, help="default: <run-dir>/best.pt")
    p.add_argument(
        "--ensemble",
        nargs="+",
        default=None,
        metavar="CHECKPOINT",
        help="score: the mean of these checkpoints' window probabilities instead of one",
    )
    p.add_argument("--layers", type=int, default=2)
    p.add_argument(
        "--pooling",
        choices=("mean", "mean_max"),  # model.POOLINGS; listed here to keep torch unimported
        default="mean",
        help="train: pool the encoder's tokens by their mean, or their mean and maximum",
    )
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--lr", type=float, default=6e-5, help="encoder learning rate")
    p.add_argument("--partial-weight", type=float, default=2.0)
    p.add_argument(
        "--seed",
        type=int,
        default=7,
        help="train: seeds the heads' initialisation, dropout and batch order (not the split)",
    )
    p.add_argument("--human-repeat", type=int, default=2)
    p.add_argument(
        "--human-fraction",
        type=number_between(0, 1),
        default=1.0,
        help="train: keep this share (0-1) of the human training prompts, for a learning curve",
    )
    p.add_argument(
        "--human-fold",
        type=int,
        choices=(0, 1),
        default=None,
        help="train: keep one of two halves of the human training prompts (for fold teachers)",
    )
    p.add_argument(
        "--human-source",
        choices=HUMAN_SOURCES,
        default=None,
        help="train: keep one annotation team's human rows in train and val (dev keeps both)",
    )
    p.add_argument("--auto-cap", type=int, default=250)
    p.add_argument("--synth-per-category", type=int, default=50)
    p.add_argument(
        "--window-tokens",
        type=int,
        nargs=2,
        metavar=("WHOLE", "HEAD_TAIL"),
        default=None,
        help="max whole-window tokens and head/tail window tokens (default 96 48)",
    )
    p.add_argument(
        "--soft-labels",
        action="store_true",
        help="verdict targets from the annotators' votes where they disagreed",
    )
    p.add_argument(
        "--calibrate", action="store_true", help="tune verdict biases on val before export"
    )
    p.add_argument(
        "--autocast",
        choices=["auto", "bf16", "off"],
        default="auto",
        help="train: bf16 autocast (auto: only on CPUs with native bf16, where it halves a "
        "step; emulated, it made one about 10x slower)",
    )
    p.add_argument(
        "--smooth-alpha",
        type=float,
        default=None,
        help="export: move activation range into the weights before quantizing (0-1; default off)",
    )
    p.add_argument(
        "--activation-scales",
        choices=["token", "tensor"],
        default="token",
        help="export: int8 activation scales, one per token (default; token_scales.py) or one "
        "per tensor (onnxruntime's quantize_dynamic as it writes the graph)",
    )
    p.add_argument(
        "--teacher",
        default=None,
        help="train: distil from this checkpoint's verdict logits (e.g. a --layers 6 run)",
    )
    p.add_argument(
        "--fold-teachers",
        nargs=2,
        default=None,
        metavar=("FOLD0", "FOLD1"),
        help="train: distil each human answer from the one of two --human-fold runs' "
        "checkpoints that never saw its prompt",
    )
    p.add_argument(
        "--train-fold-teachers",
        action="store_true",
        help="train/all: first train the two fold teachers (6 layers, 4 epochs, one per "
        "--human-fold half) into <run-dir>/fold_teacher_0 and _1, keeping any already there, "
        "then distil from them as --fold-teachers does",
    )
    p.add_argument(
        "--distill-weight",
        type=float,
        default=0.5,
        help="train: 0-1, with --teacher or --fold-teachers",
    )
    p.add_argument(
        "--distill-temperature",
        type=float,
        default=2.0,
        help="train: with --teacher or --fold-teachers",
    )
    p.add_argument(
        "--tail-paragraph-tokens",
        type=int,
        default=None,
        metavar="N",
        help="the tail window reaches back to a last paragraph of up to N tokens (special "
        "tokens included; default: the last tail tokens only); the windowing stage writes it "
        "into <out>/config.json",
    )
    p.add_argument("--jsonl", default=None, help="dev-jsonl: output file")
    p.add_argument(
        "--soup-of",
        nargs="+",
        default=None,
        metavar="CHECKPOINT",
        help="soup: the checkpoints whose weights are averaged into <run-dir>/best.pt",
    )
    return p
