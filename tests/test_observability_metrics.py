"""GuardrailMetrics and MetricsRecorder: what each GuardOutcome does to the metrics."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from guardrail.classification import Classification
from guardrail.errors import ConfigError
from guardrail.observability import GuardrailMetrics, MetricsRecorder
from guardrail.outcome import GuardOutcome

REFUSAL = Classification("full_refusal", 0.97, "cannot", "skill_level", 0.8)
PARTIAL = Classification("partial_refusal", 0.7, "should_not", "privacy", 0.6)
COMPLIANCE = Classification("compliance", 0.02, "none", "none", 0.0)


def _outcome(**kwargs: object) -> GuardOutcome:
    base: dict[str, object] = {
        "request_id": "req-1",
        "route": "/v1/chat/completions",
        "api": "openai_chat",
        "stream": False,
        "status": 200,
        "model": "gpt-4o-mini",
        "classification": COMPLIANCE,
    }
    base.update(kwargs)
    return GuardOutcome(**base)  # type: ignore[arg-type]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def recorder(registry: CollectorRegistry) -> MetricsRecorder:
    return MetricsRecorder(GuardrailMetrics(registry))


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_compliant_response_counts_once_with_default_rule_and_pass(
    registry: CollectorRegistry, recorder: MetricsRecorder
) -> None:
    """A compliant, passed response increments responses_total and actions_total{rule=default}."""
    recorder.record(_outcome(classifier_seconds=0.0012, overhead_seconds=0.0015))
    route = {"route": "/v1/chat/completions", "model": "gpt-4o-mini"}
    assert _value(registry, "guardrail_responses_total", **route, verdict="compliance") == 1.0
    assert _value(registry, "guardrail_actions_total", rule="default", action="pass") == 1.0
    assert _value(registry, "guardrail_classifier_seconds_count") == 1.0
    assert _value(registry, "guardrail_classifier_seconds_bucket", le="0.0015") == 1.0
    assert _value(registry, "guardrail_classifier_seconds_bucket", le="0.001") == 0.0
    assert _value(registry, "guardrail_overhead_seconds_sum") == pytest.approx(0.0015)
    assert (
        registry.get_sample_value(
            "guardrail_refusals_total", {**route, "kind": "cannot", "category": "skill_level"}
        )
        is None
    )


def test_refusals_are_counted_by_kind_and_category(
    registry: CollectorRegistry, recorder: MetricsRecorder
) -> None:
    """Full and partial refusals both land in refusals_total with their kind and category."""
    recorder.record(_outcome(classification=REFUSAL))
    recorder.record(_outcome(classification=REFUSAL))
    recorder.record(_outcome(classification=PARTIAL))
    route = {"route": "/v1/chat/completions", "model": "gpt-4o-mini"}
    assert _value(registry, "guardrail_responses_total", **route, verdict="full_refusal") == 2.0
    assert _value(registry, "guardrail_responses_total", **route, verdict="partial_refusal") == 1.0
    assert (
        _value(registry, "guardrail_refusals_total", **route, kind="cannot", category="skill_level")
        == 2.0
    )
    assert (
        _value(registry, "guardrail_refusals_total", **route, kind="should_not", category="privacy")
        == 1.0
    )


def test_recovered_retry_records_outcome_and_extra_attempts(
    registry: CollectorRegistry, recorder: MetricsRecorder
) -> None:
    """A retry that recovered counts retries_total{outcome=recovered} and the extra attempts."""
    recorder.record(
        _outcome(
            action="retry",
            rule_id="clinical-retry",
            attempts=2,
            retry_outcome="recovered",
            classification=COMPLIANCE,
        )
    )
    recorder.record(
        _outcome(
            action="retry",
            rule_id="clinical-retry",
            attempts=3,
            retry_outcome="still_refused",
            classification=REFUSAL,
        )
    )
    rule = {"rule": "clinical-retry"}
    assert _value(registry, "guardrail_retries_total", **rule, outcome="recovered") == 1.0
    assert _value(registry, "guardrail_retries_total", **rule, outcome="still_refused") == 1.0
    assert _value(registry, "guardrail_retry_attempts_total", **rule) == 3.0
    assert _value(registry, "guardrail_actions_total", **rule, action="retry") == 2.0


def test_shadow_action_is_counted_as_shadow(
    registry: CollectorRegistry, recorder: MetricsRecorder
) -> None:
    """A shadow rule counts actions_total{action=shadow}, not the action it would have taken."""
    recorder.record(
        _outcome(classification=REFUSAL, action="shadow", shadow_action="block", rule_id="r1")
    )
    assert _value(registry, "guardrail_actions_total", rule="r1", action="shadow") == 1.0
    assert _value(registry, "guardrail_actions_total", rule="r1", action="block") is None


def test_skipped_response_counts_reason_and_not_a_verdict(
    registry: CollectorRegistry, recorder: MetricsRecorder
) -> None:
    """A skipped response increments skipped_total{reason} and no responses_total series."""
    assert _value(registry, "guardrail_skipped_total", reason="timeout") == 0.0
    recorder.record(_outcome(classification=None, skipped="timeout", classifier_seconds=0.25))
    assert _value(registry, "guardrail_skipped_total", reason="timeout") == 1.0
    assert _value(registry, "guardrail_skipped_total", reason="too_large") == 0.0
    assert (
        _value(
            registry,
            "guardrail_responses_total",
            route="/v1/chat/completions",
            model="gpt-4o-mini",
            verdict="compliance",
        )
        is None
    )
    assert _value(registry, "guardrail_classifier_seconds_bucket", le="0.25") == 1.0


def test_budget_exhausted_counter(registry: CollectorRegistry, recorder: MetricsRecorder) -> None:
    """A retry turned into a pass by the budget counts retry_budget_exhausted_total{rule}."""
    recorder.record(_outcome(classification=REFUSAL, rule_id="r2", budget_exhausted=True))
    assert _value(registry, "guardrail_retry_budget_exhausted_total", rule="r2") == 1.0


def test_unbounded_model_names_fold_into_other(registry: CollectorRegistry) -> None:
    """Only the first max_models distinct model names become labels; the rest become other."""
    recorder = MetricsRecorder(GuardrailMetrics(registry, max_models=2))
    for name in ("m-a", "m-b", "m-c", "m-d", "m-a", "m c with spaces"):
        recorder.record(_outcome(model=name))
    recorder.record(_outcome(model=None))
    models = {
        s.labels["model"]: s.value
        for metric in registry.collect()
        if metric.name == "guardrail_responses"
        for s in metric.samples
        if s.name == "guardrail_responses_total"
    }
    assert models == {"m-a": 2.0, "m-b": 1.0, "other": 3.0, "unknown": 1.0}


def test_model_allow_list_keeps_only_listed_names(registry: CollectorRegistry) -> None:
    """With an allow-list, listed models keep their name and every other becomes other."""
    recorder = MetricsRecorder(GuardrailMetrics(registry, models=["llama-3"]))
    recorder.record(_outcome(model="llama-3"))
    recorder.record(_outcome(model="gpt-4o"))
    base = {"route": "/v1/chat/completions", "verdict": "compliance"}
    assert _value(registry, "guardrail_responses_total", **base, model="llama-3") == 1.0
    assert _value(registry, "guardrail_responses_total", **base, model="other") == 1.0


def test_recorder_allow_list_overrides_the_shared_metrics(registry: CollectorRegistry) -> None:
    """MetricsRecorder(models=[...]) applies its own allow-list on shared metrics."""
    metrics = GuardrailMetrics(registry)
    MetricsRecorder(metrics, models=["llama-3"]).record(_outcome(model="gpt-4o"))
    MetricsRecorder(metrics).record(_outcome(model="gpt-4o"))
    base = {"route": "/v1/chat/completions", "verdict": "compliance"}
    assert _value(registry, "guardrail_responses_total", **base, model="other") == 1.0
    assert _value(registry, "guardrail_responses_total", **base, model="gpt-4o") == 1.0


def test_rule_ids_are_bounded(registry: CollectorRegistry) -> None:
    """Rule ids beyond max_rules become other; "default" is always available."""
    recorder = MetricsRecorder(GuardrailMetrics(registry, max_rules=1))
    recorder.record(_outcome(rule_id="a"))
    recorder.record(_outcome(rule_id="b"))
    recorder.record(_outcome(rule_id=None))
    assert _value(registry, "guardrail_actions_total", rule="a", action="pass") == 1.0
    assert _value(registry, "guardrail_actions_total", rule="other", action="pass") == 1.0
    assert _value(registry, "guardrail_actions_total", rule="default", action="pass") == 1.0


def test_labels_from_a_misbehaving_classifier_stay_in_fixed_sets(
    registry: CollectorRegistry, recorder: MetricsRecorder
) -> None:
    """A verdict/kind/category outside the taxonomy is recorded as other, never verbatim."""
    weird = Classification("full_refusal", 0.9, "cannot", "made_up", 0.5)  # type: ignore[arg-type]
    recorder.record(_outcome(classification=weird))
    base = {"route": "/v1/chat/completions", "model": "gpt-4o-mini", "kind": "cannot"}
    assert _value(registry, "guardrail_refusals_total", **base, category="other") == 1.0


def test_policy_reload_callback_counts_results(
    registry: CollectorRegistry, recorder: MetricsRecorder
) -> None:
    """on_policy_reload counts guardrail_policy_reloads_total by success/failure."""
    assert _value(registry, "guardrail_policy_reloads_total", result="failure") == 0.0
    recorder.on_policy_reload("success")
    recorder.on_policy_reload("failure", "policy.yaml:3:1: unknown key")
    recorder.on_policy_reload("failure", "again")
    assert _value(registry, "guardrail_policy_reloads_total", result="success") == 1.0
    assert _value(registry, "guardrail_policy_reloads_total", result="failure") == 2.0


def test_second_metrics_on_one_registry_is_a_clear_error(registry: CollectorRegistry) -> None:
    """Defining the metrics twice on one registry fails with a message naming the fix."""
    first = GuardrailMetrics(registry)
    with pytest.raises(ConfigError, match="for_registry"):
        GuardrailMetrics(registry)
    assert GuardrailMetrics.for_registry(registry) is first


def test_for_registry_creates_once(registry: CollectorRegistry) -> None:
    """for_registry returns the same object on every call for one registry."""
    assert GuardrailMetrics.for_registry(registry) is GuardrailMetrics.for_registry(registry)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_models": -1}, "max_models must be a non-negative integer"),
        ({"models": "gpt-4o"}, "models must be a list of strings"),
        ({"rules": ["ok", ""]}, "rules must hold non-empty strings"),
        ({"buckets": (0.1, 0.01)}, "strictly increasing"),
    ],
)
def test_bad_configuration_fails_at_construction(kwargs: dict[str, object], message: str) -> None:
    """Invalid GuardrailMetrics settings raise ConfigError with a precise message."""
    with pytest.raises(ConfigError, match=message):
        GuardrailMetrics(CollectorRegistry(), **kwargs)  # type: ignore[arg-type]


def test_recorder_never_raises_when_metrics_break(registry: CollectorRegistry) -> None:
    """A failing metric update is swallowed and the log event is still emitted."""

    class Broken:
        model_label = staticmethod(str)

        def __getattr__(self, name: str) -> object:
            raise RuntimeError("boom")

    events: list[tuple[str, dict[str, object]]] = []

    class ListLogger:
        def info(self, event: str, **kw: object) -> None:
            events.append((event, kw))

        warning = info

        def exception(self, event: str, **kw: object) -> None:
            events.append((event, kw))

    recorder = MetricsRecorder(Broken(), logger=ListLogger())  # type: ignore[arg-type]
    recorder.record(_outcome())
    assert [e for e, _ in events] == ["guardrail_recorder_failed", "guarded_response"]
    assert events[0][1] == {"part": "metrics"}
