"""``guardrail demo``: a scripted, over-cautious chat model, guarded, on localhost."""

from __future__ import annotations

import argparse
from pathlib import Path

from guardrail.cli._arg_types import number_between
from guardrail.cli._server_args import add_server_arguments
from guardrail.errors import ConfigError

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a guarded demo chat-completions server (no network, no API key)",
        description=(
            "Serve a built-in scripted OpenAI-compatible model that over-refuses like real "
            "ones (clinical dosing questions) behind the guardrail with the bundled model and "
            "policies/clinical.yaml, plus /metrics. 'Authorization: Bearer demo-clinician' "
            "makes a request a verified clinician. Prints copy-paste commands to try."
        ),
    )
    add_server_arguments(parser, port=8000, log_format="console")
    parser.add_argument("--policy", help="policy file (default: the bundled clinical.yaml)")
    parser.add_argument(
        "--delay",
        type=number_between(0, 60, unit=" of seconds"),
        default=0.0,
        metavar="SECONDS",
        help="make the scripted model wait this long before each answer (default: 0)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from guardrail._resources import bundled_policy
    from guardrail.demo.server import DemoSettings, banner, build_demo_app
    from guardrail.model import RefusalClassifier
    from guardrail.observability import configure_logging
    from guardrail.proxy.serving import ServeOptions, bind_socket, display_url, serve

    configure_logging(json=args.log_format == "json", level=args.log_level)
    policy = Path(args.policy) if args.policy else bundled_policy("clinical")
    if not policy.is_file():
        raise ConfigError(f"policy file {policy} not found")
    classifier = RefusalClassifier.load(args.model_dir, tail_threshold=args.tail_threshold)
    settings = DemoSettings(policy=policy, delay_s=args.delay)
    app = build_demo_app(settings, classifier)
    sock = bind_socket(args.host, args.port)
    url = display_url(sock).replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:")
    print(banner(url, settings), flush=True)
    options = ServeOptions(
        log_level=args.log_level.lower(),
        graceful_timeout=args.graceful_timeout,
        json_logs=args.log_format == "json",
    )
    return serve(app, sock, options)
