"""OpenLineage events for runs outside Airflow (`consentgate run`), through the openlineage-python client.

One run becomes a parent job `consentgate.run` (START, then COMPLETE or FAIL) and one child job per
dataset, `consentgate.run.<dataset>` (START, then COMPLETE with the `consentEnforcement` run facet, or
FAIL with the error), each child pointing at the parent with a ParentRunFacet. Inputs are the source
and the consent log, outputs the target; the Airflow operators emit the same facet.

Emission is off unless configured, and best-effort: it logs and returns, never raises.

- `CONSENTGATE_OPENLINEAGE_FILE=/path/events.jsonl`: append every event to that file (one JSON per line);
- otherwise the client's standard configuration, when any of it is set: `OPENLINEAGE_CONFIG` (a YAML
  file), `OPENLINEAGE_URL` (HTTP, e.g. Marquez), or `OPENLINEAGE__TRANSPORT__...` variables;
- `OPENLINEAGE_DISABLED=true` turns it off; `OPENLINEAGE_NAMESPACE` sets the job namespace
  (default `consentgate`); `OPENLINEAGE_PARENT_ID` (`namespace/job/run-uuid`) makes the run a child of
  an orchestrator's run.

OpenLineage run ids are UUIDs: a consentgate run id that is one (the default, uuid4 hex) is used as is,
any other (`--run-id nightly-2026-11-29`) maps to a stable uuid5, so `parent_id(run_id)` can be
computed before or after the run and handed to `dbt-ol` as its OPENLINEAGE_PARENT_ID.

An ingest of consent sources (`consentgate ingest`, `emit_ingest`) becomes a parent job
`consentgate.ingest` and one child job per source, `consentgate.ingest.<source>`: inputs the source's
table (`inputStatistics`: observations read), output the consent log (`outputStatistics`: events
written), FAIL with the error when the source's ingest failed. The run id is the ingest id's.

Events carry counts, table names and the consent fingerprint; never a subject identifier.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consentgate.engine.enforcement import utcnow
from consentgate.errors import one_line
from consentgate.rule.names import TableName

if TYPE_CHECKING:
    from collections.abc import Sequence

    from consentgate.engine.enforcement import DatasetResult, RunResult
    from consentgate.engine.policy import Policy
    from consentgate.sources.log import IngestRecord

log = logging.getLogger("consentgate")

FILE_ENV = "CONSENTGATE_OPENLINEAGE_FILE"
NAMESPACE_ENV = "OPENLINEAGE_NAMESPACE"
DEFAULT_NAMESPACE = "consentgate"
JOB_NAME = "consentgate.run"
INGEST_JOB_NAME = "consentgate.ingest"
# uuid5 namespace for run ids that are not UUIDs (fixed forever: changing it breaks parent links).
_RUN_ID_NAMESPACE = uuid.UUID("6f1c2b8e-3d5a-4c1e-9a47-5b0e8d2f7c31")


def enabled() -> bool:
    """True when some OpenLineage destination is configured (and OPENLINEAGE_DISABLED is not true)."""
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if os.environ.get(FILE_ENV, "").strip() or os.environ.get("OPENLINEAGE_URL", "").strip():
        return True
    if os.environ.get("OPENLINEAGE_CONFIG", "").strip():
        return True
    return any(k.startswith("OPENLINEAGE__TRANSPORT") for k in os.environ)


def job_namespace() -> str:
    return os.environ.get(NAMESPACE_ENV, "").strip() or DEFAULT_NAMESPACE


def ol_run_id(run_id: str, dataset: str | None = None) -> str:
    """The OpenLineage run UUID of a consentgate run (or of one dataset's child run)."""
    if dataset is None:
        try:
            return str(uuid.UUID(run_id))
        except ValueError:
            return str(uuid.uuid5(_RUN_ID_NAMESPACE, run_id))
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, f"{run_id}/{dataset}"))


def parent_id(run_id: str, namespace: str | None = None) -> str:
    """`namespace/job/run-uuid` of a consentgate run: the value of OPENLINEAGE_PARENT_ID for `dbt-ol`."""
    return f"{namespace or job_namespace()}/{JOB_NAME}/{ol_run_id(run_id)}"


def duckdb_location(database: str | Path) -> tuple[str, str]:
    """(dataset namespace, database name) of a DuckDB file: `duckdb:///abs/path.duckdb` and its stem,
    the catalog name DuckDB gives the file (the same convention as the Airflow operators)."""
    p = Path(database).resolve()
    return f"duckdb://{p}", p.stem


def enforcement_facet(ds: DatasetResult) -> Any:
    """The `consentEnforcement` run facet of one dataset's result."""
    from consentgate.evidence.facets import enforcement_facet as from_summary

    return from_summary(ds.summary())


def make_client() -> Any:
    """A client for the configured destination: the file of CONSENTGATE_OPENLINEAGE_FILE, else the
    client's own configuration (OPENLINEAGE_CONFIG, OPENLINEAGE_URL, OPENLINEAGE__... variables)."""
    from openlineage.client import OpenLineageClient

    path = os.environ.get(FILE_ENV, "").strip()
    if path:
        from openlineage.client.transport.file import FileConfig, FileTransport

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=path, append=True)))
    return OpenLineageClient()


class _Emitter:
    """Builds and sends the events of one run; stops at the first transport error."""

    def __init__(self, client: Any, namespace: str, location: tuple[str, str], default_schema: str) -> None:
        from openlineage.client import event_v2
        from openlineage.client.facet_v2 import job_type_job

        from consentgate.evidence.facets import PRODUCER

        self.ev = event_v2
        self.producer = PRODUCER  # the same URI as on the consentgate facets
        self.client = client
        self.namespace = namespace
        self.location = location
        self.default_schema = default_schema
        self.sent = 0
        self.job_type = job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="CONSENTGATE", jobType="JOB"
        )

    def dataset_name(self, table: str) -> str:
        t = TableName.parse(table).resolved(self.default_schema)
        return f"{self.location[1]}.{t.schema}.{t.name}"

    def inputs(self, tables: list[str], rows: dict[str, int] | None = None) -> list[Any]:
        from openlineage.client.facet_v2 import input_statistics_input_dataset as stats

        out = []
        for t in dict.fromkeys(tables):
            facets: dict[str, Any] = {}
            if rows and t in rows:
                facets["inputStatistics"] = stats.InputStatisticsInputDatasetFacet(rowCount=rows[t])
            out.append(
                self.ev.InputDataset(
                    namespace=self.location[0], name=self.dataset_name(t), inputFacets=facets
                )
            )
        return out

    def outputs(self, tables: list[str], rows: dict[str, int] | None = None) -> list[Any]:
        from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

        out = []
        for t in dict.fromkeys(tables):
            facets: dict[str, Any] = {}
            if rows and t in rows:
                facets["outputStatistics"] = stats.OutputStatisticsOutputDatasetFacet(rowCount=rows[t])
            out.append(
                self.ev.OutputDataset(
                    namespace=self.location[0], name=self.dataset_name(t), outputFacets=facets
                )
            )
        return out

    def emit(
        self,
        state: str,
        when: datetime,
        job: str,
        run_uuid: str,
        run_facets: dict[str, Any],
        inputs: list[Any],
        outputs: list[Any],
    ) -> None:
        event = self.ev.RunEvent(
            eventType=getattr(self.ev.RunState, state),
            eventTime=when.replace(tzinfo=UTC).isoformat() if when.tzinfo is None else when.isoformat(),
            run=self.ev.Run(runId=run_uuid, facets=run_facets),
            job=self.ev.Job(namespace=self.namespace, name=job, facets={"jobType": self.job_type}),
            inputs=inputs,
            outputs=outputs,
            producer=self.producer,
        )
        self.client.emit(event)
        self.sent += 1

    def parent_facet(self, run_id: str, job: str = JOB_NAME) -> Any:
        from openlineage.client.facet_v2 import parent_run

        return parent_run.ParentRunFacet(
            run=parent_run.Run(runId=ol_run_id(run_id)),
            job=parent_run.Job(namespace=self.namespace, name=job),
            root=self.root_of_run(run_id, job),
        )

    def root_of_run(self, run_id: str, job_name: str = JOB_NAME) -> Any:
        from openlineage.client.facet_v2 import parent_run

        outer = _outer_parent()
        if outer is None:
            ns, job, rid = self.namespace, job_name, ol_run_id(run_id)
        else:
            ns, job, rid = outer["root"] or outer["parent"]
        return parent_run.Root(
            run=parent_run.RootRun(runId=rid), job=parent_run.RootJob(namespace=ns, name=job)
        )

    def outer_facets(self) -> dict[str, Any]:
        """A ParentRunFacet for the consentgate run itself when an orchestrator passed OPENLINEAGE_PARENT_ID."""
        from openlineage.client.facet_v2 import parent_run

        outer = _outer_parent()
        if outer is None:
            return {}
        ns, job, rid = outer["parent"]
        root = outer["root"] or outer["parent"]
        return {
            "parent": parent_run.ParentRunFacet(
                run=parent_run.Run(runId=rid),
                job=parent_run.Job(namespace=ns, name=job),
                root=parent_run.Root(
                    run=parent_run.RootRun(runId=root[2]),
                    job=parent_run.RootJob(namespace=root[0], name=root[1]),
                ),
            )
        }


def _split_parent(value: str) -> tuple[str, str, str] | None:
    parts = value.strip().split("/")
    if len(parts) < 3:
        return None
    ns, job, rid = parts[0], "/".join(parts[1:-1]), parts[-1]
    try:
        uuid.UUID(rid)
    except ValueError:
        return None
    return ns, job, rid


def _outer_parent() -> dict[str, Any] | None:
    parent = _split_parent(os.environ.get("OPENLINEAGE_PARENT_ID", ""))
    if parent is None:
        return None
    return {"parent": parent, "root": _split_parent(os.environ.get("OPENLINEAGE_ROOT_PARENT_ID", ""))}


def url_location(url: str) -> tuple[str, str]:
    """(dataset namespace, database name) of a connection URL, as OpenLineage names them:
    `postgres://host:5432` and the database (no user or password)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scheme = {"postgresql": "postgres"}.get(parts.scheme.lower(), parts.scheme.lower())
    default_port = {"postgres": 5432, "sc": 15002, "hive": 10000}.get(scheme)
    host = parts.hostname or "localhost"
    port = parts.port or default_port
    return f"{scheme}://{host}{f':{port}' if port else ''}", parts.path.lstrip("/").split("/")[0] or "default"


def _location(database: str | Path | None, location: tuple[str, str] | None) -> tuple[str, str]:
    if location is not None:
        return location
    if database is not None:
        if isinstance(database, str) and "://" in database and not database.startswith("duckdb://"):
            return url_location(database)
        return duckdb_location(
            database.split("://", 1)[1] if isinstance(database, str) and "://" in database else database
        )
    return ("duckdb://unknown", "unknown")


def emit_run(
    result: RunResult,
    *,
    policy: Policy | None = None,
    consent_table: str | None = None,
    database: str | Path | None = None,
    location: tuple[str, str] | None = None,
    default_schema: str = "main",
    started_at: datetime | None = None,
    client: Any = None,
) -> int:
    """Emit a finished run's events: parent START, per dataset START and COMPLETE/FAIL, parent COMPLETE/FAIL.

    :param result: what `run_policy` returned
    :param policy: the policy run (for the consent table and the sources of failed datasets)
    :param consent_table: the consent log, when no policy is given
    :param database: the DuckDB file (dataset namespace `duckdb://<abs path>`, names `<stem>.<schema>.<table>`)
    :param location: (namespace, database name) instead, e.g. (`postgres://host:5432`, `warehouse`)
    :param default_schema: schema of unqualified table names
    :param started_at: when the run started (naive UTC); default: the time of emission
    :param client: an OpenLineageClient; default: built from the environment, and only if configured
    :return: the number of events sent (0 when not configured or on any error, which is logged)
    """
    return _send(
        f"run {result.run_id}",
        client,
        (database, location),
        default_schema,
        lambda e: _emit_run(e, result, policy, consent_table, started_at),
    )


def _send(
    what: str,
    client: Any,
    where: tuple[str | Path | None, tuple[str, str] | None],
    default_schema: str,
    body: Any,
) -> int:
    """Run `body(emitter)` for the datasets of `where` (database, location: see _location) and return
    the number of events it sent: 0 when OpenLineage is not
    configured (and no client is given); any error is logged as one line, never raised (lineage never
    fails the work it describes)."""
    if client is None and not enabled():
        return 0
    emitter = None
    try:
        emitter = _Emitter(client or make_client(), job_namespace(), _location(*where), default_schema)
        body(emitter)
    except Exception as exc:  # noqa: BLE001 - lineage never fails the work it describes
        log.warning("OpenLineage events for %s not (all) sent: %s", what, one_line(exc))
    return emitter.sent if emitter else 0


def _error_facet(message: str) -> dict[str, Any]:
    from openlineage.client.facet_v2 import error_message_run

    return {
        "errorMessage": error_message_run.ErrorMessageRunFacet(message=message, programmingLanguage="python")
    }


def _emit_start_fail(
    e: _Emitter,
    job: str,
    uid: str,
    started_at: datetime | None,
    error: BaseException | str,
    inputs: Any,
    outputs: Any,
) -> None:
    """START then FAIL of a job that failed before any of its parts ran."""
    message = error if isinstance(error, str) else one_line(error)
    e.emit("START", started_at or utcnow(), job, uid, e.outer_facets(), inputs, outputs)
    e.emit("FAIL", utcnow(), job, uid, {**e.outer_facets(), **_error_facet(message)}, inputs, outputs)


def _emit_run(
    e: _Emitter,
    result: RunResult,
    policy: Policy | None,
    consent_table: str | None,
    started_at: datetime | None,
) -> None:
    start = started_at or utcnow()
    consent = consent_table or (policy.consent_table if policy else None)
    consent_in = [consent] if consent else []
    planned = {d.name: d for d in policy.datasets} if policy else {}
    sources = [d.source for d in result.datasets] + [planned[n].source for n in result.errors if n in planned]
    targets = [d.target for d in result.datasets] + [planned[n].target for n in result.errors if n in planned]
    parent_uuid = ol_run_id(result.run_id)
    e.emit(
        "START",
        start,
        JOB_NAME,
        parent_uuid,
        e.outer_facets(),
        e.inputs(sources + consent_in),
        e.outputs(targets),
    )
    for ds in result.datasets:
        child = ol_run_id(result.run_id, ds.dataset)
        job = f"{JOB_NAME}.{ds.dataset}"
        inputs = e.inputs([ds.source, *consent_in], {ds.source: ds.rows_in})
        outputs = e.outputs([ds.target], {ds.target: ds.rows_out})
        facets = {"parent": e.parent_facet(result.run_id)}
        e.emit("START", start, job, child, facets, inputs, outputs)
        e.emit(
            "COMPLETE",
            utcnow(),
            job,
            child,
            {**facets, "consentEnforcement": enforcement_facet(ds)},
            inputs,
            outputs,
        )
    for name, error in result.errors.items():
        child = ol_run_id(result.run_id, name)
        job = f"{JOB_NAME}.{name}"
        d = planned.get(name)
        inputs = e.inputs([d.source, *consent_in]) if d else []
        outputs = e.outputs([d.target]) if d else []
        facets = {"parent": e.parent_facet(result.run_id)}
        e.emit("START", start, job, child, facets, inputs, outputs)
        e.emit("FAIL", utcnow(), job, child, {**facets, **_error_facet(error)}, inputs, outputs)
    final = {**e.outer_facets()}
    if not result.ok:
        final |= _error_facet("; ".join(f"{k}: {v}" for k, v in result.errors.items()))
    e.emit(
        "COMPLETE" if result.ok else "FAIL",
        utcnow(),
        JOB_NAME,
        parent_uuid,
        final,
        e.inputs(sources + consent_in, {d.source: d.rows_in for d in result.datasets}),
        e.outputs([d.target for d in result.datasets], {d.target: d.rows_out for d in result.datasets}),
    )


def emit_failed_run(
    run_id: str,
    error: BaseException | str,
    *,
    policy: Policy | None = None,
    database: str | Path | None = None,
    location: tuple[str, str] | None = None,
    default_schema: str = "main",
    started_at: datetime | None = None,
    client: Any = None,
) -> int:
    """Emit START and FAIL for a run that failed before any dataset (e.g. an unreadable consent log)."""
    tables = [d.source for d in policy.datasets] + [policy.consent_table] if policy else []
    targets = [d.target for d in policy.datasets] if policy else []
    return _send(
        f"run {run_id}",
        client,
        (database, location),
        default_schema,
        lambda e: _emit_start_fail(
            e, JOB_NAME, ol_run_id(run_id), started_at, error, e.inputs(tables), e.outputs(targets)
        ),
    )


def emit_ingest(
    records: Sequence[IngestRecord],
    *,
    database: str | Path | None = None,
    location: tuple[str, str] | None = None,
    default_schema: str = "main",
    client: Any = None,
) -> int:
    """Emit an ingest's events: parent START, per source START and COMPLETE/FAIL, parent COMPLETE/FAIL.

    :param records: what `consentgate.sources.ingest.ingest` returned (one ingest id)
    :param database: the DuckDB file (dataset namespace `duckdb://<abs path>`, names `<stem>.<schema>.<table>`)
    :param location: (namespace, database name) instead, e.g. (`postgres://host:5432`, `warehouse`)
    :param default_schema: schema of unqualified table names (the consent log's `consent_events`)
    :param client: an OpenLineageClient; default: built from the environment, and only if configured
    :return: the number of events sent (0 when not configured, without records, or on any error, logged)
    """
    if not records:
        return 0
    return _send(
        f"ingest {records[0].ingest_id}",
        client,
        (database, location),
        default_schema,
        lambda e: _emit_ingest(e, records),
    )


def _emit_ingest(e: _Emitter, records: Sequence[IngestRecord]) -> None:
    ingest_id = records[0].ingest_id
    parent_uuid = ol_run_id(ingest_id)
    tables = [r.source_table for r in records]
    logs = [r.consent_table for r in records]
    start = min(r.started_at for r in records)

    e.emit("START", start, INGEST_JOB_NAME, parent_uuid, e.outer_facets(), e.inputs(tables), e.outputs(logs))
    for r in records:
        job = f"{INGEST_JOB_NAME}.{r.source}"
        child = ol_run_id(ingest_id, r.source)
        inputs = e.inputs([r.source_table], {r.source_table: r.observations_read})
        outputs = e.outputs([r.consent_table], {r.consent_table: r.events_written})
        facets = {"parent": e.parent_facet(ingest_id, INGEST_JOB_NAME)}
        e.emit("START", r.started_at, job, child, facets, inputs, outputs)
        ok = r.status == "success"
        end = {**facets, **({} if ok else _error_facet(r.error or "failed"))}
        e.emit("COMPLETE" if ok else "FAIL", r.finished_at or utcnow(), job, child, end, inputs, outputs)
    failed = [r for r in records if r.status != "success"]
    final = {
        **e.outer_facets(),
        **(_error_facet("; ".join(f"{r.source}: {r.error}" for r in failed)) if failed else {}),
    }
    written: dict[str, int] = {}
    for r in records:
        written[r.consent_table] = written.get(r.consent_table, 0) + r.events_written
    read: dict[str, int] = {}
    for r in records:
        read[r.source_table] = read.get(r.source_table, 0) + r.observations_read
    e.emit(
        "FAIL" if failed else "COMPLETE",
        max((r.finished_at or utcnow()) for r in records),
        INGEST_JOB_NAME,
        parent_uuid,
        final,
        e.inputs(tables, read),
        e.outputs(logs, written),
    )


def emit_failed_ingest(
    ingest_id: str,
    error: BaseException | str,
    *,
    policy: Policy | None = None,
    database: str | Path | None = None,
    location: tuple[str, str] | None = None,
    default_schema: str = "main",
    started_at: datetime | None = None,
    client: Any = None,
) -> int:
    """Emit START and FAIL of an ingest that stopped before any source was ingested (a source that
    cannot be read stops them all): inputs the policy's source tables, output its consent log."""
    tables = [src.table for src in policy.sources] if policy else []
    logs = [policy.consent_table] if policy else []
    return _send(
        f"ingest {ingest_id}",
        client,
        (database, location),
        default_schema,
        lambda e: _emit_start_fail(
            e, INGEST_JOB_NAME, ol_run_id(ingest_id), started_at, error, e.inputs(tables), e.outputs(logs)
        ),
    )
