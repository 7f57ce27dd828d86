"""OpenLineage for the consentgate operators: custom run facets and the OperatorLineage they return.

Imported only from `get_openlineage_facets_on_complete`, so DAG parsing never loads the OpenLineage
client. Everything here is counts and table names; never a subject identifier.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from airflow.providers.common.compat.openlineage.facet import Dataset, RunFacet

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from consentgate.hooks import Location

# consentgate publishes no schema server; the facet schema URL is a URN naming facet and version.
SCHEMA_BASE = "urn:consentgate:facets:1-0-0"


@attrs.define
class ConsentEnforcementRunFacet(RunFacet):
    """What one consent enforcement did: the cut-off, the consent snapshot and the counts by reason.

    :param purpose: the purpose subjects had to grant
    :param as_of: the consent cut-off (ISO 8601, UTC)
    :param consent_fingerprint: fingerprint of the consent events that counted at the cut-off
    :param rows_in: rows read from the source
    :param rows_out: rows written to the target
    :param excluded: rows left out, by reason (null_subject, no_consent, denied, withdrawn, expired, invalid)
    :param run_id: the consentgate run id (joins consentgate_runs / consentgate_lineage)
    :param dataset: the dataset's name in lineage
    """

    purpose: str
    as_of: str
    consent_fingerprint: str
    rows_in: int
    rows_out: int
    excluded: dict[str, int] = attrs.field(factory=dict)
    run_id: str | None = None
    dataset: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}#/$defs/ConsentEnforcementRunFacet"


@attrs.define
class ConsentAuditRunFacet(RunFacet):
    """An audit of a table against consent: rows checked and violations by reason (counts only).

    :param purpose: the purpose audited
    :param as_of: the consent cut-off (ISO 8601, UTC)
    :param consent_fingerprint: fingerprint of the consent events that counted at the cut-off
    :param rows_checked: rows in the audited table
    :param violations: rows whose subject is not consented, by reason
    :param passed: True when there is no violation
    """

    purpose: str
    as_of: str
    consent_fingerprint: str
    rows_checked: int
    violations: dict[str, int] = attrs.field(factory=dict)
    passed: bool = True

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}#/$defs/ConsentAuditRunFacet"


def dataset(location: Location, table: str, default_schema: str) -> Dataset:
    return Dataset(namespace=location.ol_namespace(), name=location.ol_name(table, default_schema))


def enforcement_lineage(
    location: Location, default_schema: str, consent_table: str, summary: dict[str, Any]
) -> OperatorLineage:
    """inputs: the source and the consent log; outputs: the target; run facet consentEnforcement."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(
        inputs=[
            dataset(location, summary["source"], default_schema),
            dataset(location, consent_table, default_schema),
        ],
        outputs=[dataset(location, summary["target"], default_schema)],
        run_facets={
            "consentEnforcement": ConsentEnforcementRunFacet(
                purpose=summary["purpose"],
                as_of=summary["as_of"],
                consent_fingerprint=summary["consent_fingerprint"],
                rows_in=int(summary["rows_in"]),
                rows_out=int(summary["rows_out"]),
                excluded={k: int(v) for k, v in summary["excluded"].items()},
                run_id=summary.get("run_id"),
                dataset=summary.get("dataset"),
            )
        },
    )


def audit_lineage(
    location: Location, default_schema: str, consent_table: str, summary: dict[str, Any]
) -> OperatorLineage:
    """inputs: the audited table and the consent log; run facet consentAudit."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(
        inputs=[
            dataset(location, summary["table"], default_schema),
            dataset(location, consent_table, default_schema),
        ],
        outputs=[],
        run_facets={
            "consentAudit": ConsentAuditRunFacet(
                purpose=summary["purpose"],
                as_of=summary["as_of"],
                consent_fingerprint=summary["consent_fingerprint"],
                rows_checked=int(summary["rows_checked"]),
                violations={k: int(v) for k, v in summary["violations"].items()},
                passed=bool(summary["passed"]),
            )
        },
    )
