"""Resident memory (VmRSS) of the classifier and of a guarded server, next to the peer.

Each figure comes from a fresh interpreter (spawned process), so nothing loaded for one
measurement inflates another:

- ``python + import guardrail`` (the baseline), then ``RefusalClassifier.load()``, then after
  classifying 500 real responses one by one and in batches of 32;
- the same for the peer (distilroberta-base sized ONNX fp32) after 100 inferences at 128 tokens;
- a guarded and an unguarded uvicorn server, idle and after 1,000 requests (32 concurrent).

    python -m benchmarks.memory [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import load_completions, rss_mib, write_result
from benchmarks._load import run_load, sample_rss
from benchmarks._serve import start_server
from benchmarks.middleware_overhead import picks_for

__all__ = ["main"]


def _ours(model_dir: str | None, queue: Any) -> None:
    import guardrail

    out = {"baseline_mib": rss_mib()}
    clf = guardrail.RefusalClassifier.load(model_dir=model_dir, threads=1)
    out["loaded_mib"] = rss_mib()
    texts = load_completions(limit=500)
    for text in texts:
        clf.classify(text)
    out["after_500_single_mib"] = rss_mib()
    for i in range(0, len(texts), 32):
        clf.classify_batch(texts[i : i + 32])
    out["after_batches_of_32_mib"] = rss_mib()
    queue.put(out)


def _peer(queue: Any) -> None:
    import onnxruntime  # noqa: F401  (the baseline includes the runtime, as for ours)

    from benchmarks._peer import PeerModel, peer_model_path

    out = {"baseline_mib": rss_mib()}
    peer = PeerModel(peer_model_path(), threads=1)
    out["loaded_mib"] = rss_mib()
    feed = peer.inputs_for(128)
    for _ in range(100):
        peer.run(feed)
    out["after_100_runs_mib"] = rss_mib()
    queue.put(out)


def _in_fresh_process(target: Any, *args: Any) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result: dict[str, float] = queue.get(timeout=600)
    proc.join()
    return result


async def _server_rss(url: str, n: int) -> dict[str, float]:
    import httpx

    async with httpx.AsyncClient(base_url=url) as client:
        idle = await sample_rss(client)
    picks = picks_for(n)
    run = await run_load(url, picks, [i % 2 == 1 for i in range(n)], 32)
    async with httpx.AsyncClient(base_url=url) as client:
        loaded = await sample_rss(client)
    failed = sum(r.status != 200 for r in run.results)
    return {"idle_mib": idle, f"after_{n}_requests_mib": loaded, "failed": float(failed)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="resident memory of classifier and server")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args(argv)
    md = str(args.model_dir) if args.model_dir else None
    ours = _in_fresh_process(_ours, md)
    peer = _in_fresh_process(_peer)
    servers = {}
    for mode in ("unguarded", "guarded"):
        with start_server(mode, model_dir=args.model_dir if mode == "guarded" else None) as s:
            servers[mode] = asyncio.run(_server_rss(s.url, args.requests))
    payload: dict[str, Any] = {
        "classifier": ours,
        "classifier_model_mib": ours["loaded_mib"] - ours["baseline_mib"],
        "peer": peer,
        "peer_model_mib": peer["loaded_mib"] - peer["baseline_mib"],
        "servers": servers,
        "guarded_minus_unguarded_after_load_mib": (
            servers["guarded"][f"after_{args.requests}_requests_mib"]
            - servers["unguarded"][f"after_{args.requests}_requests_mib"]
        ),
    }
    payload["peer_to_ours_model_memory_ratio"] = (
        payload["peer_model_mib"] / payload["classifier_model_mib"]
    )
    print(f"-> {write_result('memory', payload)}")
    for key in ("classifier_model_mib", "peer_model_mib", "guarded_minus_unguarded_after_load_mib"):
        print(f"{key}: {payload[key]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
