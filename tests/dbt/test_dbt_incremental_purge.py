"""purge_withdrawn on the example's incremental model (ad_customer_features, delete+insert):
opt-outs, regrants, late-recorded events and expiring grants between runs, on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from dbt_harness import Backend, run_dbt, vars_arg
from example_expectations import expected_lineage, lineage_rows, reference_result

pytestmark = pytest.mark.slow


def _run(project: Path, backend: Backend, as_of: str) -> str:
    proc = run_dbt(
        project, ["run", "-s", "+ad_customer_features", *vars_arg(consentgate_as_of=as_of)], backend
    )
    return proc.stdout


def _p(backend: Backend) -> str:
    return "%s" if backend.name == "postgres" else "?"


def _consent(
    backend: Backend,
    subject: str,
    status: str,
    event_ts: str,
    recorded_at: str | None = None,
    expires_at: str | None = None,
) -> None:
    p = _p(backend)
    stamps = [datetime.fromisoformat(v) if v else None for v in (event_ts, recorded_at, expires_at)]
    backend.execute(
        f"insert into consent_events values ({p}, 'ad_targeting', {p}, {p}, {p}, {p}, 'test', 'v2')",
        [subject, status, *stamps],
    )


def _web_event(backend: Backend, event_id: int, customer_id: int, event_ts: str) -> None:
    p = _p(backend)
    backend.execute(
        f"insert into web_events values ({p}, {p}, null, '/new', {p})",
        [event_id, customer_id, datetime.fromisoformat(event_ts)],
    )


def _features(backend: Backend) -> dict[int, int]:
    return {
        int(c): int(n) for c, n in backend.query("select customer_id, page_views from ad_customer_features")
    }


def _watermark(backend: Backend) -> list[tuple]:
    return backend.query("select model, purpose, last_as_of from consentgate_purge_state")


def _consented(backend: Backend, as_of: str) -> set[int]:
    kept, _ = reference_result(backend, "stg_web_events", "customer_id", "ad_targeting", None, as_of)
    return {int(k) for k in kept}


def _check(backend: Backend, as_of: str, expected: set[int]) -> dict[int, int]:
    features = _features(backend)
    assert set(features) == expected
    assert set(features) <= _consented(backend, as_of)  # never a row of someone not consented at T
    assert _watermark(backend) == [("ad_customer_features", "ad_targeting", datetime.fromisoformat(as_of))]
    return features


def test_purge_follows_opt_outs_regrants_late_records_and_expiry(example_duckdb) -> None:
    project, backend = example_duckdb

    # First build: consented() filtered every row; the hook only records the watermark.
    out = _run(project, backend, "2026-01-10T00:00:00")
    assert "consentgate.purge_withdrawn" not in out
    _check(backend, "2026-01-10T00:00:00", {1, 7, 8})

    # Customer 7 opts out (no new web event of theirs); customer 8 has a new visit and renews the
    # grant for two days only (until 2026-01-13).
    _consent(backend, "7", "withdrawn", "2026-01-11T09:00:00")
    _web_event(backend, 100, 8, "2026-01-11T10:00:00")
    _consent(backend, "8", "granted", "2026-01-11T11:00:00", expires_at="2026-01-13T00:00:00")
    out = _run(project, backend, "2026-01-12T00:00:00")
    assert "(ad_targeting, changed since 2026-01-10 00:00:00.000000)" in out
    features = _check(backend, "2026-01-12T00:00:00", {1, 8})
    assert features[8] == 3  # the incremental batch itself still works

    # Next run: 7 opts in again and comes back with a new visit; 1's withdrawal of 2026-01-05 is only
    # recorded now (not known at the last run, so purged now although its event_ts is older); 8's
    # grant expired in between, with no new event at all.
    _consent(backend, "7", "granted", "2026-01-13T09:00:00")
    _web_event(backend, 101, 7, "2026-01-13T10:00:00")
    _consent(backend, "1", "withdrawn", "2026-01-05T00:00:00", recorded_at="2026-01-13T12:00:00")
    out = _run(project, backend, "2026-01-14T00:00:00")
    assert "(ad_targeting, changed since 2026-01-12 00:00:00.000000)" in out
    features = _check(backend, "2026-01-14T00:00:00", {7})
    assert features[7] == 2  # recomputed over all of 7's (consented) events

    # Without a watermark (state lost), the next incremental run purges the whole table once.
    backend.execute("delete from consentgate_purge_state")
    _consent(backend, "7", "denied", "2026-01-15T00:00:00")
    out = _run(project, backend, "2026-01-16T00:00:00")
    assert "(ad_targeting, full)" in out
    _check(backend, "2026-01-16T00:00:00", set())

    # A full refresh rebuilds from consented() and restarts the watermark.
    proc = run_dbt(
        project,
        [
            "run",
            "-s",
            "ad_customer_features",
            "--full-refresh",
            *vars_arg(consentgate_as_of="2026-01-17T00:00:00"),
        ],
        backend,
    )
    assert "consentgate.purge_withdrawn" not in proc.stdout
    _check(backend, "2026-01-17T00:00:00", _consented(backend, "2026-01-17T00:00:00"))
    assert _features(backend) == {6: 1}  # 6 became consented when its grant was recorded (2026-01-12)


@pytest.mark.postgres
def test_example_on_postgres_builds_logs_lineage_and_purges(example_postgres) -> None:
    project, backend = example_postgres
    run_dbt(
        project,
        ["build", *vars_arg(consentgate_as_of="2026-01-10T00:00:00", consentgate_run_id="pg-1")],
        backend,
    )
    assert {r[0] for r in backend.query("select customer_id from ad_audience")} == {1, 7, 8}
    assert {r[0] for r in backend.query("select email from email_audience")} == {
        "ann@example.com",
        "cara@example.com",
    }
    written = lineage_rows(backend, "pg-1")
    expected = expected_lineage(backend)
    # rows_in and excluded_* are the consented input's; rows_out is the rows in the model after the build
    # (docs/runs.md, "What the numbers mean").
    model_rows = {k: backend.query(f"select count(*) from {k[0].split('/')[0]}")[0][0] for k in expected}
    assert {k: v["counts"] for k, v in written.items()} == {
        k: {**v["counts"], "rows_out": model_rows[k]} for k, v in expected.items()
    }

    from example_expectations import engine_snapshot, run_row

    (run,) = run_row(backend, "pg-1")
    assert run["status"] == "success"
    assert (run["consent_fingerprint"], run["consent_events_counted"]) == engine_snapshot(backend)

    _consent(backend, "1", "withdrawn", "2026-01-11T00:00:00")
    out = _run(project, backend, "2026-01-12T00:00:00")
    assert "(ad_targeting, changed since 2026-01-10 00:00:00.000000): 1 row(s) deleted" in out
    _check(backend, "2026-01-12T00:00:00", {7, 8})
