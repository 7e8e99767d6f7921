"""Helpers for tests that run guardrail servers as real processes on free loopback ports."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from guardrail._resources import bundled_model_dir

ROOT = Path(__file__).resolve().parent.parent

__all__ = [
    "ROOT",
    "Server",
    "free_port",
    "require_bundled_model",
    "running",
    "wait_http",
]


def require_bundled_model() -> None:
    """Skip (with the reason) when the trained model has not been built into onnx_models/."""
    if not (bundled_model_dir() / "refusal-classifier.int8.onnx").is_file():
        pytest.skip("bundled model onnx_models/refusal-classifier.int8.onnx is not built yet")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A child process whose stdout lines are collected in the background."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None, log: Path) -> None:
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, needle: str, timeout: float = 60.0) -> str:
        """The first stdout line containing ``needle``; fails with the log on timeout/exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if needle in line:
                return line
        raise AssertionError(f"no {needle!r} on stdout; stderr:\n{self.stderr()}")

    def stderr(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit status (killing it if it does not stop in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"did not exit within {timeout}s of SIGTERM") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@contextmanager
def running(argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Start a process and make sure it is gone afterwards, whatever the test did."""
    server = Server(argv, env, log)
    try:
        yield server
    finally:
        server.stop()
