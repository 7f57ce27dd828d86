"""What the example project (dbt_project/integration_tests) should produce, computed with
tests/reference.py from the data actually in the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import reference
from dbt_harness import Backend

AS_OF = "2026-01-10T00:00:00"

# dataset -> the consented() calls in its SQL: (input model, subject column, purpose, normalize)
CALLS: dict[str, list[tuple[str, str, str, str | None]]] = {
    "ad_audience": [
        ("stg_customers", "customer_id", "ad_targeting", None),
        ("stg_web_events", "customer_id", "ad_targeting", None),
    ],
    "ad_lookalike_seed": [("stg_purchases", "customer_id", "ad_targeting", None)],
    "ad_customer_features": [("stg_web_events", "customer_id", "ad_targeting", None)],
    "email_audience": [("stg_email_engagement", "email", "email_marketing", "lower")],
}
COUNT_COLUMNS = ["rows_in", "rows_out", *[f"excluded_{reason}" for reason in reference.REASONS]]


def consent_log(backend: Backend) -> list[reference.Event]:
    rows = backend.query(
        "select subject_id, purpose, status, event_ts, recorded_at, expires_at from consent_events"
    )
    return [reference.Event(*row) for row in rows]


def reference_result(
    backend: Backend, table: str, column: str, purpose: str, normalize: str | None, as_of: str
) -> tuple[set[Any], dict[str, int]]:
    """(kept subjects, counts by reason) for consented(table, column, purpose) as of as_of."""
    subjects = [row[0] for row in backend.query(f"select {column} from {table}")]
    kept_ids, counts = reference.enforce(
        list(enumerate(subjects)), consent_log(backend), purpose, datetime.fromisoformat(as_of), normalize
    )
    kept = {subjects[i] for i in kept_ids}
    return kept, {
        "rows_in": len(subjects),
        "rows_out": len(kept_ids),
        **{f"excluded_{k}": v for k, v in counts.items()},
    }


def lineage_rows(
    backend: Backend, run_id: str, trigger: str = "dbt"
) -> dict[tuple[str, str], dict[str, Any]]:
    """{(dataset, source table name): row} for a run's lineage rows written by trigger."""
    p = "%s" if backend.name == "postgres" else "?"
    rows = backend.query(
        f"select dataset, source, target, purpose, subject_column, normalize, consent_fingerprint, "
        f"{', '.join(COUNT_COLUMNS)} "
        f"from consentgate_lineage where run_id = {p} and trigger = {p}",
        [run_id, trigger],
    )
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        source_name = row[1].split(".")[-1]
        key = (row[0], source_name)
        assert key not in found, f"duplicate lineage row for {key}"
        found[key] = {
            "target": row[2],
            "purpose": row[3],
            "subject_column": row[4],
            "normalize": row[5],
            "consent_fingerprint": row[6],
            "counts": dict(zip(COUNT_COLUMNS, (None if v is None else int(v) for v in row[7:]), strict=True)),
        }
    return found


def expected_lineage(backend: Backend, as_of: str = AS_OF) -> dict[tuple[str, str], dict[str, Any]]:
    expected = {}
    for dataset, calls in CALLS.items():
        for table, column, purpose, normalize in calls:
            _, counts = reference_result(backend, table, column, purpose, normalize, as_of)
            name = f"{dataset}/{table}" if len(calls) > 1 else dataset
            expected[(name, table)] = {
                "purpose": purpose,
                "subject_column": column,
                "normalize": normalize,
                "counts": counts,
            }
    return expected


def engine_snapshot(backend: Backend, as_of: str = AS_OF) -> tuple[str, int]:
    """(fingerprint, events counted) of the consent log as the Python engine computes them."""
    from consentgate.engine.enforcement import Enforcer
    from consentgate.engine.session import session_for

    with backend.connect() as con:
        session = session_for(con, backend.name)
        snap = Enforcer(
            session,
            consent_table=f"{backend.schema}.consent_events",
            as_of=datetime.fromisoformat(as_of),
            run_id="t",
        ).take_snapshot()
    return snap.fingerprint, snap.events_counted


def run_row(backend: Backend, run_id: str) -> list[dict[str, Any]]:
    p = "%s" if backend.name == "postgres" else "?"
    columns = [
        "run_id", "status", "as_of", "consent_table", "consent_fingerprint", "consent_events_counted", "trigger",
        "dag_id", "task_id", "airflow_run_id", "dbt_invocation_id", "package_version", "error",
        "started_at", "finished_at",
    ]  # fmt: skip
    rows = backend.query(f"select {', '.join(columns)} from consentgate_runs where run_id = {p}", [run_id])
    return [dict(zip(columns, row, strict=True)) for row in rows]
