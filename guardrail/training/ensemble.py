"""Whole-text verdicts of several checkpoints at once: the mean of their window probabilities.

An ensemble of k networks costs k times one network per response, so it is a measurement (how
much do several seeds of the recipe know that one does not?), not a shipping format: the runtime
runs one graph. Each window's verdict and category distributions are averaged over the models
and then decoded with the runtime rule, exactly as one model's are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from guardrail.training.model import RefusalNet
from guardrail.training.train import padded_batches
from guardrail.training.windowing import WindowSpec, decode

__all__ = ["predict_ensemble"]


@torch.no_grad()
def _window_probabilities(
    model: RefusalNet, flat: list, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    vs, cs = [], []
    for ids, mask, _ in padded_batches(flat, batch_size, None):  # in order: no rng
        v, _, c = model(ids, mask)
        vs.append(torch.softmax(v.float(), dim=-1).numpy())
        cs.append(torch.softmax(c.float(), dim=-1).numpy())
    return np.concatenate(vs), np.concatenate(cs)


def predict_ensemble(
    models: Sequence[RefusalNet], pairs, spec: WindowSpec, batch_size: int = 64
) -> list[str]:
    """Verdicts for (head, tail) window pairs from the models' mean window probabilities."""
    if not models:
        raise ValueError("an ensemble needs at least one model")
    flat, rows = [], []
    for head, tail in pairs:
        rows.append((len(flat), None if tail is None else len(flat) + 1))
        flat += [(head, None)] if tail is None else [(head, None), (tail, None)]
    verdict = np.zeros(0)
    category = np.zeros(0)
    for i, model in enumerate(models):
        v, c = _window_probabilities(model, flat, batch_size)
        verdict, category = (v, c) if i == 0 else (verdict + v, category + c)
    # decode() takes logits: the log of a distribution softmaxes back to it
    log_v = np.log(np.maximum(verdict / len(models), 1e-12))
    log_c = np.log(np.maximum(category / len(models), 1e-12))
    return [decode(log_v, log_c, h, t, spec)[0] for h, t in rows]
