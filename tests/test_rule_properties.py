"""Property-based: the SQL engine keeps exactly the rows, and counts exactly the reasons, of the reference."""

from __future__ import annotations

from datetime import datetime, timedelta

import consentgate
import duckdb
from cases_loader import create_tables
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import Event
from reference import enforce as reference_enforce

T = datetime(2026, 6, 1, 2, 0, 0)
# A handful of instants around T, so ties, "at T" and "after T" happen often.
INSTANTS = [T + timedelta(days=d) for d in (-30, -2, -1, 0, 1)] + [T - timedelta(microseconds=1)]
TEXT_KEYS = [
    "a", "A", " a ", "b", "42", " 42", "042", "", "  ", "Ann@X.com", "ann@x.com", "ANN@X.COM ",
    "\ta", "\u00a0a", "a\u3000", "\u00a0",  # only U+0020 is trimmed (rule 3)
]
INT_KEYS = [1, 2, 42, 7]
PURPOSES = ["ads", " ADS", "Ads ", "mail", "ads\t", "\u00a0ads", None]
STATUSES = ["granted", " GRANTED ", "Granted", "granted\u00a0", "denied", "withdrawn", "WITHDRAWN", "pending", "", None]

maybe_instant = st.one_of(st.none(), st.sampled_from(INSTANTS))


def events(keys: st.SearchStrategy) -> st.SearchStrategy[list[Event]]:
    event = st.builds(
        Event,
        subject_id=st.one_of(st.none(), keys),
        purpose=st.sampled_from(PURPOSES),
        status=st.sampled_from(STATUSES),
        event_ts=st.one_of(st.sampled_from(INSTANTS), st.none()),
        recorded_at=maybe_instant,
        expires_at=maybe_instant,
    )
    return st.lists(event, max_size=25)


@st.composite
def scenario(draw: st.DrawFn):
    shape = draw(st.sampled_from(["text/text", "int/text", "text/int"]))
    dataset_type, consent_type = shape.split("/")
    dataset_keys = st.sampled_from(INT_KEYS) if dataset_type == "int" else st.sampled_from(TEXT_KEYS)
    consent_keys = (
        st.sampled_from(INT_KEYS)
        if consent_type == "int"
        else st.sampled_from(TEXT_KEYS + [str(k) for k in INT_KEYS] + [f" {k} " for k in INT_KEYS])
    )
    subjects = draw(st.lists(st.one_of(st.none(), dataset_keys), max_size=20))
    rows = list(enumerate(subjects, start=1))
    return {
        "dataset_type": "integer" if dataset_type == "int" else "text",
        "consent_type": "integer" if consent_type == "int" else "text",
        "events": draw(events(consent_keys)),
        "rows": rows,
        "purpose": draw(st.sampled_from(["ads", " ADS ", "mail"])),
        "normalize": draw(st.sampled_from([None, "lower"])),
        "as_of": draw(st.sampled_from([T, T + timedelta(days=1)])),
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_engine_matches_reference(s) -> None:
    con = duckdb.connect(":memory:")
    create_tables(con, "duckdb", s["events"], s["rows"], s["dataset_type"], s["consent_type"])
    result = consentgate.enforce(
        source="dataset",
        target="out",
        subject_column="subject",
        purpose=s["purpose"],
        as_of=s["as_of"],
        normalize=s["normalize"],
        connection=con,
    )
    kept = sorted(r[0] for r in con.execute("SELECT row_id FROM out").fetchall())
    ref_kept, ref_counts = reference_enforce(s["rows"], s["events"], s["purpose"], s["as_of"], s["normalize"])
    assert kept == sorted(ref_kept)
    assert result.excluded == ref_counts
    assert result.rows_in == result.rows_out + sum(result.excluded.values())
