"""What the operators and the DAG's tasks share: pools, the asset alias, the cut-off, the run context,
and how a failure is raised to Airflow. Light: imports no provider at module level."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from consentgate.engine.enforcement import RunContext, parse_as_of
from consentgate.engine.policy import parse_columns
from consentgate.errors import InvalidAsOfError, one_line, raise_unchained, retryable

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import BaseOperator


#: Every consented target is emitted as an asset event through this alias (targets are known at run time).
CONSENTED_ALIAS = "consentgate_consented"
#: The one-slot pool that serialises tasks writing one DuckDB file (see docs/airflow.md).
DUCKDB_POOL = "consentgate_duckdb"
#: PostgreSQL takes many writers: tasks that open it run in Airflow's default pool, mapped ones in parallel.
PARALLEL_POOL = "default_pool"
_PARALLEL_CONN_TYPES = ("postgres", "postgresql")


def consented_alias() -> Any:
    """The asset alias through which ConsentFilterOperator announces each target it wrote."""
    from airflow.sdk import AssetAlias

    return AssetAlias(name=CONSENTED_ALIAS)


def warehouse_pool(environ: Mapping[str, str] | None = None) -> str:
    """The pool of the tasks that open the warehouse, decided from the environment alone (it runs at DAG
    parse time, so it reads no Connection, Variable or database).

    `CONSENTGATE_POOL` wins. Otherwise, when the connection named by `CONSENTGATE_CONN_ID` (default
    `duckdb_default`) is defined in the environment (`AIRFLOW_CONN_<ID>`, URI or JSON) with a postgres
    type, `default_pool`, so mapped tasks run in parallel. Anything else (a DuckDB connection, one kept
    in the metadata DB or a secrets backend, an unreadable definition) gets the one-slot DuckDB pool:
    serial is always safe, parallel writers on one DuckDB file are not.
    """
    env = os.environ if environ is None else environ
    explicit = (env.get("CONSENTGATE_POOL") or "").strip()
    if explicit:
        return explicit
    conn_id = (env.get("CONSENTGATE_CONN_ID") or "").strip() or "duckdb_default"
    definition = (env.get(f"AIRFLOW_CONN_{conn_id.upper()}") or "").strip()
    kind = ""
    if definition.startswith("{"):
        try:
            kind = str(json.loads(definition).get("conn_type") or "")
        except (ValueError, AttributeError):
            kind = ""
    elif "://" in definition:
        kind = definition.split("://", 1)[0]
    return PARALLEL_POOL if kind.strip().lower().replace("-", "_") in _PARALLEL_CONN_TYPES else DUCKDB_POOL


def fail_task(exc: BaseException) -> NoReturn:
    """Re-raise any failure as Airflow should see it: one safe line (errors.one_line), retried only if
    retryable, with no chained exception whose message a traceback could show."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

    if isinstance(exc, AirflowFailException | AirflowSkipException):
        raise exc
    message = one_line(exc)
    if retryable(exc):
        raise_unchained(AirflowException(f"{message} (may be transient: the task will retry)"))
    # Unchained: Airflow logs the traceback (and OpenLineage sends it); neither may show `exc`'s message.
    raise_unchained(AirflowFailException(message))


def resolve_as_of(value: Any, context: Mapping[str, Any]) -> datetime:
    """The consent cut-off as naive UTC. A run without a data interval (rendered 'None' or empty) uses
    the run's `run_after`, so every task of that run still agrees on one instant."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        dag_run = context.get("dag_run")
        value = getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None)
        if value is None:
            raise InvalidAsOfError("no consent cut-off: as_of rendered empty and the run has no run_after")
    return parse_as_of(value)


def run_context(context: Mapping[str, Any]) -> RunContext:
    ti = context["ti"]
    return RunContext(
        trigger="airflow", dag_id=ti.dag_id, task_id=ti.task_id, airflow_run_id=context["run_id"]
    )


def consent_columns(mapping: Mapping[str, str | None] | None) -> Any:
    """The operator's `consent_columns`, validated like a policy file's consent.columns."""
    return parse_columns(dict(mapping or {}))


def safe_lineage(operator: BaseOperator, build: Any) -> OperatorLineage:
    """Lineage never fails the task: any problem is logged and an empty OperatorLineage returned."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    try:
        return build() if build is not None else OperatorLineage()
    except Exception as exc:  # noqa: BLE001
        operator.log.warning("consentgate: OpenLineage facets unavailable: %s", one_line(exc))
        return OperatorLineage()
