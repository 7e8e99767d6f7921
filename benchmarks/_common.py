"""Helpers shared by the benchmark scripts: texts, timing statistics, RSS, result files.

Every figure the scripts write is measured in the same run as its reference (the peer model
or the unguarded app), because the benchmark machine is shared and noisy: absolute numbers
drift by tens of percent between runs, ratios taken side by side do not.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CACHE_DIR",
    "DATA_DIR",
    "RESULTS_DIR",
    "ROOT",
    "LatencyStats",
    "load_completions",
    "load_labelled",
    "machine_info",
    "model_info",
    "rss_mib",
    "stats_ms",
    "timed",
    "write_result",
]

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
CACHE_DIR = ROOT / "benchmarks" / ".cache"
DATA_DIR = Path(os.environ.get("GUARDRAIL_DATA_DIR", str(ROOT.parent / "shared" / "data")))

# Both folders hold the same 450 XSTest prompts answered by ten different chat models: a mix
# of long compliant answers, short refusals and partial refusals, as a production log would.
_COMPLETION_GLOBS = (
    "xstest/model_completions/*.csv",
    "xstest_replication/model_completions/*.csv",
)


def load_labelled(data_dir: Path = DATA_DIR) -> list[tuple[str, bool]]:
    """Real assistant responses with the human label: ``(completion, is_refusal)``."""
    csv.field_size_limit(sys.maxsize)
    rows: list[tuple[str, bool]] = []
    files = sorted(p for pattern in _COMPLETION_GLOBS for p in data_dir.glob(pattern))
    if not files:
        raise SystemExit(f"no XSTest completion CSVs under {data_dir} (set GUARDRAIL_DATA_DIR)")
    for path in files:
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                text = (row.get("completion") or "").strip()
                if text:
                    rows.append((text, row.get("final_label", "") != "1_full_compliance"))
    return rows


def load_completions(limit: int | None = None, data_dir: Path = DATA_DIR) -> list[str]:
    """Real assistant responses (the ``completion`` column), in a stable order."""
    texts = [text for text, _ in load_labelled(data_dir)]
    return texts[:limit] if limit else texts


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Latency summary in milliseconds."""

    n: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    # Nearest-rank on the sorted sample: no interpolation, so p99 is a latency that happened.
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(q / 100.0 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def stats_ms(seconds: Iterable[float]) -> LatencyStats:
    """Summarise durations given in seconds."""
    values = sorted(s * 1000.0 for s in seconds)
    return LatencyStats(
        n=len(values),
        mean_ms=statistics.fmean(values) if values else float("nan"),
        p50_ms=_percentile(values, 50),
        p90_ms=_percentile(values, 90),
        p99_ms=_percentile(values, 99),
        max_ms=values[-1] if values else float("nan"),
    )


def rss_mib(pid: int | str = "self") -> float:
    """Resident set size of a process from /proc (no psutil dependency)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("VmRSS not found in /proc status")


def _load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


_ISA_FLAGS = frozenset({"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "fma"})


def machine_info() -> dict[str, Any]:
    """What a reader needs to judge a figure: cores, CPU, load when measured, versions."""
    import onnxruntime

    from guardrail.model._int8_weights import choose_weight_mode, cpu_flags, read_cpuinfo

    cpuinfo = read_cpuinfo()
    cpu = next(
        (
            line.partition(":")[2].strip()
            for line in (cpuinfo or "").splitlines()
            if line.startswith("model name")
        ),
        "",
    )
    flags = cpu_flags(cpuinfo) or frozenset()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        # The int8 kernels onnxruntime can use differ by an order of magnitude between these.
        "cpu_isa": sorted(flags & _ISA_FLAGS),
        "int8_weights": choose_weight_mode(),
        "load_average_1_5_15": _load_average(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "platform": platform.platform(),
    }


def model_info(model_dir: Path | None = None) -> dict[str, str]:
    """Version and sha256 of the model a figure was measured with (bundled unless given)."""
    from guardrail._resources import bundled_model_dir

    directory = model_dir or bundled_model_dir()
    info = {"model_dir": str(directory)}
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        info["model_version"] = str(config.get("model_version", "?"))
        info["windows"] = (
            f"max {config.get('max_window_tokens')}, head {config.get('head_tokens')}, "
            f"tail {config.get('tail_tokens')}, layers {config.get('layers')}"
        )
        paragraph = (config.get("windowing") or {}).get("tail_paragraph_tokens")
        if paragraph is not None:
            info["windows"] += f", tail paragraph up to {paragraph}"
        sums = (directory / "SHA256SUMS").read_text(encoding="utf-8").split("\n")
        info["onnx_sha256"] = next(
            (ln.split()[0] for ln in sums if ln.strip().endswith(".onnx")), "?"
        )
    except (OSError, ValueError):
        info["model_version"] = "unavailable"
    return info


def write_result(name: str, payload: dict[str, Any], command: str | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the run's date, command and machine."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command or " ".join(["python", *sys.argv]),
        "machine": machine_info(),
        "model": model_info(_model_dir_from_argv()),
        **payload,
    }
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _model_dir_from_argv() -> Path | None:
    # Every script takes --model-dir; read it back here so each result names its model.
    argv = sys.argv
    for i, arg in enumerate(argv):
        if arg == "--model-dir" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--model-dir="):
            return Path(arg.split("=", 1)[1])
    return None


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    """Call ``fn(*args)`` and return its result with the wall time in seconds."""
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0
