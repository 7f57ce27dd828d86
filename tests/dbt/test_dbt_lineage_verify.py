"""`consentgate verify` on a dbt run: clean on a good run (every lineage number means what verify checks
it against: rows_in and excluded_* are the consented input's, rows_out the model's rows), and not clean
once a model or a lineage number is tampered with."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from dbt_harness import Backend, duckdb_backend, example_on_duckdb, run_dbt, vars_arg
from example_expectations import AS_OF

pytestmark = pytest.mark.slow

RUN = "good-1"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, demo_duckdb_template: Path) -> Path:
    """A DuckDB file after one `dbt build` of the example under run id good-1."""
    project, backend = example_on_duckdb(tmp_path_factory.mktemp("verify_dbt"), demo_duckdb_template)
    run_dbt(project, ["build", *vars_arg(consentgate_as_of=AS_OF, consentgate_run_id=RUN)], backend)
    return Path(backend.env["CONSENTGATE_DUCKDB"])


@pytest.fixture
def db(built: Path, tmp_path: Path) -> Backend:
    shutil.copyfile(built, tmp_path / "copy.duckdb")
    return duckdb_backend(tmp_path / "copy.duckdb")


def verify(backend: Backend) -> dict[str, Any]:
    from consentgate.engine.session import session_for
    from consentgate.evidence.verification import verify_run

    with backend.connect() as con:
        return verify_run(session_for(con, "duckdb"), RUN)


def _dataset(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in result["datasets"] if d["dataset"] == name)


def test_a_good_dbt_run_verifies_clean(db: Backend) -> None:
    result = verify(db)
    assert (result["status"], result["problems"], result["warnings"]) == ("verified", [], [])
    assert {d["status"] for d in result["datasets"]} == {"reproduced"}
    assert {d["target_check"]["status"] for d in result["datasets"]} == {"clean"}
    # rows_out is the model's rows, not the consented input's: the web events are aggregated per customer.
    features = _dataset(result, "ad_customer_features")
    (model_rows,) = db.query("select count(*) from ad_customer_features")[0]
    assert features["recorded"]["rows_out"] == model_rows
    assert features["recorded"]["consented"] > model_rows


def test_a_consented_row_added_to_a_model_is_reported(db: Backend) -> None:
    db.execute("insert into ad_lookalike_seed select * from ad_lookalike_seed limit 1")
    result = verify(db)
    assert result["status"] == "verified_with_warnings"
    assert _dataset(result, "ad_lookalike_seed")["target_check"]["status"] == "changed"
    assert any("ad_lookalike_seed: target main.ad_lookalike_seed has" in w for w in result["warnings"])


def test_a_row_of_someone_not_consented_added_to_a_model_fails(db: Backend) -> None:
    db.execute("insert into ad_audience (customer_id, email, country, page_views) values (2, null, 'FR', 0)")
    result = verify(db)
    assert result["status"] == "failed"
    assert _dataset(result, "ad_audience/stg_customers")["target_check"]["status"] == "contaminated"


@pytest.mark.parametrize(
    ("column", "expected_status", "verdict"),
    [
        ("excluded_no_consent", "mismatch", "failed"),  # decisions differ on a source of the same size
        ("rows_in", "source_changed", "verified_with_warnings"),  # indistinguishable from a grown source
        ("rows_out", "reproduced", "verified_with_warnings"),  # the model no longer has that many rows
    ],
)
def test_an_edited_lineage_number_is_reported(
    db: Backend, column: str, expected_status: str, verdict: str
) -> None:
    db.execute(
        f"update consentgate_lineage set {column} = {column} + 1 where run_id = ? and dataset = 'email_audience'",
        [RUN],
    )
    result = verify(db)
    assert result["status"] == verdict
    assert _dataset(result, "email_audience")["status"] == expected_status
    if column == "rows_out":
        assert _dataset(result, "email_audience")["target_check"]["status"] == "changed"
