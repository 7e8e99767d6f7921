"""examples/: the FastAPI app served by uvicorn, driven by examples/client.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from _servers import ROOT, free_port, require_bundled_model, running, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_client_example_against_fastapi_example(tmp_path: Path) -> None:
    """The client shows a recovered clinician refusal, a passed-through one, and a stream."""
    require_bundled_model()
    port = free_port()
    argv = [
        "-m",
        "uvicorn",
        "examples.fastapi_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with running(argv, tmp_path / "example.log") as server:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/metrics")
        result = subprocess.run(
            [sys.executable, "examples/client.py", "--base-url", f"{base}/v1"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            check=False,
        )
        assert result.returncode == 0, result.stderr + server.stderr()
        clinician, user, stream = result.stdout.split("--- ")[1:]
        assert "'x-guardrail-action': 'retry'" in clinician
        assert "4 g in 24 hours" in clinician
        assert "'x-guardrail-action': 'pass'" in user
        assert "I'm sorry, but I can't provide" in user
        assert "4 g in 24 hours" in stream
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert 'guardrail_retries_total{outcome="recovered",rule="clinical-retry"}' in metrics
