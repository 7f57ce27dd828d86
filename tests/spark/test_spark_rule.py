"""The decision rule on the real Spark cluster: the shared case file and the reference, ANSI on and off."""

from __future__ import annotations

from datetime import datetime

import pytest
from cases_loader import load_cases
from consentgate.engine.session import session_for
from consentgate.engine.spark import to_spark_sql
from consentgate.rule import semantics
from consentgate.rule.dialects import SPARK
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import Event
from reference import enforce as reference_enforce
from spark_data import Scenario, decide, load
from test_rule_cases import expected
from test_rule_properties import scenario

CASES = load_cases()


def test_double_quoted_identifiers_become_backquoted_and_literals_stay() -> None:
    sql = """SELECT "a"."b", 'it''s "x"', 'back\\'s "y"', "we""ird" FROM "t" WHERE c = '"'"""
    assert (
        to_spark_sql(sql)
        == """SELECT `a`.`b`, 'it''s "x"', 'back\\'s "y"', `we"ird` FROM `t` WHERE c = '"'"""
    )


@pytest.mark.spark
@pytest.mark.parametrize("ansi", ["false"])
def test_shared_decision_cases_on_spark(spark_session, ansi: str) -> None:
    """Every case of tests/cases/decision_cases.yaml with ANSI mode off (as dbt-spark sets it): the same
    kept rows and the same counts per reason as the case file says. With ANSI on (Spark's default) the
    whole file runs on the Thrift server (test_spark_thrift.py), the same SQL through the same engine
    class, and the property test below draws both modes over Spark Connect."""
    spark_session.conf.set("spark.sql.ansi.enabled", ansi)
    names = load(
        spark_session,
        [Scenario(c.events, c.rows, c.subject_type, c.consent_subject_type) for c in CASES],
        prefix=f"c{ansi[0]}",
    )
    session = session_for(spark_session)
    failures = []
    for case, (consent, dataset) in zip(CASES, names, strict=True):
        kept, excluded, rows_in = decide(session, consent, dataset, case.purpose, case.as_of, case.normalize)
        if (kept, excluded) != expected(case) or rows_in != len(case.rows):
            failures.append(f"{case.name}: kept {kept}, excluded {excluded}; expected {expected(case)}")
    assert not failures, "\n".join(failures)


@st.composite
def spark_scenarios(draw: st.DrawFn):
    """Several scenarios of test_rule_properties (the same generator) per cluster round trip, plus the
    Spark-only column kinds: a case-insensitive collation on keys, purposes and statuses."""
    out = []
    for s in draw(st.lists(scenario(), min_size=4, max_size=4)):
        ci = draw(st.sampled_from(["text", "text_ci"]))
        out.append(
            (
                Scenario(
                    s["events"], s["rows"],
                    ci if s["dataset_type"] == "text" else "integer",
                    draw(st.sampled_from(["text", "text_ci"])) if s["consent_type"] == "text" else "integer",
                    draw(st.sampled_from(["text", "text_ci"])),
                ),
                s,
            )
        )  # fmt: skip
    return out, draw(st.sampled_from(["true", "false"]))


@pytest.mark.spark
@pytest.mark.slow
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(drawn=spark_scenarios())
def test_engine_on_spark_matches_reference(spark_session, drawn) -> None:
    """The engine's decision on Spark equals the reference's, scenario by scenario (4 per example)."""
    scenarios, ansi = drawn
    spark_session.conf.set("spark.sql.ansi.enabled", ansi)
    names = load(spark_session, [sc for sc, _s in scenarios], prefix="p")
    session = session_for(spark_session)
    for (sc, s), (consent, dataset) in zip(scenarios, names, strict=True):
        kept, excluded, rows_in = decide(session, consent, dataset, s["purpose"], s["as_of"], s["normalize"])
        ref_kept, ref_counts = reference_enforce(
            s["rows"], s["events"], s["purpose"], s["as_of"], s["normalize"]
        )
        assert (kept, excluded) == (sorted(ref_kept), ref_counts), (sc, s["purpose"], s["normalize"], ansi)
        assert rows_in == len(s["rows"])


T = datetime(2026, 6, 1)


def _fingerprint(session, consent: str) -> str:
    session.scratch(
        semantics.scratch(SPARK, semantics.SNAPSHOT),
        semantics.snapshot_select(
            SPARK, consent, semantics.ConsentColumns(),
            {"subject_id": "string", "event_ts": "timestamp", "recorded_at": "timestamp", "expires_at": "timestamp"},
        ),
        [T],
    )  # fmt: skip
    return str(session.one(semantics.fingerprint_select(SPARK))[0])


@pytest.mark.spark
def test_fingerprint_tells_where_a_null_is(spark_session) -> None:
    """xxhash64 skips null arguments: (expires_at null, recorded_at set) and the reverse must still
    fingerprint differently, and a log's fingerprint does not depend on row order."""
    a = datetime(2026, 1, 1)
    logs = [
        [Event("s", "ads", "granted", a, a, None)],
        [Event("s", "ads", "granted", a, None, a)],
        [Event("s", "ads", "granted", a, None, None), Event("t", "ads", "denied", a, None, None)],
        [Event("t", "ads", "denied", a, None, None), Event("s", "ads", "granted", a, None, None)],
    ]
    names = load(spark_session, [Scenario(e, []) for e in logs], prefix="f")
    session = session_for(spark_session)
    prints = [_fingerprint(session, consent) for consent, _rows in names]
    assert prints[0] != prints[1]
    assert prints[2] == prints[3]
