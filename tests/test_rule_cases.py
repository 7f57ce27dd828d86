"""The shared case file, through the engine on DuckDB and on PostgreSQL, and through the reference."""

from __future__ import annotations

import consentgate
import duckdb
import pytest
from cases_loader import Case, create_tables, load_cases
from reference import REASONS
from reference import enforce as reference_enforce

CASES = load_cases()


def expected(case: Case) -> tuple[list[int], dict[str, int]]:
    kept = sorted(k for k, v in case.expect.items() if v == "kept")
    counts = dict.fromkeys(REASONS, 0)
    for v in case.expect.values():
        if v != "kept":
            counts[v] += 1
    return kept, counts


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reference_agrees_with_case_file(case: Case) -> None:
    kept, counts = reference_enforce(case.rows, case.events, case.purpose, case.as_of, case.normalize)
    assert (sorted(kept), counts) == expected(case)


def _enforce(case: Case, connection, dialect: str):
    return consentgate.enforce(
        source="dataset",
        target="consented.dataset",
        subject_column="subject",
        purpose=case.purpose,
        as_of=case.as_of,
        normalize=case.normalize,
        connection=connection,
        dialect=dialect,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_engine_on_duckdb(case: Case) -> None:
    con = duckdb.connect(":memory:")
    create_tables(con, "duckdb", case.events, case.rows, case.subject_type, case.consent_subject_type)
    result = _enforce(case, con, "duckdb")
    kept = sorted(r[0] for r in con.execute("SELECT row_id FROM consented.dataset").fetchall())
    assert (kept, result.excluded) == expected(case)
    assert result.rows_in == len(case.rows) and result.rows_out == len(kept)


@pytest.mark.postgres
def test_engine_on_postgres(pg_db) -> None:
    con = pg_db.connect()
    try:
        for case in CASES:
            with con.cursor() as cur:
                create_tables(
                    cur, "postgres", case.events, case.rows, case.subject_type, case.consent_subject_type
                )
            con.commit()
            result = _enforce(case, con, "postgres")
            with con.cursor() as cur:
                cur.execute("SELECT row_id FROM consented.dataset")
                kept = sorted(r[0] for r in cur.fetchall())
            assert (kept, result.excluded) == expected(case), case.name
    finally:
        con.close()
