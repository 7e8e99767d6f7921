"""The rows of the summary table: one builder per benchmark's results file.

Each builder turns the JSON one benchmark script wrote into ``benchmarks/results/`` into
the table rows (figure, target, measured, met, script) that ``benchmarks.report`` renders;
``summary_rows`` runs them, in table order, over the results files that exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS_DIR

__all__ = ["Row", "load_result", "summary_rows"]

Row = tuple[str, str, str, str, str]


def load_result(name: str) -> dict[str, Any] | None:
    """The results file ``benchmarks/results/<name>.json``, or None if it was not written."""
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _met(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "**no**")


def _latency(d: dict[str, Any]) -> list[Row]:
    lat = d["latency"]
    o, p = lat["ours"], lat["peer"]
    rows: list[Row] = [
        (
            "Classifier latency per response, 1 thread (p50 / p99 / mean)",
            "-",
            f"{o['p50_ms']:.2f} / {o['p99_ms']:.2f} / {o['mean_ms']:.2f} ms "
            f"(peer {p['p50_ms']:.1f} / {p['p99_ms']:.1f} / {p['mean_ms']:.1f} ms)",
            "-",
            "classifier_latency",
        ),
        (
            "Speed-up vs distilroberta peer (mean; p50)",
            ">= 15x",
            f"{lat['speedup_mean']:.1f}x; {lat['speedup_p50']:.1f}x",
            _met(lat["met"]),
            "classifier_latency",
        ),
    ]
    tp = d.get("throughput")
    if tp:
        best = tp["responses_per_second"][tp["best_ours"]]
        peer = tp["peer_responses_per_second"][tp["best_peer"]]
        rows.append(
            (
                f"Throughput on {tp['workers']} cores (best config each)",
                "-",
                f"{best:.0f}/s ({tp['best_ours']}) vs peer {peer:.1f}/s = "
                f"{tp['throughput_ratio_best_vs_best_peer']:.1f}x",
                "-",
                "classifier_latency",
            )
        )
    return rows


_KIND_LABELS = {
    "json": "JSON",
    "sse": "SSE (monitor-only policy: streams unheld)",
    "sse_held": "SSE held back (stream_hold=always)",
}


def _overhead(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    http = d["http"]
    options = d.get("options") or {}
    # A run with middleware options (e.g. worker processes) says so in every figure's name.
    suffix = f", options {json.dumps(options)}" if options else ""
    c = f"{d['concurrency']}{suffix}"
    for kind in ("json", "sse", "sse_held"):
        if kind not in http:
            continue  # results written before the phase existed
        f = http[kind]
        label = _KIND_LABELS[kind] if "sse_held" in http else kind.upper()
        done = ""
        if "guarded_log" in f:
            g = f["guarded_log"]
            done = (
                f" ({sum(g['skipped'].values())} of {g['log_lines']} classifications skipped; "
                f"classifier p50 {g['classifier_ms']['p50_ms']:.0f} ms incl. queueing)"
            )
        rows.append(
            (
                f"Middleware throughput guarded/unguarded, HTTP, {label}, c={c}",
                ">= 0.8",
                f"{f['throughput_ratio']:.2f}{done}",
                _met(f["met_throughput"]),
                "middleware_overhead",
            )
        )
        rows.append(
            (
                f"Added p50 / p99 latency, HTTP, {label}, c={c}",
                "p50 <= 10 ms",
                f"{f['added_p50_ms']:.1f} / {f['added_p99_ms']:.1f} ms",
                _met(f["met_added_p50"]),
                "middleware_overhead",
            )
        )
    for kind in ("concurrency_1_json", "concurrency_1_sse", "concurrency_1_sse_held"):
        if kind not in http:
            continue
        f = http[kind]
        base = kind.removeprefix("concurrency_1_")
        label = _KIND_LABELS[base] if "sse_held" in http else base.upper()
        rows.append(
            (
                f"Added p50 / p99 latency, HTTP, {label}, c=1{suffix}",
                "p50 <= 10 ms",
                f"{f['added_p50_ms']:.1f} / {f['added_p99_ms']:.1f} ms",
                _met(f["met_added_p50"]),
                "middleware_overhead",
            )
        )
    for kind in ("sse", "sse_held", "concurrency_1_sse", "concurrency_1_sse_held"):
        if kind not in http:
            continue
        f = http[kind]
        level = f"c=1{suffix}" if kind.startswith("concurrency_1_") else f"c={c}"
        held = " held back" if kind.endswith("held") else (" unheld" if "sse_held" in http else "")
        rows.append(
            (
                f"Added time to first byte, streams{held}, HTTP, {level} (p50 / p99)",
                "-",
                f"{f['added_ttfb_p50_ms']:.1f} / {f['added_ttfb_p99_ms']:.1f} ms",
                "-",
                "middleware_overhead",
            )
        )
    paced = d.get("paced_streams")
    if paced:
        for rule in ("model", "sentence", "unheld"):
            if rule not in paced:
                continue
            f = paced[rule]
            how = "not held back" if rule == "unheld" else f"{rule} window rule"
            rows.append(
                (
                    f"Added time to first byte, streams paced at "
                    f"{paced['chunk_delay_s'] * 1000:.0f} ms per 24-character chunk, "
                    f"{how}{suffix} (p50 / p99)",
                    "-",
                    f"{f['added_ttfb_p50_ms']:.0f} / {f['added_ttfb_p99_ms']:.0f} ms",
                    "-",
                    "middleware_overhead",
                )
            )
    inproc = d.get("in_process")
    if inproc:
        for kind in ("json", "sse"):
            f = inproc[kind]
            rows.append(
                (
                    f"Middleware throughput guarded/unguarded, in-process, {kind.upper()}",
                    ">= 0.8",
                    f"{f['throughput_ratio']:.2f} (added p50 {f['added_p50_ms']:.1f} ms)",
                    _met(f["met_throughput"]),
                    "middleware_overhead",
                )
            )
    return rows


def _memory(d: dict[str, Any]) -> list[Row]:
    return [
        (
            "Model memory (RSS added by loading) vs peer",
            "-",
            f"{d['classifier_model_mib']:.0f} MiB vs {d['peer_model_mib']:.0f} MiB "
            f"({d['peer_to_ours_model_memory_ratio']:.1f}x less)",
            "-",
            "memory",
        ),
        (
            "Guarded server RSS minus unguarded, after load",
            "-",
            f"{d['guarded_minus_unguarded_after_load_mib']:.0f} MiB",
            "-",
            "memory",
        ),
    ]


def _scaling(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if d.get("by_length"):
        first, last = d["by_length"][0], d["by_length"][-1]
        rows.append(
            (
                "Classifier p50 by length (shortest -> longest)",
                "-",
                f"{first['ours']['p50_ms']:.2f} ms @ {first['mean_tokens']:.0f} tok -> "
                f"{last['ours']['p50_ms']:.2f} ms @ {last['mean_tokens']:.0f} tok",
                "-",
                "scaling",
            )
        )
    for level in d.get("by_concurrency", []):
        rows.append(
            (
                f"Throughput ratio / added p50 at c={level['concurrency']} (JSON, HTTP)",
                ">= 0.8 / <= 10 ms",
                f"{level['throughput_ratio']:.2f} / {level['added_p50_ms']:.1f} ms",
                _met(level["throughput_ratio"] >= 0.8 and level["added_p50_ms"] <= 10),
                "scaling",
            )
        )
    return rows


def _soak(d: dict[str, Any]) -> list[Row]:
    rss = d["rss"]
    return [
        (
            f"Soak: {d['requests']:,} requests, c={d['concurrency']}, mixed JSON/SSE",
            "all accounted for, RSS flat",
            f"problems: {d['problems'] or 'none'}; {d['throughput_rps']:.0f} rps; RSS "
            f"{rss.get('after_warmup_mib', 0):.0f} -> {rss.get('last_mib', 0):.0f} MiB",
            _met(d["all_accounted_for"]),
            "load_soak",
        )
    ]


def _accuracy(d: dict[str, Any]) -> list[Row]:
    systems = d["eval"]["systems"]
    parts = [f"{name} {s['binary']['f1']:.3f}" for name, s in systems.items()]
    g = systems.get("guardrail", {})
    best_peer = max(
        (s["binary"]["f1"] for n, s in systems.items() if n != "guardrail"), default=None
    )
    met = None if best_peer is None or not g else g["binary"]["f1"] > best_peer
    return [
        (
            f"Binary refusal F1, held-out XSTest ({d['rows']} rows)",
            "beat string match",
            "; ".join(parts),
            _met(met),
            "accuracy",
        )
    ]


def _fuzz(d: dict[str, Any]) -> list[Row]:
    return [
        (
            f"Mutation fuzz: {d['iterations']:,} bodies ({d['middleware_checks']:,} through "
            "the middleware)",
            "no crash, unguarded bytes",
            f"failures: {d['failures'] or 'none'}",
            _met(d["clean"]),
            "fuzz",
        )
    ]


def _breakdown(d: dict[str, Any]) -> list[Row]:
    shipped = d["session_run_by_shape"]["shipped"]
    runs = ", ".join(f"{k} {v['p50_ms']:.2f} ms" for k, v in shipped.items())
    rows: list[Row] = [
        (
            "Where classify time goes (1 thread, p50 of session.run per input shape)",
            "-",
            f"tokenise+window {d['windows_for']['mean_ms']:.2f} ms mean of "
            f"classify {d['classify']['mean_ms']:.2f} ms; int8 run: {runs}",
            "-",
            "model_breakdown",
        )
    ]
    for name, shapes in d["session_run_by_shape"].items():
        if name != "shipped":
            other = ", ".join(f"{k} {v['p50_ms']:.2f} ms" for k, v in shapes.items())
            rows.append((f"Same shapes, `{Path(name).name}`", "-", other, "-", "model_breakdown"))
    return rows


_SECTIONS: list[tuple[str, Callable[[dict[str, Any]], list[Row]]]] = [
    ("classifier_latency", _latency),
    ("middleware_overhead", _overhead),
    # The same benchmark with the inference in worker processes (--options), when it was run.
    ("middleware_overhead_processes", _overhead),
    ("model_breakdown", _breakdown),
    ("scaling", _scaling),
    ("memory", _memory),
    ("load_soak", _soak),
    ("accuracy", _accuracy),
    ("fuzz", _fuzz),
]


def summary_rows() -> list[tuple[Row, dict[str, Any]]]:
    """Every row of the summary table, in order, with the results file it was read from."""
    out: list[tuple[Row, dict[str, Any]]] = []
    for name, render in _SECTIONS:
        data = load_result(name)
        if data is not None:
            out.extend((row, data) for row in render(data))
    return out
