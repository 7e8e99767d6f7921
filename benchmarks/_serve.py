"""Serve the stand-in LLM app, guarded or not, with uvicorn in its own process.

The load generator and the server must not share an interpreter (the client's own CPU time
would be charged to the middleware), so each benchmark starts this module as a subprocess:

    python -m benchmarks._serve --mode guarded|unguarded [--delay 0.05] [--chunk-delay 0]
        [--model-dir DIR]

It binds 127.0.0.1 on a free port (port 0, no race), prints ``PORT <n>`` once it is
listening, and serves until terminated. ``GET /_bench/rss`` answers the server's resident
memory in MiB, outside the guard, so memory can be sampled under load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, load_labelled, rss_mib
from benchmarks._upstream import ChatUpstream

__all__ = ["Server", "build_app", "serve", "start_server"]

ASGIApp = Any


class _RssProbe:
    """Answers ``/_bench/rss`` itself and hands every other request to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/_bench/rss":
            body = json.dumps({"rss_mib": rss_mib()}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def build_app(
    mode: str,
    *,
    delay_s: float,
    chunk_delay_s: float = 0.0,
    model_dir: Path | None = None,
    policy: str | None = None,
    options: dict[str, Any] | None = None,
) -> ASGIApp:
    """The stand-in app, wrapped in GuardrailMiddleware when ``mode`` is ``guarded``."""
    upstream = ChatUpstream(
        [text for text, _ in load_labelled()], delay_s=delay_s, chunk_delay_s=chunk_delay_s
    )
    if mode == "unguarded":
        return _RssProbe(upstream)
    from guardrail import GuardrailMiddleware, RefusalClassifier

    kwargs: dict[str, Any] = dict(options or {})
    processes = int(kwargs.pop("classifier_processes", 0))
    classifier: Any
    if processes:
        # Worker processes (the option's own path, with the model directory asked for).
        from guardrail import ProcessClassifier

        classifier = ProcessClassifier(model_dir, processes=processes, threads=1)
    else:
        classifier = RefusalClassifier.load(model_dir=model_dir, threads=1)
    if policy:
        kwargs["policy"] = policy
    return _RssProbe(GuardrailMiddleware(upstream, classifier=classifier, **kwargs))


def serve(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["guarded", "unguarded"], required=True)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--policy", default=None)
    parser.add_argument("--options", default="{}", help="GuardrailMiddleware options as JSON")
    parser.add_argument("--log-file", default=os.devnull, help="where the JSON log lines go")
    args = parser.parse_args(argv)

    import uvicorn

    if args.mode == "guarded":
        # Production-like logging (one JSON line per guarded response) into a file, so the
        # cost of logging is part of the measurement and the lines can be counted afterwards.
        from guardrail.observability import configure_logging

        configure_logging(json=True, stream=open(args.log_file, "a", encoding="utf-8"))  # noqa: SIM115

    app = build_app(
        args.mode,
        delay_s=args.delay,
        chunk_delay_s=args.chunk_delay,
        model_dir=args.model_dir,
        policy=args.policy,
        options=json.loads(args.options),
    )
    from guardrail.proxy.serving import bind_socket

    # The proxy's listener: TCP_NODELAY on accepted connections (without it every keep-alive
    # response waited ~40 ms for a delayed ACK), and already listening when the port is
    # announced, so a client that connects at once waits in the backlog instead of failing.
    sock = bind_socket("127.0.0.1", 0)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=2048,
        timeout_keep_alive=60,
    )
    server = uvicorn.Server(config)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    asyncio.run(server.serve(sockets=[sock]))
    return 0


@dataclass
class Server:
    """A running benchmark server subprocess."""

    mode: str
    port: int
    process: subprocess.Popen[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def start_server(
    mode: str,
    *,
    delay_s: float = 0.05,
    chunk_delay_s: float = 0.0,
    model_dir: Path | None = None,
    policy: str | None = None,
    options: dict[str, Any] | None = None,
    log_file: Path | None = None,
    timeout_s: float = 120.0,
    tree: Path | None = None,
) -> Iterator[Server]:
    """Start ``_serve`` in a subprocess, wait for its port, and stop it on exit.

    ``tree`` serves another checkout of this repository (its code and bundled model) instead
    of this one: ``ab_trees`` compares two commits side by side that way.
    """
    cmd = [
        sys.executable,
        "-m",
        "benchmarks._serve",
        "--mode",
        mode,
        "--delay",
        str(delay_s),
        "--chunk-delay",
        str(chunk_delay_s),
        "--options",
        json.dumps(options or {}),
    ]
    if model_dir is not None:
        cmd += ["--model-dir", str(model_dir)]
    if policy is not None:
        cmd += ["--policy", policy]
    if log_file is not None:
        cmd += ["--log-file", str(log_file)]
    root = tree or ROOT
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout_s
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server prints its port or dies
        if not line.startswith("PORT ") or time.monotonic() > deadline:
            raise RuntimeError(f"benchmark server ({mode}) did not start: {line!r}")
        # Keep draining stdout: a full pipe would block the server on its next print.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield Server(mode, int(line.split()[1]), proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    raise SystemExit(serve())
