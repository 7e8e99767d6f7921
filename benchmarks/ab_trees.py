"""Two checkouts of guardrail side by side: which one guards the same load more cheaply?

Machine speed here drifts by tens of percent within an hour, so a change is only measured
against the code before it *in the same run*: one unguarded server and one guarded server
per tree (each with its own code and bundled model), all running at once, rounds
interleaved. Per arm: throughput, p50 latency and time to first byte, and the server's CPU
time per request from ``/proc`` (split into the event loop, the other threads, i.e. the
inference pool, and child processes, i.e. inference worker processes).

    python -m benchmarks.ab_trees --tree /path/to/old/checkout --tree . [--kind json|sse]
        [--requests 2000] [--rounds 3] [--concurrency 32] [--options '{"stream_hold": "always"}']

``--options`` given once applies to every guarded server; given once per ``--tree``, each
tree gets its own (the same tree twice with two settings compares the settings).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import write_result
from benchmarks._rawload import run_raw_load
from benchmarks._serve import Server, start_server
from benchmarks.middleware_overhead import log_summary, picks_for, summarize

__all__ = ["main", "thread_cpu"]

_TICK = os.sysconf("SC_CLK_TCK")


def _seconds(stat: str) -> float:
    """User + system CPU seconds from a /proc stat line."""
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (inference worker processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                    found.append(int(entry))
    return found


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of ``pid``'s threads, ``main`` and ``others``, and of its
    child processes (``children``: inference worker processes; 0 with inference threads)."""
    out = {"main": 0.0, "others": 0.0, "children": 0.0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            seconds = _seconds(Path(f"/proc/{pid}/task/{tid}/stat").read_text())
            out["main" if tid == str(pid) else "others"] += seconds
    for child in _children(pid):
        with contextlib.suppress(FileNotFoundError):
            out["children"] += _seconds(Path(f"/proc/{child}/stat").read_text())
    return out


def _commit(tree: Path) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    dirty = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return done.stdout.strip() + ("+changes" if dirty else "")


async def _measure(
    servers: dict[str, Server],
    picks: list[int],
    stream: bool,
    clients: int,
    rounds: int,
    logs: dict[str, Path],
) -> dict[str, list[dict[str, Any]]]:
    flags = [stream] * len(picks)
    for server in servers.values():  # warm-up: connections, allocator, ORT kernels
        await run_raw_load(server.url, picks[:200], flags[:200], clients)
    res: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    for r in range(rounds):
        names = list(servers) if r % 2 == 0 else list(reversed(servers))
        for name in names:
            pid = servers[name].process.pid
            log = logs.get(name)
            since = len(log.read_text(encoding="utf-8").splitlines()) if log else 0
            before = thread_cpu(pid)
            run = await run_raw_load(servers[name].url, picks, flags, clients)
            after = thread_cpu(pid)
            figures = summarize(run)
            figures["cpu_ms_per_request"] = {
                k: (after[k] - before[k]) * 1000 / len(picks) for k in after
            }
            if log is not None:
                # work not done flatters a ratio: count classifications past their deadline
                await asyncio.sleep(1.2)  # the last streams' after-the-end classifications
                figures["log"] = log_summary(log, since)
            res[name].append(figures)
    return res


def _row(name: str, rounds: list[dict[str, Any]], base_rps: float) -> dict[str, Any]:
    rps = statistics.median(r["throughput_rps"] for r in rounds)
    ttfb = [r["ttfb"]["p50_ms"] for r in rounds if r.get("ttfb")]
    cpu = {
        k: statistics.median(r["cpu_ms_per_request"].get(k, 0.0) for r in rounds)
        for k in ("main", "others", "children")
    }
    return {
        "arm": name,
        "throughput_rps": rps,
        "ratio_to_unguarded": rps / base_rps,
        "p50_ms": statistics.median(r["latency"]["p50_ms"] for r in rounds),
        "ttfb_p50_ms": statistics.median(ttfb) if ttfb else None,
        "cpu_ms_per_request": {**cpu, "total": sum(cpu.values())},
        "failed": sum(r["failed"] for r in rounds),
        "skipped": sum(sum(r["log"]["skipped"].values()) for r in rounds if "log" in r),
        "logged": sum(r["log"]["log_lines"] for r in rounds if "log" in r),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="guarded servers of two checkouts side by side")
    parser.add_argument("--tree", type=Path, action="append", required=True)
    parser.add_argument("--kind", choices=["json", "sse"], default="json")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--options", type=json.loads, action="append", default=None)
    parser.add_argument(
        "--name",
        default="",
        help="suffix of the result file: results/ab_trees_<kind>[_<name>].json",
    )
    args = parser.parse_args(argv)
    trees = [t.resolve() for t in args.tree]
    given = args.options or [{}]
    if len(given) not in (1, len(trees)):
        parser.error(f"--options: give it once or once per --tree ({len(trees)}), not {len(given)}")
    options = given * len(trees) if len(given) == 1 else given
    picks = picks_for(args.requests)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        servers = {"unguarded": stack.enter_context(start_server("unguarded", tree=trees[0]))}
        logs: dict[str, Path] = {}
        for i, (tree, opts) in enumerate(zip(trees, options, strict=True)):
            label = f"{i}:{_commit(tree)}" + (f" {json.dumps(opts)}" if opts else "")
            logs[label] = tmp / f"guarded_{i}.log"
            logs[label].touch()
            servers[label] = stack.enter_context(
                start_server(
                    "guarded", delay_s=args.delay, options=opts, tree=tree, log_file=logs[label]
                )
            )
        res = asyncio.run(
            _measure(servers, picks, args.kind == "sse", args.concurrency, args.rounds, logs)
        )
    base = statistics.median(r["throughput_rps"] for r in res["unguarded"])
    rows = [_row(name, rounds, base) for name, rounds in res.items()]
    payload = {
        "kind": args.kind,
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "options": options,
        "trees": [str(t) for t in trees],
        "arms": rows,
        "raw_rounds": res,
    }
    name = f"ab_trees_{args.kind}" + (f"_{args.name}" if args.name else "")
    print(f"-> {write_result(name, payload)}")
    for row in rows:
        ttfb = f"{row['ttfb_p50_ms']:.1f}" if row["ttfb_p50_ms"] is not None else "-"
        cpu = row["cpu_ms_per_request"]
        print(
            f"{args.kind} {row['arm']:>30}: {row['throughput_rps']:7.1f} rps "
            f"ratio {row['ratio_to_unguarded']:.3f}  p50 {row['p50_ms']:6.1f} ms  ttfb p50 {ttfb}  "
            f"cpu/req {cpu['total']:.2f} ms (event loop {cpu['main']:.2f}, other threads "
            f"{cpu['others']:.2f}, child processes {cpu['children']:.2f})  failed {row['failed']}"
            + (f"  skipped {row['skipped']} of {row['logged']}" if row["logged"] else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
