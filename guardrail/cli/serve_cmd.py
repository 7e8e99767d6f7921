"""``guardrail serve``: a guarded reverse proxy in front of an OpenAI-compatible server."""

from __future__ import annotations

import argparse

from guardrail.cli._arg_types import positive_number
from guardrail.cli._server_args import add_server_arguments

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="guarded reverse proxy in front of any OpenAI-compatible server",
        description=(
            "Forward every request to --upstream, streaming both ways, and guard the chat "
            "routes with the bundled classifier and --policy. Also serves /metrics "
            "(Prometheus), /healthz (process alive) and /readyz (model and policy ready)."
        ),
    )
    parser.add_argument(
        "--upstream",
        required=True,
        metavar="URL",
        help="base URL of the upstream server, e.g. http://127.0.0.1:8000",
    )
    parser.add_argument("--policy", required=True, metavar="FILE", help="policy file (YAML)")
    add_server_arguments(parser, port=8080, log_format="json")
    parser.add_argument(
        "--connect-timeout",
        type=positive_number(" of seconds"),
        default=5.0,
        metavar="SECONDS",
        help="upstream connect timeout (default: 5)",
    )
    parser.add_argument(
        "--read-timeout",
        type=positive_number(" of seconds"),
        default=300.0,
        metavar="SECONDS",
        help="longest wait for each upstream response chunk (default: 300)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=200,
        metavar="N",
        help="upstream connection pool size (default: 200)",
    )
    parser.add_argument(
        "--classifier-processes",
        type=int,
        default=0,
        metavar="N",
        help="run the model in N worker processes instead of threads of the server "
        "(faster under load; default: 0, threads)",
    )
    parser.add_argument(
        "--models",
        default="",
        metavar="NAMES",
        help="comma-separated model names kept as metric labels (others: 'other')",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from guardrail.classification import Classifier
    from guardrail.errors import ConfigError
    from guardrail.model import ProcessClassifier, RefusalClassifier
    from guardrail.observability import configure_logging, default_metrics
    from guardrail.policy import open_policy
    from guardrail.proxy.app import build_proxy_app
    from guardrail.proxy.config import ProxyConfig
    from guardrail.proxy.serving import ServeOptions, bind_socket, display_url, serve

    configure_logging(json=args.log_format == "json", level=args.log_level)
    config = ProxyConfig(
        args.upstream,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
        max_connections=args.max_connections,
        max_keepalive_connections=min(args.max_connections, 50),
    )
    policy = open_policy(args.policy, metrics=default_metrics())
    if args.classifier_processes < 0:
        raise ConfigError(
            f"--classifier-processes must be 0 or more, got {args.classifier_processes}"
        )
    classifier: Classifier
    hooks = []
    if args.classifier_processes:
        workers = ProcessClassifier(
            args.model_dir,
            processes=args.classifier_processes,
            tail_threshold=args.tail_threshold,
        )

        async def stop_workers() -> None:
            workers.close()

        classifier, hooks = workers, [stop_workers]
    else:
        classifier = RefusalClassifier.load(args.model_dir, tail_threshold=args.tail_threshold)
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    app = build_proxy_app(
        config, policy=policy, classifier=classifier, models=models, on_shutdown=hooks
    )
    sock = bind_socket(args.host, args.port)
    print(f"guardrail serve: {display_url(sock)} -> {config.upstream}", flush=True)
    options = ServeOptions(
        log_level=args.log_level.lower(),
        graceful_timeout=args.graceful_timeout,
        json_logs=args.log_format == "json",
        # The upstream's own server/date headers are relayed; uvicorn's would duplicate them.
        server_header=False,
        date_header=False,
    )
    return serve(app, sock, options)
