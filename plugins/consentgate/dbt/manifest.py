"""What a dbt manifest says about the ad-targeting models: one source of truth for the nightly DAG's
audits and for the datasets `DbtBuildOperator` reports.

An ad-targeting model is one the coverage check treats as such (`coverage.is_ad_targeting`: meta
``consentgate: {ad_targeting: true, purpose: ...}`` or the tag ``consentgate_ad_targeting``). Its
subject column (and `normalize`) is the one its ``consentgate.only_consented`` test checks for its
purpose, or meta ``consentgate: {subject_column: ..., normalize: ...}`` when set. Its inputs are its
direct parents in the graph (models, seeds, snapshots, sources), the consent log among them (the
package's source ``consentgate.consent_events``, or the node var ``consentgate_consent_relation``
names), flagged ``consent_log``.

Standard library only; it never imports dbt. Table names and column names only, never a row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from consentgate.dbt.coverage import is_ad_targeting, purpose_of
from consentgate.errors import ManifestError
from consentgate.rule.semantics import fold_case

__all__ = ["GatedModel", "Relation", "built", "gated_models", "load_manifest", "load_run_results"]

ONLY_CONSENTED = "only_consented"
PACKAGE_CONSENT_SOURCE = "source.consentgate.consentgate.consent_events"
_RELATION_TYPES = ("model", "seed", "snapshot", "source")


@dataclass(frozen=True)
class Relation:
    """A table of the graph.

    :param unique_id: dbt's node id
    :param database: the database (DuckDB: the file's catalog name)
    :param schema: the schema
    :param identifier: the table name (a model's alias, a source's identifier)
    :param consent_log: True for the consent log
    """

    unique_id: str
    database: str | None
    schema: str
    identifier: str
    consent_log: bool = False

    @property
    def table(self) -> str:
        """`schema.table`, as the evidence tables and the audit name tables."""
        return f"{self.schema}.{self.identifier}"


@dataclass(frozen=True)
class GatedModel:
    """An ad-targeting model with what its audit needs and its lineage.

    :param unique_id: dbt's node id
    :param name: the model's name
    :param relation: the table it builds
    :param purpose: its purpose (trimmed, A-Z lowered)
    :param subject_column: the column holding the subject key in the model
    :param normalize: None or `lower`
    :param materialized: table, incremental, view, ephemeral ...
    :param inputs: its direct parents, the consent log among them
    """

    unique_id: str
    name: str
    relation: Relation
    purpose: str
    subject_column: str
    normalize: str | None
    materialized: str
    inputs: tuple[Relation, ...] = field(default_factory=tuple)

    def audit(self) -> dict[str, Any]:
        """The model as one entry of the DAG's audit plan (ConsentAuditOperator's arguments)."""
        return {
            "table": self.relation.table,
            "subject_column": self.subject_column,
            "purpose": self.purpose,
            "normalize": self.normalize,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _relation(uid: str, node: Mapping[str, Any], consent_ids: set[str]) -> Relation:
    identifier = node.get("identifier") if node.get("resource_type") == "source" else node.get("alias")
    return Relation(
        unique_id=uid,
        database=node.get("database"),
        schema=str(node.get("schema")),
        identifier=str(identifier or node.get("name")),
        consent_log=uid in consent_ids,
    )


def _consent_ids(manifest: Mapping[str, Any]) -> set[str]:
    """The consent log's node ids: the package's source, and any node its var points at (the only
    node every only_consented test depends on besides the model it tests)."""
    ids = {PACKAGE_CONSENT_SOURCE}
    for node in (manifest.get("nodes") or {}).values():
        if (node.get("test_metadata") or {}).get("name") == ONLY_CONSENTED and node.get("attached_node"):
            ids.update(
                d for d in (node.get("depends_on") or {}).get("nodes") or [] if d != node["attached_node"]
            )
    return ids


def _subject(
    uid: str, node: Mapping[str, Any], purpose: str, tests: Sequence[Mapping[str, Any]]
) -> tuple[str, str | None]:
    for meta in (node.get("config") or {}).get("meta") or {}, node.get("meta") or {}:
        marks = meta.get("consentgate") if isinstance(meta, Mapping) else None
        if (
            isinstance(marks, Mapping)
            and isinstance(marks.get("subject_column"), str)
            and marks["subject_column"].strip()
        ):
            return marks["subject_column"].strip(), marks.get("normalize")
    for test in tests:
        kwargs = (test.get("test_metadata") or {}).get("kwargs") or {}
        if (
            test.get("attached_node") == uid
            and fold_case(str(kwargs.get("purpose") or "").strip(" ")) == purpose
        ):
            return str(kwargs.get("column_name")), kwargs.get("normalize")
    raise ManifestError(
        f"ad-targeting model {uid} names no subject column: add a consentgate.only_consented test on it "
        f"for purpose {purpose!r}, or meta consentgate.subject_column"
    )


def gated_models(manifest: Mapping[str, Any]) -> list[GatedModel]:
    """Every enabled ad-targeting model of the manifest, sorted by unique_id. A model without a purpose
    or a subject column raises ManifestError (it cannot be audited: fail closed)."""
    nodes = manifest.get("nodes") or {}
    sources = manifest.get("sources") or {}
    graph = {**sources, **nodes}
    consent_ids = _consent_ids(manifest)
    tests = [n for n in nodes.values() if (n.get("test_metadata") or {}).get("name") == ONLY_CONSENTED]
    out = []
    for uid, node in sorted(nodes.items()):
        if not isinstance(node, Mapping) or not is_ad_targeting(node):
            continue
        if (node.get("config") or {}).get("enabled") is False:
            continue
        purpose = purpose_of(node)
        if purpose is None:
            raise ManifestError(f"ad-targeting model {uid} declares no purpose (meta consentgate.purpose)")
        column, normalize = _subject(uid, node, purpose, tests)
        parents = [
            _relation(p, graph[p], consent_ids)
            for p in (node.get("depends_on") or {}).get("nodes") or []
            if p in graph and graph[p].get("resource_type") in _RELATION_TYPES
        ]
        out.append(
            GatedModel(
                unique_id=uid,
                name=str(node.get("name")),
                relation=_relation(uid, node, consent_ids),
                purpose=purpose,
                subject_column=column,
                normalize=normalize,
                materialized=str((node.get("config") or {}).get("materialized") or ""),
                inputs=tuple(parents),
            )
        )
    return out


def _load_json(path: Path, what: str, hint: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{what} not found: {path} ({hint})") from None
    except OSError as exc:
        raise ManifestError(f"cannot read {what} {path}: {exc.strerror or type(exc).__name__}") from None
    except ValueError as exc:
        raise ManifestError(f"{what} {path} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{what} {path} is not a JSON object")
    return data


def load_manifest(path: str | Path) -> dict[str, Any]:
    """target/manifest.json; ManifestError when missing or not a manifest."""
    data = _load_json(Path(path), "dbt manifest", "run dbt parse, compile or build to write it")
    if not isinstance(data.get("nodes"), dict):
        raise ManifestError(f"dbt manifest {path} does not look like a dbt manifest (no 'nodes' mapping)")
    return data


def load_run_results(path: str | Path) -> dict[str, Any]:
    """target/run_results.json; ManifestError when missing or unreadable."""
    return _load_json(Path(path), "dbt run results", "dbt writes it after a run")


def built(run_results: Mapping[str, Any]) -> set[str]:
    """unique_ids of the nodes an invocation built successfully."""
    return {
        str(r.get("unique_id"))
        for r in run_results.get("results") or []
        if str(r.get("status")) in ("success", "pass")
    }
