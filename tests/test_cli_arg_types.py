"""The CLI's option value types: what each accepts, and the usage errors for the rest."""

from __future__ import annotations

import argparse
import math

import pytest

from guardrail.cli import main
from guardrail.cli._arg_types import int_at_least, number_between, port_number, positive_number


def test_int_at_least_accepts_the_bound_and_refuses_below_it_or_non_integers() -> None:
    """int_at_least(1) takes "1" and "12", and refuses "0", "-3", "1.5" and "x" by message."""
    parse = int_at_least(1)
    assert (parse("1"), parse("12")) == (1, 12)
    for text, message in (("0", "must be >= 1, got 0"), ("-3", "must be >= 1, got -3")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            parse(text)
    for text in ("1.5", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="expected an integer"):
            parse(text)


def test_number_between_is_inclusive_and_refuses_nan_and_infinity() -> None:
    """[0, 1] takes both ends; NaN, inf and values outside are refused with the range."""
    parse = number_between(0, 1)
    assert (parse("0"), parse("1"), parse("0.96")) == (0.0, 1.0, 0.96)
    for text in ("1.01", "-0.0001", "inf", "-inf"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"must be within \[0, 1\]"):
            parse(text)
    for text in ("nan", "NaN", "half"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected a number, got"):
            parse(text)


def test_positive_number_refuses_zero_negative_nan_and_infinity() -> None:
    """A timeout must be a finite number above zero; the unit words the message."""
    parse = positive_number(" of seconds")
    assert parse("0.5") == 0.5
    for text in ("0", "-1", "inf"):
        with pytest.raises(argparse.ArgumentTypeError, match="must be > 0"):
            parse(text)
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number of seconds"):
        parse("nan")
    assert math.isfinite(parse("1e9"))


def test_port_number_takes_zero_to_65535() -> None:
    """0 (any free port) through 65535 are ports; 65536 and words are not."""
    assert (port_number("0"), port_number("65535")) == (0, 65535)
    with pytest.raises(argparse.ArgumentTypeError, match="port must be 0-65535"):
        port_number("65536")
    with pytest.raises(argparse.ArgumentTypeError, match="expected a port number"):
        port_number("http")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["classify", "--threads", "0", "x"], "--threads: must be >= 1, got 0"),
        (["audit", "x.jsonl", "--limit", "0"], "--limit: must be >= 1, got 0"),
        (["audit", "x.jsonl", "--examples", "-1"], "--examples: must be >= 0, got -1"),
        (["demo", "--delay", "61"], "--delay: must be within [0, 60], got 61"),
        (
            ["serve", "--upstream", "http://x", "--policy", "p.yaml", "--read-timeout", "0"],
            "--read-timeout: must be > 0, got 0",
        ),
    ],
)
def test_commands_report_bad_values_as_usage_errors_naming_the_option(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each command's numeric options reject bad values in parsing (exit 2), option named."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
