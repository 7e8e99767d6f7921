"""What GuardrailMiddleware costs a chat service (issue #3's overhead figure).

The same stand-in app (answers after 50 ms with real XSTest responses, about 45 % refusals,
as chat-completion JSON or an SSE stream) is measured unguarded and guarded (the real model,
the bundled default policy: monitor only, so no retry changes the work done), in alternating
rounds so that machine noise hits both alike:

- in-process: httpx's ASGITransport, no sockets;
- over HTTP: uvicorn in a subprocess on a free port, closed-loop clients in this process:
  by default the light raw-socket client of ``benchmarks._rawload`` (``--client httpx`` for
  httpx, which costs a few ms of CPU per request on the cores the server needs too).

Reported: throughput ratio guarded/unguarded (target >= 0.8), p50/p99 latency and added
p50 (target <= 10 ms), added time-to-first-byte of streams, and the per-request overhead at
concurrency 1 (no queueing). Over HTTP the guarded server's log lines are read back too:
how many classifications ran out of their deadline (work not done would flatter the ratio)
and how long classification took, queueing included. A paced phase has the app write its
stream chunk by chunk at an LLM's pace (24 characters every 40 ms by default) and reports
the added time to first byte under each hold-back rule (mostly the time the upstream takes
to write the window) and unheld. The monitor-only default policy cannot act on any request,
so its streams are not held back (``stream_hold="auto"``); the ``sse_held`` phases measure
streams held as under a policy that could act on every request (``stream_hold="always"``).

    python -m benchmarks.middleware_overhead [--requests 2000] [--concurrency 32] [--rounds 3]
        [--client raw|httpx] [--paced-chunk-delay 0.04] [--skip-in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from benchmarks._common import load_labelled, stats_ms, write_result
from benchmarks._load import LoadRun, run_load
from benchmarks._rawload import run_raw_load
from benchmarks._serve import build_app, start_server

__all__ = ["main", "summarize"]

_TARGET_RATIO = 0.8
_TARGET_ADDED_P50_MS = 10.0


def picks_for(n: int, seed: int = 1) -> list[int]:
    """``n`` response indices, a seeded shuffle of the whole pool (answers and refusals)."""
    pool = list(range(len(load_labelled())))
    random.Random(seed).shuffle(pool)
    return [pool[i % len(pool)] for i in range(n)]


def summarize(run: LoadRun) -> dict[str, Any]:
    """Throughput, latency and (streams) TTFB of one run; failed requests counted apart."""
    ok = [r for r in run.results if r.status == 200 and r.error is None]
    ttfb = [r.ttfb_s for r in ok if r.ttfb_s is not None]
    return {
        "requests": len(run.results),
        "failed": len(run.results) - len(ok),
        "throughput_rps": run.throughput,
        "latency": stats_ms(r.latency_s for r in ok).as_dict(),
        "ttfb": stats_ms(ttfb).as_dict() if ttfb else None,
    }


def _compare(unguarded: list[dict[str, Any]], guarded: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-round ratios, then their median: each pair of rounds ran back to back."""
    ratios = [
        g["throughput_rps"] / u["throughput_rps"] for u, g in zip(unguarded, guarded, strict=True)
    ]
    added50 = [
        g["latency"]["p50_ms"] - u["latency"]["p50_ms"]
        for u, g in zip(unguarded, guarded, strict=True)
    ]
    added99 = [
        g["latency"]["p99_ms"] - u["latency"]["p99_ms"]
        for u, g in zip(unguarded, guarded, strict=True)
    ]
    out: dict[str, Any] = {
        "throughput_ratio": statistics.median(ratios),
        "throughput_ratio_rounds": ratios,
        "added_p50_ms": statistics.median(added50),
        "added_p99_ms": statistics.median(added99),
        "unguarded_rounds": unguarded,
        "guarded_rounds": guarded,
    }
    if unguarded[0]["ttfb"] is not None:
        out["added_ttfb_p50_ms"] = statistics.median(
            g["ttfb"]["p50_ms"] - u["ttfb"]["p50_ms"]
            for u, g in zip(unguarded, guarded, strict=True)
        )
        out["added_ttfb_p99_ms"] = statistics.median(
            g["ttfb"]["p99_ms"] - u["ttfb"]["p99_ms"]
            for u, g in zip(unguarded, guarded, strict=True)
        )
    out["met_throughput"] = out["throughput_ratio"] >= _TARGET_RATIO
    out["met_added_p50"] = out["added_p50_ms"] <= _TARGET_ADDED_P50_MS
    return out


async def _rounds(
    urls: dict[str, str],
    transports: dict[str, httpx.AsyncBaseTransport | None],
    picks: list[int],
    stream: bool,
    concurrency: int,
    rounds: int,
    client: str = "httpx",
) -> dict[str, Any]:
    streams = [stream] * len(picks)
    warm = picks[: min(64, len(picks))]

    async def load(mode: str, which: list[int], flags: list[bool]) -> LoadRun:
        if client == "raw" and transports[mode] is None:
            return await run_raw_load(urls[mode], which, flags, concurrency)
        return await run_load(urls[mode], which, flags, concurrency, transport=transports[mode])

    for mode in ("unguarded", "guarded"):  # warm-up: connections, allocator, ORT kernels
        await load(mode, warm, [stream] * len(warm))
    res: dict[str, list[dict[str, Any]]] = {"unguarded": [], "guarded": []}
    for r in range(rounds):
        order = ("unguarded", "guarded") if r % 2 == 0 else ("guarded", "unguarded")
        for mode in order:
            res[mode].append(summarize(await load(mode, picks, streams)))
    return _compare(res["unguarded"], res["guarded"])


async def _in_process(
    picks: list[int], concurrency: int, rounds: int, delay: float, model_dir: Path | None
) -> dict[str, Any]:
    import os

    from guardrail.observability import configure_logging

    # Production-like JSON log lines, written to /dev/null (their cost is part of the figure).
    configure_logging(json=True, stream=open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
    apps = {m: build_app(m, delay_s=delay, model_dir=model_dir) for m in ("unguarded", "guarded")}
    transports: dict[str, httpx.AsyncBaseTransport | None] = {
        m: httpx.ASGITransport(app=a) for m, a in apps.items()
    }
    urls = dict.fromkeys(apps, "http://bench")
    return {
        "json": await _rounds(urls, transports, picks, False, concurrency, rounds),
        "sse": await _rounds(urls, transports, picks, True, concurrency, rounds),
    }


def log_summary(path: Path, since: int = 0) -> dict[str, Any]:
    """What the guarded server's log lines (from line ``since`` on) say about classification.

    A ratio is only a fair figure when the guarded server did all its work: a classification
    that ran out of its deadline (``skipped``) is work not done. ``classifier_ms`` (queueing
    included, both classifications of a stream) shows how far behind the classifier ran.
    """
    lines = path.read_text(encoding="utf-8").splitlines()[since:]
    rows = [json.loads(line) for line in lines if line.strip()]
    skipped: dict[str, int] = {}
    for row in rows:
        if row.get("skipped"):
            skipped[row["skipped"]] = skipped.get(row["skipped"], 0) + 1
    return {
        "log_lines": len(rows),
        "skipped": skipped,
        "classifier_ms": stats_ms(r["classifier_ms"] / 1000 for r in rows).as_dict(),
    }


def _over_http(
    picks: list[int],
    concurrency: int,
    rounds: int,
    delay: float,
    model_dir: Path | None,
    sequential: int,
    client: str,
    options: dict[str, Any],
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        log, held_log = Path(tmp) / "guarded.log", Path(tmp) / "held.log"
        log.touch()
        held_log.touch()
        with (
            start_server("unguarded", delay_s=delay) as plain,
            start_server(
                "guarded", delay_s=delay, model_dir=model_dir, log_file=log, options=options
            ) as guarded,
            # Every stream held back, as under a policy that could act on every request
            # (the monitor-only default lets streams through unheld).
            start_server(
                "guarded",
                delay_s=delay,
                model_dir=model_dir,
                log_file=held_log,
                options={**options, "stream_hold": "always"},
            ) as held,
        ):
            urls = {"unguarded": plain.url, "guarded": guarded.url}
            held_urls = {"unguarded": plain.url, "guarded": held.url}
            none: dict[str, httpx.AsyncBaseTransport | None] = dict.fromkeys(urls)
            out: dict[str, Any] = {}
            phases = {
                "json": (picks, False, concurrency, urls, log),
                "sse": (picks, True, concurrency, urls, log),
                "sse_held": (picks, True, concurrency, held_urls, held_log),
                "concurrency_1_json": (picks[:sequential], False, 1, urls, log),
                "concurrency_1_sse": (picks[:sequential], True, 1, urls, log),
                "concurrency_1_sse_held": (picks[:sequential], True, 1, held_urls, held_log),
            }
            for name, (which, stream, clients, where, lines) in phases.items():
                seen = len(lines.read_text(encoding="utf-8").splitlines())
                out[name] = asyncio.run(
                    _rounds(where, none, which, stream, clients, rounds, client)
                )
                time.sleep(1.5)  # the last streams' after-the-last-byte classifications
                out[name]["guarded_log"] = log_summary(lines, seen)
    return out


def _paced(
    picks: list[int],
    delay: float,
    chunk_delay: float,
    model_dir: Path | None,
    client: str,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Added time to first byte when the upstream writes its stream at an LLM's pace: held
    back by the model's first window (the default rule) and by the first sentence, and
    unheld (the monitor-only default policy, ``stream_hold="auto"``); 8 clients."""
    out: dict[str, Any] = {"chunk_delay_s": chunk_delay, "chunk_chars": 24, "clients": 8}
    with start_server("unguarded", delay_s=delay, chunk_delay_s=chunk_delay) as plain:
        for rule in ("model", "sentence", "unheld"):
            options = {
                **extra,
                **(
                    {"stream_hold": "auto"}
                    if rule == "unheld"
                    else {"stream_window_rule": rule, "stream_hold": "always"}
                ),
            }
            with start_server(
                "guarded",
                delay_s=delay,
                chunk_delay_s=chunk_delay,
                model_dir=model_dir,
                options=options,
            ) as guarded:
                urls = {"unguarded": plain.url, "guarded": guarded.url}
                none: dict[str, httpx.AsyncBaseTransport | None] = dict.fromkeys(urls)
                out[rule] = asyncio.run(_rounds(urls, none, picks, True, 8, 1, client))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GuardrailMiddleware overhead vs the same app")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sequential", type=int, default=200, help="requests at concurrency 1")
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--skip-in-process", action="store_true")
    parser.add_argument(
        "--paced-chunk-delay",
        type=float,
        default=0.04,
        help="seconds between the 24-character chunks of the paced-stream phase (0: skip it)",
    )
    parser.add_argument("--paced-requests", type=int, default=80)
    parser.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="load generator over HTTP (raw: light asyncio sockets; httpx: the httpx client)",
    )
    parser.add_argument(
        "--options",
        type=json.loads,
        default={},
        help="GuardrailMiddleware options (JSON) for every guarded server over HTTP, e.g. "
        "'{\"classifier_processes\": 2}'",
    )
    parser.add_argument(
        "--name",
        default="middleware_overhead",
        help="result file name (benchmarks/results/NAME.json), e.g. for a run with --options",
    )
    args = parser.parse_args(argv)
    if not isinstance(args.options, dict):
        parser.error("--options must be a JSON object")

    picks = picks_for(args.requests)
    payload: dict[str, Any] = {
        "requests_per_round": args.requests,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "upstream_delay_s": args.delay,
        "policy": "bundled default (monitor only)",
        "http_client": args.client,
        "options": args.options,
    }
    # Over HTTP first: the in-process phase loads a model, a policy watcher and tens of
    # thousands of objects into this process, which is also the HTTP load generator.
    payload["http"] = _over_http(
        picks,
        args.concurrency,
        args.rounds,
        args.delay,
        args.model_dir,
        args.sequential,
        args.client,
        args.options,
    )
    if args.paced_chunk_delay > 0:
        payload["paced_streams"] = _paced(
            picks[: args.paced_requests],
            args.delay,
            args.paced_chunk_delay,
            args.model_dir,
            args.client,
            args.options,
        )
    if not args.skip_in_process:
        payload["in_process"] = asyncio.run(
            _in_process(picks, args.concurrency, args.rounds, args.delay, args.model_dir)
        )
    path = write_result(args.name, payload)
    paced = payload.get("paced_streams")
    if paced:
        for rule in ("model", "sentence", "unheld"):
            f = paced[rule]
            print(
                f"paced streams ({paced['chunk_delay_s'] * 1000:.0f} ms per chunk), {rule} rule: "
                f"ttfb +{f['added_ttfb_p50_ms']:.1f} ms p50, +{f['added_ttfb_p99_ms']:.1f} ms p99"
            )
    for where in ("in_process", "http"):
        for kind, figure in payload.get(where, {}).items():
            line = (
                f"{where:10s} {kind:18s} ratio {figure['throughput_ratio']:.3f} "
                f"added p50 {figure['added_p50_ms']:.2f} ms p99 {figure['added_p99_ms']:.2f} ms"
            )
            if "added_ttfb_p50_ms" in figure:
                line += f" ttfb +{figure['added_ttfb_p50_ms']:.2f} ms"
            if "guarded_log" in figure:
                g = figure["guarded_log"]
                line += (
                    f" | classifications skipped {sum(g['skipped'].values())} of "
                    f"{g['log_lines']}, classifier_ms p50 {g['classifier_ms']['p50_ms']:.1f}"
                )
            print(line)
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
