"""Calibrate the verdict head's biases on the validation split (never on dev).

The runtime decodes a window as a refusal when P(partial) + P(full) >= 0.5 and then picks the
larger of the two; with few human partial refusals in training, the trained head's partial
and full logits sit on the wrong side of those cuts more often than not. A grid search over two
additive offsets (partial and full logits, relative to compliance) picks the pair with the best
validation macro-F1 + binary F1, and the offsets are added to the head's bias, so the shipped
graph needs no extra decoding step.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from guardrail.evaluation.metrics import score
from guardrail.training.model import RefusalNet
from guardrail.training.windowing import WindowSpec, decode

__all__ = ["calibrate_verdict_bias", "window_logits"]

_GRID = np.round(np.arange(-1.5, 1.51, 0.25), 2)


@torch.no_grad()
def window_logits(model: RefusalNet, pairs, batch_size: int = 64):
    """Verdict and category logits for every window, and each text's (head, tail) rows."""
    from guardrail.training.train import padded_batches

    model.eval()
    flat, rows = [], []
    for head, tail in pairs:
        rows.append((len(flat), None if tail is None else len(flat) + 1))
        flat += [(head, None)] if tail is None else [(head, None), (tail, None)]
    vs, cs = [], []
    for ids, mask, _ in padded_batches(flat, batch_size, None):
        v, _, c = model(ids, mask)
        vs.append(v.float().numpy())
        cs.append(c.float().numpy())
    return np.concatenate(vs), np.concatenate(cs), rows


def _score(v, c, rows, gold, spec: WindowSpec) -> tuple[float, float]:
    pred = [decode(v, c, h, t, spec)[0] for h, t in rows]
    s = score(gold, pred)
    return s.macro_f1, s.binary.f1


def calibrate_verdict_bias(
    model: RefusalNet, pairs, gold: list[str], spec: WindowSpec
) -> dict[str, float]:
    """Pick offsets on validation texts, add them to ``model.verdict.bias``; return the figures."""
    v, c, rows = window_logits(model, pairs)
    base_macro, base_bin = _score(v, c, rows, gold, spec)
    best = (base_macro + base_bin, 0.0, 0.0)
    for dp, df in itertools.product(_GRID, _GRID):
        shifted = v + np.array([0.0, dp, df], dtype=np.float32)
        m, b = _score(shifted, c, rows, gold, spec)
        # prefer the smallest shift among ties: the grid is coarse and validation is small
        key = (m + b, -(abs(dp) + abs(df)))
        if key > (best[0], -(abs(best[1]) + abs(best[2]))):
            best = (m + b, float(dp), float(df))
    _, dp, df = best
    with torch.no_grad():
        model.verdict.bias += torch.tensor([0.0, dp, df], dtype=model.verdict.bias.dtype)
    m, b = _score(v + np.array([0.0, dp, df], dtype=np.float32), c, rows, gold, spec)
    return {
        "partial_offset": dp,
        "full_offset": df,
        "val_macro_f1_before": base_macro,
        "val_binary_f1_before": base_bin,
        "val_macro_f1_after": m,
        "val_binary_f1_after": b,
    }
