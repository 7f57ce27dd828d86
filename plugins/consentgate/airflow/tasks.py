"""What the Airflow tasks do, free of operator plumbing: enforce one dataset or audit one table under a
shared run id, open the nightly run (checking the consent source) and close it.

`check_consent_source` fails closed: a missing consent table, a missing required column or an
unreadable log stops the whole run before any target is touched, and the failed run is recorded.
`close_run` records the run's outcome from the states of every other task of the Airflow run.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from consentgate.airflow.common import fail_task, resolve_as_of, run_context
from consentgate.airflow.hooks import open_warehouse
from consentgate.engine import lineage, termination
from consentgate.engine.enforcement import (
    Enforcer,
    check_policy_names,
    invocation_owner,
    open_run,
    record_failure,
    utcnow,
)
from consentgate.engine.policy import load
from consentgate.engine.source_config import source_named
from consentgate.errors import ConsentViolationError, RunFailedError, one_line
from consentgate.evidence.openlineage import emit_ingest
from consentgate.rule.names import TableName, column
from consentgate.sources.ingest import ingest

if TYPE_CHECKING:
    from consentgate.engine.enforcement import RunContext

log = logging.getLogger("consentgate")

POLICY_SETTING = "CONSENTGATE_POLICY"
CONN_SETTING = "CONSENTGATE_CONN_ID"
DEFAULT_CONN_ID = "duckdb_default"
FAILED_STATES = {"failed": "failed tasks", "upstream_failed": "not run (an upstream task failed)"}


def default_policy_path() -> str:
    return str(resources.files("consentgate").joinpath("examples/demo_policy.yml"))


def setting(name: str, default: str) -> str:
    """An environment variable, else the Airflow Variable of the same name, else the default.
    Call at run time only (a Variable read at parse time would hit the metadata DB on every parse)."""
    value = os.environ.get(name)
    if value:
        return value
    from airflow.sdk import Variable

    # A failing Variable lookup raises: silently falling back to the example policy could enforce the
    # wrong rules on a real warehouse.
    return Variable.get(name, default=None) or default


# -- one dataset, one audit (used by the operators) -----------------------------------------------


def _owns_run(session: Any, run_id: str, context: RunContext) -> bool:
    """A run record opened by another task (the DAG's check task) is left for it to close; a run with no
    record, or one this same task opened on an earlier try, is this task's to open and close."""
    runs = lineage.read_runs(session, run_id, limit=1)
    if not runs:
        return True
    return runs[0].get("task_id") == context.task_id and runs[0].get("dag_id") == context.dag_id


def enforce_dataset(
    session: Any,
    ds: Any,
    *,
    consent_table: str,
    columns: Any,
    as_of: datetime,
    run_id: str,
    context: RunContext,
) -> dict[str, Any]:
    """Enforce one dataset on an open session under `run_id`; returns the summary (counts only).

    Writes only this dataset's lineage row, so mapped tasks sharing one run never erase each other's.
    When no task opened the run, this one opens it and closes it (success or failed).
    """
    from dataclasses import replace

    context = replace(context, owner=invocation_owner(context))
    started = utcnow()
    record = lineage.RunRecord(
        run_id=run_id,
        started_at=started,
        as_of=as_of,
        consent_table=consent_table,
        trigger=context.trigger,
        dag_id=context.dag_id,
        task_id=context.task_id,
        airflow_run_id=context.airflow_run_id,
        owner=context.owner,
        planned_datasets=json.dumps([ds.name]),
    )
    with session.transaction() as s:
        lineage.ensure_tables(s)
    owned = _owns_run(session, run_id, context)
    enforcer = Enforcer(
        session, consent_table=consent_table, columns=columns, as_of=as_of, run_id=run_id, context=context
    )
    try:
        with termination.sigterm_raises():  # Airflow's SIGTERM (timeout, stop): a recorded failure
            with session.transaction():
                enforcer.take_snapshot([ds.purpose])
            if owned:
                enforcer.start_run(started, planned=[ds.name])
            result = enforcer.enforce(ds)
            if owned:
                with session.transaction() as s:
                    lineage.finish_run(s, run_id, owner=context.owner, status="success", finished_at=utcnow())
    except BaseException as exc:
        if owned:
            record_failure(session, record, exc)
        raise
    summary = result.summary()
    if result.warnings:
        summary["warnings"] = list(result.warnings)
    return summary


def audit_table(
    session: Any,
    *,
    table: str,
    subject_column: str,
    purpose: str,
    normalize: str | None,
    consent_table: str,
    columns: Any,
    as_of: datetime,
    run_id: str,
    context: RunContext,
) -> dict[str, Any]:
    """Count a table's rows against one consent snapshot. Writes nothing (session-private temp tables)."""
    name = TableName.parse(table, "audited table")
    col = column(subject_column, "subject column")
    enforcer = Enforcer(
        session, consent_table=consent_table, columns=columns, as_of=as_of, run_id=run_id, context=context
    )
    try:
        with session.transaction():
            snap = enforcer.take_snapshot([purpose])
        rows_in, rows_out, excluded = enforcer.counts(name, col, purpose, normalize)
    finally:
        session.rollback()
    return {
        "table": str(name),
        "purpose": purpose,
        "as_of": as_of.isoformat(),
        "consent_fingerprint": snap.fingerprint,
        "rows_checked": rows_in,
        "rows_consented": rows_out,
        "violations": excluded,
        "passed": rows_in == rows_out,
    }


def check_audit(summary: Mapping[str, Any]) -> None:
    """Raise ConsentViolationError with the violating row counts per reason (no identifiers)."""
    bad = {k: v for k, v in summary["violations"].items() if v}
    if summary["passed"] and not bad:
        return
    total = sum(bad.values())
    raise ConsentViolationError(
        f"table {summary['table']!r} holds {total} row(s) whose subject is not consented for "
        f"{summary['purpose']!r} as of {summary['as_of']}: "
        + ", ".join(f"{reason}={count}" for reason, count in bad.items())
        + f" (of {summary['rows_checked']} rows); rebuild it from consented sources"
    )


# -- the nightly run ---------------------------------------------------------------------------------

COMMON_KEYS = ("conn_id", "as_of", "consent_table", "consent_columns")


def dataset_plan(policy: Any, *, conn_id: str, as_of: str, run_id: str) -> list[dict[str, Any]]:
    """One ConsentFilterOperator's arguments per policy dataset (for expand_kwargs)."""
    columns = dict(policy.columns.mapping())
    return [
        {
            "conn_id": conn_id,
            "as_of": as_of,
            "consent_table": policy.consent_table,
            "consent_columns": columns,
            "run_id": run_id,
            "dataset": d.name,
            "source": d.source,
            "target": d.target,
            "subject_column": d.subject_column,
            "purpose": d.purpose,
            "normalize": d.normalize,
        }
        for d in policy.datasets
    ]


def audit_plan(
    datasets: Sequence[Mapping[str, Any]], models: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One ConsentAuditOperator's arguments per ad-targeting output: every enforced target, then every
    dbt model listed in `models` ({table, subject_column, purpose, normalize?}), with the run's cut-off."""
    if not datasets:
        raise RunFailedError("no dataset was planned; nothing to audit")
    common = {k: datasets[0][k] for k in COMMON_KEYS}
    outputs = [
        {
            "table": d["target"],
            "subject_column": d["subject_column"],
            "purpose": d["purpose"],
            "normalize": d.get("normalize"),
        }
        for d in datasets
    ]
    for m in models:
        missing = [k for k in ("table", "subject_column", "purpose") if not m.get(k)]
        if missing:
            raise RunFailedError(f"ad-targeting model entry {m!r} lacks {', '.join(missing)}")
        outputs.append(
            {
                "table": m["table"],
                "subject_column": m["subject_column"],
                "purpose": m["purpose"],
                "normalize": m.get("normalize"),
            }
        )
    return [{**common, **o} for o in outputs]


def dbt_audit_models(dbt_result: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The ad-targeting models DbtBuildOperator's XCom says the build made (from dbt's manifest), as
    audit_plan takes them. Fails closed when the build reported no manifest: nothing would be audited."""
    models = (dbt_result or {}).get("ad_targeting_models")
    if not isinstance(models, list):
        raise RunFailedError(
            "the dbt build reported no manifest, so its ad-targeting models cannot be audited "
            "(DbtBuildOperator's XCom has no ad_targeting_models)"
        )
    return [dict(m) for m in models]


def source_plan(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One ingest_source task's arguments per consent source of the policy (read at run time). A policy
    without sources gets one entry with no name (its task ingests nothing and succeeds), so the run
    shows no skipped task; the consent check runs unless an ingest failed."""
    policy_path = setting(POLICY_SETTING, default_policy_path())
    try:
        policy = load(policy_path)
    except Exception as exc:  # noqa: BLE001
        fail_task(exc)
    log.info(
        "run %s: policy %s, %d consent sources to ingest", context["run_id"], policy_path, len(policy.sources)
    )
    return [{"name": s.name} for s in policy.sources] or [{"name": None}]


def _run_record(context: Mapping[str, Any]) -> tuple[RunContext, lineage.RunRecord]:
    """This task's run context (owned by the Airflow DAG run) and the run record it would open or fail."""
    base = run_context(context)
    ctx = replace(base, owner=invocation_owner(base))
    record = lineage.RunRecord(
        run_id=context["run_id"],
        started_at=utcnow(),
        trigger=ctx.trigger,
        dag_id=ctx.dag_id,
        task_id=ctx.task_id,
        airflow_run_id=ctx.airflow_run_id,
        owner=ctx.owner,
    )
    return ctx, record


def ingest_source(name: str | None, context: Mapping[str, Any]) -> dict[str, Any]:
    """Ingest one consent source of the policy into the consent log (fail closed: any error fails the
    task, and so the consent check and every enforcement, and is recorded as the run's failure).
    Returns and logs counts only, never a subject identifier. No name (no sources): nothing to do."""
    run_id = context["run_id"]
    if name is None:
        log.info("run %s: the policy declares no consent sources; nothing to ingest", run_id)
        return {"source": None, "status": "success", "observations_read": 0, "events_written": 0}
    _, record = _run_record(context)
    conn_id = setting(CONN_SETTING, DEFAULT_CONN_ID)
    policy_path = setting(POLICY_SETTING, default_policy_path())
    try:
        with open_warehouse(conn_id) as wh:
            try:
                policy = load(policy_path)
                record.consent_table = policy.consent_table
                sources = (source_named(policy.sources, name),)
                (done,) = ingest(
                    wh.session, sources, consent_table=policy.consent_table, columns=policy.columns,
                    raise_on_error=True,
                )  # fmt: skip
            except BaseException as exc:
                record_failure(wh.session, record, exc)
                raise
            _emit_ingest_lineage(wh, done)
    except Exception as exc:  # noqa: BLE001
        fail_task(exc)
    rejected = ", ".join(f"{k}={v}" for k, v in sorted(done.rejected.items())) or "none"
    log.info(
        "run %s: source %s (%s, %s): %s; %d observations read, %d events written; not written: %s",
        run_id, done.source, done.kind, done.source_table, done.status, done.observations_read,
        done.events_written, rejected,
    )  # fmt: skip
    return done.summary()


def _emit_ingest_lineage(wh: Any, done: Any) -> None:
    """The ingest's OpenLineage events (job `consentgate.ingest.<source>`: the source table in, the consent
    log out, with row counts), sent through the Airflow OpenLineage provider's own client and transport.
    Nothing is sent when the provider is disabled; never fails the task."""
    try:
        from airflow.providers.openlineage.conf import is_disabled
        from airflow.providers.openlineage.plugins.listener import get_openlineage_listener

        if is_disabled():
            return
        client = get_openlineage_listener().adapter.get_or_create_openlineage_client()
        schema = wh.session.default_schema
        location = (wh.location.ol_namespace(), wh.location.database or "default")
        emit_ingest([done], location=location, default_schema=schema, client=client)
    except Exception as exc:  # noqa: BLE001 - lineage never fails the work it describes
        log.warning("OpenLineage events for the ingest of %s not sent: %s", done.source, one_line(exc))


def cutoff_after_ingest(as_of: datetime, policy: Any) -> datetime:
    """The run's cut-off. With consent sources, ingestion (the upstream tasks) stamps tonight's events
    with `recorded_at` = its own time, after the scheduled data_interval_end: a cut-off of
    data_interval_end would leave tonight's withdrawals to tomorrow's run. So the cut-off is the later
    of data_interval_end and now (every ingest of this run has finished). It is recorded and passed to
    every task, so the run stays reproducible from the log (docs/airflow.md)."""
    return max(as_of, utcnow()) if policy.sources else as_of


def check_consent_source(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Load the policy, check the consent log (fail closed) and open the run record.

    Returns one ConsentFilterOperator's arguments per dataset, and pushes the run's settings as XComs
    `conn_id`, `as_of`, `run_id`, `consent_table` and `policy` (the file's path) for the tasks that are not
    mapped over the plan.
    """
    run_id = context["run_id"]
    ctx, record = _run_record(context)
    conn_id = setting(CONN_SETTING, DEFAULT_CONN_ID)
    policy_path = setting(POLICY_SETTING, default_policy_path())
    try:
        as_of = resolve_as_of(context.get("data_interval_end"), context)
        record.as_of = as_of
        with open_warehouse(conn_id) as wh:
            session = wh.session
            try:
                policy = load(policy_path)
                as_of = record.as_of = cutoff_after_ingest(as_of, policy)
                record.consent_table = policy.consent_table
                record.planned_datasets = json.dumps([d.name for d in policy.datasets])
                check_policy_names(session, policy.datasets, policy.consent_table)
                _, snap = open_run(session, record, policy.consent_table, policy.columns, ctx)
                with session.transaction() as s:  # parallel mapped tasks must not race to create schemas
                    for schema in sorted(
                        {t.schema for d in policy.datasets if (t := TableName.parse(d.target)).schema}
                    ):
                        s.run(f"CREATE SCHEMA IF NOT EXISTS {TableName(None, schema).sql()}")
            except BaseException as exc:
                record_failure(session, record, exc)
                raise
    except Exception as exc:  # noqa: BLE001
        fail_task(exc)
    log.info(
        "run %s: policy %s, %d datasets, consent %s as of %s: %d events count (fingerprint %s)",
        run_id,
        policy_path,
        len(policy.datasets),
        policy.consent_table,
        as_of.isoformat(),
        snap.events_counted,
        snap.fingerprint,
    )
    ti = context["ti"]
    for key, value in (
        ("conn_id", conn_id),
        ("as_of", as_of.isoformat()),
        ("run_id", run_id),
        ("consent_table", policy.consent_table),
        ("policy", str(policy_path)),
    ):
        ti.xcom_push(key=key, value=value)
    return dataset_plan(policy, conn_id=conn_id, as_of=as_of.isoformat(), run_id=run_id)


def failed_tasks(context: Mapping[str, Any]) -> dict[str, list[str]]:
    """{state: task ids (with map index)} of this Airflow run's failed / upstream-failed tasks, except the caller."""
    ti = context["ti"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[context["run_id"]])
    found: dict[str, list[str]] = {}
    for key, state in sorted(states.get(context["run_id"], {}).items()):
        if state in FAILED_STATES and key != ti.task_id:
            found.setdefault(state, []).append(key)
    return found


def describe(failed: Mapping[str, Sequence[str]]) -> str:
    return "; ".join(f"{FAILED_STATES[state]}: {', '.join(tasks)}" for state, tasks in failed.items())


def close_run(context: Mapping[str, Any]) -> dict[str, Any]:
    """Close the run record (success or failed), log a summary, and fail if anything upstream failed."""
    run_id = context["run_id"]
    owner = invocation_owner(run_context(context))
    conn_id = setting(CONN_SETTING, DEFAULT_CONN_ID)
    try:
        failed = failed_tasks(context)
        with open_warehouse(conn_id) as wh:
            s = wh.session
            runs = lineage.read_runs(s, run_id, limit=1) if lineage.has_tables(s) else []
            if not runs:
                raise RunFailedError(
                    f"no consentgate run {run_id!r} was recorded ({describe(failed) or 'no task failed'})"
                )
            run = runs[0]
            rows = lineage.read_lineage(s, run_id)
            problems = []
            if failed:
                problems.append(describe(failed))
            prints = sorted({r["consent_fingerprint"] for r in rows if r["trigger"] == "airflow"} - {None})
            if run["consent_fingerprint"] and prints and prints != [run["consent_fingerprint"]]:
                problems.append(
                    "the consent log changed during the run (datasets were enforced against different "
                    "consent snapshots); re-run the DAG"
                )
            # The opener's own error (e.g. why the consent log was refused, or a failed ingest) is kept
            # while that task is still failed; a re-run after clearing failed tasks starts from a clean slate.
            opener = run.get("task_id")  # a mapped task's instances are listed as task_id_mapindex
            opener_failed = any(t == opener or t.startswith(f"{opener}_") for t in failed.get("failed", []))
            earlier = run.get("error") if run["status"] == "failed" and opener_failed else None
            error = "; ".join(p for p in (earlier, *problems) if p)
            status = "failed" if error else "success"
            planned = lineage.RunRecord(run_id, planned_datasets=run.get("planned_datasets")).planned() or []
            missing = sorted(set(planned) - {r["dataset"] for r in rows})
            if missing and not error:
                error = f"planned datasets without a lineage row: {', '.join(missing)}"
            status = "failed" if error else "success"
            with s.transaction():
                # Only this DAG run's own run, and never one already successful (docs/runs.md).
                if (
                    not lineage.finish_run(
                        s, run_id, owner=owner, status=status, finished_at=utcnow(), error=error or None
                    )
                    and run["status"] != status
                ):
                    raise RunFailedError(
                        f"consentgate run {run_id!r} belongs to another invocation or already finished "
                        f"({run['status']}); its record was left as it is"
                    )
    except Exception as exc:  # noqa: BLE001
        fail_task(exc)
    summary = {
        "run_id": run_id,
        "status": status,
        "as_of": str(run["as_of"]),
        "consent_fingerprint": run["consent_fingerprint"],
        "datasets": [
            {
                "dataset": r["dataset"],
                "target": r["target"],
                "trigger": r["trigger"],
                "rows_in": r["rows_in"],
                "rows_out": r["rows_out"],
                "excluded": sum(int(r[k] or 0) for k in r if k.startswith("excluded_")),
            }
            for r in rows
        ],
        "error": error or None,
    }
    for d in summary["datasets"]:
        log.info(
            "  %-28s %-6s in %8d  out %8d  excluded %8d",
            d["dataset"],
            d["trigger"],
            d["rows_in"] or 0,
            d["rows_out"] or 0,
            d["excluded"],
        )
    log.info(
        "run %s: %s (consent as of %s, fingerprint %s)",
        run_id,
        status,
        summary["as_of"],
        summary["consent_fingerprint"],
    )
    if status != "success":
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"consentgate run {run_id} failed: {error}")
    return summary
