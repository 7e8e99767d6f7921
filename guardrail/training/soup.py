"""Weight averaging ("model soup") of training checkpoints of one architecture.

Runs of one recipe that differ only in their seed start from the same pretrained encoder and
move little from it, so the element-wise mean of their weights is a network of the same size
and cost that behaves like their ensemble more than like any one of them. The heads are
linear in their weights, so averaging them averages their logits on shared features.
"""

from __future__ import annotations

from pathlib import Path

import torch

from guardrail.training.model import checkpoint, checkpoint_pooling

__all__ = ["SoupError", "soup_checkpoints"]


class SoupError(ValueError):
    """The checkpoints cannot be averaged (missing, or of different architectures)."""


def _load(path: Path) -> dict:
    if not path.is_file():
        raise SoupError(f"checkpoint not found: {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


def soup_checkpoints(paths: list[Path], out: Path) -> Path:
    """Write the element-wise mean of ``paths``' weights to ``out`` as a training checkpoint."""
    if len(paths) < 2:
        raise SoupError(f"a soup needs at least two checkpoints, got {len(paths)}")
    states = [_load(p) for p in paths]
    first = states[0]
    shape = (first["layers"], checkpoint_pooling(first), sorted(first["state_dict"]))
    for path, state in zip(paths[1:], states[1:], strict=True):
        other = (state["layers"], checkpoint_pooling(state), sorted(state["state_dict"]))
        if other != shape:
            raise SoupError(
                f"{path} is not the architecture of {paths[0]} "
                f"(layers {other[0]} vs {shape[0]}, pooling {other[1]} vs {shape[1]})"
            )
    averaged = {}
    for name, tensor in first["state_dict"].items():
        # integer buffers (position ids) are the same in every run: keep the first
        averaged[name] = (
            (sum(s["state_dict"][name].double() for s in states) / len(states)).to(tensor.dtype)
            if tensor.is_floating_point()
            else tensor
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint(averaged, first["layers"], shape[1]), out)
    return out
