"""The policy loader: positioned FILE:LINE:COL problems, all of them, and nothing else raised."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail._resources import bundled_policy_dir
from guardrail.errors import ConfigError, PolicyError
from guardrail.policy import load_policy, parse_policy, policy_json_schema

_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$")
_SECRET_ENV = {"CTX_SECRET": "0123456789abcdef-test-secret"}

_VALID = """\
version: 1
name: sample
description: A policy exercising most keys.
fail_closed: false
context:
  trusted_headers:
    x-gw-user: user
    x-gw-scopes: scopes
    x-tenant: value
  signed_header:
    header: x-guardrail-context
    secret_env: CTX_SECRET
    leeway_seconds: 5
hard_floors:
  - id: cbrn
    user_message: '(?i)\\bsarin\\b'
  - id: no-touch-nsfw
    category: [nsfw]
retry_budget: {per_minute: 60, burst: 10}
rules:
  - id: clin
    description: clinicians
    when:
      scopes_any: [clinician]
      verdict: [full_refusal, partial_refusal]
      kind: should_not
      category: [information_hazards, unclear]
      min_refusal_score: 0.5
      min_category_score: 0.1
      route: /v1/chat/completions
      method: [POST]
      api: [openai_chat]
      stream: false
      model: [gpt-x]
      body_user: [u1]
      metadata: {team: [er]}
      user: [dr-a]
      headers: {x-tenant: [acme]}
      user_message: '(?i)dose'
      system_prompt: 'clinic'
    action: retry
    retry: {note: "Verified {user} ({scopes}) on {method} {route}.", role: developer,
            max_attempts: 3}
    retry_budget: {per_minute: 6, burst: 2}
  - id: swap
    when: {category: [privacy]}
    action: replace
    replace: {message: "Sorry."}
  - id: stop
    when: {verdict: [compliance, full_refusal], category: [none, offensive_content]}
    action: block
    block: {status: 451, message: "Blocked."}
    shadow: true
default:
  action: pass
"""


def _problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "p.yaml", environ=environ if environ is not None else _SECRET_ENV)
    assert isinstance(err.value, ConfigError)
    return err.value.problems


def _assert_inside(text: str, problems: list[str]) -> None:
    lines = text.split("\n")
    for problem in problems:
        m = _LINE.match(problem)
        assert m is not None, problem
        line, col = int(m["line"]), int(m["col"])
        assert 1 <= line <= len(lines), problem
        assert 1 <= col <= len(lines[line - 1]) + 1, problem


def test_a_valid_policy_loads_into_frozen_rules() -> None:
    """Every documented key is accepted and lands in the frozen model."""
    policy = parse_policy(_VALID, "p.yaml", environ=_SECRET_ENV)
    spec = policy.spec
    assert spec.name == "sample"
    assert [r.id for r in spec.rules] == ["clin", "swap", "stop"]
    assert policy.rule_ids == ("floor:cbrn", "floor:no-touch-nsfw", "clin", "swap", "stop")
    clin = spec.rules[0]
    assert clin.then.retry_role == "developer" and clin.then.max_attempts == 3
    assert clin.when.kinds == frozenset({"should_not"})
    assert clin.when.routes == frozenset({"/v1/chat/completions"})
    assert spec.rules[2].then.block_status == 451 and spec.rules[2].then.shadow is True
    assert (
        spec.signed_header is not None
        and spec.signed_header.secret == b"0123456789abcdef-test-secret"
    )
    assert "0123456789abcdef" not in repr(spec.signed_header)
    assert spec.warnings == ()
    with pytest.raises(AttributeError):
        clin.id = "other"  # type: ignore[misc]


def test_every_problem_is_reported_with_its_position() -> None:
    """One run lists all problems, each at the line and column of the offending value."""
    text = """\
version: 1
name: Not An Id
rules:
  - id: a
    when:
      category: [weapons]
      user_message: '(a)\\1'
      verdict: [compliance]
    action: retry
    retry: {note: "hi {prompt}"}
  - id: a
    action: block
    replace: {message: x}
    colour: red
  - id: b
    action: replace
    when: {headers: {x-spoofed: [yes-please]}, min_refusal_score: 1.5}
default: {action: pass, shadow: maybe}
"""
    problems = _problems(text)
    _assert_inside(text, problems)
    expected = [
        "p.yaml:2:7: name: 'Not An Id' is not an id",
        "p.yaml:6:18: rules[0].when.category[0]: unknown category 'weapons'",
        "p.yaml:7:21: rules[0].when.user_message: invalid regex",
        "p.yaml:8:16: rules[0].when.verdict: retry cannot apply to compliance",
        "p.yaml:10:19: rules[0].retry.note: unknown placeholder {prompt}",
        "p.yaml:11:9: rules[1].id: duplicate rule id 'a' (first used at line 4)",
        "p.yaml:13:14: rules[1].replace: settings for action 'replace' but the action is 'block'",
        "p.yaml:14:5: rules[1]: unknown key 'colour' in rule",
        "p.yaml:16:13: rules[2]: action 'replace' needs a 'replace:' block",
        "p.yaml:17:22: rules[2].when.headers: 'x-spoofed' is not in context.trusted_headers",
        "p.yaml:17:67: rules[2].when.min_refusal_score: 1.5 is outside [0, 1]",
        "p.yaml:18:33: default.shadow: expected true or false, got string",
    ]
    for want in expected:
        assert any(p.startswith(want) for p in problems), (want, problems)
    assert len(problems) == len(expected), problems


def test_a_malformed_rule_does_not_hide_problems_in_the_others() -> None:
    """A rule that is not a mapping is reported, and the rules after it are still checked."""
    text = (
        "version: 1\nrules:\n  - 5\n  - {id: a, action: pass}\n"
        "  - {id: a, action: pass, when: {category: [bad]}}\n"
    )
    problems = _problems(text)
    assert [p.split(": ")[0] + ": " + p.split(": ")[1] for p in problems] == [
        "p.yaml:3:5: rules[0]",
        "p.yaml:5:10: rules[2].id",
        "p.yaml:5:45: rules[2].when.category[0]",
    ]


def test_unknown_key_suggests_the_closest_name() -> None:
    """A misspelt key names the key it probably meant."""
    problems = _problems("version: 1\nrules:\n  - id: r\n    acton: pass\n")
    assert any("unknown key 'acton' in rule; did you mean 'action'?" in p for p in problems)
    assert any(
        p.startswith("p.yaml:3:5: rules[0]: missing required key 'action'") for p in problems
    )


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("", "p.yaml:1:1: policy file is empty"),
        ("# only a comment\n", "p.yaml:1:1: policy file is empty"),
        ("- 1\n", "p.yaml:1:1: : expected a mapping (policy), got list"),
        ("version: 2\n", "p.yaml:1:10: version: 2 must be 1"),
        ("name: x\n", "p.yaml:1:1: policy: missing required key 'version'"),
        (
            "version: 1\nversion: 1\n",
            "p.yaml:2:1: duplicate key 'version' (first defined at line 1)",
        ),
        ("version: 1\nrules: [\n", "p.yaml:3:1: YAML syntax error"),
        ("version: !!python/object:os.system 1\n", "p.yaml:1:10: unsupported YAML tag"),
        (
            "base: &b {action: pass}\nversion: 1\ndefault:\n  <<: *b\n",
            "p.yaml:4:3: YAML merge keys ('<<') are not supported",
        ),
        (
            "version: 1\nrules:\n"
            "  - {id: r, action: pass, retry_budget: {per_minute: 1, burst: 1}}\n",
            "p.yaml:3:41: rules[0].retry_budget: only used when action is retry",
        ),
        (
            "version: 1\nhard_floors:\n  - {id: f}\n",
            "p.yaml:3:5: hard_floors[0]: a hard floor needs",
        ),
        (
            "version: 1\nretry_budget: {per_minute: 0, burst: 1}\n",
            "p.yaml:2:28: retry_budget.per_minute: 0 is outside (0, 1e+06]",
        ),
        (
            "version: 1\nrules:\n  - {id: r, action: retry, retry: {note: a, max_attempts: 1}}\n",
            "p.yaml:3:59: rules[0].retry.max_attempts: 1 is outside 2..5",
        ),
        (
            "version: 1\nrules:\n  - {id: r, action: retry, retry: {note: 'a {0} b'}}\n",
            "p.yaml:3:42: rules[0].retry.note: unknown placeholder {0}",
        ),
        (
            "version: 1\nrules:\n  - {id: r, action: retry, retry: {note: 'a { b'}}\n",
            "p.yaml:3:42: rules[0].retry.note: bad template",
        ),
        (
            "version: 1\nrules:\n  - {id: r, action: pass, when: {kind: [maybe]}}\n",
            "p.yaml:3:41: rules[0].when.kind[0]: unknown kind 'maybe'",
        ),
        (
            "version: 1\nrules:\n  - {id: r, action: pass, when: {user_message: '(?<=a)b'}}\n",
            "p.yaml:3:48: rules[0].when.user_message: invalid regex '(?<=a)b'",
        ),
        (
            "version: 1\ncontext: {trusted_headers: {X-Upper: user}}\n",
            "p.yaml:2:29: context.trusted_headers key: 'X-Upper' is not a lower-case HTTP header",
        ),
        (
            "version: 1\ncontext: {trusted_headers: {x-gw: admin}}\n",
            "p.yaml:2:35: context.trusted_headers.x-gw: unknown grant 'admin'",
        ),
    ],
)
def test_single_problems_are_positioned_precisely(text: str, want: str) -> None:
    """Each kind of mistake yields a message at the exact position of the mistake."""
    problems = _problems(text)
    assert any(p.startswith(want) for p in problems), problems
    _assert_inside(text, problems)


def test_missing_secret_env_is_a_start_up_error_by_default() -> None:
    """A signed header whose secret variable is unset fails loading, naming the variable."""
    text = "version: 1\ncontext:\n  signed_header: {secret_env: CTX_SECRET}\n"
    problems = _problems(text, environ={})
    assert problems == [
        "p.yaml:3:31: context.signed_header.secret_env: environment variable CTX_SECRET is not "
        "set (it holds the HMAC secret for signed context headers; set it, or set "
        "'if_secret_missing: disable')"
    ]


def test_missing_secret_env_can_disable_the_signal_with_a_warning() -> None:
    """With if_secret_missing: disable the policy loads, warns, and holds no secret."""
    text = (
        "version: 1\ncontext:\n  signed_header: {secret_env: CTX_SECRET, "
        "if_secret_missing: disable}\n"
    )
    policy = parse_policy(text, "p.yaml", environ={})
    assert policy.spec.signed_header is not None and policy.spec.signed_header.secret is None
    assert policy.warnings == (
        "p.yaml:3:31: environment variable CTX_SECRET is not set: signed "
        "context headers (x-guardrail-context) are ignored until it is",
    )


def test_short_secret_is_rejected() -> None:
    """A secret shorter than 16 bytes is refused at load."""
    problems = _problems(
        "version: 1\ncontext:\n  signed_header: {secret_env: S}\n", environ={"S": "short"}
    )
    assert problems[0].startswith(
        "p.yaml:3:31: context.signed_header.secret_env: the secret in S is 5 bytes"
    )


def test_a_rule_after_a_catch_all_rule_is_warned_about() -> None:
    """A rule no response can reach (after a catch-all for refusals) is a warning."""
    text = (
        "version: 1\nrules:\n  - {id: all, action: pass}\n  - {id: late, action: pass}\n"
        "  - {id: ok, action: block, when: {verdict: compliance}}\n"
    )
    policy = parse_policy(text, "p.yaml")
    assert policy.warnings == (
        "p.yaml:4:5: rules[1]: rule 'late' is never reached; rule 'all' "
        "(line 3) matches every refusal first",
    )


def test_load_policy_reports_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    """A missing file or a bad byte is a PolicyError with a position, not an OSError."""
    with pytest.raises(PolicyError) as err:
        load_policy(tmp_path / "nope.yaml")
    assert err.value.problems == [
        f"{tmp_path / 'nope.yaml'}:1:1: cannot read policy file: No such file or directory"
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"version: 1\nname: ok\n  # caf\xc3\x28\n")
    with pytest.raises(PolicyError) as err:
        load_policy(bad)
    assert err.value.problems == [f"{bad}:3:8: not valid UTF-8 (byte 0xc3)"]


def test_deep_alias_expansion_is_refused() -> None:
    """An alias bomb stops at a node limit with a positioned error instead of exhausting memory."""
    lines = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    problems = _problems("\n".join(lines) + "\n")
    assert any("expands to more than 100000 values" in p for p in problems), problems


def test_unicode_line_separators_do_not_shift_line_numbers() -> None:
    """U+2028/U+0085 inside a value do not count as lines: positions match editors and grep."""
    text = 'version: 1\ndescription: "a\u2028b\x85c"\nrules: 5\n'
    assert _problems(text) == ["p.yaml:3:8: rules: expected a list, got integer"]


# --- property-based: malformed input never crashes the loader --------------------------------

_KEYS = [
    "version",
    "name",
    "rules",
    "id",
    "when",
    "action",
    "retry",
    "note",
    "category",
    "verdict",
    "hard_floors",
    "user_message",
    "default",
    "context",
    "signed_header",
    "trusted_headers",
    "retry_budget",
    "per_minute",
    "burst",
    "shadow",
    "block",
    "status",
    "replace",
    "message",
    "scopes_any",
    "headers",
    "max_attempts",
    "zzz",
]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 1000),
    st.floats(allow_nan=True),
    st.sampled_from(
        [
            "pass",
            "retry",
            "block",
            "replace",
            "nsfw",
            "weapons",
            "(a+)+$",
            "(a)\\1",
            "{user}",
            "{x}",
            "x-gw",
            "compliance",
            "full_refusal",
            "1",
            "[",
            "*a",
        ]
    ),
    st.text(max_size=12),
)
_TREES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(_KEYS), children, max_size=5),
    ),
    max_leaves=25,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=st.dictionaries(st.sampled_from(_KEYS), _TREES, max_size=6))
def test_random_policy_shaped_documents_load_or_fail_inside_the_file(
    tree: dict[str, object],
) -> None:
    """Random key/value trees either load or raise PolicyError positioned inside the text."""
    text = yaml.safe_dump(tree, default_flow_style=False, allow_unicode=True)
    try:
        parse_policy(text, "p.yaml", environ=_SECRET_ENV)
    except PolicyError as exc:
        assert exc.problems
        _assert_inside(text, exc.problems)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_valid_policies_load_or_fail_inside_the_file(data: st.DataObject) -> None:
    """Deleting, inserting or replacing characters of a valid policy never escapes PolicyError."""
    text = _VALID
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        op = data.draw(st.sampled_from(["delete", "insert", "replace"]))
        piece = data.draw(
            st.sampled_from(
                [
                    ":",
                    "-",
                    " ",
                    "\n",
                    "'",
                    '"',
                    "{",
                    "}",
                    "[",
                    "]",
                    "&x",
                    "*x",
                    "\t",
                    "#",
                    "!!str",
                    "\\",
                    "\x00",
                    "é",
                ]
            )
        )
        cut = data.draw(st.integers(1, 8))
        if op == "delete":
            text = text[:at] + text[at + cut :]
        elif op == "insert":
            text = text[:at] + piece + text[at:]
        else:
            text = text[:at] + piece + text[at + cut :]
    try:
        parse_policy(text, "p.yaml", environ=_SECRET_ENV)
    except PolicyError as exc:
        assert exc.problems
        _assert_inside(text, exc.problems)


# --- JSON Schema ------------------------------------------------------------------------------


def test_checked_in_schema_matches_the_generated_one() -> None:
    """policies/policy.schema.json (for editors) is what `guardrail policy schema` prints."""
    on_disk = json.loads((bundled_policy_dir() / "policy.schema.json").read_text())
    assert on_disk == policy_json_schema()


def test_json_schema_accepts_bundled_policies_and_rejects_bad_ones() -> None:
    """The exported schema is valid draft 2020-12, accepts the bundled files, rejects mistakes."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = policy_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(bundled_policy_dir().glob("*.yaml")):
        assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == [], path
    assert not validator.is_valid(yaml.safe_load(_VALID.replace("action: replace", "action: zap")))
    assert not validator.is_valid({"version": 1, "rules": [{"id": "r", "action": "retry"}]})
    assert not validator.is_valid({"version": 1, "colour": "red"})
