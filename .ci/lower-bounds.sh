#!/usr/bin/env bash
# Run the test suite against the lowest dependency versions pyproject.toml declares.
# (The main run in .ci/run gets the newest versions the ranges admit.)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-lower
. .venv-lower/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e '.[test]' -c .ci/lower-bounds.txt
python -m pip freeze | grep -iE '^(numpy|onnxruntime|tokenizers|starlette|prometheus.client|structlog|pyyaml|httpx|uvicorn|google.re2)=='
# Lint/type checks are version-independent and already ran in the main pass.
python -m pytest -q --deselect tests/test_code_quality.py
