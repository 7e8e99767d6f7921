"""metrics_app(): the exposition endpoint, and the multiprocess helpers it relies on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import Route

from guardrail.classification import Classification
from guardrail.errors import ConfigError
from guardrail.observability import (
    GuardrailMetrics,
    MetricsRecorder,
    metrics_app,
    prepare_multiproc_dir,
)
from guardrail.outcome import GuardOutcome

REPO = Path(__file__).resolve().parents[1]


def _registry_with_one_refusal() -> CollectorRegistry:
    registry = CollectorRegistry()
    MetricsRecorder(GuardrailMetrics(registry)).record(
        GuardOutcome(
            request_id="r",
            route="/v1/chat/completions",
            api="openai_chat",
            stream=False,
            status=200,
            model="m",
            classification=Classification("full_refusal", 0.9, "cannot", "modality", 0.7),
        )
    )
    return registry


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://test",
    )


@pytest.mark.anyio
async def test_get_serves_text_exposition() -> None:
    """GET returns 200, the Prometheus text content type and the guardrail series."""
    async with _client(metrics_app(_registry_with_one_refusal())) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert response.headers["cache-control"] == "no-store"
    assert (
        'guardrail_refusals_total{category="modality",kind="cannot",model="m",'
        'route="/v1/chat/completions"} 1.0' in response.text
    )
    assert 'guardrail_skipped_total{reason="encoded"} 0.0' in response.text


@pytest.mark.anyio
async def test_openmetrics_is_negotiated() -> None:
    """An OpenMetrics Accept header gets the OpenMetrics format, ending in # EOF."""
    accept = "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
    async with _client(metrics_app(_registry_with_one_refusal())) as client:
        response = await client.get("/metrics", headers={"accept": accept})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


@pytest.mark.anyio
async def test_head_has_headers_but_no_body_and_post_is_refused() -> None:
    """HEAD returns headers with an empty body; POST is 405 with an Allow header."""
    async with _client(metrics_app(_registry_with_one_refusal())) as client:
        head = await client.head("/metrics")
        post = await client.post("/metrics", content=b"x")
    assert head.status_code == 200
    assert int(head.headers["content-length"]) > 0
    assert head.content == b""
    assert post.status_code == 405
    assert post.headers["allow"] == "GET, HEAD"


@pytest.mark.anyio
async def test_mounts_as_a_starlette_route() -> None:
    """metrics_app() works as the endpoint of a Starlette Route at /metrics."""
    app = Starlette(routes=[Route("/metrics", metrics_app(_registry_with_one_refusal()))])
    async with _client(app) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "guardrail_responses_total" in response.text


def test_prepare_multiproc_dir_clears_stale_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prepare_multiproc_dir removes old *.db files, keeps others and exports the variable."""
    # setenv first so that monkeypatch restores the variable prepare_multiproc_dir exports.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "unused")
    target = tmp_path / "prom"
    target.mkdir()
    (target / "counter_123.db").write_bytes(b"stale")
    (target / "README").write_text("keep")
    assert prepare_multiproc_dir(target) == target
    assert sorted(p.name for p in target.iterdir()) == ["README"]
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(target)


def test_prepare_multiproc_dir_without_a_path_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the variable or a path, or with a file in its place, it raises ConfigError."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR is not set"):
        prepare_multiproc_dir()
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(ConfigError, match="is not a directory"):
        prepare_multiproc_dir(not_a_dir)


_CHILD = textwrap.dedent(
    """
    import os, sys
    # Set before anything imports prometheus_client: it picks its value class on import.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    from guardrail.observability import default_metrics, metrics_app, mark_worker_dead
    from guardrail.observability import prepare_multiproc_dir
    prepare_multiproc_dir()
    from prometheus_client.exposition import generate_latest

    metrics = default_metrics()
    pids = []
    for n in (3, 4):
        pid = os.fork()
        if pid == 0:
            for _ in range(n):
                metrics.skipped_total.labels("encoded").inc()
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
        mark_worker_dead(pid)
    metrics.skipped_total.labels("encoded").inc()
    sys.stdout.write(generate_latest(metrics_app().registry).decode())
    """
)


def test_multiprocess_exposition_sums_all_processes(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, metrics_app() sums over exited and live processes."""
    env = {k: v for k, v in os.environ.items() if k.upper() != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "mp")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert 'guardrail_skipped_total{reason="encoded"} 8.0' in result.stdout
    assert 'guardrail_skipped_total{reason="timeout"} 0.0' in result.stdout


def test_variable_set_after_import_is_a_clear_error(tmp_path: Path) -> None:
    """Setting PROMETHEUS_MULTIPROC_DIR after prometheus_client was imported fails at start-up."""
    code = (
        "import sys, os\n"
        "from guardrail.observability import GuardrailMetrics, prepare_multiproc_dir\n"
        "prepare_multiproc_dir(sys.argv[1])\n"
        "from guardrail.errors import ConfigError\n"
        "try:\n    GuardrailMetrics()\nexcept ConfigError as exc:\n    print(exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k.upper() != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "mp")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert "prometheus_client was imported before it was set" in result.stdout
