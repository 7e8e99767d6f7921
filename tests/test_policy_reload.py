"""Hot reload: PolicyStore swaps valid files in atomically and keeps the last good one."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from guardrail.classification import Classification
from guardrail.errors import PolicyError
from guardrail.policy import Policy, PolicyStore, StaticPolicyProvider, open_policy, parse_policy
from guardrail.policy_api import Decision, PolicyProvider, RequestContext

_CTX = RequestContext(route="/v1/chat/completions", method="POST", api="openai_chat")
_REFUSAL = Classification("full_refusal", 0.9, "should_not", "privacy", 0.9)


def _version(rule: str, action: str = "block") -> str:
    extra = "\n    replace: {message: swapped}" if action == "replace" else ""
    return (
        f"version: 1\nretry_budget: {{per_minute: 60, burst: 4}}\nrules:\n"
        f"  - id: {rule}\n    action: {action}{extra}\n"
    )


_A = _version("rule-a")
_B = _version("rule-b", "replace")
_INVALID = "version: 1\nrules:\n  - id: rule-c\n    action: explode\n"
_BROKEN_YAML = "version: 1\nrules: [\n"


def _write(path: Path, text: str) -> None:
    # Atomic replace, as editors and config management do; keeps these tests deterministic.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class _Counter:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def labels(self, result: str) -> _Counter:
        self._last = result
        return self

    def inc(self) -> None:
        self.counts[self._last] = self.counts.get(self._last, 0) + 1


class _Metrics:
    def __init__(self) -> None:
        self.policy_reloads_total = _Counter()


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    _write(path, _A)
    return path


def test_valid_new_version_is_swapped_in_and_reported(policy_file: Path) -> None:
    """poll() picks up a changed valid file, reports success once, and keeps the new one."""
    events: list[tuple[str, str | None]] = []
    store = PolicyStore(policy_file, on_reload=lambda r, e: events.append((r, e)))
    assert store.current().decide(_CTX, _REFUSAL, attempt=1).rule_id == "rule-a"
    assert store.poll() is False
    _write(policy_file, _B)
    with capture_logs() as logs:
        assert store.poll() is True
    assert store.current().decide(_CTX, _REFUSAL, attempt=1) == Decision(
        action="replace", rule_id="rule-b", replace_text="swapped"
    )
    assert events == [("success", None)]
    assert [e["event"] for e in logs] == ["policy_reloaded"]
    assert store.poll() is False


def test_invalid_version_is_rejected_logged_counted_once(policy_file: Path) -> None:
    """A bad file leaves the last good policy in force; the failure is logged and counted once."""
    events: list[tuple[str, str | None]] = []
    metrics = _Metrics()
    store = PolicyStore(policy_file, on_reload=lambda r, e: events.append((r, e)), metrics=metrics)
    good = store.current()
    _write(policy_file, _INVALID)
    with capture_logs() as logs:
        assert store.poll() is False
        assert store.poll() is False  # the same bad content is not reported again
    assert store.current() is good
    assert len(events) == 1 and events[0][0] == "failure"
    assert events[0][1] is not None and f"{policy_file}:4:13: rules[0].action" in events[0][1]
    assert metrics.policy_reloads_total.counts == {"failure": 1}
    assert [(e["event"], e["log_level"]) for e in logs] == [("policy_reload_failed", "error")]
    assert logs[0]["kept"] == good.spec.sha256
    _write(policy_file, _B)
    assert store.poll() is True
    assert metrics.policy_reloads_total.counts == {"failure": 1, "success": 1}


def test_missing_file_keeps_last_good_and_recovers(policy_file: Path) -> None:
    """A deleted file is one failure; when it returns valid it is loaded again."""
    events: list[str] = []
    store = PolicyStore(policy_file, on_reload=lambda r, e: events.append(r))
    policy_file.unlink()
    assert store.poll() is False and store.poll() is False
    assert store.current().decide(_CTX, _REFUSAL, attempt=1).rule_id == "rule-a"
    _write(policy_file, _B)
    assert store.poll() is True
    assert events == ["failure", "success"]


def test_invalid_file_at_start_up_is_an_error(tmp_path: Path) -> None:
    """The first load fails loudly: there is no last good policy to fall back on."""
    path = tmp_path / "bad.yaml"
    path.write_text(_INVALID)
    with pytest.raises(PolicyError, match=r"bad\.yaml:4:13"):
        PolicyStore(path)
    with pytest.raises(PolicyError, match="cannot read policy file"):
        open_policy(tmp_path / "absent.yaml")


def test_reload_forces_a_reparse_and_keeps_the_budget(policy_file: Path) -> None:
    """reload() re-reads even unchanged content; the retry budget carries over the swap."""
    _write(
        policy_file,
        "version: 1\nretry_budget: {per_minute: 1, burst: 2}\nrules:\n"
        "  - {id: r, action: retry, retry: {note: n}}\n",
    )
    store = PolicyStore(policy_file)
    first = store.current()
    assert [first.decide(_CTX, _REFUSAL, attempt=1).action for _ in range(3)] == [
        "retry",
        "retry",
        "pass",
    ]
    assert store.reload() is True
    assert store.current() is not first
    assert store.current().decide(_CTX, _REFUSAL, attempt=1).budget_exhausted is True


def test_watcher_thread_reloads_and_stops(policy_file: Path) -> None:
    """start() runs a daemon watcher that picks changes up; close() stops it."""
    events: list[str] = []
    # Other tests' stores may still have live watchers in this process: look only at ours.
    before = set(threading.enumerate())
    with PolicyStore(policy_file, interval=0.02, on_reload=lambda r, e: events.append(r)) as store:
        store.start()
        watchers = [
            t
            for t in threading.enumerate()
            if t.name == "guardrail-policy-watch" and t not in before
        ]
        assert watchers and all(t.daemon for t in watchers)
        _write(policy_file, _B)
        deadline = time.monotonic() + 5
        while store.current().spec.rules[0].id != "rule-b" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.current().spec.rules[0].id == "rule-b"
    assert events == ["success"]
    assert not any(t.is_alive() for t in watchers)


def test_open_policy_starts_the_watcher_lazily(policy_file: Path) -> None:
    """open_policy(path) starts no thread until the first current() call."""
    before = {t.ident for t in threading.enumerate()}
    store = open_policy(str(policy_file), interval=0.05)
    assert isinstance(store, PolicyStore)
    try:
        assert {t.ident for t in threading.enumerate()} == before
        store.current()
        assert any(t.name == "guardrail-policy-watch" for t in threading.enumerate())
    finally:
        store.close()


def test_open_policy_accepts_policies_and_providers(policy_file: Path) -> None:
    """A Policy gets a static provider, a provider is returned as is, anything else is refused."""
    policy = parse_policy(_A)
    provider = open_policy(policy)
    assert isinstance(provider, StaticPolicyProvider) and provider.current() is policy
    assert open_policy(provider) is provider
    assert isinstance(open_policy(policy_file), PolicyProvider)
    with pytest.raises(TypeError, match="file path, a loaded Policy or a PolicyProvider"):
        open_policy(42)  # type: ignore[arg-type]


def test_concurrent_decisions_during_reloads_see_old_or_new_never_an_error(
    policy_file: Path,
) -> None:
    """Threads calling decide() while the file flips between A, B and broken versions always
    get a decision from A or B, and never an exception."""
    failures: list[BaseException] = []
    seen: set[str | None] = set()
    stop = threading.Event()
    lock = threading.Lock()
    store = open_policy(policy_file, interval=0.005)
    assert isinstance(store, PolicyStore)

    def worker() -> None:
        local: set[str | None] = set()
        try:
            while not stop.is_set():
                policy = store.current()
                local.add(policy.decide(_CTX, _REFUSAL, attempt=1).rule_id)
                time.sleep(0)  # yield the GIL so the writer and the watcher keep pace
        except BaseException as exc:  # collected and asserted on below
            failures.append(exc)
        with lock:
            seen.update(local)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(40):
            text = (_A, _B, _INVALID, _BROKEN_YAML)[i % 4]
            if i % 8 < 4:
                policy_file.write_text(text)  # in place: the watcher may read it half-written
            else:
                _write(policy_file, text)
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        store.close()
    assert failures == []
    assert seen == {"rule-a", "rule-b"}  # both versions served, nothing else


def test_metrics_objects_are_isolated_from_failures(policy_file: Path) -> None:
    """A metrics object or callback that raises never breaks reloading."""

    def boom(result: str, error: str | None) -> None:
        raise RuntimeError("sink down")

    store = PolicyStore(policy_file, on_reload=boom, metrics=object())
    _write(policy_file, _B)
    with capture_logs() as logs:
        assert store.poll() is True
    assert {e["event"] for e in logs} >= {
        "policy_reload_metric_failed",
        "policy_reload_callback_failed",
    }


def test_warnings_are_logged_when_a_policy_is_opened(tmp_path: Path) -> None:
    """A disabled signed header is logged as a warning by the provider, once per load."""
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\ncontext:\n  signed_header: {secret_env: UNSET_FOR_TEST_XYZ, "
        "if_secret_missing: disable}\n"
    )
    with capture_logs() as logs:
        store = PolicyStore(path)
    assert [(e["event"], e["log_level"]) for e in logs] == [("policy_warning", "warning")]
    assert "UNSET_FOR_TEST_XYZ is not set" in logs[0]["warning"]
    assert isinstance(store.current(), Policy)


def test_interval_must_be_positive(policy_file: Path) -> None:
    """A zero or negative polling interval is a configuration error."""
    with pytest.raises(ValueError, match="interval"):
        PolicyStore(policy_file, interval=0)


def test_watcher_ends_when_its_store_is_garbage_collected(policy_file: Path) -> None:
    """A store dropped without close() does not leave a thread polling forever."""
    import gc

    store = PolicyStore(policy_file, interval=0.01)
    store.start()
    thread = store._thread
    assert thread is not None and thread.is_alive()
    del store
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


def _child_watcher_report(store: PolicyStore, queue: Any) -> None:
    store.current()
    names = [t.name for t in threading.enumerate()]
    queue.put((os.getpid(), names.count("guardrail-policy-watch")))
    store.close()


def test_each_forked_worker_starts_its_own_watcher(policy_file: Path) -> None:
    """A store opened before fork (gunicorn --preload) starts one watcher in the child."""
    import multiprocessing

    store = open_policy(policy_file, interval=0.05)
    assert isinstance(store, PolicyStore)
    store.current()  # the parent's watcher is running at fork time
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_watcher_report, args=(store, queue))
    child.start()
    try:
        pid, watchers = queue.get(timeout=20)
    finally:
        child.join(timeout=20)
        store.close()
    assert pid != os.getpid() and watchers == 1
    assert child.exitcode == 0
