"""Airflow operators: enforce one dataset, audit a table, run dbt with the run's cut-off and id.

Thin over `consentgate.engine.enforcement` and `consentgate.engine.lineage`. Constructors only store their arguments (they
run at every DAG parse); connections, hooks and heavy imports happen in `execute`.

Failures: enforcement fails closed. Every error is reduced to one line that never carries a database's
message (`errors.one_line`, docs/errors.md) and re-raised as `AirflowFailException` (no retry) unless `errors.retryable` says it
may go away by itself (a locked DuckDB file, a lost connection), in which case the task's retries apply.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from consentgate.airflow.common import (
    consent_columns,
    consented_alias,
    fail_task,
    resolve_as_of,
    run_context,
    safe_lineage,
)
from consentgate.airflow.hooks import dbt_env, open_warehouse
from consentgate.airflow.tasks import audit_table, check_audit, enforce_dataset
from consentgate.engine.policy import Dataset
from consentgate.errors import (
    DatabaseLockedError,
    DbtBuildError,
    mask_url,
    one_line,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from consentgate.airflow.hooks import Location


# -- enforcement -----------------------------------------------------------------------------------


class ConsentFilterOperator(BaseOperator):
    """Replace `target` by the rows of `source` whose subject is consented for `purpose` as of `as_of`.

    :param source: table read (`table` or `schema.table`), templated
    :param target: table replaced atomically by the consented rows, templated
    :param subject_column: the source column holding the subject key
    :param purpose: the purpose the subject must have granted, templated
    :param conn_id: Airflow connection: `duckdb` (DuckDBHook, host = database file) or `postgres`
    :param consent_table: the consent log, templated
    :param as_of: consent cut-off, templated (default the run's data_interval_end; naive = UTC)
    :param normalize: None, or `lower` to compare keys lower-cased (e-mail addresses)
    :param dataset: name of the dataset in lineage (default: the target)
    :param run_id: consentgate run id, templated (default: the Airflow run's id)
    :param consent_columns: column mapping of the consent log (policy `consent.columns`)

    Outlets default to the asset alias `consentgate_consented` (`consented_alias()`): each run announces its
    target through it as an asset event, since the target is known only at run time. When mapping with
    `.partial()`, pass `outlets=[consented_alias()]` to `partial()` (Airflow takes a mapped task's outlets
    from the partial arguments). Returns the run summary (counts only) as XCom.
    """

    template_fields: Sequence[str] = ("source", "target", "purpose", "as_of", "run_id", "consent_table")
    ui_color = "#d9f2e6"

    def __init__(
        self,
        *,
        source: str,
        target: str,
        subject_column: str,
        purpose: str,
        conn_id: str = "duckdb_default",
        consent_table: str = "consent_events",
        as_of: str | datetime | None = "{{ data_interval_end }}",
        normalize: str | None = None,
        dataset: str | None = None,
        run_id: str | None = None,
        consent_columns: Mapping[str, str | None] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [consented_alias()])
        super().__init__(**kwargs)
        self.source = source
        self.target = target
        self.subject_column = subject_column
        self.purpose = purpose
        self.conn_id = conn_id
        self.consent_table = consent_table
        self.as_of = as_of
        self.normalize = normalize
        self.dataset = dataset
        self.run_id = run_id
        self.consent_columns = dict(consent_columns) if consent_columns else None
        self._lineage_state: tuple[Location, str, str, dict[str, Any]] | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        self._lineage_state = None
        try:
            as_of = resolve_as_of(self.as_of, context)
            ds = Dataset(
                name=self.dataset or str(self.target),
                source=self.source,
                target=self.target,
                subject_column=self.subject_column,
                purpose=self.purpose,
                normalize=self.normalize,
            )
            with open_warehouse(self.conn_id) as wh:
                summary = enforce_dataset(
                    wh.session,
                    ds,
                    consent_table=self.consent_table,
                    columns=consent_columns(self.consent_columns),
                    as_of=as_of,
                    run_id=self.run_id or context["run_id"],
                    context=run_context(context),
                )
                self._lineage_state = (wh.location, wh.session.default_schema, self.consent_table, summary)
                uri = wh.location.asset_uri(summary["target"], wh.session.default_schema)
        except Exception as exc:  # noqa: BLE001 - every failure goes through the one retry rule
            fail_task(exc)
        self._emit_asset_event(context, uri, summary)
        return summary

    def _emit_asset_event(self, context: Context, uri: str, summary: dict[str, Any]) -> None:
        """Announce the target as an Airflow asset event (never fails the task)."""
        try:
            from airflow.sdk import Asset, AssetAlias

            aliases = [o for o in self.outlets if isinstance(o, AssetAlias)]
            for alias in aliases:
                context["outlet_events"][alias].add(
                    Asset(uri=uri),
                    extra={
                        "run_id": summary["run_id"],
                        "as_of": summary["as_of"],
                        "rows_out": summary["rows_out"],
                        "consent_fingerprint": summary["consent_fingerprint"],
                    },
                )
        except Exception as exc:  # noqa: BLE001
            self.log.warning("consentgate: could not emit the asset event for %s: %s", uri, one_line(exc))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """inputs: source and consent table; outputs: target; run facet `consentEnforcement`."""

        def build() -> OperatorLineage:
            from consentgate.airflow.lineage import enforcement_lineage

            assert self._lineage_state is not None
            return enforcement_lineage(*self._lineage_state)

        return safe_lineage(self, build if self._lineage_state else None)


# -- audit -----------------------------------------------------------------------------------------


class ConsentAuditOperator(BaseOperator):
    """Fail if `table` holds any row whose subject is not consented for `purpose` as of `as_of`.

    Read-only: takes one consent snapshot and counts; writes no table. The failure names the number of
    violating rows per reason, never a subject.

    :param table: the table to audit (`table` or `schema.table`), templated
    :param subject_column: its column holding the subject key
    :param purpose: the purpose every row's subject must have granted, templated
    :param conn_id: Airflow connection (`duckdb` or `postgres`)
    :param as_of: consent cut-off, templated (default the run's data_interval_end)
    :param consent_table: the consent log, templated
    :param normalize: None, or `lower` (e-mail keys)
    :param consent_columns: column mapping of the consent log (policy `consent.columns`)
    """

    template_fields: Sequence[str] = ("table", "purpose", "as_of", "consent_table")
    ui_color = "#fff2cc"

    def __init__(
        self,
        *,
        table: str,
        subject_column: str,
        purpose: str,
        conn_id: str = "duckdb_default",
        as_of: str | datetime | None = "{{ data_interval_end }}",
        consent_table: str = "consent_events",
        normalize: str | None = None,
        consent_columns: Mapping[str, str | None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.subject_column = subject_column
        self.purpose = purpose
        self.conn_id = conn_id
        self.as_of = as_of
        self.consent_table = consent_table
        self.normalize = normalize
        self.consent_columns = dict(consent_columns) if consent_columns else None
        self._lineage_state: tuple[Location, str, str, dict[str, Any]] | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        self._lineage_state = None
        try:
            as_of = resolve_as_of(self.as_of, context)
            with open_warehouse(self.conn_id) as wh:
                summary = audit_table(
                    wh.session,
                    table=self.table,
                    subject_column=self.subject_column,
                    purpose=self.purpose,
                    normalize=self.normalize,
                    consent_table=self.consent_table,
                    columns=consent_columns(self.consent_columns),
                    as_of=as_of,
                    run_id=context["run_id"],
                    context=run_context(context),
                )
                self._lineage_state = (wh.location, wh.session.default_schema, self.consent_table, summary)
            check_audit(summary)
        except Exception as exc:  # noqa: BLE001
            fail_task(exc)
        self.log.info(
            "audit passed: %s holds %d rows, all consented for %s as of %s",
            summary["table"],
            summary["rows_checked"],
            summary["purpose"],
            summary["as_of"],
        )
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """inputs: the audited table and the consent table; run facet `consentAudit` (also on failure)."""

        def build() -> OperatorLineage:
            from consentgate.airflow.lineage import audit_lineage

            assert self._lineage_state is not None
            return audit_lineage(*self._lineage_state)

        return safe_lineage(self, build if self._lineage_state else None)


# -- dbt -------------------------------------------------------------------------------------------

_LOCKED = re.compile(r"could not set lock on file", re.I)
#: dbt events (DBT_LOG_FORMAT=json) whose text is dbt's own: progress, results, counts, paths. Any other
#: event (RunResultError, MainEncounteredError, ...) can carry a database's message, which can quote row
#: values: the task log shows its name and level only (docs/errors.md).
SAFE_DBT_EVENTS = frozenset(
    {
        "MainReportVersion",
        "AdapterRegistered",
        "FoundStats",
        "ConcurrencyLine",
        "Formatting",
        "UnableToPartialParse",
        "LogStartLine",
        "LogModelResult",
        "LogTestResult",
        "LogSeedResult",
        "LogSnapshotResult",
        "LogHookStartLine",
        "LogHookEndLine",
        "HooksRunning",
        "FinishedRunningStats",
        "EndOfRunSummary",
        "StatsLine",
        "RunResultFailure",
        "RunResultWarning",
        "SQLCompiledPath",
        "CheckNodeTestFailure",
        "SkippingDetails",
        "LogNodeNoOpResult",
        "CommandCompleted",
        "DepsStartPackageInstall",
        "DepsInstallInfo",
        "DepsUpToDate",
        "DepsNoPackagesFound",
        "DepsLockUpdating",
        "DepsAddPackage",
        "JinjaLogInfo",
    }
)


def dbt_log_line(line: str) -> tuple[str, str]:
    """(text for the task log, dbt's raw message) of one line of dbt's JSON log output."""
    try:
        info = json.loads(line)["info"]
        name, level, msg = str(info["name"]), str(info.get("level", "info")), str(info.get("msg", ""))
    except (ValueError, KeyError, TypeError):
        return "dbt: an unstructured output line (withheld: it can quote row values)", line
    if name in SAFE_DBT_EVENTS:
        return msg.rstrip(), msg
    return f"dbt {name} ({level}): message withheld, it can quote row values (dbt's own log file has it)", msg


def dbt_executable() -> str:
    """dbt next to this Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("dbt")
    if beside.exists():
        return str(beside)
    found = shutil.which("dbt")
    if not found:
        raise DbtBuildError("dbt is not installed: pip install 'consentgate[dbt]' (dbt-core 1.11)")
    return found


class DbtBuildOperator(BaseOperator):
    """Run `dbt build` (or another dbt command) in a subprocess with the run's consent cut-off and run id.

    dbt receives `--vars` with `consentgate_as_of` (ISO 8601 UTC) and `consentgate_run_id`, so the dbt
    package's lineage rows join the Airflow run. dbt's progress and results stream to the task log; events
    that can carry a database's message (model errors) show as their name only (`SAFE_DBT_EVENTS`).

    After a successful run the ad-targeting models it built are read from dbt's manifest and run results
    (`consentgate.dbt.manifest`: meta `consentgate`, subject column from each model's `only_consented`
    test) and returned in the XCom as `ad_targeting_models` (the nightly DAG audits exactly these), each
    announced as an asset event through the alias `consentgate_consented`, and reported to OpenLineage:
    outputs the models, inputs their parents in the dbt graph, the consent log among them.

    :param project_dir: the dbt project, templated
    :param profiles_dir: directory holding profiles.yml (default: the project dir), templated
    :param target: profile target, templated
    :param command: dbt command, e.g. `build`, `run --full-refresh` or a list of words
    :param vars: extra dbt vars (dict), templated; consentgate_as_of / consentgate_run_id are always set
    :param select: `--select` expression, templated
    :param exclude: `--exclude` expression, templated
    :param conn_id: Airflow connection whose database dbt should use: exported to the profile as
        CONSENTGATE_DUCKDB (DuckDB) or CONSENTGATE_PG_* (PostgreSQL), templated
    :param as_of: consent cut-off, templated (default the run's data_interval_end)
    :param run_id: consentgate run id, templated (default the Airflow run's id)
    :param env: extra environment variables for dbt, templated
    :param install_deps: run `dbt deps` first when the project has packages.yml / dependencies.yml
    :param target_path: dbt `--target-path` (artefacts), templated
    :param log_path: dbt `--log-path`, templated
    :param dbt_bin: the dbt executable (default: dbt beside this Python, else on PATH)
    :param policy: a policy file, templated: its purposes are passed as var `consentgate_purposes` (unless
        `vars` sets it), so a model calling consented() for another purpose fails the compile
    """

    template_fields: Sequence[str] = (
        "project_dir",
        "profiles_dir",
        "target",
        "vars",
        "select",
        "exclude",
        "conn_id",
        "as_of",
        "run_id",
        "env",
        "target_path",
        "log_path",
        "policy",
    )
    template_fields_renderers = {"vars": "json", "env": "json"}
    ui_color = "#ffe0cc"

    def __init__(
        self,
        *,
        project_dir: str,
        profiles_dir: str | None = None,
        target: str | None = None,
        command: str | Sequence[str] = "build",
        vars: Mapping[str, Any] | None = None,  # noqa: A002 - dbt's own name
        select: str | None = None,
        exclude: str | None = None,
        conn_id: str | None = None,
        as_of: str | datetime | None = "{{ data_interval_end }}",
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        install_deps: bool = True,
        target_path: str | None = None,
        log_path: str | None = None,
        dbt_bin: str | None = None,
        policy: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [consented_alias()])
        super().__init__(**kwargs)
        self.project_dir = project_dir
        self.profiles_dir = profiles_dir
        self.target = target
        self.command = command
        self.vars = vars
        self.select = select
        self.exclude = exclude
        self.conn_id = conn_id
        self.as_of = as_of
        self.run_id = run_id
        self.env = env
        self.install_deps = install_deps
        self.target_path = target_path
        self.log_path = log_path
        self.dbt_bin = dbt_bin
        self.policy = policy
        self._proc: subprocess.Popen[str] | None = None
        self._lineage_state: tuple[Location, str, tuple[Any, ...]] | None = None

    def _words(self) -> list[str]:
        return shlex.split(self.command) if isinstance(self.command, str) else [str(w) for w in self.command]

    def _common_flags(self, *, target_path: bool = True) -> list[str]:
        """--project-dir, --profiles-dir, --target and the paths (`dbt deps` takes no --target-path)."""
        project = str(Path(self.project_dir).resolve())
        flags = [
            "--project-dir",
            project,
            "--profiles-dir",
            str(Path(self.profiles_dir or project).resolve()),
        ]
        if self.target:
            flags += ["--target", str(self.target)]
        if self.target_path and target_path:
            flags += ["--target-path", str(self.target_path)]
        if self.log_path:
            flags += ["--log-path", str(self.log_path)]
        return flags

    def build_command(self, dbt_vars: Mapping[str, Any]) -> list[str]:
        cmd = [self.dbt_bin or dbt_executable(), *self._words(), *self._common_flags()]
        cmd += ["--vars", json.dumps(dict(dbt_vars), sort_keys=True)]
        if self.select:
            cmd += ["--select", str(self.select)]
        if self.exclude:
            cmd += ["--exclude", str(self.exclude)]
        return cmd

    def execute(self, context: Context) -> dict[str, Any]:
        from consentgate.airflow import dbt_models

        self._lineage_state = None
        try:
            as_of = resolve_as_of(self.as_of, context)
            run_id = self.run_id or context["run_id"]
            dbt_vars = {
                **self._policy_vars(),
                **dict(self.vars or {}),
                "consentgate_as_of": as_of.isoformat(),
                "consentgate_run_id": run_id,
            }
            env = {
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",  # no network calls from a nightly job
                "DBT_USE_COLORS": "false",  # plain text in the task log
                **os.environ,
                **dbt_env(self.conn_id),
                **{k: str(v) for k, v in (self.env or {}).items()},
                "DBT_LOG_FORMAT": "json",  # structured events: only dbt's own texts reach the task log
            }
            project = Path(self.project_dir)
            if not (project / "dbt_project.yml").exists():
                raise DbtBuildError(f"no dbt project at {str(project.resolve())!r} (dbt_project.yml missing)")
            if self.install_deps and any(
                (project / f).exists() for f in ("packages.yml", "dependencies.yml")
            ):
                self._run(
                    [self.dbt_bin or dbt_executable(), "deps", *self._common_flags(target_path=False)], env
                )
            self._run(self.build_command(dbt_vars), env)
            target = dbt_models.target_dir(self.project_dir, self.target_path, env)
            outcome = dbt_models.read_outcome(target) if (target / "manifest.json").exists() else None
            location = dbt_models.warehouse_location(self.conn_id) if outcome else None
        except Exception as exc:  # noqa: BLE001
            fail_task(exc)
        if outcome is not None and location is not None:
            self._lineage_state = (location, dbt_models.default_schema(location, env), outcome.models)
            self._emit_model_events(context, dbt_models.asset_uris(location, outcome.models), run_id, as_of)
        return {
            "command": " ".join(self._words()),
            "as_of": as_of.isoformat(),
            "run_id": run_id,
            "results": self._results_summary(target),
            # None (not []) when dbt wrote no manifest: a caller auditing these must not pass on nothing.
            "ad_targeting_models": dbt_models.xcom_models(outcome.models) if outcome else None,
        }

    def _policy_vars(self) -> dict[str, Any]:
        """`consentgate_purposes` from the policy file, when one is given."""
        if not self.policy or not str(self.policy).strip() or str(self.policy).strip() == "None":
            return {}
        from consentgate.engine.policy import load

        return {"consentgate_purposes": [p.name for p in load(str(self.policy).strip()).purposes]}

    def _emit_model_events(
        self, context: Context, uris: Mapping[str, str], run_id: str, as_of: datetime
    ) -> None:
        """Announce each ad-targeting model built as an asset event (never fails the task)."""
        try:
            from airflow.sdk import Asset, AssetAlias

            for alias in (o for o in self.outlets if isinstance(o, AssetAlias)):
                for model, uri in uris.items():
                    context["outlet_events"][alias].add(
                        Asset(uri=uri),
                        extra={"run_id": run_id, "as_of": as_of.isoformat(), "dbt_model": model},
                    )
        except Exception as exc:  # noqa: BLE001
            self.log.warning("consentgate: could not emit the dbt models' asset events: %s", one_line(exc))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """outputs: the ad-targeting models built; inputs: their parents in the dbt graph (the consent
        log among them)."""

        def build() -> OperatorLineage:
            from consentgate.airflow.lineage import dbt_lineage

            assert self._lineage_state is not None
            return dbt_lineage(*self._lineage_state)

        return safe_lineage(self, build if self._lineage_state else None)

    def _run(self, cmd: list[str], env: Mapping[str, str]) -> None:
        shown = [("<vars>" if i and cmd[i - 1] == "--vars" else w) for i, w in enumerate(cmd)]
        self.log.info("running: %s", mask_url(" ".join(shown)))
        tail: deque[str] = deque(maxlen=200)
        self._proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
            cmd,
            cwd=str(Path(self.project_dir).resolve()),
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if not line.strip():
                continue
            text, raw = dbt_log_line(line)
            tail.append(raw)  # kept in memory for the lock check only, never logged
            self.log.info("%s", text)
        code = self._proc.wait()
        self._proc = None
        if code != 0:
            if any(_LOCKED.search(t) for t in tail):
                raise DatabaseLockedError(
                    "dbt could not open the DuckDB file: another process holds its lock; DuckDB allows one "
                    "writer per file (run dbt in the consentgate_duckdb pool)"
                )
            raise DbtBuildError(
                f"dbt {cmd[1]} exited with status {code}; see the dbt output above in the task log"
            )

    def _results_summary(self, path: Path) -> dict[str, int]:
        """Counts of node statuses from run_results.json in the target path (empty when dbt wrote none)."""
        try:
            data = json.loads((path / "run_results.json").read_text())
            return dict(Counter(str(r.get("status")) for r in data.get("results", [])))
        except (OSError, ValueError):
            return {}

    def on_kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
