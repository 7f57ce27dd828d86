"""ConsentAuditOperator against a deliberately contaminated table: it fails, without retry, naming how many
rows violate consent for each reason and never which subjects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cg_airflow import (
    AS_OF,
    IDENTIFIERS,
    LOGICAL_DATE,
    duckdb_conn,
    events,
    openlineage_events,
    read,
    run_dag,
    seed,
    task_states,
    try_numbers,
)
from reference import enforce as reference_enforce


@pytest.fixture
def contaminated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 'consented' table that is really a copy of the raw customers: every kind of violation."""
    import duckdb

    path = tmp_path / "contaminated.duckdb"
    con = duckdb.connect(str(path))
    seed(con)
    con.execute("CREATE SCHEMA consented")
    con.execute("CREATE TABLE consented.leaky AS SELECT * FROM raw.customers")
    con.close()
    monkeypatch.setenv("AIRFLOW_CONN_CG_AUDIT", duckdb_conn(path))
    return path


def expected_violations(path: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(path))
    try:
        rows = read(con, "SELECT customer_id, customer_id FROM consented.leaky")
        _kept, counts = reference_enforce(rows, events(con), "ad_targeting", AS_OF)
    finally:
        con.close()
    return counts


def test_audit_counts_violations_per_reason(contaminated: Path) -> None:
    from consentgate.airflow.hooks import open_warehouse
    from consentgate.airflow.tasks import audit_table, check_audit
    from consentgate.engine.enforcement import RunContext
    from consentgate.errors import ConsentViolationError
    from consentgate.rule.semantics import ConsentColumns

    counts = expected_violations(contaminated)
    assert all(counts.values()), counts  # every reason is represented
    with open_warehouse("cg_audit") as wh:
        summary = audit_table(
            wh.session,
            table="consented.leaky",
            subject_column="customer_id",
            purpose="ad_targeting",
            normalize=None,
            consent_table="consent_events",
            columns=ConsentColumns(),
            as_of=AS_OF,
            run_id="audit-test",
            context=RunContext(trigger="airflow"),
        )
        # read-only: nothing was written, not even the evidence tables
        assert (
            wh.session.all(
                "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'consentgate%'"
            )
            == []
        )
    assert summary["violations"] == counts
    assert summary["passed"] is False
    expected = ", ".join(f"{reason}={n}" for reason, n in counts.items() if n)
    with pytest.raises(
        ConsentViolationError, match=rf"holds {sum(counts.values())} row\(s\) .*: {expected} "
    ):
        check_audit(summary)


def test_audit_operator_fails_the_task_without_retry_and_names_no_subject(
    airflow_db, contaminated: Path
) -> None:
    from airflow.sdk import DAG
    from consentgate.airflow.operators import ConsentAuditOperator

    with DAG(
        "cg_audit_contaminated", schedule=None, start_date=LOGICAL_DATE, default_args={"retries": 3}
    ) as dag:
        ConsentAuditOperator(
            task_id="audit_leaky",
            table="consented.leaky",
            subject_column="customer_id",
            purpose="ad_targeting",
            conn_id="cg_audit",
        )
    dag_run = run_dag(dag, LOGICAL_DATE)
    assert task_states(dag_run) == {"audit_leaky": "failed"}
    assert try_numbers(dag_run) == {"audit_leaky": 1}
    counts = expected_violations(contaminated)
    # The FAIL OpenLineage event carries the audit facet with the same counts.
    fails = [
        e
        for e in openlineage_events()
        if e["eventType"] == "FAIL" and e["job"]["name"] == "cg_audit_contaminated.audit_leaky"
    ]
    assert fails, "no OpenLineage FAIL event for the audit"
    facet = fails[-1]["run"]["facets"]["consentAudit"]
    assert facet["passed"] is False
    assert facet["violations"] == counts
    assert facet["rows_checked"] == 13
    error = fails[-1]["run"]["facets"]["errorMessage"]["message"]
    print("audit failure as Airflow reports it:", error)
    assert "table 'consented.leaky' holds 9 row(s) whose subject is not consented for 'ad_targeting'" in error
    for reason, n in counts.items():
        assert f"{reason}={n}" in error
    blob = json.dumps(fails[-1])
    assert not any(ident.lower() in blob.lower() for ident in IDENTIFIERS)
