"""The ad-targeting models a dbt invocation built, read from its manifest and run results, and where
their tables live: for DbtBuildOperator's XCom (the nightly DAG audits exactly these models), its asset
events and its OpenLineage datasets. Table names and counts only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consentgate.airflow.hooks import Location, dialect_of, duckdb_path, spark_location
from consentgate.dbt.manifest import GatedModel, built, gated_models, load_manifest, load_run_results
from consentgate.errors import one_line

log = logging.getLogger("consentgate")


@dataclass(frozen=True)
class DbtOutcome:
    """What one dbt invocation left in its target path.

    :param models: the ad-targeting models it built successfully
    :param manifest_models: every ad-targeting model of the manifest
    """

    models: tuple[GatedModel, ...]
    manifest_models: tuple[GatedModel, ...]


def target_dir(project_dir: str | Path, target_path: str | None, env: Mapping[str, str]) -> Path:
    """Where dbt writes its artefacts: `--target-path`, else DBT_TARGET_PATH in dbt's environment,
    else `target`; a relative path is relative to the project directory (as dbt resolves it)."""
    chosen = target_path or env.get("DBT_TARGET_PATH") or "target"
    path = Path(chosen)
    return path if path.is_absolute() else Path(project_dir).resolve() / path


def read_outcome(target: Path) -> DbtOutcome:
    """The ad-targeting models of target/manifest.json, and those run_results.json says were built.
    ManifestError when either file is missing or a model names no subject column (fail closed: the
    model could not be audited)."""
    models = gated_models(load_manifest(target / "manifest.json"))
    done = built(load_run_results(target / "run_results.json"))
    return DbtOutcome(
        models=tuple(m for m in models if m.unique_id in done and m.materialized != "ephemeral"),
        manifest_models=tuple(models),
    )


def warehouse_location(conn_id: str | None) -> Location | None:
    """The Location of a connection's database without opening it, for asset URIs and OpenLineage.
    None without a connection, or when it cannot be read: lineage never fails the build it describes."""
    try:
        return _location(conn_id) if conn_id else None
    except Exception as exc:  # noqa: BLE001
        log.warning(
            "consentgate: no asset events or OpenLineage datasets for the dbt models: %s", one_line(exc)
        )
        return None


def _location(conn_id: str) -> Location | None:
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if dialect_of(conn.conn_type) == "duckdb":
        path = duckdb_path(conn_id)
        return Location("duckdb", path=path, database=Path(path).stem) if path else None
    if dialect_of(conn.conn_type) == "spark":  # sc://host:port, as the operators' asset URIs
        return spark_location(conn)
    return Location(
        "postgres",
        host=conn.host or "localhost",
        port=int(conn.port or 5432),
        database=conn.schema or "postgres",
    )


def default_schema(location: Location, env: Mapping[str, str]) -> str:
    """dbt's target schema in the consentgate profile (tables are named with their schema anyway)."""
    if location.dialect == "duckdb":
        return "main"
    if location.dialect == "spark":
        return env.get("CONSENTGATE_SPARK_SCHEMA") or os.environ.get("CONSENTGATE_SPARK_SCHEMA") or "default"
    return env.get("CONSENTGATE_PG_SCHEMA") or os.environ.get("CONSENTGATE_PG_SCHEMA") or "public"


def asset_uris(location: Location, models: tuple[GatedModel, ...]) -> dict[str, str]:
    """{model name: Airflow Asset URI of its table}."""
    return {m.name: location.asset_uri(m.relation.table, m.relation.schema) for m in models}


def xcom_models(models: tuple[GatedModel, ...]) -> list[dict[str, Any]]:
    """The models as the DAG's audit plan takes them: {model, table, subject_column, purpose, normalize}."""
    return [{"model": m.name, **m.audit()} for m in models]
