"""The model options the commands share: ``--model-dir``, ``--threads``, ``--tail-threshold``.

The tail rule (a compliant head with a refusing tail gives ``partial_refusal``) fires when
the tail window's refusal score reaches the model's ``tail_refusal_threshold`` (0.8 for the
shipped model). Raising it trades late declines missed for fewer moralising closes read as
partial refusals (``benchmarks/results/tail_threshold.json``); ``guardrail eval`` with the
same option measures that trade on an operator's own labelled answers first.
"""

from __future__ import annotations

import argparse

from guardrail.cli._arg_types import int_at_least, number_between

__all__ = ["add_model_arguments", "add_tail_threshold_argument"]


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """All three, for ``classify`` and ``eval`` (one caller, so 1 thread by default)."""
    parser.add_argument(
        "--model-dir", metavar="DIR", help="model directory (default: the bundled model)"
    )
    parser.add_argument(
        "--threads",
        type=int_at_least(1),
        default=None,
        help="onnxruntime threads per inference (default: 1)",
    )
    add_tail_threshold_argument(parser)


def add_tail_threshold_argument(parser: argparse.ArgumentParser) -> None:
    """``--tail-threshold P`` (None: the model's own), for every command that loads a model."""
    parser.add_argument(
        "--tail-threshold",
        type=number_between(0, 1),
        default=None,
        metavar="P",
        help=(
            "refusal score a long answer's tail window needs to make a compliant answer a "
            "partial refusal (default: the model's own, 0.8 for the bundled model)"
        ),
    )
