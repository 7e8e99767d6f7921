"""Multi-worker metrics: every scrape of any worker reports the totals over all workers."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from apps.serving import free_port, python, running, server_env, total, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

REPO = Path(__file__).resolve().parents[1]
N_COMPLIANT = 18
N_REFUSED = 6


def _fresh_get(url: str) -> httpx.Response:
    # A new connection per request, so the kernel may hand it to any worker.
    with httpx.Client(timeout=10, headers={"connection": "close"}) as client:
        return client.get(url)


def _chat(base: str, text: str) -> httpx.Response:
    with httpx.Client(timeout=10, headers={"connection": "close"}) as client:
        return client.post(
            f"{base}/v1/chat/completions",
            json={"model": "scripted-1", "messages": [{"role": "user", "content": text}]},
        )


def _wait_for_workers(base: str, count: int, timeout: float = 45) -> set[str]:
    """Scrape until ``count`` distinct workers have answered (they start one by one)."""
    pids: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(pids) < count and time.monotonic() < deadline:
        pids.add(_fresh_get(f"{base}/metrics").headers["x-worker-pid"])
        time.sleep(0.05)
    assert len(pids) >= count, f"only workers {pids} answered within {timeout}s"
    return pids


def _send_traffic(base: str) -> set[str]:
    pids: set[str] = set()
    for i in range(N_COMPLIANT + N_REFUSED):
        text = "please refuse this" if i % 4 == 3 else "What is the capital of France?"
        response = _chat(base, text)
        assert response.status_code == 200
        pids.add(response.headers["x-worker-pid"])
    return pids


def _assert_every_scrape_is_total(base: str, scrapes: int = 12) -> set[str]:
    """Each scrape, whichever worker answers, reports exactly the traffic sent."""
    pids: set[str] = set()
    attempts = 0
    # Scrapes go in concurrent pairs: one at a time, the kernel tends to wake the same idle
    # worker for every new connection (60 sequential scrapes once all hit one worker).
    with ThreadPoolExecutor(max_workers=2) as pool:
        while attempts < scrapes or (len(pids) < 2 and attempts < 60):
            attempts += 2
            for response in pool.map(_fresh_get, [f"{base}/metrics"] * 2):
                _check_scrape(response, pids)
    assert len(pids) >= 2, f"all {attempts} scrapes landed on one worker: {pids}"
    return pids


def _check_scrape(response: httpx.Response, pids: set[str]) -> None:
    assert response.status_code == 200
    pids.add(response.headers["x-worker-pid"])
    text = response.text
    assert total(text, "guardrail_responses_total") == N_COMPLIANT + N_REFUSED, text
    assert total(text, "guardrail_responses_total", verdict="full_refusal") == N_REFUSED
    assert (
        total(text, "guardrail_refusals_total", kind="cannot", category="skill_level") == N_REFUSED
    )
    assert total(text, "guardrail_overhead_seconds_count") == N_COMPLIANT + N_REFUSED


def test_gunicorn_uvicorn_workers_report_totals(tmp_path: Path) -> None:
    """gunicorn + 2 UvicornWorkers with deploy/gunicorn.conf.py: every scrape reports N,
    also after a worker is killed and replaced, and stale files of a previous run are cleared."""
    mp_dir = tmp_path / "prom"
    mp_dir.mkdir()
    (mp_dir / "counter_999999.db").write_bytes(b"stale from a previous run")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [
        python(), "-m", "gunicorn", "-c", str(REPO / "deploy" / "gunicorn.conf.py"),
        "-b", f"127.0.0.1:{port}", "-w", "2", "--graceful-timeout", "5",
        "apps.guarded_app:app",
    ]  # fmt: skip
    env = server_env(PROMETHEUS_MULTIPROC_DIR=str(mp_dir))
    log = tmp_path / "gunicorn.log"
    with running(argv, env, log) as proc:
        wait_http(f"{base}/metrics", proc, log)
        assert not (mp_dir / "counter_999999.db").exists()
        workers = _wait_for_workers(base, 2)
        _send_traffic(base)
        _assert_every_scrape_is_total(base)

        # A crashed worker's counts must stay in the totals after gunicorn replaces it.
        victim = int(sorted(workers)[0])
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 45
        seen: set[str] = set()
        while time.monotonic() < deadline and not (seen - workers):
            with contextlib.suppress(httpx.TransportError):
                seen.add(_fresh_get(f"{base}/metrics").headers["x-worker-pid"])
            time.sleep(0.1)
        assert seen - workers, f"no replacement worker answered:\n{log.read_text()}"
        _assert_every_scrape_is_total(base)
    assert proc.returncode == 0, log.read_text()


def test_uvicorn_workers_report_totals(tmp_path: Path) -> None:
    """`uvicorn --workers 2` with PROMETHEUS_MULTIPROC_DIR: every scrape reports N."""
    mp_dir = tmp_path / "prom"
    mp_dir.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [
        python(), "-m", "uvicorn", "apps.guarded_app:app", "--workers", "2",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    env = server_env(PROMETHEUS_MULTIPROC_DIR=str(mp_dir))
    log = tmp_path / "uvicorn.log"
    with running(argv, env, log) as proc:
        wait_http(f"{base}/metrics", proc, log)
        _wait_for_workers(base, 2)
        _send_traffic(base)
        _assert_every_scrape_is_total(base)


def test_gunicorn_config_makes_and_removes_its_own_directory(tmp_path: Path) -> None:
    """Without PROMETHEUS_MULTIPROC_DIR the config uses a private directory (metrics still
    shared by both workers) and removes it when gunicorn exits."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [
        python(), "-m", "gunicorn", "-c", str(REPO / "deploy" / "gunicorn.conf.py"),
        "-b", f"127.0.0.1:{port}", "-w", "2", "--graceful-timeout", "5",
        "apps.guarded_app:app",
    ]  # fmt: skip
    log = tmp_path / "gunicorn.log"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with running(argv, server_env(TMPDIR=str(scratch)), log) as proc:
        wait_http(f"{base}/metrics", proc, log)
        made = list(scratch.iterdir())
        assert len(made) == 1 and made[0].name.startswith("guardrail-metrics-"), made
        _wait_for_workers(base, 2)
        _send_traffic(base)
        _assert_every_scrape_is_total(base)
    assert proc.returncode == 0, log.read_text()
    assert list(scratch.iterdir()) == []
