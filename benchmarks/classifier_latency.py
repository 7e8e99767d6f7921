"""Classifier latency and throughput against the NoRefusal peer (issue #2's speed figure).

Our classifier reads each full response (its own head/tail windowing); the peer, a
distilroberta-base sized ONNX fp32 model (see ``_peer.py``), reads the first 128 tokens, as
LLM Guard's NoRefusal scanner does. Both run with one intra-op thread, timed per response and
interleaved text by text, so that noise from other processes on the machine hits both alike.

Throughput on all cores is measured for three honest configurations of ours (one session with
``threads=N``; N threads each with a one-thread session; N processes each with a one-thread
session) and for the peer in the best of the same configurations.

    python -m benchmarks.classifier_latency [--limit 1500] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks._common import load_completions, stats_ms, write_result
from benchmarks._peer import PEER_MAX_TOKENS, PeerModel, peer_model_path

__all__ = ["main"]

_TARGET_SPEEDUP = 15.0


def _load_ours(model_dir: Path | None, threads: int) -> Any:
    from guardrail import RefusalClassifier

    return RefusalClassifier.load(model_dir=model_dir, threads=threads)


def _token_counts(texts: Sequence[str], model_dir: Path | None) -> list[int]:
    """Token counts with our own tokenizer, untruncated ([CLS] and [SEP] included)."""
    from tokenizers import Tokenizer

    from guardrail._resources import bundled_model_dir

    tok = Tokenizer.from_file(str((model_dir or bundled_model_dir()) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return [len(e.ids) for e in tok.encode_batch(list(texts))]


def sample_texts(limit: int, seed: int = 0) -> list[str]:
    """A seeded sample across all ten models' responses (answers and refusals mixed)."""
    texts = load_completions()
    rng = random.Random(seed)
    rng.shuffle(texts)
    return texts[:limit] if limit else texts


def _latency(texts: list[str], counts: list[int], model_dir: Path | None) -> dict[str, Any]:
    ours = _load_ours(model_dir, threads=1)
    peer = PeerModel(peer_model_path(), threads=1)
    feeds = [peer.inputs_for(n) for n in counts]
    for i in range(min(20, len(texts))):  # warm-up: allocator arenas, kernel selection
        ours.classify(texts[i])
        peer.run(feeds[i])
    ours_s: list[float] = []
    peer_s: list[float] = []
    for i, text in enumerate(texts):
        # Alternate which model goes first so neither systematically gets the warmer cache.
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for which in order:
            t0 = time.perf_counter()
            if which == 0:
                ours.classify(text)
                ours_s.append(time.perf_counter() - t0)
            else:
                peer.run(feeds[i])
                peer_s.append(time.perf_counter() - t0)
    o, p = stats_ms(ours_s), stats_ms(peer_s)
    return {
        "ours": o.as_dict(),
        "peer": p.as_dict(),
        "speedup_mean": p.mean_ms / o.mean_ms,
        "speedup_p50": p.p50_ms / o.p50_ms,
        "speedup_p99": p.p99_ms / o.p99_ms,
        "target_speedup": _TARGET_SPEEDUP,
        "met": p.mean_ms / o.mean_ms >= _TARGET_SPEEDUP,
    }


def _worker_ours(texts: list[str], model_dir: str | None) -> Callable[[], None]:
    clf = _load_ours(Path(model_dir) if model_dir else None, threads=1)
    clf.classify_batch(texts[:8])

    def work() -> None:
        for i in range(0, len(texts), 16):
            clf.classify_batch(texts[i : i + 16])

    return work


def _worker_peer(counts: list[int]) -> Callable[[], None]:
    peer = PeerModel(peer_model_path(), threads=1)
    feeds = [peer.inputs_for(n) for n in counts]
    peer.run(feeds[0])

    def work() -> None:
        for f in feeds:
            peer.run(f)

    return work


def _process_main(
    factory: Callable[..., Callable[[], None]], args: tuple[Any, ...], barrier: Any, queue: Any
) -> None:
    work = factory(*args)
    barrier.wait()  # every worker has loaded its model: start the clock together
    t0 = time.perf_counter()
    work()
    queue.put(time.perf_counter() - t0)


def _split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    return [list(items[i::parts]) for i in range(parts)]


def _per_second(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("nan")


def _in_processes(
    factory: Callable[..., Callable[[], None]], arg_list: list[tuple[Any, ...]]
) -> float:
    """Wall time of the slowest worker, all starting together after loading their models."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(arg_list))
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_process_main, args=(factory, args, barrier, queue)) for args in arg_list
    ]
    for proc in procs:
        proc.start()
    walls: list[float] = [float(queue.get(timeout=3600)) for _ in procs]
    for proc in procs:
        proc.join()
    return max(walls)


def _throughput(
    texts: list[str], counts: list[int], model_dir: Path | None, workers: int, peer_n: int
) -> dict[str, Any]:
    md = str(model_dir) if model_dir else None
    n = len(texts)
    results: dict[str, float] = {}

    clf = _load_ours(model_dir, threads=workers)
    clf.classify_batch(texts[:16])
    t0 = time.perf_counter()
    for i in range(0, n, 32):
        clf.classify_batch(texts[i : i + 32])
    results[f"ours_one_session_threads{workers}_batch32"] = _per_second(n, time.perf_counter() - t0)
    del clf

    sessions = [_load_ours(model_dir, threads=1) for _ in range(workers)]
    chunks = _split(texts, workers)
    for s, c in zip(sessions, chunks, strict=True):
        s.classify_batch(c[:8])

    def run(idx: int) -> None:
        c = chunks[idx]
        for i in range(0, len(c), 16):
            sessions[idx].classify_batch(c[i : i + 16])

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, range(workers)))
    results[f"ours_{workers}_threads_x_1_thread_batch16"] = _per_second(n, time.perf_counter() - t0)
    sessions.clear()

    wall = _in_processes(_worker_ours, [(c, md) for c in chunks])
    results[f"ours_{workers}_processes_x_1_thread_batch16"] = _per_second(n, wall)

    peer_counts = counts[:peer_n]
    wall = _in_processes(_worker_peer, [(c,) for c in _split(peer_counts, workers)])
    peer_rates = {f"peer_{workers}_processes_x_1_thread": _per_second(len(peer_counts), wall)}
    peer = PeerModel(peer_model_path(), threads=workers)  # and one session on all cores
    feeds = [peer.inputs_for(n) for n in peer_counts]
    peer.run(feeds[0])
    t0 = time.perf_counter()
    for f in feeds:
        peer.run(f)
    peer_rates[f"peer_one_session_threads{workers}"] = _per_second(
        len(peer_counts), time.perf_counter() - t0
    )
    peer_best = max(peer_rates, key=lambda k: peer_rates[k])
    best_key = max(results, key=lambda k: results[k])
    return {
        "workers": workers,
        "responses_per_second": results,
        "peer_responses_per_second": peer_rates,
        "peer_responses": len(peer_counts),
        "best_ours": best_key,
        "best_peer": peer_best,
        "throughput_ratio_best_vs_best_peer": results[best_key] / peer_rates[peer_best],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--limit", type=int, default=1500, help="responses (0 = all 4,500)")
    parser.add_argument("--peer-throughput-limit", type=int, default=400)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)

    texts = sample_texts(args.limit)
    counts = _token_counts(texts, args.model_dir)
    payload: dict[str, Any] = {
        "responses": len(texts),
        "tokens_median": statistics.median(counts),
        "tokens_max": max(counts),
        "share_over_128_tokens": sum(c > PEER_MAX_TOKENS for c in counts) / len(counts),
        "peer": "distilroberta-base arch (6x768, vocab 50265), random weights, ONNX fp32, "
        "opset 17, input = random ids of length min(our token count, 128)",
        "ours": "RefusalClassifier.classify on the full text (own windowing), threads=1",
        "latency": _latency(texts, counts, args.model_dir),
    }
    if not args.skip_throughput:
        payload["throughput"] = _throughput(
            texts, counts, args.model_dir, args.workers, args.peer_throughput_limit
        )
    path = write_result("classifier_latency", payload)
    lat = payload["latency"]
    print(
        f"ours p50 {lat['ours']['p50_ms']:.2f} ms p99 {lat['ours']['p99_ms']:.2f} ms "
        f"mean {lat['ours']['mean_ms']:.2f} ms | peer p50 {lat['peer']['p50_ms']:.2f} ms "
        f"mean {lat['peer']['mean_ms']:.2f} ms | speed-up {lat['speedup_mean']:.1f}x -> {path}"
    )
    if "throughput" in payload:
        print(payload["throughput"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
