"""`guardrail serve` as a real process in front of a real upstream process."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _servers import Server, free_port, require_bundled_model, running, wait_http
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from guardrail.demo._texts import CLINICAL_REFUSAL
from guardrail.demo.server import DOSING_QUESTION
from guardrail.policy import sign_context

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SECRET = "proxy-test-secret-0123456789abcdef"
CHAT = "/v1/chat/completions"
COMPLIANT = {
    "model": "demo-cautious-1",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The scripted model served unguarded by uvicorn."""
    port = free_port()
    argv = [
        "-m",
        "uvicorn",
        "--factory",
        "guardrail.demo.model_app:create_model_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with running(argv, tmp_path_factory.mktemp("up") / "upstream.log"):
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/v1/models")
        yield url


def _serve(upstream: str, log: Path, *extra: str) -> Server:
    require_bundled_model()
    argv = [
        "-m",
        "guardrail",
        "serve",
        "--upstream",
        upstream,
        "--policy",
        "policies/clinical.yaml",
        "--port",
        "0",
        "--log-level",
        "warning",
        "--connect-timeout",
        "2",
        *extra,
    ]
    return Server(argv, {"GUARDRAIL_CONTEXT_SECRET": SECRET}, log)


def _url(server: Server) -> str:
    line = server.wait_line("guardrail serve: http://")
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    assert match, line
    return match.group(0)


def test_proxy_passes_bytes_retries_reports_and_drains_on_sigterm(
    upstream: str, tmp_path: Path
) -> None:
    """Through `serve`: identical bytes, a signed-context retry, metrics, health, clean stop."""
    server = _serve(upstream, tmp_path / "serve.log")
    try:
        base = _url(server)
        with httpx.Client(timeout=30) as client:
            for request in (COMPLIANT, {**COMPLIANT, "stream": True}):
                direct = client.post(upstream + CHAT, json=request)
                proxied = client.post(base + CHAT, json=request)
                assert proxied.status_code == direct.status_code == 200
                assert proxied.content == direct.content, "compliant bodies must pass untouched"
                assert proxied.headers["x-guardrail-action"] == "pass"
                # No rule can act on an unsigned request, so its stream is not held back
                # and carries no verdict header (the metrics below still count it).
                verdict = proxied.headers.get("x-guardrail-verdict")
                assert verdict == (None if request.get("stream") else "compliance")
                assert proxied.headers["content-type"] == direct.headers["content-type"]

            # Unguarded routes and upstream errors come back as the upstream sent them.
            for path in ("/v1/models", "/v1/nope"):
                direct, proxied = client.get(upstream + path), client.get(base + path)
                assert (proxied.status_code, proxied.content) == (
                    direct.status_code,
                    direct.content,
                )
                assert "x-guardrail-action" not in proxied.headers

            assert client.get(base + "/healthz").status_code == 200
            ready = client.get(base + "/readyz")
            assert (ready.status_code, ready.json()) == (200, {"status": "ready"})

        claims = {"sub": "dr-test", "scopes": ["clinician"], "exp": int(time.time()) + 600}
        header = sign_context(claims, SECRET.encode())
        question: list[ChatCompletionMessageParam] = [{"role": "user", "content": DOSING_QUESTION}]
        verified = OpenAI(
            base_url=f"{base}/v1",
            api_key="sk-none",
            max_retries=0,
            default_headers={"x-guardrail-context": header},
        )
        raw = verified.chat.completions.with_raw_response.create(
            model="demo-cautious-1", messages=question
        )
        assert raw.headers["x-guardrail-action"] == "retry", server.stderr()
        assert raw.headers["x-guardrail-attempts"] == "2"
        assert "4 g in 24 hours" in (raw.parse().choices[0].message.content or "")

        forged = OpenAI(
            base_url=f"{base}/v1",
            api_key="sk-none",
            max_retries=0,
            default_headers={"x-guardrail-context": header[:-4] + "0000"},
        )
        raw = forged.chat.completions.with_raw_response.create(
            model="demo-cautious-1", messages=question
        )
        assert raw.parse().choices[0].message.content == CLINICAL_REFUSAL
        assert raw.headers["x-guardrail-action"] == "pass"

        metrics = httpx.get(base + "/metrics", timeout=10).text
        assert re.search(r'guardrail_retries_total\{[^}]*outcome="recovered"[^}]*\} 1\.0', metrics)
        assert "guardrail_responses_total{" in metrics

        result: dict[str, httpx.Response] = {}

        def slow() -> None:
            result["r"] = httpx.post(
                base + CHAT, json=COMPLIANT, headers={"x-demo-delay": "2"}, timeout=30
            )

        worker = threading.Thread(target=slow)
        worker.start()
        time.sleep(0.7)
        assert server.terminate() == 0, server.stderr()
        worker.join(timeout=30)
        assert result["r"].status_code == 200
        assert "Paris" in result["r"].json()["choices"][0]["message"]["content"]
    finally:
        server.stop()


def test_unreachable_upstream_gives_502_but_stays_ready(tmp_path: Path) -> None:
    """With the upstream down, chat calls get an OpenAI-style 502; /readyz stays 200."""
    server = _serve(f"http://127.0.0.1:{free_port()}", tmp_path / "serve.log")
    try:
        base = _url(server)
        response = httpx.post(base + CHAT, json=COMPLIANT, timeout=30)
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_unreachable"
        assert httpx.get(base + "/readyz", timeout=10).status_code == 200
        assert server.terminate() == 0
    finally:
        server.stop()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads /proc")
def test_worker_processes_classify_and_stop_with_the_proxy(upstream: str, tmp_path: Path) -> None:
    """`serve --classifier-processes 2`: two worker processes classify the guarded answers
    with the operator's tail threshold, the server is ready through them, and they are gone
    after SIGTERM."""
    server = _serve(
        upstream, tmp_path / "serve.log", "--classifier-processes", "2", "--tail-threshold", "0.9"
    )
    try:
        base = _url(server)
        commands = {
            pid: Path(f"/proc/{pid}/cmdline").read_text().split("\0")
            for pid in _children(server.proc.pid)
        }
        workers = [pid for pid, argv in commands.items() if "guardrail.model._worker" in argv]
        assert len(workers) == 2
        assert all(commands[pid][-2] == "0.9" for pid in workers)  # argv ends "...", "0.9", ""
        with httpx.Client(timeout=30) as client:
            assert client.get(base + "/readyz").status_code == 200
            answer = client.post(base + CHAT, json=COMPLIANT)
            assert answer.headers["x-guardrail-verdict"] == "compliance"
        assert server.terminate() == 0, server.stderr()
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in workers):
            assert time.monotonic() < deadline, "worker processes outlived the server"
            time.sleep(0.1)
    finally:
        server.stop()
