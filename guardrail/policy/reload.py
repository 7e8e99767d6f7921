"""Policy providers: a static one, and ``PolicyStore``, which hot-reloads a file.

``PolicyStore`` loads the file at construction (an invalid file is a start-up error).
Its watcher is a daemon thread that, every ``interval`` seconds, reads the file and
compares its SHA-256 with the running version; a changed, valid file is swapped in with a
single attribute assignment (atomic: a request sees the old or the new policy, never a
mix); a changed, invalid one is logged (``guardrail.policy`` logger, event
``policy_reload_failed``), counted, and the last good policy stays. Each bad version is
reported once, not on every poll.

The watcher starts with ``start()``, or lazily on the first ``current()`` of a store made
with ``watch=True`` (what ``open_policy`` does). Lazy start matters for pre-fork servers:
a gunicorn master that loads the policy holds no thread to lose in the fork, and each
worker starts its own watcher when it serves its first request. ``close()`` stops it.

The retry budget survives a reload (``Policy.continue_from``), so editing or touching the
file cannot refill an exhausted budget.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import structlog

from guardrail.errors import PolicyError
from guardrail.policy.engine import Policy
from guardrail.policy.loader import decode_policy_bytes, parse_spec
from guardrail.policy_api import PolicyLike, PolicyProvider

__all__ = ["PolicyStore", "ReloadCallback", "ReloadResult", "StaticPolicyProvider", "open_policy"]

ReloadResult = Literal["success", "failure"]
ReloadCallback = Callable[[ReloadResult, "str | None"], None]

_log = structlog.get_logger("guardrail.policy")
_MISSING = "<missing>"  # stands in for the digest while the file cannot be read
_STORES: weakref.WeakSet[PolicyStore] = weakref.WeakSet()


_pid = os.getpid()


def _after_fork_in_child() -> None:
    # A lock held by the parent's watcher thread at fork time would stay locked forever
    # in the child, where that thread does not exist.
    global _pid
    _pid = os.getpid()
    for store in list(_STORES):
        store._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _log_warnings(policy: Policy) -> None:
    for warning in policy.warnings:
        _log.warning("policy_warning", path=policy.spec.source, warning=warning)


class StaticPolicyProvider:
    """Always hands out the same policy."""

    __slots__ = ("_policy",)

    def __init__(self, policy: PolicyLike) -> None:
        self._policy = policy

    def current(self) -> PolicyLike:
        return self._policy


class PolicyStore:
    """A hot-reloading ``PolicyProvider`` over one policy file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        interval: float = 2.0,
        watch: bool = False,
        on_reload: ReloadCallback | None = None,
        metrics: Any = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        self._path = os.fspath(path)
        self._interval = float(interval)
        self._on_reload = on_reload
        self._metrics = metrics
        self._environ = environ
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._owner_pid = -1
        self._watch = watch
        data = self._read_bytes()  # a missing file is a start-up error
        self._policy = self._parse(data)
        self._seen = hashlib.sha256(data).hexdigest()
        _log_warnings(self._policy)
        _STORES.add(self)

    @property
    def path(self) -> str:
        return self._path

    def current(self) -> Policy:
        """The policy in force now (starting the watcher first, if this store watches)."""
        if self._watch and self._owner_pid != _pid:
            self.start()
        return self._policy

    def start(self) -> None:
        """Start the watcher thread in this process (no-op if it runs already)."""
        with self._lock:
            if self._owner_pid == os.getpid() and self._thread is not None:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=_watch_loop,
                args=(weakref.ref(self), self._stop, self._interval),
                name="guardrail-policy-watch",
                daemon=True,
            )
            self._owner_pid = os.getpid()
            self._thread.start()

    def close(self) -> None:
        """Stop the watcher; ``current()`` keeps answering with the last good policy."""
        self._watch = False
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(5.0, self._interval * 2))
        self._thread = None

    def __enter__(self) -> PolicyStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def reload(self) -> bool:
        """Re-read the file now, even if unchanged; True when a new policy was swapped in."""
        return self._check(force=True)

    def poll(self) -> bool:
        """Reload only if the file's content changed since the last look (the watcher's step)."""
        return self._check(force=False)

    def _check(self, *, force: bool) -> bool:
        with self._lock:
            policy, error = self._load_if_changed(force=force)
        # Reported outside the lock: a callback may itself call reload() or current().
        if error is not None:
            _log.error(
                "policy_reload_failed", path=self._path, error=error, kept=self._policy.spec.sha256
            )
            self._report("failure", error)
            return False
        if policy is None:
            return False
        _log.info(
            "policy_reloaded",
            path=self._path,
            policy=policy.name,
            sha256=policy.spec.sha256,
            rules=len(policy.spec.rules),
        )
        _log_warnings(policy)
        self._report("success", None)
        return True

    def _load_if_changed(self, *, force: bool) -> tuple[Policy | None, str | None]:
        """(new policy, None) after a swap, (None, error) on failure, (None, None) if unchanged."""
        try:
            data = self._read_bytes()
        except PolicyError as exc:
            if not force and self._seen == _MISSING:
                return None, None
            self._seen = _MISSING
            return None, str(exc)
        digest = hashlib.sha256(data).hexdigest()
        if not force and digest == self._seen:
            return None, None
        self._seen = digest  # a bad version is reported once, not on every poll
        try:
            policy = self._parse(data)
        except PolicyError as exc:
            return None, str(exc)
        policy.continue_from(self._policy)
        self._policy = policy  # the atomic swap
        return policy, None

    def _read_bytes(self) -> bytes:
        try:
            return Path(self._path).read_bytes()
        except OSError as exc:
            raise PolicyError(
                [f"{self._path}:1:1: cannot read policy file: {exc.strerror or exc}"]
            ) from None

    def _parse(self, data: bytes) -> Policy:
        text = decode_policy_bytes(data, self._path)
        return Policy(parse_spec(text, self._path, environ=self._environ))

    def _report(self, result: ReloadResult, error: str | None) -> None:
        # Observability must never break reloading: each sink is isolated.
        metrics = self._metrics
        if metrics is None and self._on_reload is None:
            # Nobody was wired in: count where the default MetricsRecorder counts.
            metrics = _default_metrics()
        if metrics is not None:
            try:
                metrics.policy_reloads_total.labels(result=result).inc()
            except Exception as exc:
                _log.warning("policy_reload_metric_failed", error=repr(exc))
        if self._on_reload is not None:
            try:
                self._on_reload(result, error)
            except Exception as exc:
                _log.warning("policy_reload_callback_failed", error=repr(exc))

    def _reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._thread = None


def _watch_loop(ref: weakref.ref[PolicyStore], stop: threading.Event, interval: float) -> None:
    # Holds the store only weakly between polls: a store nobody uses any more is collected
    # and its watcher ends, instead of polling forever.
    while not stop.wait(interval):
        store = ref()
        if store is None:
            return
        try:
            store.poll()
        except Exception as exc:  # the watcher must outlive any surprise
            _log.exception("policy_watch_error", path=store.path, error=repr(exc))
        del store


def _default_metrics() -> Any:
    # Looked up by name so the policy package works (and type-checks) without it.
    try:
        module = importlib.import_module("guardrail.observability")
        return module.default_metrics()
    except Exception:
        return None


def open_policy(
    source: str | os.PathLike[str] | PolicyLike | PolicyProvider,
    *,
    interval: float = 2.0,
    on_reload: ReloadCallback | None = None,
    metrics: Any = None,
) -> PolicyProvider:
    """A provider for ``source``: a path (hot-reloading ``PolicyStore``, watcher started on
    first use), a loaded policy (static provider) or a provider (returned as is)."""
    if isinstance(source, str | os.PathLike):
        return PolicyStore(
            source, interval=interval, watch=True, on_reload=on_reload, metrics=metrics
        )
    if isinstance(source, Policy):
        _log_warnings(source)
        return StaticPolicyProvider(source)
    if isinstance(source, PolicyProvider) and not isinstance(source, PolicyLike):
        return source
    if isinstance(source, PolicyLike):
        return StaticPolicyProvider(source)
    raise TypeError(
        "policy must be a file path, a loaded Policy or a PolicyProvider, "
        f"not {type(source).__name__}"
    )
