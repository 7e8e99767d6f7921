"""Render the summary table of ``benchmarks/results/*.json`` as markdown.

Every number in the table is read from a results file written by one of the benchmark
scripts (never typed by hand), with the date it was measured and the load average of the
machine at the time.

    python -m benchmarks.report            # prints the summary table
    python -m benchmarks.report --write    # and puts it into RESULTS.md between the markers
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks._common import RESULTS_DIR
from benchmarks._report_rows import load_result, summary_rows

__all__ = ["compact", "main", "table"]

_START, _END = "<!-- SUMMARY:start -->", "<!-- SUMMARY:end -->"
_CSTART, _CEND = "<!-- COMPACT:start -->", "<!-- COMPACT:end -->"


def compact() -> str:
    """The few headline figures, for the README."""
    rows = ["| | guardrail | reference | target |", "|---|---|---|---|"]
    lat, ovh = load_result("classifier_latency"), load_result("middleware_overhead")
    mem, soak, acc = load_result("memory"), load_result("load_soak"), load_result("accuracy")
    if lat:
        o, p = lat["latency"]["ours"], lat["latency"]["peer"]
        rows.append(
            f"| Classifier latency per response, 1 CPU thread (p50 / mean) | "
            f"{o['p50_ms']:.1f} / {o['mean_ms']:.1f} ms | distilroberta (LLM Guard "
            f"NoRefusal) ONNX: {p['p50_ms']:.0f} / {p['mean_ms']:.0f} ms "
            f"(**{lat['latency']['speedup_mean']:.1f}x**) | 15x |"
        )
        tp = lat.get("throughput")
        if tp:
            rows.append(
                f"| Responses/s on 2 cores | {tp['responses_per_second'][tp['best_ours']]:.0f}"
                f" | {tp['peer_responses_per_second'][tp['best_peer']]:.0f} | - |"
            )
    if acc:
        sy = acc["eval"]["systems"]
        rows.append(
            f"| Refusal F1, {acc['rows']} held-out XSTest answers | "
            f"{sy['guardrail']['binary']['f1']:.3f} | string match "
            f"{sy['xstest_strmatch']['binary']['f1']:.3f}, NoRefusalLight "
            f"{sy['norefusal_light']['binary']['f1']:.3f} | - |"
        )
    if mem:
        rows.append(
            f"| Model memory (RSS) | {mem['classifier_model_mib']:.0f} MiB | "
            f"{mem['peer_model_mib']:.0f} MiB | - |"
        )
    if ovh:
        h = ovh["http"]
        if "concurrency_1_sse_held" in h:
            rows.append(
                f"| Middleware added latency, p50, 1 client (JSON / stream TTFB unheld / held) | "
                f"{h['concurrency_1_json']['added_p50_ms']:.1f} / "
                f"{h['concurrency_1_sse']['added_ttfb_p50_ms']:.1f} / "
                f"{h['concurrency_1_sse_held']['added_ttfb_p50_ms']:.1f} ms | unguarded app | "
                "<= 10 ms |"
            )
        else:
            rows.append(
                f"| Middleware added latency, p50, 1 client (JSON / stream TTFB) | "
                f"{h['concurrency_1_json']['added_p50_ms']:.1f} / "
                f"{h['concurrency_1_sse']['added_ttfb_p50_ms']:.1f} ms | unguarded app | "
                "<= 10 ms |"
            )
        if "sse_held" in h:
            rows.append(
                f"| Middleware throughput, {ovh['concurrency']} clients, all on 2 cores "
                f"(JSON / SSE unheld (monitor-only) / SSE held back) | "
                f"{_ratio(h['json'])} / {_ratio(h['sse'])} / {_ratio(h['sse_held'])}"
                " | unguarded app | >= 0.8x |"
            )
            workers = load_result("middleware_overhead_processes")
            if workers:
                w = workers["http"]
                rows.append(
                    f"| The same with `classifier_processes=2` (JSON / SSE unheld / SSE held;"
                    f" p50 added) | {_ratio(w['json'])} / {_ratio(w['sse'])} / "
                    f"{_ratio(w['sse_held'])} "
                    f"({w['json']['added_p50_ms']:+.1f} / {w['sse']['added_p50_ms']:+.1f} / "
                    f"{w['sse_held']['added_p50_ms']:+.1f} ms) | unguarded app | >= 0.8x, 10 ms |"
                )
        else:
            rows.append(
                f"| Middleware throughput, {ovh['concurrency']} clients, all on 2 cores "
                f"(JSON / SSE) | {h['json']['throughput_ratio']:.2f}x / "
                f"{h['sse']['throughput_ratio']:.2f}x | unguarded app | >= 0.8x |"
            )
    if soak:
        rows.append(
            f"| Soak: {soak['requests']:,} requests, {soak['concurrency']} clients | "
            f"{'all accounted for' if soak['all_accounted_for'] else soak['problems']}, "
            f"RSS {soak['rss']['after_warmup_mib']:.0f} -> {soak['rss']['last_mib']:.0f} MiB"
            " | unguarded bytes | every response |"
        )
    return "\n".join(rows)


def _ratio(phase: dict[str, Any]) -> str:
    """A phase's throughput ratio, flagged when classifications were skipped (work not done
    does not count as throughput)."""
    skipped = sum(phase.get("guarded_log", {}).get("skipped", {}).values())
    note = f" ({skipped} skipped)" if skipped else ""
    return f"{phase['throughput_ratio']:.2f}x{note}"


def _replace(doc: str, start: str, end: str, text: str) -> str:
    head, _, rest = doc.partition(start)
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n{text}\n{end}{tail}"


def _cpu(machine: dict[str, Any]) -> str:
    """A short name of the CPU a figure was measured on, with its int8 instruction set.

    Int8 matrix products run several times faster with VNNI than with AVX2 alone, so a
    figure means little without it (files written before 2026-12-02 05:30 UTC do not record
    the instruction set)."""
    name = str(machine.get("cpu_model", "?")).replace("(R)", "").replace(" Processor", "")
    isa = machine.get("cpu_isa")
    if isa is None:
        return " ".join(name.split())
    best = "VNNI" if any("vnni" in flag for flag in isa) else "AVX2" if "avx2" in isa else "-"
    return f"{' '.join(name.split())} {best}"


def table() -> str:
    lines = [
        "| Figure | Target | Measured | Met | Script (end of run, UTC; load avg then; CPU) |",
        "|---|---|---|---|---|",
    ]
    for (figure, target, measured, met, script), data in summary_rows():
        load = data["machine"].get("load_average_1_5_15", [])
        when = (
            f"{data['date_utc'][:16].replace('T', ' ')}Z, load {load[0] if load else '?'}; "
            f"{_cpu(data['machine'])}"
        )
        lines.append(f"| {figure} | {target} | {measured} | {met} | `{script}` ({when}) |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    text = table()
    print(text)
    if argv is None:
        import sys

        argv = sys.argv[1:]
    if "--write" in argv:
        path = RESULTS_DIR.parent / "RESULTS.md"
        doc = _replace(path.read_text(encoding="utf-8"), _START, _END, text)
        path.write_text(_replace(doc, _CSTART, _CEND, compact()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
