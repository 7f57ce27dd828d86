"""US Privacy strings (`1YNN`) and Global Privacy Control header values (only exactly `1` is a signal)."""

from __future__ import annotations

import pytest
from consentgate.signals import SignalError, decode


def test_us_privacy_string_fields() -> None:
    decoded = decode("auto", "1YYN")
    assert decoded.kind == "uspv1"
    assert decoded.fields == {"Version": 1, "Notice": "Y", "OptOutSale": "Y", "LspaCovered": "N"}
    assert decoded.not_consent == ("opt_out_framework", "us_privacy_deprecated", "opted_out")


def test_not_opted_out_of_sale_is_still_not_consent() -> None:
    assert decode("uspv1", "1YNN").not_consent == ("opt_out_framework", "us_privacy_deprecated")


def test_not_applicable_string_and_missing_notice() -> None:
    assert decode("uspv1", "1---").fields["OptOutSale"] == "-"
    assert "notice_not_given" in decode("uspv1", "1NNN").not_consent


def test_lower_case_is_read_as_upper_case() -> None:
    assert decode("uspv1", "1ynn").fields["Notice"] == "Y"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1YN", r"3 characters; exactly 4"),
        ("1YNNN", r"5 characters; exactly 4"),
        ("2YNN", r"unknown version '2'"),
        ("1YXN", r"character 3 \(OptOutSale\) is 'X'; must be Y, N or -"),
        ("", r"0 characters"),
    ],
)
def test_malformed_us_privacy_strings_are_errors(text: str, match: str) -> None:
    with pytest.raises(SignalError, match=match):
        decode("uspv1", text)


@pytest.mark.parametrize("value", ["1", " 1", "1\t", " 1 "])
def test_gpc_exactly_one_is_an_opt_out_signal(value: str) -> None:
    decoded = decode("gpc", value)
    assert decoded.fields == {"Gpc": True}
    assert decoded.not_consent == ("opt_out_framework", "gpc_opt_out")


@pytest.mark.parametrize("value", ["0", "", "true", "yes", "1.0", "01", "11", "\u0661"])
def test_any_other_gpc_value_is_no_signal_and_never_consent(value: str) -> None:
    decoded = decode("gpc", value)
    assert decoded.fields == {"Gpc": False}
    assert decoded.not_consent == ("opt_out_framework",)


def test_auto_detects_gpc_one() -> None:
    assert decode("auto", "1").kind == "gpc"


def test_unknown_kind_and_undetectable_text_are_errors() -> None:
    with pytest.raises(SignalError, match=r"unknown signal kind 'tcf3'"):
        decode("tcf3", "CPc2")
    with pytest.raises(SignalError, match=r"cannot tell what kind of signal"):
        decode("auto", "hello")
