"""consentgate.airflow.cosmos: the operator arguments that pin every cosmos task of a DAG run to one
consentgate run and one cut-off; and docs/cosmos.md shows the DAG file the slow tests run, verbatim."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import jinja2
import pytest
from cg_airflow import REPO
from consentgate.airflow.cosmos import AS_OF_TEMPLATE, RUN_ID_TEMPLATE, consent_operator_args, consent_vars


def _render(template: str, **context: object) -> str:
    return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(template).render(**context)


def test_operator_args_pin_the_run_id_and_cut_off_and_keep_the_rest() -> None:
    args = consent_operator_args(vars={"consentgate_source_schema": "raw"}, pool="p1", install_deps=False)
    assert args == {
        "install_deps": False,
        "pool": "p1",
        "vars": {
            "consentgate_source_schema": "raw",
            "consentgate_run_id": RUN_ID_TEMPLATE,
            "consentgate_as_of": AS_OF_TEMPLATE,
        },
    }


def test_the_default_pool_is_the_one_slot_duckdb_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSENTGATE_POOL", raising=False)
    monkeypatch.delenv("CONSENTGATE_CONN_ID", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_DUCKDB_DEFAULT", raising=False)
    assert consent_operator_args()["pool"] == "consentgate_duckdb"


@pytest.mark.parametrize("name", ["consentgate_run_id", "consentgate_as_of"])
def test_vars_may_not_set_the_pinned_ones(name: str) -> None:
    with pytest.raises(ValueError, match=f"consent_vars: {name} is set by consentgate from the Airflow run"):
        consent_vars({name: "x"})


def test_the_templates_render_one_run_id_and_one_cut_off_per_dag_run() -> None:
    ti = SimpleNamespace(dag_id="my_dag")
    assert _render(RUN_ID_TEMPLATE, ti=ti, run_id="scheduled__2026-06-01") == "my_dag:scheduled__2026-06-01"
    end = datetime(2026, 6, 2, 3, tzinfo=UTC)
    run = SimpleNamespace(run_after=datetime(2026, 6, 5, tzinfo=UTC))
    assert _render(AS_OF_TEMPLATE, data_interval_end=end, dag_run=run) == "2026-06-02T03:00:00+00:00"
    # A manual run of an unscheduled DAG has no data interval: its run_after is the cut-off.
    assert _render(AS_OF_TEMPLATE, data_interval_end=None, dag_run=run) == "2026-06-05T00:00:00+00:00"


def test_the_doc_shows_the_dag_file_the_tests_run() -> None:
    dag = (REPO / "docs" / "examples" / "consent_cosmos_dag.py").read_text()
    assert f"```python\n{dag}```" in (REPO / "docs" / "cosmos.md").read_text()
