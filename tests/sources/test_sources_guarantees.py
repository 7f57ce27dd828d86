"""What ingestion guarantees: idempotent, incremental, reproducible, fail closed, evidence without subject ids."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from consentgate.engine.enforcement import utcnow
from consentgate.errors import PolicyError
from consentgate.sources.errors import IngestError
from consentgate.sources.log import read_ingests

T0 = datetime(2026, 3, 1, 9, 0)
EVENTS_COLUMNS = (
    "subject_id varchar, purpose varchar, status varchar, event_ts timestamp, recorded_at timestamp"
)
BANNER = {"name": "banner", "kind": "events", "table": "raw.banner_events"}
GPC = {
    "name": "web_gpc", "kind": "gpc", "table": "raw.web_requests",
    "columns": {"subject": "customer_id", "signal": "sec_gpc", "event_ts": "requested_at", "recorded_at": "loaded_at"},
    "purposes": ["ad_targeting"],
}  # fmt: skip
REQUESTS_COLUMNS = "customer_id varchar, sec_gpc varchar, requested_at timestamp, loaded_at timestamp"


def banner(db, rows) -> None:
    db.table("raw.banner_events", EVENTS_COLUMNS, rows)


def test_ingesting_the_same_observations_twice_writes_nothing_the_second_time(db) -> None:
    banner(db, [(s, "ad_targeting", "granted", T0, T0) for s in "abc"])
    db.table(
        "raw.web_requests", REQUESTS_COLUMNS, [("b", "1", T0 + timedelta(hours=1), T0 + timedelta(hours=1))]
    )
    first = db.ingest(BANNER, GPC)
    log = db.log()
    second = db.ingest(BANNER, GPC)
    assert [r.events_written for r in first] == [3, 1]
    assert [r.events_written for r in second] == [0, 0]
    assert db.log() == log


def test_a_forgotten_watermark_still_writes_nothing_twice(db) -> None:
    """The event id is a hash of the source and the observation: even a full re-read writes nothing."""
    banner(db, [(s, "ad_targeting", "granted", T0, T0) for s in "abc"])
    db.ingest(BANNER)
    db.run("DELETE FROM consentgate_source_state")
    (again,) = db.ingest(BANNER)
    assert again.observations_read == 3 and again.events_written == 0


def test_each_ingest_reads_only_rows_from_the_watermark_on(db) -> None:
    """Rows at exactly the watermark are read again (their event ids keep them from being written twice),
    so a row committed late with the same timestamp is not missed; older rows are not read at all."""
    banner(db, [(f"s{i}", "ad_targeting", "granted", T0, T0 + timedelta(minutes=i)) for i in range(20)])
    (first,) = db.ingest(BANNER)
    later = T0 + timedelta(days=1)
    db.insert("raw.banner_events", [("s1", "ad_targeting", "withdrawn", later, later)])
    (second,) = db.ingest(BANNER)
    assert first.observations_read == 20 and first.watermark_to == T0 + timedelta(minutes=19)
    assert second.observations_read == 2 and second.events_written == 1
    assert second.watermark_from == T0 + timedelta(minutes=19) and second.watermark_to == later


def test_a_later_ingest_never_changes_what_an_earlier_run_decided(db) -> None:
    banner(db, [("a", "ad_targeting", "granted", T0, T0)])
    db.ingest(BANNER)
    cutoff = utcnow()
    assert db.kept(["a"], as_of=cutoff) == {"a"}
    db.table(
        "raw.web_requests", REQUESTS_COLUMNS, [("a", "1", T0 + timedelta(hours=1), T0 + timedelta(hours=1))]
    )
    db.ingest(GPC)  # the withdrawal happened before the cut-off, but was learned after it
    assert db.kept(["a"], as_of=cutoff) == {"a"}  # the earlier run reproduces
    assert db.kept(["a"]) == set()  # the next run removes the subject's rows
    recorded = db.rows("SELECT min(recorded_at) FROM consent_events WHERE status = 'withdrawn'")[0][0]
    assert recorded > cutoff


def test_a_row_without_a_usable_subject_writes_nothing_and_is_counted(db) -> None:
    banner(db, [(None, "ad_targeting", "granted", T0, T0), ("   ", "ad_targeting", "granted", T0, T0),
                ("a", "ad_targeting", "granted", None, T0)])  # fmt: skip
    (rec,) = db.ingest(BANNER)
    assert rec.events_written == 0 and rec.rejected == {"missing_subject": 2, "missing_event_ts": 1}
    assert db.log() == []


def test_a_source_that_disappears_stops_the_ingest_before_anything_is_written(db) -> None:
    banner(db, [("a", "ad_targeting", "granted", T0, T0)])
    db.table("raw.web_requests", REQUESTS_COLUMNS, [])
    db.ingest(BANNER, GPC)
    db.insert(
        "raw.banner_events",
        [("a", "ad_targeting", "withdrawn", T0 + timedelta(days=1), T0 + timedelta(days=1))],
    )
    db.run("DROP TABLE raw.web_requests")
    with pytest.raises(IngestError, match=r"consent source web_gpc: table 'raw.web_requests' does not exist"):
        db.ingest(BANNER, GPC)
    assert [r[2] for r in db.log()] == ["granted"]  # banner was not ingested either
    failed = read_ingests(db.session, "web_gpc")[0]
    assert failed["status"] == "failed" and "does not exist" in failed["error"]


def test_a_missing_column_is_a_one_line_error_naming_it(db) -> None:
    db.table("raw.web_requests", "customer_id varchar, requested_at timestamp, loaded_at timestamp", [])
    with pytest.raises(
        IngestError, match=r"has no column 'sec_gpc' for signal .*map it under sources\[\]\.columns"
    ):
        db.ingest(GPC)


def test_a_failure_after_the_append_leaves_log_watermark_and_state_as_they_were(db, monkeypatch) -> None:
    from consentgate.sources import ingest as ingest_module

    banner(db, [("a", "ad_targeting", "granted", T0, T0)])
    db.ingest(BANNER)
    state = "SELECT * FROM consentgate_source_state"
    before = (db.log(), db.rows(state), db.rows("SELECT * FROM consentgate_source_latest"))
    later = T0 + timedelta(days=1)
    db.insert("raw.banner_events", [("a", "ad_targeting", "withdrawn", later, later)])

    def broken(self, *args: object) -> None:  # fails after the events were appended, inside the transaction
        raise OSError("disk full")

    monkeypatch.setattr(ingest_module._Pipeline, "store_latest", broken)
    with pytest.raises(OSError):
        db.ingest(BANNER)
    assert (db.log(), db.rows(state), db.rows("SELECT * FROM consentgate_source_latest")) == before
    failed = read_ingests(db.session, "banner")[0]
    assert (
        failed["status"] == "failed"
        and failed["events_written"] == 0
        and failed["error"].startswith("OSError")
    )
    monkeypatch.undo()
    (retry,) = db.ingest(BANNER)
    assert retry.events_written == 1 and db.kept(["a"]) == set()


def test_ingest_evidence_has_counts_and_no_subject_identifier(db) -> None:
    banner(
        db,
        [("ann@example.com", "ad_targeting", "granted", T0, T0), (None, "ad_targeting", "granted", T0, T0)],
    )
    db.ingest(BANNER)
    (record,) = read_ingests(db.session)
    assert record["source"] == "banner" and record["observations_read"] == 2 and record["events_written"] == 1
    assert record["rejected"] == {"missing_subject": 1} and record["watermark_to"] == T0
    everything = json.dumps(
        db.rows("SELECT * FROM consentgate_ingests") + db.rows("SELECT * FROM consentgate_source_state"),
        default=str,
    )
    assert "ann@example.com" not in everything


def test_the_log_must_be_in_consentgates_own_shape(db) -> None:
    from consentgate.rule.semantics import ConsentColumns

    banner(db, [("a", "ad_targeting", "granted", T0, T0)])
    with pytest.raises(
        IngestError, match=r"mapped column names .*ingestion writes only a log in consentgate's own shape"
    ):
        db.ingest(BANNER, columns=ConsentColumns(subject_id="customer_ref"))
    db.run("CREATE TABLE other_log (subject_id bigint, purpose varchar, status varchar, event_ts timestamp, "
           "recorded_at timestamp, expires_at timestamp, source varchar, policy_version varchar)")  # fmt: skip
    with pytest.raises(IngestError, match=r"column 'subject_id' \(type .*\) is not varchar"):
        db.ingest(BANNER, consent_table="other_log")
    db.run("CREATE TABLE no_status_log (subject_id varchar, purpose varchar, event_ts timestamp, "
           "recorded_at timestamp, expires_at timestamp, source varchar, policy_version varchar)")  # fmt: skip
    with pytest.raises(
        IngestError, match=r"consent table 'no_status_log' has no column 'status' \(columns: subject_id, "
    ):
        db.ingest(BANNER, consent_table="no_status_log")


def test_an_existing_log_gains_an_event_id_and_keeps_its_events(db) -> None:
    db.run("CREATE TABLE consent_events (subject_id varchar, purpose varchar, status varchar, event_ts timestamp, "
           "recorded_at timestamp, expires_at timestamp, source varchar, policy_version varchar)")  # fmt: skip
    db.insert("consent_events", [("a", "ad_targeting", "granted", T0, T0, None, "support", None)])
    banner(db, [("a", "ad_targeting", "withdrawn", T0 + timedelta(hours=1), T0 + timedelta(hours=1))])
    db.ingest(BANNER)
    assert [r[2] for r in db.log()] == ["granted", "withdrawn"]
    assert db.kept(["a"]) == set()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"name": "x", "kind": "cookies", "table": "t"}, r"sources\[0\]\.kind: unknown kind 'cookies'"),
        ({"name": "x", "kind": "gpc", "table": "t", "columns": {"subject": "s", "event_ts": "e"}, "purposes": ["ad_targeting"]},
         r"sources\[0\]\.columns\.signal: required for kind gpc"),
        ({"name": "x", "kind": "gpc", "table": "t", "columns": {"subject": "s", "signal": "g", "event_ts": "e"},
          "purposes": ["profiling"]}, r"sources\[0\]\.purposes\[0\]: purpose 'profiling' is not declared"),
        ({"name": "x", "kind": "gpc", "table": "t; drop", "purposes": ["ad_targeting"]}, r"sources\[0\]\.table: .*not a plain"),
        ({"name": "x", "kind": "consent_mode", "table": "t", "columns": {"subject": "s", "event_ts": "e"},
          "purposes": {"ad_clicks": "ad_targeting"}}, r"sources\[0\]\.purposes\.ad_clicks: not a Consent Mode v2"),
        ({"name": "x", "kind": "tcf", "table": "t", "columns": {"subject": "s", "signal": "g", "event_ts": "e"},
          "purposes": {"ad_targeting": {"vendors": [755]}}}, r"tcf_purposes: required"),
        ({"name": "x", "kind": "tcf", "table": "t", "columns": {"subject": "s", "signal": "g", "event_ts": "e"},
          "purposes": {"ad_targeting": {"tcf_purposes": [25]}}}, r"tcf_purposes: expected a list of whole numbers 1-24"),
        ({"name": "x", "kind": "fides", "table": "t", "purposes": {"k": "ad_targeting"}}, r"columns\.subject: required"),
        ({"name": "x", "kind": "gpc", "table": "t", "colums": {}}, r"sources\[0\]\.colums: unknown field"),
    ],
)  # fmt: skip
def test_a_bad_source_declaration_is_a_one_line_error_naming_the_field(duck, source, message) -> None:
    with pytest.raises(PolicyError, match=message) as err:
        duck.sources(source)
    assert "\n" not in str(err.value) and str(err.value).startswith("test policy: ")


def test_two_sources_with_one_name_are_refused(duck) -> None:
    with pytest.raises(PolicyError, match=r"sources\[1\]\.name: source 'banner' is declared twice"):
        duck.sources(BANNER, BANNER)


def test_a_grant_with_an_expiry_is_kept_and_expires_as_the_rule_says(db) -> None:
    db.run("CREATE SCHEMA raw")
    db.run("CREATE TABLE raw.banner_events (subject_id varchar, purpose varchar, status varchar, event_ts timestamp, "
           "recorded_at timestamp, expires_at timestamp)")  # fmt: skip
    later = utcnow().replace(microsecond=0) + timedelta(days=365)
    db.insert("raw.banner_events", [("a", "ad_targeting", "granted", T0, T0, later),
                                    ("b", "ad_targeting", "granted", T0, T0, T0 + timedelta(days=1))])  # fmt: skip
    db.ingest(BANNER)
    assert db.rows("SELECT subject_id, expires_at FROM consent_events ORDER BY 1") == [
        ("a", later), ("b", T0 + timedelta(days=1)),
    ]  # fmt: skip
    assert db.kept(["a", "b"]) == {"a"}  # b's grant expired before the ingest learned it


def test_time_zones_and_integer_subjects_are_read_as_the_rule_compares_them(db) -> None:
    tz = "timestamptz" if db.engine == "postgres" else "timestamp with time zone"
    db.table(
        "raw.web_requests", f"customer_id bigint, sec_gpc varchar, requested_at {tz}, loaded_at {tz}", []
    )
    db.run(
        "INSERT INTO raw.web_requests VALUES (42, '1', '2026-03-01 10:00:00+02:00', '2026-03-01 10:00:00+02:00')"
    )
    db.ingest(GPC)
    assert db.rows("SELECT subject_id, event_ts FROM consent_events") == [("42", datetime(2026, 3, 1, 8, 0))]


def test_subjects_with_quotes_commas_line_breaks_and_backslashes_are_staged_exactly(db) -> None:
    odd = ['x"y,z', "line\nbreak", "\\N", "ünï 漢字", "tab\there", "a\\", '""']
    banner(db, [(s, "ad_targeting", "granted", T0, T0) for s in odd])
    (rec,) = db.ingest(BANNER)
    assert rec.events_written == len(odd)
    assert sorted(r[0] for r in db.log()) == sorted(odd)
    assert db.kept(odd) == set(odd)
