"""A real Prometheus scrapes a running guarded app and computes the refusal-rate rules."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from apps.serving import free_port, python, running, server_env, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
DASHBOARD = DEPLOY / "grafana" / "guardrail-dashboard.json"
ROUTE = "/v1/chat/completions"


def _prometheus() -> str:
    path = shutil.which("prometheus")
    if path is None:
        if os.environ.get("GUARDRAIL_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("prometheus not found but GUARDRAIL_REQUIRE_PROMETHEUS=1")
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    return path


def _query(client: httpx.Client, expr: str) -> list[dict[str, object]]:
    response = client.get("/api/v1/query", params={"query": expr})
    response.raise_for_status()
    payload = response.json()
    assert payload["status"] == "success", payload
    result: list[dict[str, object]] = payload["data"]["result"]
    return result


def _scalar(client: httpx.Client, expr: str) -> float | None:
    result = _query(client, expr)
    if not result:
        return None
    value = result[0]["value"]
    assert isinstance(value, list)
    return float(value[1])


def _poll(what: str, check: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _round(app: httpx.Client) -> None:
    """One round of traffic: three answered requests and one refused (refusal rate 1/4)."""
    for text in ("capital of France?", "capital of Spain?", "please refuse", "capital of Peru?"):
        response = app.post(
            ROUTE, json={"model": "scripted-1", "messages": [{"role": "user", "content": text}]}
        )
        assert response.status_code == 200


class Stack:
    """The running pair: guarded app and Prometheus, after the test traffic was scraped."""

    def __init__(self, prom: httpx.Client, sent: int, refused: int) -> None:
        self.prom, self.sent, self.refused = prom, sent, refused


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the guarded app (uvicorn) and Prometheus (1 s scrapes and rule evaluations) on
    free ports, and send traffic in which 1 response in 4 is a refusal."""
    prometheus = _prometheus()
    tmp_path = tmp_path_factory.mktemp("prometheus")
    app_port, prom_port = free_port(), free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "guardrail",
                "scrape_interval": "1s",
                "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    app_argv = [
        python(), "-m", "uvicorn", "apps.guarded_app:app",
        "--host", "127.0.0.1", "--port", str(app_port), "--log-level", "warning",
    ]  # fmt: skip
    prom_argv = [
        prometheus,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
    ]
    app_log, prom_log = tmp_path / "app.log", tmp_path / "prometheus.log"
    with (
        running(app_argv, server_env(), app_log) as app_proc,
        running(prom_argv, server_env(), prom_log, cwd=tmp_path) as prom_proc,
        httpx.Client(base_url=f"http://127.0.0.1:{app_port}", timeout=10) as app,
        httpx.Client(base_url=f"http://127.0.0.1:{prom_port}", timeout=10) as prom,
    ):
        wait_http(f"http://127.0.0.1:{app_port}/metrics", app_proc, app_log)
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", prom_proc, prom_log)

        # Warm-up: create every series and let Prometheus see it once, so that the increases
        # that follow are all inside rate()'s window.
        _round(app)
        _poll(
            "the first scrape with both verdicts",
            lambda: len(_query(prom, "guardrail_responses_total")) == 2,
        )
        rounds = 1
        for _ in range(12):
            _round(app)
            rounds += 1
            time.sleep(0.25)
        sent = 4 * rounds
        _poll(
            "a scrape with all traffic",
            lambda: _scalar(prom, "sum(guardrail_responses_total)") == sent,
        )
        yield Stack(prom, sent, rounds)


def test_prometheus_scraped_every_response(stack: Stack) -> None:
    """Prometheus's view of the counters equals the traffic sent (52 responses, 13 refusals)."""
    assert _scalar(stack.prom, "sum(guardrail_responses_total)") == stack.sent == 52
    assert _scalar(stack.prom, "sum(guardrail_refusals_total)") == stack.refused == 13


def test_refusal_rate_recording_rule_matches_traffic(stack: Stack) -> None:
    """With 1 in 4 responses refused, guardrail:refusal_rate:ratio_rate5m reads 0.25."""
    prom = stack.prom
    # The recording rule is evaluated every second; wait for evaluations that have seen the
    # final scrape (the value then stays put while no traffic comes in).
    values: list[float] = []

    def settled() -> bool:
        value = _scalar(prom, "guardrail:refusal_rate:ratio_rate5m")
        if value is not None:
            values.append(value)
        return len(values) >= 3

    _poll("the refusal-rate recording rule", settled)
    assert values[-1] == pytest.approx(0.25, abs=0.02), values

    by_route = _query(prom, "route:guardrail_refusal_rate:ratio_rate5m")
    assert [r["metric"] for r in by_route] == [
        {"__name__": "route:guardrail_refusal_rate:ratio_rate5m", "route": ROUTE}
    ]
    assert float(by_route[0]["value"][1]) == pytest.approx(0.25, abs=0.02)  # type: ignore[index]
    kind = _scalar(prom, 'kind:guardrail_refusal_rate:ratio_rate5m{kind="cannot"}')
    assert kind == pytest.approx(0.25, abs=0.02)
    # The contract's PromQL, computed ad hoc, agrees with the recorded series.
    adhoc = _scalar(
        prom,
        "sum(rate(guardrail_refusals_total[5m])) / sum(rate(guardrail_responses_total[5m]))",
    )
    assert adhoc == pytest.approx(0.25, abs=0.02)


def test_every_dashboard_query_runs(stack: Stack) -> None:
    """Every Grafana panel query is valid PromQL on the real server, and returns data unless
    it is about retries (this traffic has none)."""
    dashboard = json.loads(DASHBOARD.read_text())
    empty_ok = ("retries", "retry_recovered", "retry_budget")
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "1m").replace("$route", ".*")
            result = _query(stack.prom, expr)
            if not any(word in expr for word in empty_ok):
                assert result, f"panel {panel['title']!r}: no data for {expr}"
