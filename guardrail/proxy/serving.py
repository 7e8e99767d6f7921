"""Run an ASGI app under uvicorn on a socket bound beforehand.

Binding first lets ``--port 0`` report the real port before serving (the demo prints
copy-paste commands with it). SIGTERM and SIGINT stop accepting connections, let in-flight
requests finish (up to ``graceful_timeout``), run lifespan shutdown, and return: a SIGTERM
stop is a normal exit (status 0) as process managers expect, where uvicorn alone would
re-raise the signal and die by it.
"""

from __future__ import annotations

import signal
import socket
from dataclasses import dataclass
from types import FrameType
from typing import Any

import structlog
import uvicorn
from starlette.types import ASGIApp

from guardrail.errors import ConfigError

__all__ = ["ServeOptions", "bind_socket", "display_url", "serve"]


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """uvicorn settings guardrail exposes."""

    log_level: str = "info"
    access_log: bool = True
    graceful_timeout: int = 30
    # A proxy relays the upstream's own ``server``/``date`` headers; adding ours would
    # duplicate them.
    server_header: bool = True
    date_header: bool = True
    # Render uvicorn's own log lines (start-up, access log) as JSON like structlog's events.
    json_logs: bool = False


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio switches Nagle off (TCP_NODELAY) only on accepted sockets
    # whose proto is IPPROTO_TCP, and with proto 0 every keep-alive response whose head and
    # body go out as two writes waited ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def display_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket, with IPv6 hosts bracketed."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _GracefulServer(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM:
            # Shutdown completed gracefully: do not re-raise SIGTERM afterwards.
            self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]


def _json_log_config(level: str) -> dict[str, Any]:
    """A logging dictConfig that renders uvicorn's stdlib records as JSON lines on stderr."""
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processor": structlog.processors.JSONRenderer(),
                "foreign_pre_chain": [
                    structlog.stdlib.add_log_level,
                    structlog.stdlib.add_logger_name,
                    stamp,
                ],
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def serve(app: ASGIApp, sock: socket.socket, options: ServeOptions = ServeOptions()) -> int:
    """Serve until SIGTERM/SIGINT; return 0 after a graceful stop, 1 if startup failed."""
    extra: dict[str, Any] = {}
    if options.json_logs:
        extra["log_config"] = _json_log_config(options.log_level)
    config = uvicorn.Config(
        app,
        **extra,
        lifespan="on",
        log_level=options.log_level,
        access_log=options.access_log,
        timeout_graceful_shutdown=options.graceful_timeout,
        server_header=options.server_header,
        date_header=options.date_header,
    )
    server = _GracefulServer(config)
    server.run(sockets=[sock])
    return 0 if server.started else 1
