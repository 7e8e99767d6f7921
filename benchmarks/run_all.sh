#!/usr/bin/env bash
# Run every benchmark in sequence (they must not overlap: each one measures the machine).
# Usage: benchmarks/run_all.sh [--quick]   (from the repository root; ~30 min in full on the 2-core VM)
# Extra arguments for all scripts can be passed through MODEL_ARGS, e.g.
#   MODEL_ARGS="--model-dir /path/to/model" benchmarks/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
quick=${1:-}
M=${MODEL_ARGS:-}
run() { echo "== $* ($(date -u +%H:%M:%S))"; python -m "$@"; }
if [[ "$quick" == "--quick" ]]; then
  run benchmarks.classifier_latency --limit 300 --peer-throughput-limit 100 $M
  run benchmarks.middleware_overhead --requests 400 --rounds 1 --sequential 60 $M
  run benchmarks.scaling --reps 10 --requests 200 $M
  run benchmarks.memory --requests 300 $M
  run benchmarks.load_soak --requests 2000 $M
else
  run benchmarks.classifier_latency --limit 1500 $M
  run benchmarks.middleware_overhead --requests 2000 --rounds 3 --sequential 150 $M
  # Longer rounds: with worker processes a finished stream is classified up to ~0.5 s after its
  # last byte, which must be small against a round or the next round pays for it.
  run benchmarks.middleware_overhead --requests 8000 --rounds 2 --sequential 150 --skip-in-process \
    --options '{"classifier_processes": 2}' --name middleware_overhead_processes $M
  run benchmarks.model_breakdown $M
  run benchmarks.scaling $M
  run benchmarks.memory $M
  run benchmarks.load_soak --requests 20000 --concurrency 64 $M
fi
run benchmarks.accuracy $M
run benchmarks.fuzz --iterations 20000
python -m benchmarks.report --write
