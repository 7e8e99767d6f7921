"""Load and soak: many requests over real sockets, every response accounted for.

A guarded uvicorn server (the real model, the bundled default policy, JSON logs to a file)
takes N requests from C concurrent clients, mixed JSON and SSE, mixed answers and refusals
(real XSTest responses). Checked for every response: status 200, no transport error, body
byte-identical to what the unguarded app sends for that request (precomputed in-process), and
``x-guardrail-action: pass`` (monitor-only policy); checked overall: exactly one
``guarded_response`` log line per request, and the server's RSS, sampled every second, flat.

    python -m benchmarks.load_soak [--requests 20000] [--concurrency 64] [--delay 0.05]

Exit status 1 when any check fails, so the small variant can run as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import CACHE_DIR, load_labelled, stats_ms, write_result
from benchmarks._harness import call_asgi
from benchmarks._load import run_load
from benchmarks._serve import start_server
from benchmarks._upstream import ChatUpstream, chat_request

__all__ = ["main", "run_soak"]

_RSS_GROWTH_LIMIT_MIB = 25.0


async def _expected_digests(picks: set[int], streams: set[bool]) -> dict[tuple[int, bool], str]:
    """sha256 of the unguarded app's body for every (response, stream) the run will ask for."""
    upstream = ChatUpstream([text for text, _ in load_labelled()], delay_s=0.0)
    out: dict[tuple[int, bool], str] = {}
    for pick in sorted(picks):
        for stream in sorted(streams):
            got = await call_asgi(
                upstream,
                chat_request(f"question {pick}", stream=stream),
                headers=(
                    (b"content-type", b"application/json"),
                    (b"x-upstream-pick", str(pick).encode()),
                ),
            )
            out[(pick, stream)] = hashlib.sha256(got.body).hexdigest()
    return out


def log_stats(lines: list[str]) -> dict[str, Any]:
    """The middleware's own accounting, from its JSON log lines: overhead and classifier time."""
    overhead: list[float] = []
    classifier: list[float] = []
    skipped: Counter[str] = Counter()
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") != "guarded_response":
            continue
        overhead.append(float(event.get("overhead_ms", 0.0)) / 1000.0)
        if event.get("classifier_ms"):
            classifier.append(float(event["classifier_ms"]) / 1000.0)
        if event.get("skipped"):
            skipped[str(event["skipped"])] += 1
    return {
        "overhead_ms": stats_ms(overhead).as_dict(),
        "classifier_ms": stats_ms(classifier).as_dict(),
        "skipped": dict(skipped),
    }


def _rss_trend(samples: list[float]) -> dict[str, Any]:
    if len(samples) < 4:
        return {"samples": samples}
    settled = samples[len(samples) // 4 :]  # after warm-up: allocator arenas, ORT buffers
    return {
        "samples": len(samples),
        "first_mib": samples[0],
        "after_warmup_mib": settled[0],
        "last_mib": samples[-1],
        "max_mib": max(samples),
        "growth_after_warmup_mib": samples[-1] - settled[0],
        "median_mib": statistics.median(samples),
    }


def run_soak(
    requests: int,
    concurrency: int,
    delay: float,
    *,
    model_dir: Path | None = None,
    seed: int = 7,
    stream_share: float = 0.5,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the soak and return its figures and check results (no file written)."""
    labelled = load_labelled()
    rng = random.Random(seed)
    picks = [rng.randrange(len(labelled)) for _ in range(requests)]
    streams = [rng.random() < stream_share for _ in range(requests)]
    expected = asyncio.run(_expected_digests(set(picks), set(streams)))
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    log_file = CACHE_DIR / "soak-server.log"
    log_file.write_text("", encoding="utf-8")
    with start_server(
        "guarded", delay_s=delay, model_dir=model_dir, log_file=log_file, options=options
    ) as server:
        run = asyncio.run(run_load(server.url, picks, streams, concurrency, rss_every_s=1.0))
    log_lines = [ln for ln in log_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
    guarded_lines = sum('"guarded_response"' in ln for ln in log_lines)

    problems: Counter[str] = Counter()
    for r in run.results:
        if r.error is not None:
            problems["transport_error"] += 1
        elif r.status != 200:
            problems[f"status_{r.status}"] += 1
        elif r.body_sha256 != expected[(r.pick, r.stream)]:
            problems["body_differs_from_unguarded"] += 1
        elif r.action != "pass":
            problems[f"action_{r.action}"] += 1
    if len(run.results) != requests:
        problems["missing_responses"] += requests - len(run.results)
    if guarded_lines != requests:
        problems["log_lines_not_one_per_request"] += abs(guarded_lines - requests)
    rss = _rss_trend(run.rss_mib)
    growth = rss.get("growth_after_warmup_mib", 0.0)
    if growth > _RSS_GROWTH_LIMIT_MIB:
        problems["rss_growth"] += 1
    ok = [r for r in run.results if r.error is None]
    refusals = sum(labelled[p][1] for p in picks)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "upstream_delay_s": delay,
        "stream_share": sum(streams) / requests,
        "refusal_share_human_labels": refusals / requests,
        "wall_s": run.wall_s,
        "throughput_rps": run.throughput,
        "latency": stats_ms(r.latency_s for r in ok).as_dict(),
        "ttfb_streams": stats_ms(r.ttfb_s for r in ok if r.ttfb_s is not None).as_dict(),
        "guarded_log_lines": guarded_lines,
        "middleware_log_accounting": log_stats(log_lines),
        "rss": rss,
        "rss_growth_limit_mib": _RSS_GROWTH_LIMIT_MIB,
        "problems": dict(problems),
        "all_accounted_for": not problems,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="guarded server soak over real sockets")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--no-write", action="store_true", help="do not write results JSON")
    parser.add_argument(
        "--options",
        type=json.loads,
        default=None,
        help='middleware options as JSON, e.g. {"stream_hold": "always"}',
    )
    args = parser.parse_args(argv)
    payload = run_soak(
        args.requests, args.concurrency, args.delay, model_dir=args.model_dir, options=args.options
    )
    payload["options"] = args.options or {}
    if not args.no_write:
        print(f"-> {write_result('load_soak', payload)}")
    print(
        f"{payload['requests']} requests, {payload['throughput_rps']:.1f} rps, "
        f"p50 {payload['latency']['p50_ms']:.1f} ms, p99 {payload['latency']['p99_ms']:.1f} ms, "
        f"RSS {payload['rss'].get('after_warmup_mib', 0):.1f} -> "
        f"{payload['rss'].get('last_mib', 0):.1f} MiB, problems: {payload['problems'] or 'none'}"
    )
    return 0 if payload["all_accounted_for"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
