"""astronomer-cosmos support: the operator arguments that make every dbt task of one Airflow DAG run
write its evidence into one consentgate run with one consent cut-off (docs/cosmos.md).

Cosmos runs dbt once per model (or once for the whole selection in watcher mode). The dbt package's
`log_lineage` composes those invocations into one run when they share `consentgate_run_id` and
`consentgate_as_of`; without them, each task would record its own run with its own cut-off. This
module only builds template strings: it imports neither cosmos nor Airflow, and opens nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consentgate.airflow.common import DUCKDB_POOL, warehouse_pool

#: The consentgate run id of an Airflow DAG run: its DAG id and run id (two DAGs may share a run id).
RUN_ID_TEMPLATE = "{{ ti.dag_id }}:{{ run_id }}"
#: The consent cut-off of an Airflow DAG run: its data interval's end, else (a manual run of an
#: unscheduled DAG) its run_after. Every task of the run renders the same instant.
AS_OF_TEMPLATE = "{{ (data_interval_end or dag_run.run_after).isoformat() }}"
#: The dbt vars `log_lineage` reads; a caller's vars may not set them (they would split the run).
PINNED_VARS = ("consentgate_run_id", "consentgate_as_of")


def consent_vars(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """dbt vars for a cosmos task: `extra` plus the run id and cut-off of the Airflow DAG run.

    :param extra: other dbt vars (e.g. consentgate_source_schema); may not set the pinned ones
    """
    given = dict(extra or {})
    clash = sorted(set(given) & set(PINNED_VARS))
    if clash:
        raise ValueError(
            f"consent_vars: {', '.join(clash)} is set by consentgate from the Airflow run "
            "(one run id and one cut-off for every task of a DAG run); remove it from vars"
        )
    return {**given, "consentgate_run_id": RUN_ID_TEMPLATE, "consentgate_as_of": AS_OF_TEMPLATE}


def consent_operator_args(
    *,
    vars: Mapping[str, Any] | None = None,  # noqa: A002 - cosmos' own name
    pool: str | None = None,
    **operator_args: Any,
) -> dict[str, Any]:
    """`operator_args` for a cosmos `DbtTaskGroup` / `DbtDag`: the dbt vars of `consent_vars(vars)`
    (both are templated fields of cosmos' operators, rendered per task) and the warehouse pool.

    :param vars: other dbt vars, passed on with the pinned run id and cut-off
    :param pool: the Airflow pool of the dbt tasks; default `warehouse_pool()`: the one-slot
        `consentgate_duckdb` pool (one DuckDB writer at a time) unless the environment names a
        PostgreSQL connection or CONSENTGATE_POOL (docs/airflow.md)
    :param operator_args: any other cosmos operator argument (install_deps, env, ...), unchanged
    """
    if "vars" in operator_args:  # pragma: no cover - unreachable through the keyword above
        raise TypeError("consent_operator_args: vars given twice")
    return {**operator_args, "vars": consent_vars(vars), "pool": pool or warehouse_pool()}


__all__ = [
    "AS_OF_TEMPLATE",
    "DUCKDB_POOL",
    "PINNED_VARS",
    "RUN_ID_TEMPLATE",
    "consent_operator_args",
    "consent_vars",
]
