"""The exit's head and rule in numpy: what ``exit_graph.add_exit`` builds into the graph.

Kept apart from the graph surgery because they need no ONNX: ``early_exit.py`` fits the head
and picks the rule on numpy features, and ``exit_check.py`` computes what the graph should
give with the same ``logits``, ``inside`` and ``sure`` the graph's nodes are written after.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["ExitHead", "ExitRule"]


@dataclass(frozen=True)
class ExitRule:
    """When the exit head counts as sure of a window (see exit_graph's module docstring)."""

    compliance_below: float = 0.05
    full_refusal_from: float = 0.98
    category_from: float = 0.8

    def sure(self, verdict_p: np.ndarray, category_p: np.ndarray) -> np.ndarray:
        """Row-wise: would the graph take the exit for these exit-head probabilities?"""
        refusal = verdict_p[:, 1] + verdict_p[:, 2]
        plain = (verdict_p[:, 2] > self.full_refusal_from) & (
            category_p.max(axis=1) > self.category_from
        )
        out: np.ndarray = (refusal < self.compliance_below) | plain
        return out

    def as_config(self) -> dict[str, float]:
        return {
            "compliance_below": self.compliance_below,
            "full_refusal_from": self.full_refusal_from,
            "category_from": self.category_from,
        }


@dataclass(frozen=True)
class ExitHead:
    """Weights of the exit head: ``gelu(x @ w1 + b1) @ w2 + b2`` -> 21 logits.

    With a gate (``center``, ``whiten``, ``limit``) the head is trusted only near the
    features it was fitted on: a window exits only where the squared Mahalanobis distance
    ``|(x - center) @ whiten|^2`` is below ``limit``. A head reading a bag of word pieces
    extrapolates with confidence to inputs unlike its training windows (a bare "No.", text
    in another language), so there the model's layers decide.
    """

    w1: np.ndarray  # [hidden, width]
    b1: np.ndarray  # [width]
    w2: np.ndarray  # [width, 21]
    b2: np.ndarray  # [21]
    center: np.ndarray | None = None  # [hidden]
    whiten: np.ndarray | None = None  # [hidden, hidden]
    limit: float = float("inf")

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Squared distance of each row from the fitted features (0 without a gate)."""
        if self.center is None or self.whiten is None:
            return np.zeros(len(features), np.float32)
        z = (features.astype(np.float32) - self.center) @ self.whiten
        out: np.ndarray = (z * z).sum(axis=1)
        return out

    def with_gate(self, features: np.ndarray, quantile: float) -> ExitHead:
        """This head gated to pass the ``quantile`` of ``features`` nearest their mean."""
        x = features.astype(np.float64)
        center = x.mean(axis=0)
        # a small ridge: LayerNorm'd features leave some directions with ~no variance
        cov = np.cov(x, rowvar=False) + 1e-6 * np.eye(x.shape[1])
        values, vectors = np.linalg.eigh(cov)
        whiten = (vectors / np.sqrt(values)).astype(np.float32)
        gated = replace(self, center=center.astype(np.float32), whiten=whiten)
        return replace(gated, limit=float(np.quantile(gated.distance(features), quantile)))

    def inside(self, features: np.ndarray) -> np.ndarray:
        """Row-wise: may the head's reading be taken at all (always, without a gate)?"""
        if self.center is None:
            return np.ones(len(features), bool)
        out: np.ndarray = self.distance(features) < self.limit
        return out

    def logits(self, features: np.ndarray) -> np.ndarray:
        """The head in numpy, as the graph computes it (for checks and simulation)."""
        from math import erf, sqrt

        h = features.astype(np.float32) @ self.w1 + self.b1
        h = h * 0.5 * (1.0 + np.vectorize(erf)(h / sqrt(2.0)).astype(np.float32))
        out: np.ndarray = (h @ self.w2 + self.b2).astype(np.float32)
        return out
