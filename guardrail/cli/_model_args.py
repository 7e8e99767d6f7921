"""``--tail-threshold``: the one model option every command that loads the classifier shares.

The tail rule (a compliant head with a refusing tail gives ``partial_refusal``) fires when
the tail window's refusal score reaches the model's ``tail_refusal_threshold`` (0.8 for the
shipped model). Raising it trades late declines missed for fewer moralising closes read as
partial refusals (``benchmarks/results/tail_threshold.json``); ``guardrail eval`` with the
same option measures that trade on an operator's own labelled answers first.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["add_tail_threshold_argument", "unit_interval"]


def unit_interval(text: str) -> float:
    """A number in [0, 1]; argparse turns the ArgumentTypeError into a usage error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def add_tail_threshold_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tail-threshold",
        type=unit_interval,
        default=None,
        metavar="P",
        help=(
            "refusal score a long answer's tail window needs to make a compliant answer a "
            "partial refusal (default: the model's own, 0.8 for the bundled model)"
        ),
    )
