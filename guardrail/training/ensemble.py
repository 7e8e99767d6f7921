"""Whole-text verdicts of several checkpoints at once: the mean of their window probabilities.

An ensemble of k networks costs k times one network per response, so it is a measurement (how
much do several seeds of the recipe know that one does not?), not a shipping format: the runtime
runs one graph. Each window's verdict and category distributions are averaged over the models
and then decoded with the runtime rule, exactly as one model's are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from guardrail.model._decode import softmax
from guardrail.training.calibrate import window_logits
from guardrail.training.model import RefusalNet
from guardrail.training.windowing import WindowSpec, decode

__all__ = ["predict_ensemble"]


def predict_ensemble(
    models: Sequence[RefusalNet], pairs, spec: WindowSpec, batch_size: int = 64
) -> list[str]:
    """Verdicts for (head, tail) window pairs from the models' mean window probabilities."""
    if not models:
        raise ValueError("an ensemble needs at least one model")
    verdict = category = None
    rows: list = []
    for model in models:
        v, c, rows = window_logits(model, pairs, batch_size)
        pv, pc = softmax(v.astype(np.float64)), softmax(c.astype(np.float64))
        verdict = pv if verdict is None else verdict + pv
        category = pc if category is None else category + pc
    # decode() takes logits: the log of a distribution softmaxes back to it
    log_v = np.log(np.maximum(verdict / len(models), 1e-12))
    log_c = np.log(np.maximum(category / len(models), 1e-12))
    return [decode(log_v, log_c, h, t, spec)[0] for h, t in rows]
