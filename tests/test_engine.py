"""The engine on real DuckDB files: atomic targets, every bad input, lineage, fingerprints."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import consentgate
import duckdb
import pytest
from cases_loader import create_tables
from consentgate import errors
from consentgate.engine import lineage
from consentgate.engine.enforcement import Enforcer
from consentgate.engine.policy import parse as parse_policy
from consentgate.engine.session import open_duckdb
from consentgate.rule.names import TableName
from reference import Event

T = datetime(2026, 3, 1)
EVENTS = [
    Event("1", "ads", "granted", datetime(2026, 1, 1)),
    Event("2", "ads", "granted", datetime(2026, 1, 1)),
    Event("2", "ads", "withdrawn", datetime(2026, 2, 1)),
    Event("3", "ads", "denied", datetime(2026, 1, 1)),
    Event("4", "ads", "granted", datetime(2026, 1, 1), expires_at=datetime(2026, 2, 1)),
    Event("5", "ads", "maybe", datetime(2026, 1, 1)),
]
ROWS = [(1, "1"), (2, "1"), (3, "2"), (4, "3"), (5, "4"), (6, "5"), (7, "6"), (8, None)]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    create_tables(con, "duckdb", EVENTS, ROWS)
    con.close()
    return path


def query(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def run(db: Path, **kw):
    args = dict(source="dataset", target="out.targeted", subject_column="subject", purpose="ads", as_of=T)
    args.update(kw)
    return consentgate.enforce(db, **args)


def test_counts_every_reason_and_keeps_only_consented_rows(db: Path) -> None:
    r = run(db)
    assert (r.rows_in, r.rows_out) == (8, 2)
    assert r.excluded == {
        "null_subject": 1,
        "no_consent": 1,
        "denied": 1,
        "withdrawn": 1,
        "expired": 1,
        "invalid": 1,
    }
    assert sorted(query(db, "SELECT row_id FROM out.targeted")) == [(1,), (2,)]


def test_lineage_records_run_and_dataset(db: Path) -> None:
    r = run(db, run_id="night-1", dataset="web")
    runs = query(
        db, "SELECT run_id, status, as_of, consent_fingerprint, trigger, error FROM consentgate_runs"
    )
    assert runs == [("night-1", "success", T, r.consent_fingerprint, "cli", None)]
    rows = query(
        db,
        "SELECT dataset, source, target, rows_in, rows_out, excluded_null_subject, excluded_no_consent, "
        "excluded_denied, excluded_withdrawn, excluded_expired, excluded_invalid FROM consentgate_lineage",
    )
    assert rows == [("web", "dataset", "out.targeted", 8, 2, 1, 1, 1, 1, 1, 1)]


def test_rerun_with_same_run_id_is_refused_and_keeps_the_first_runs_evidence(db: Path) -> None:
    # Formerly a re-run replaced the earlier run's rows: evidence of a finished run was rewritten
    # (issue #9). A run id now names one invocation's run: a second call with it is refused.
    run(db, run_id="again")
    before = (query(db, "SELECT * FROM consentgate_runs"), query(db, "SELECT * FROM consentgate_lineage"))
    with pytest.raises(lineage.RunIdInUseError, match="run id 'again' is already used by another invocation"):
        run(db, run_id="again")
    assert (
        query(db, "SELECT * FROM consentgate_runs"),
        query(db, "SELECT * FROM consentgate_lineage"),
    ) == before
    run(db, run_id="other")
    assert query(db, "SELECT count(*) FROM consentgate_runs") == [(2,)]


def test_withdrawal_takes_effect_on_next_run(db: Path) -> None:
    run(db)
    con = duckdb.connect(str(db))
    con.execute(
        "INSERT INTO consent_events VALUES ('1', 'ads', 'withdrawn', TIMESTAMP '2026-03-01 12:00:00', NULL, NULL, 'gpc', 'v2')"
    )
    con.close()
    run(db, as_of=datetime(2026, 3, 2))
    assert query(db, "SELECT count(*) FROM out.targeted") == [(0,)]


def test_error_mid_write_leaves_old_target(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(db)
    before = sorted(query(db, "SELECT * FROM out.targeted"))
    con = duckdb.connect(str(db))
    con.execute(
        "INSERT INTO consent_events VALUES ('6', 'ads', 'granted', TIMESTAMP '2026-01-01', NULL, NULL, NULL, NULL)"
    )
    con.close()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full while writing lineage")

    monkeypatch.setattr(lineage, "write_lineage", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        run(db, run_id="broken")
    assert sorted(query(db, "SELECT * FROM out.targeted")) == before
    ((status, error),) = query(db, "SELECT status, error FROM consentgate_runs WHERE run_id = 'broken'")
    # The class is recorded, not the message: a message that is not consentgate's own may quote row values.
    assert status == "failed" and error.startswith("RuntimeError (its message is withheld")
    assert "disk full" not in error


def _consent_snapshot(db: Path) -> list[tuple]:
    return sorted(query(db, "SELECT * FROM consent_events"), key=str)


BAD_INPUTS = [
    ("missing source", dict(source="nope"), errors.SourceError, r"source table 'nope' does not exist"),
    (
        "missing consent table",
        dict(consent_table="consents"),
        errors.ConsentSourceError,
        r"consent table 'consents' does not exist",
    ),
    (
        "subject column not in source",
        dict(subject_column="customer"),
        errors.SourceError,
        r"subject column 'customer' is not in source 'dataset' \(columns: row_id, subject\)",
    ),
    ("target is source", dict(target="dataset"), errors.TargetError, r"target 'dataset' is the source table"),
    (
        "target is consent table",
        dict(target="main.consent_events"),
        errors.TargetError,
        r"is the consent table",
    ),
    ("target is evidence", dict(target="consentgate_runs"), errors.TargetError, r"evidence table"),
    (
        "unparsable as-of",
        dict(as_of="yesterday-ish"),
        errors.InvalidAsOfError,
        r"as-of 'yesterday-ish' is not an ISO 8601 timestamp",
    ),
    (
        "injection in target",
        dict(target="out.t; DROP TABLE consent_events"),
        errors.InvalidIdentifierError,
        r"is not a plain identifier path",
    ),
    ("injection in source", dict(source='dataset" --'), errors.InvalidIdentifierError, r"plain identifier"),
    ("three-part name", dict(source="a.b.c"), errors.InvalidIdentifierError, r"plain identifier"),
    (
        "injection in column",
        dict(subject_column="subject) OR (1=1"),
        errors.InvalidIdentifierError,
        r"not a plain column name",
    ),
    ("unknown normalisation", dict(normalize="upper"), errors.ConsentGateError, r"unknown normalisation"),
]


@pytest.mark.parametrize("kw,exc,match", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_fails_cleanly_and_is_recorded(db: Path, kw: dict, exc: type, match: str) -> None:
    run(db)  # yesterday's target
    before = sorted(query(db, "SELECT * FROM out.targeted"))
    consent_before = _consent_snapshot(db)
    with pytest.raises(exc, match=match) as info:
        run(db, run_id="bad", **kw)
    assert "\n" not in errors.one_line(info.value)
    assert sorted(query(db, "SELECT * FROM out.targeted")) == before
    assert _consent_snapshot(db) == consent_before
    assert query(db, "SELECT status FROM consentgate_runs WHERE run_id = 'bad'") == [("failed",)]
    (error,) = query(db, "SELECT error FROM consentgate_runs WHERE run_id = 'bad'")[0]
    assert error and "\n" not in error


@pytest.mark.parametrize(
    "ddl,match",
    [
        ("ALTER TABLE consent_events DROP COLUMN status", r"has no column 'status' for status"),
        ("ALTER TABLE consent_events DROP COLUMN expires_at", r"has no column 'expires_at'"),
        (
            "ALTER TABLE consent_events ALTER event_ts TYPE VARCHAR",
            r"'event_ts' \(event_ts\) has type VARCHAR, expected a timestamp",
        ),
        (
            "ALTER TABLE consent_events ALTER status SET DATA TYPE INTEGER USING 1",
            r"'status' \(status\) has type INTEGER, expected text",
        ),
    ],
)
def test_unusable_consent_table_fails_closed(db: Path, ddl: str, match: str) -> None:
    run(db)
    before = sorted(query(db, "SELECT * FROM out.targeted"))
    con = duckdb.connect(str(db))
    con.execute(ddl)
    con.close()
    with pytest.raises(errors.ConsentSourceError, match=match):
        run(db, run_id="broken-consent")
    assert sorted(query(db, "SELECT * FROM out.targeted")) == before
    assert query(db, "SELECT status FROM consentgate_runs WHERE run_id = 'broken-consent'") == [("failed",)]


def test_empty_consent_table_excludes_everything_with_a_warning(db: Path, caplog) -> None:
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM consent_events")
    con.close()
    r = run(db)
    assert r.rows_out == 0 and r.excluded["no_consent"] == 7 and r.excluded["null_subject"] == 1
    assert r.warnings and "every row" in r.warnings[0]
    assert any("no event that counts" in m for m in caplog.messages)


def test_locked_database_is_reported(db: Path) -> None:
    import subprocess
    import sys
    import time

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(db)!r}); print('ok', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(errors.DatabaseLockedError, match=r"is locked by another process \(PID \d+\)"):
            run(db)
        assert errors.retryable(errors.DatabaseLockedError("x"))
    finally:
        holder.kill()
        holder.wait()
        time.sleep(0.1)


def test_missing_database_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.duckdb"
    with pytest.raises(errors.DatabaseNotFoundError, match="does not exist"):
        run(path)
    assert not path.exists()


def test_errors_never_carry_subject_values(db: Path) -> None:
    exc = duckdb.ConversionException("Could not convert string 'alice@example.com' to INT64")
    assert "alice" not in errors.one_line(exc)


class TestFingerprint:
    def fp(self, db: Path, as_of=T) -> str:
        return run(db, as_of=as_of).consent_fingerprint

    def exec(self, db: Path, sql: str) -> None:
        con = duckdb.connect(str(db))
        con.execute(sql)
        con.close()

    def test_same_log_and_cutoff_same_fingerprint_whatever_the_order(self, db: Path) -> None:
        first = self.fp(db)
        self.exec(db, "CREATE TABLE shuffled AS SELECT * FROM consent_events ORDER BY random()")
        self.exec(db, "DROP TABLE consent_events; ALTER TABLE shuffled RENAME TO consent_events")
        assert self.fp(db) == first

    def test_event_recorded_after_cutoff_does_not_change_it(self, db: Path) -> None:
        first = self.fp(db)
        self.exec(
            db,
            "INSERT INTO consent_events VALUES ('1', 'ads', 'withdrawn', TIMESTAMP '2026-02-15', TIMESTAMP '2026-03-05', NULL, NULL, NULL)",
        )
        self.exec(
            db,
            "INSERT INTO consent_events VALUES ('9', 'ads', 'granted', TIMESTAMP '2026-04-01', NULL, NULL, NULL, NULL)",
        )
        assert self.fp(db) == first
        assert self.fp(db, as_of=datetime(2026, 4, 2)) != first

    def test_rewriting_an_old_event_changes_it(self, db: Path) -> None:
        first = self.fp(db)
        self.exec(db, "UPDATE consent_events SET status = 'granted' WHERE subject_id = '3'")
        assert self.fp(db) != first

    def test_does_not_depend_on_the_purposes_a_run_decides(self, db: Path) -> None:
        # Each mapped Airflow task snapshots the log for its own purpose; close_run compares their
        # fingerprints, so they must cover the whole log whatever the purposes decided.
        self.exec(
            db,
            "INSERT INTO consent_events VALUES ('1', 'email', 'granted', TIMESTAMP '2026-01-02', NULL, NULL, NULL, NULL)",
        )
        session = open_duckdb(db)
        try:
            snaps = [
                Enforcer(session, consent_table="consent_events", as_of=T, run_id="r").take_snapshot(purposes)
                for purposes in ([], ["ads"], ["email"], ["ads", "email", " ADS "])
            ]
        finally:
            session.close()
        assert len({(s.fingerprint, s.events_counted) for s in snaps}) == 1
        assert snaps[0].events_counted == len(EVENTS) + 1

    def test_fingerprint_of_same_run_matches_lineage(self, db: Path) -> None:
        r = run(db, run_id="fp")
        assert query(db, "SELECT consent_fingerprint FROM consentgate_lineage WHERE run_id = 'fp'") == [
            (r.consent_fingerprint,)
        ]


def _policy(**dataset_overrides) -> consentgate.engine.policy.Policy:
    ds = {"name": "ds", "source": "dataset", "target": "out.t", "subject_column": "subject", "purpose": "ads"}
    ds.update(dataset_overrides)
    return parse_policy(
        {
            "purposes": [{"name": "ads", "description": "Ads."}],
            "datasets": [ds, {**ds, "name": "ds2", "target": "out.t2"}],
        }
    )


def test_one_snapshot_decides_each_purpose_on_its_own(db: Path) -> None:
    con = duckdb.connect(str(db))
    con.execute(
        "INSERT INTO consent_events VALUES ('3', ' Email ', 'GRANTED', TIMESTAMP '2026-01-05', NULL, NULL, NULL, NULL)"
    )
    con.close()
    policy = parse_policy(
        {
            "purposes": [{"name": "ads", "description": "Ads."}, {"name": "email", "description": "E-mail."}],
            "datasets": [
                {
                    "name": "ads",
                    "source": "dataset",
                    "target": "out.ads",
                    "subject_column": "subject",
                    "purpose": "ads",
                },
                {
                    "name": "mail",
                    "source": "dataset",
                    "target": "out.mail",
                    "subject_column": "subject",
                    "purpose": "EMAIL",
                },
            ],
        }
    )
    result = consentgate.run_policy(policy, db, as_of=T)
    assert result.ok
    alone = {ds.name: run(db, target=f"out.alone_{ds.name}", purpose=ds.purpose) for ds in policy.datasets}
    for ds in result.datasets:
        assert (ds.rows_out, ds.excluded) == (alone[ds.dataset].rows_out, alone[ds.dataset].excluded)
    assert query(db, "SELECT subject FROM out.mail") == [("3",)]
    assert sorted(query(db, "SELECT subject FROM out.ads")) == [("1",), ("1",)]


def test_a_purpose_outside_the_snapshot_is_refused(db: Path) -> None:
    session = open_duckdb(db)
    try:
        enforcer = Enforcer(session, consent_table="consent_events", as_of=T, run_id="r")
        enforcer.take_snapshot(["ads"])
        with pytest.raises(RuntimeError, match="not passed to take_snapshot"):
            enforcer.counts(TableName.parse("dataset"), "subject", "email", None)
    finally:
        session.close()


def test_run_policy_one_run_id_one_snapshot(db: Path) -> None:
    result = consentgate.run_policy(_policy(), db, as_of=T, run_id="nightly")
    assert result.ok and len(result.datasets) == 2
    assert {d.consent_fingerprint for d in result.datasets} == {result.consent_fingerprint}
    assert query(db, "SELECT run_id, status FROM consentgate_runs") == [("nightly", "success")]
    assert query(db, "SELECT dataset FROM consentgate_lineage ORDER BY 1") == [("ds",), ("ds2",)]


def test_run_policy_failed_dataset_marks_run_failed_and_others_still_enforced(db: Path) -> None:
    policy = parse_policy(
        {
            "purposes": [{"name": "ads", "description": "Ads."}],
            "datasets": [
                {
                    "name": "good",
                    "source": "dataset",
                    "target": "out.good",
                    "subject_column": "subject",
                    "purpose": "ads",
                },
                {
                    "name": "bad",
                    "source": "missing",
                    "target": "out.bad",
                    "subject_column": "subject",
                    "purpose": "ads",
                },
            ],
        }
    )
    result = consentgate.run_policy(policy, db, as_of=T, run_id="partial")
    assert not result.ok and set(result.errors) == {"bad"}
    assert query(db, "SELECT count(*) FROM out.good") == [(2,)]
    ((status, error),) = query(db, "SELECT status, error FROM consentgate_runs WHERE run_id = 'partial'")
    assert status == "failed" and "bad: source table 'missing' does not exist" in error


def test_a_dataset_failing_mid_enforcement_does_not_fail_the_next_one_of_the_same_purpose(db: Path) -> None:
    """The rollback of a failed dataset drops the table its purpose was decided into; the next dataset
    of that purpose decides again instead of reading a table that is gone."""
    con = duckdb.connect(str(db))
    con.execute("CREATE VIEW broken AS SELECT subject, CAST('x' || row_id AS INTEGER) AS n FROM dataset")
    con.close()
    policy = parse_policy(
        {
            "purposes": [{"name": "ads", "description": "Ads."}],
            "datasets": [
                {
                    "name": "bad",
                    "source": "broken",
                    "target": "out.bad",
                    "subject_column": "subject",
                    "purpose": "ads",
                },
                {
                    "name": "good",
                    "source": "dataset",
                    "target": "out.good",
                    "subject_column": "subject",
                    "purpose": "ads",
                },
            ],
        }
    )
    result = consentgate.run_policy(policy, db, as_of=T, run_id="after-failure")
    assert set(result.errors) == {"bad"}
    assert [d.dataset for d in result.datasets] == ["good"]
    assert query(db, "SELECT count(*) FROM out.good") == [(2,)]
