"""Test data on the Spark cluster: many small scenarios loaded in two writes, one view pair each.

Every statement on a cluster costs a job (a fraction of a second to seconds), so the scenarios of a
test are written together into two tables (consent events and dataset rows, with a scenario number),
and each scenario is read through two views of its own, typed as the scenario asks (BIGINT, STRING or
STRING COLLATE UTF8_LCASE, Spark's case-insensitive collation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentgate.engine import spark
from consentgate.engine.enforcement import Enforcer
from consentgate.engine.session import Session
from consentgate.rule import semantics
from consentgate.rule.names import TableName
from reference import Event

SQL_TYPES = {"text": "STRING", "integer": "BIGINT", "text_ci": "STRING COLLATE UTF8_LCASE"}


@dataclass(frozen=True)
class Scenario:
    events: Sequence[Event]
    rows: Sequence[tuple[int, Any]]
    subject_type: str = "text"  # text | integer | text_ci
    consent_subject_type: str = "text"
    text_type: str = "text"  # of purpose and status


def _text(v: Any) -> str | None:
    return None if v is None else str(v)


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _records(scenarios: Sequence[Scenario]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows of the two tables: (scenario, subject_text, subject_int, purpose, status, event_ts,
    recorded_at, expires_at) and (scenario, row_id, subject_text, subject_int)."""
    events = [
        (i, _text(e.subject_id), _int(e.subject_id), e.purpose, e.status, e.event_ts, e.recorded_at, e.expires_at)
        for i, s in enumerate(scenarios)
        for e in s.events
    ]  # fmt: skip
    rows = [(i, row_id, _text(subject), _int(subject)) for i, s in enumerate(scenarios) for row_id, subject in s.rows]  # fmt: skip
    return events, rows


def load(spark: Any, scenarios: Sequence[Scenario], prefix: str = "s") -> list[tuple[str, str]]:
    """Write the scenarios; returns (consent view, dataset view) per scenario, in order."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

    events, rows = _records(scenarios)
    ev_schema = StructType(
        [StructField("scenario", LongType()), StructField("subject_text", StringType()),
         StructField("subject_int", LongType()), StructField("purpose", StringType()),
         StructField("status", StringType()), StructField("event_ts", TimestampType()),
         StructField("recorded_at", TimestampType()), StructField("expires_at", TimestampType())]
    )  # fmt: skip
    row_schema = StructType(
        [StructField("scenario", LongType()), StructField("row_id", LongType()),
         StructField("subject_text", StringType()), StructField("subject_int", LongType())]
    )  # fmt: skip
    # Naive datetimes are UTC here: pyspark would read them in the client's zone.
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    events = [tuple(_utc(v) for v in e) for e in events]
    spark.createDataFrame(events, ev_schema).write.mode("overwrite").saveAsTable(f"{prefix}_all_events")
    spark.createDataFrame(rows, row_schema).write.mode("overwrite").saveAsTable(f"{prefix}_all_rows")
    return _views(spark.sql, scenarios, prefix)


def load_sql(
    execute: Callable[..., Any], scenarios: Sequence[Scenario], prefix: str = "s"
) -> list[tuple[str, str]]:
    """`load` in SQL alone (for Spark's Thrift server): `execute(sql, params)` runs one statement with
    `?` parameters; the rows go in as the parameters of one INSERT per table."""
    events, rows = _records(scenarios)
    for table, columns, values in (
        (f"{prefix}_all_events", "scenario BIGINT, subject_text STRING, subject_int BIGINT, purpose STRING, "
         "status STRING, event_ts TIMESTAMP, recorded_at TIMESTAMP, expires_at TIMESTAMP", events),
        (f"{prefix}_all_rows", "scenario BIGINT, row_id BIGINT, subject_text STRING, subject_int BIGINT", rows),
    ):  # fmt: skip
        execute(f"DROP TABLE IF EXISTS {table}")
        execute(f"CREATE TABLE {table} ({columns}) USING parquet")
        if values:
            marks = ", ".join(f"({', '.join(['?'] * len(values[0]))})" for _ in values)
            execute(f"INSERT INTO {table} VALUES {marks}", [v for row in values for v in row])
    return _views(execute, scenarios, prefix)


def _views(execute: Callable[..., Any], scenarios: Sequence[Scenario], prefix: str) -> list[tuple[str, str]]:
    """Two views per scenario over the tables `load` wrote, typed as the scenario asks."""
    names = []
    for i, s in enumerate(scenarios):
        consent, dataset = f"{prefix}{i}_consent", f"{prefix}{i}_rows"
        text = SQL_TYPES[s.text_type]
        subject = "subject_int" if s.consent_subject_type == "integer" else "subject_text"
        execute(
            f"CREATE OR REPLACE VIEW {consent} AS SELECT CAST({subject} AS {SQL_TYPES[s.consent_subject_type]}) "
            f"AS subject_id, CAST(purpose AS {text}) AS purpose, CAST(status AS {text}) AS status, event_ts, "
            f"recorded_at, expires_at FROM {prefix}_all_events WHERE scenario = {i}"
        )
        subject = "subject_int" if s.subject_type == "integer" else "subject_text"
        execute(
            f"CREATE OR REPLACE VIEW {dataset} AS SELECT row_id, CAST({subject} AS {SQL_TYPES[s.subject_type]}) "
            f"AS subject FROM {prefix}_all_rows WHERE scenario = {i}"
        )
        names.append((consent, dataset))
    return names


def _utc(v: Any) -> Any:
    from datetime import UTC

    return v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v


def decide(
    session: Session, consent: str, dataset: str, purpose: str, as_of: datetime, normalize: str | None
) -> tuple[list[int], dict[str, int], int]:
    """The engine's decision on Spark for one scenario: (kept row ids, excluded by reason, rows_in).
    Writes no table: the snapshot, decision and keys are the engine's scratch tables, and the kept rows
    are the engine's own consented select. counts() (one statement, as audits count) must agree with
    the counts of the key table enforce() builds."""
    enforcer = Enforcer(session, consent_table=consent, as_of=as_of, run_id="cases")
    enforcer.take_snapshot([purpose])
    source = TableName(None, dataset)
    rows_in, rows_out, excluded = enforcer.counts(source, "subject", purpose, normalize)  # one statement
    # enforce()'s path: the decisions and the key table as scratch tables, counted from the key table.
    enforcer._decide(purpose, normalize)  # noqa: SLF001
    _check_observed_snapshot(session, enforcer, normalize)
    enforcer._key_table(source, "subject", normalize)  # noqa: SLF001
    assert enforcer._counted()[:3] == (rows_in, rows_out, excluded), "the key table's counts differ"  # noqa: SLF001
    kept, broadcast = (
        sorted(
            int(r[0])
            for r in session.all(
                f"SELECT row_id FROM ({enforcer._consented_sql(source, 'subject', broadcast=b)}) AS k"  # noqa: SLF001
            )
        )
        for b in (False, True)
    )
    assert broadcast == kept, "the broadcast semi-join keeps other rows than the IN form"
    assert rows_out == len(kept)
    # The path of small decisions (enforce(): no key table, rows matched to the decisions directly), as
    # enforce() takes it here: on a SparkSession observed while the rows are read (write_observed writes
    # these rows; collected here, as a parquet write per case costs more), over the Thrift server counted
    # in one statement and selected in another. Each runs every case of the shared file.
    subject = enforcer._subject_value(source, "subject")  # noqa: SLF001
    if spark.observes(session):
        observed = semantics.observed_decisions(enforcer.d, subject, normalize)
        observation = spark.new_observation(session.connection.spark)
        frame = spark.observed_rows(session.connection.spark, source.sql(), observed, observation)
        assert sorted(int(r["row_id"]) for r in frame.select("row_id").collect()) == kept
        counts = spark.observed_counts(observation, observed)
        assert counts == [rows_in, rows_out, *excluded.values()], "observed counts differ"
    else:
        rows = semantics.decided_rows(enforcer.d, source.sql(), subject, normalize)
        assert enforcer._counted(relation=rows)[:3] == (rows_in, rows_out, excluded), (
            "row-by-row counts differ"
        )  # noqa: SLF001
        direct = semantics.decided_consented_select(enforcer.d, source.sql(), subject, normalize)
        assert sorted(int(r[0]) for r in session.all(f"SELECT row_id FROM ({direct}) AS k")) == kept
    return kept, excluded, rows_in


def _check_observed_snapshot(session: Session, enforcer: Enforcer, normalize: str | None) -> None:
    """On a SparkSession take_snapshot observes the fingerprint and the decisions' size while it writes
    the snapshot: they must be what the queries over the written snapshot and decisions give."""
    fingerprint, counted, _old = session.one(semantics.fingerprint_select(enforcer.d))
    snap = enforcer.snapshot
    assert snap is not None
    assert (snap.fingerprint, snap.events_counted) == (f"{int(fingerprint):016x}", int(counted))
    n, size = (int(v) for v in session.one(semantics.decided_size_select(enforcer.d)))
    observed = enforcer._decided_sizes.get(0)  # noqa: SLF001 - the one purpose decided
    if not spark.observes(session):
        assert observed is None  # the Thrift server: queried, never observed
    elif normalize is None:
        assert observed == (n, size)
    else:  # keys grouped by their lowered form: the same whether-any, at most the observed bytes
        assert observed is not None
        assert (observed[0] > 0, observed[1] >= size) == (n > 0, True), (observed, n, size)
