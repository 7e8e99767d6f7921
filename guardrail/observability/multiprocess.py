"""Multi-process metrics: one consistent view over all gunicorn / ``uvicorn --workers`` workers.

prometheus_client's multiprocess mode keeps each worker's samples in memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR``; a scrape of any worker then merges all files, so every worker
reports the sum over all workers (counters and histograms add up). Three things make it correct:

1. The variable is set *before* prometheus_client is imported in a worker (it picks its value
   class at import), i.e. in the environment of the server process, or at the top of the
   gunicorn config (see deploy/gunicorn.conf.py).
2. The directory is emptied once, by the master, before any worker starts
   (``prepare_multiproc_dir()``, the gunicorn ``on_starting`` hook): files of a previous run
   would otherwise be added to the new counts.
3. When a worker dies its files stay (its counts must not vanish from the totals), but the
   bookkeeping for live gauges is removed (``mark_worker_dead()``, the gunicorn ``child_exit``
   hook). guardrail defines no gauges today; the hook keeps the setup right if one is added.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, multiprocess

from guardrail.errors import ConfigError

__all__ = [
    "ENV_VAR",
    "child_exit",
    "mark_worker_dead",
    "multiproc_dir",
    "multiprocess_registry",
    "on_starting",
    "prepare_multiproc_dir",
]

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"


def multiproc_dir() -> Path | None:
    """The multiprocess directory from the environment, or None in single-process mode."""
    value = os.environ.get(ENV_VAR) or os.environ.get(ENV_VAR.lower())
    return Path(value) if value else None


def prepare_multiproc_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Create the directory if needed and remove stale ``*.db`` files; returns its path.

    Call it once in the parent process before workers start (never from a worker: it would
    erase the other workers' counts). ``path`` defaults to ``$PROMETHEUS_MULTIPROC_DIR``; when
    given, the variable is set to it so that workers forked or spawned afterwards inherit it.
    """
    target = Path(path) if path is not None else multiproc_dir()
    if target is None:
        raise ConfigError(
            f"{ENV_VAR} is not set: set it to an empty directory (one per server) before "
            "starting multi-worker servers, or pass prepare_multiproc_dir(path)"
        )
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{ENV_VAR}={target} exists and is not a directory")
    try:
        target.mkdir(parents=True, exist_ok=True)
        for stale in target.glob("*.db"):
            stale.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot prepare {ENV_VAR}={target}: {exc}") from exc
    os.environ[ENV_VAR] = str(target)
    return target


def mark_worker_dead(pid: int, path: str | os.PathLike[str] | None = None) -> None:
    """Drop a dead worker's live-gauge files; a no-op outside multiprocess mode."""
    target = Path(path) if path is not None else multiproc_dir()
    if target is not None and target.is_dir():
        multiprocess.mark_process_dead(pid, str(target))  # type: ignore[no-untyped-call]


def multiprocess_registry(path: str | os.PathLike[str] | None = None) -> CollectorRegistry:
    """A fresh registry whose only collector merges every worker's files (for exposition).

    Metrics must not be registered on it: in multiprocess mode the metric objects write to the
    files, and this registry only reads them.
    """
    target = Path(path) if path is not None else multiproc_dir()
    if target is None or not target.is_dir():
        raise ConfigError(f"{ENV_VAR}={target} is not an existing directory")
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(target))  # type: ignore[no-untyped-call]
    return registry


# --- gunicorn server hooks (``from guardrail.observability.multiprocess import ...`` in the
# config file). Gunicorn checks hook arity, so the signatures are exactly its own.


def on_starting(server: Any) -> None:
    """gunicorn hook, master process, before workers fork: clear stale metric files."""
    prepare_multiproc_dir()


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, master process, after a worker exited: release its live-gauge files."""
    mark_worker_dead(int(worker.pid))
