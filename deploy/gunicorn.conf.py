"""Gunicorn config for a guardrail-guarded ASGI app: uvicorn workers, metrics shared by all.

    PROMETHEUS_MULTIPROC_DIR=/run/guardrail-metrics \\
        gunicorn -c deploy/gunicorn.conf.py -b 0.0.0.0:8000 -w 4 yourpackage.app:app

Every scrape of /metrics (``guardrail.observability.metrics_app()``), whichever worker answers
it, reports the totals over all workers. Command-line flags override the settings below.
"""

import os
import shutil
import tempfile
from typing import Any

# This must run before anything imports prometheus_client (it picks per-process or shared
# values once, on import): the config file is loaded before the app, so here is the place.
# Without a directory from the environment, a private one is made for this server instance;
# never share one directory between two servers.
_OWN_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="guardrail-metrics-")

from guardrail.observability.multiprocess import mark_worker_dead, prepare_multiproc_dir  # noqa: E402

bind = "127.0.0.1:8000"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# uvicorn.workers is deprecated in favour of the `uvicorn-worker` package
# ("uvicorn_worker.UvicornWorker"); both behave the same here.
worker_class = "uvicorn.workers.UvicornWorker"
# The app must be imported in each worker, after fork, with the variable above already set.
preload_app = False
graceful_timeout = 30
timeout = 60
keepalive = 5


def on_starting(server: Any) -> None:
    """Master, once, before the first worker: counts from a previous run must not be added."""
    prepare_multiproc_dir()


def child_exit(server: Any, worker: Any) -> None:
    """Master, after a worker exited: its counts stay in the totals, its live gauges go."""
    mark_worker_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Master, at shutdown: remove the directory if this config created it."""
    if _OWN_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
