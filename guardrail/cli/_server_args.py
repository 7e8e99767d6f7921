"""Options shared by the commands that run a server (``demo`` and ``serve``)."""

from __future__ import annotations

import argparse

from guardrail.cli._arg_types import port_number
from guardrail.cli._model_args import add_tail_threshold_argument

__all__ = ["add_server_arguments"]


def add_server_arguments(parser: argparse.ArgumentParser, *, port: int, log_format: str) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=port,
        help=f"port to listen on; 0 picks a free one and prints it (default: {port})",
    )
    parser.add_argument(
        "--model-dir", help="classifier model directory (default: the bundled model)"
    )
    add_tail_threshold_argument(parser)
    parser.add_argument(
        "--log-format",
        choices=("json", "console"),
        default=log_format,
        help=f"structured log format on stderr (default: {log_format})",
    )
    parser.add_argument("--log-level", default="info", help="log level (default: info)")
    parser.add_argument(
        "--graceful-timeout",
        type=int,
        default=30,
        metavar="SECONDS",
        help="on SIGTERM, wait this long for in-flight requests (default: 30)",
    )
