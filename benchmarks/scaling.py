"""How cost scales: classifier latency by response length, middleware by concurrency.

1. Length: real compliant answers joined into texts of 100 to 8,000 tokens, classified one at
   a time (one thread), next to the peer fed min(n, 128) tokens. Our windowing reads a head
   and a tail window whatever the length, so only tokenisation grows with the text.
2. Concurrency: the stand-in app over HTTP, unguarded and guarded, at 1, 8, 32 and 128
   concurrent clients (JSON), back to back at each level, driven by the light raw-socket
   client of ``benchmarks._rawload``.

    python -m benchmarks.scaling [--lengths 100,250,...] [--levels 1,8,32,128]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import load_labelled, stats_ms, write_result
from benchmarks._peer import PeerModel, peer_model_path
from benchmarks._rawload import run_raw_load
from benchmarks._serve import start_server
from benchmarks.middleware_overhead import picks_for, summarize

__all__ = ["main"]


def _texts_of_length(target: int, tokenizer: Any, count: int) -> list[tuple[str, int]]:
    """``count`` different texts of about ``target`` tokens made of real compliant answers."""
    answers = [t for t, refusal in load_labelled() if not refusal]
    out: list[tuple[str, int]] = []
    start = 0
    for _ in range(count):
        words: list[str] = []
        i = start
        while True:
            words += answers[i % len(answers)].split()
            i += 1
            if len(tokenizer.encode(" ".join(words)).ids) >= target:
                break
        # Trim word by word from the end to land at (or just over) the target length.
        lo, hi = 1, len(words)
        while lo < hi:
            mid = (lo + hi) // 2
            if len(tokenizer.encode(" ".join(words[:mid])).ids) >= target:
                hi = mid
            else:
                lo = mid + 1
        text = " ".join(words[:lo])
        out.append((text, len(tokenizer.encode(text).ids)))
        start = i
    return out


def by_length(lengths: list[int], reps: int, model_dir: Path | None) -> list[dict[str, Any]]:
    from tokenizers import Tokenizer

    from guardrail import RefusalClassifier
    from guardrail._resources import bundled_model_dir

    tok = Tokenizer.from_file(str((model_dir or bundled_model_dir()) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    clf = RefusalClassifier.load(model_dir=model_dir, threads=1)
    peer = PeerModel(peer_model_path(), threads=1)
    rows = []
    for target in lengths:
        texts = _texts_of_length(target, tok, reps)
        clf.classify(texts[0][0])
        feeds = [peer.inputs_for(n) for _, n in texts]
        peer.run(feeds[0])
        ours, theirs = [], []
        for (text, _), feed in zip(texts, feeds, strict=True):
            t0 = time.perf_counter()
            clf.classify(text)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            peer.run(feed)
            theirs.append(time.perf_counter() - t0)
        o, p = stats_ms(ours), stats_ms(theirs)
        rows.append(
            {
                "target_tokens": target,
                "mean_tokens": sum(n for _, n in texts) / len(texts),
                "chars_mean": sum(len(t) for t, _ in texts) / len(texts),
                "ours": o.as_dict(),
                "peer_truncated_128": p.as_dict(),
                "speedup_p50": p.p50_ms / o.p50_ms,
            }
        )
        print(
            f"{target:6d} tokens: ours p50 {o.p50_ms:.2f} ms p99 {o.p99_ms:.2f} ms | "
            f"peer p50 {p.p50_ms:.2f} ms"
        )
    return rows


def by_concurrency(
    levels: list[int], requests: int, delay: float, model_dir: Path | None
) -> list[dict[str, Any]]:
    rows = []
    with (
        start_server("unguarded", delay_s=delay) as plain,
        start_server("guarded", delay_s=delay, model_dir=model_dir) as guarded,
    ):
        for level in levels:
            n = max(requests, level * 4)
            picks = picks_for(n, seed=level)
            flags = [False] * n
            res = {}
            for server in (plain, guarded):  # warm-up, then the measured run
                warm = picks[: level * 2]
                asyncio.run(run_raw_load(server.url, warm, flags[: level * 2], level))
                run = asyncio.run(run_raw_load(server.url, picks, flags, level))
                res[server.mode] = summarize(run)
            u, g = res["unguarded"], res["guarded"]
            rows.append(
                {
                    "concurrency": level,
                    "requests": n,
                    "unguarded": u,
                    "guarded": g,
                    "throughput_ratio": g["throughput_rps"] / u["throughput_rps"],
                    "added_p50_ms": g["latency"]["p50_ms"] - u["latency"]["p50_ms"],
                    "added_p99_ms": g["latency"]["p99_ms"] - u["latency"]["p99_ms"],
                }
            )
            row = rows[-1]
            print(
                f"c={level:4d}: ratio {row['throughput_ratio']:.3f} "
                f"added p50 {row['added_p50_ms']:.1f} ms p99 {row['added_p99_ms']:.1f} ms "
                f"failed {u['failed']}/{g['failed']}"
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="latency by length, overhead by concurrency")
    parser.add_argument("--lengths", default="100,250,500,1000,2000,4000,8000")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--levels", default="1,8,32,128")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--model-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",") if x]
    levels = [int(x) for x in args.levels.split(",") if x]
    payload = {
        "by_length": by_length(lengths, args.reps, args.model_dir) if lengths else [],
        "by_concurrency": by_concurrency(levels, args.requests, args.delay, args.model_dir)
        if levels
        else [],
        "upstream_delay_s": args.delay,
    }
    print(f"-> {write_result('scaling', payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
