"""The custom OpenLineage run facets, shared by the Airflow operators and by CLI runs.

Import this module lazily (it loads the OpenLineage client). Counts and names only; never a subject id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attr
from openlineage.client.facet_v2 import RunFacet

# consentgate publishes no schema server; the schema URL is a URN naming the facet and its version.
SCHEMA_BASE = "urn:consentgate:facets:1-0-0"


def _schema(name: str) -> str:
    return f"{SCHEMA_BASE}/{name}.json#/$defs/{name}"


@attr.define
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
    excluded: dict[str, int] = attr.field(factory=dict)
    run_id: str | None = None
    dataset: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return _schema("ConsentEnforcementRunFacet")


@attr.define
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
    violations: dict[str, int] = attr.field(factory=dict)
    passed: bool = True

    @staticmethod
    def _get_schema() -> str:
        return _schema("ConsentAuditRunFacet")


def enforcement_facet(summary: Mapping[str, Any]) -> ConsentEnforcementRunFacet:
    """The facet of an enforcement summary (`DatasetResult.summary()`, the operator's XCom)."""
    return ConsentEnforcementRunFacet(
        purpose=summary["purpose"],
        as_of=summary["as_of"],
        consent_fingerprint=summary["consent_fingerprint"],
        rows_in=int(summary["rows_in"]),
        rows_out=int(summary["rows_out"]),
        excluded={k: int(v) for k, v in summary["excluded"].items()},
        run_id=summary.get("run_id"),
        dataset=summary.get("dataset"),
    )


def audit_facet(summary: Mapping[str, Any]) -> ConsentAuditRunFacet:
    """The facet of an audit summary (the audit operator's XCom)."""
    return ConsentAuditRunFacet(
        purpose=summary["purpose"],
        as_of=summary["as_of"],
        consent_fingerprint=summary["consent_fingerprint"],
        rows_checked=int(summary["rows_checked"]),
        violations={k: int(v) for k, v in summary["violations"].items()},
        passed=bool(summary["passed"]),
    )
