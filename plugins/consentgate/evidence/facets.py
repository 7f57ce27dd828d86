"""The custom OpenLineage run facets, shared by the Airflow operators and by CLI runs.

Import this module lazily (it loads the OpenLineage client). Counts and names only; never a subject id.

Each facet has a JSON Schema in the package (`consentgate/evidence/facet_schemas/<Facet>.json`, an OpenLineage
custom facet schema extending the spec's RunFacet). `_schemaURL` points at it: under the base URL in
CONSENTGATE_FACET_SCHEMA_BASE when set (where you publish that folder), else at the installed file
(`file://...`, which resolves on the machine that emitted the event). `_producer` is consentgate's own
producer URI, also on the Airflow operators' facets (whose events carry the Airflow provider's producer).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attr
from openlineage.client.facet_v2 import RunFacet

from consentgate import __version__

log = logging.getLogger("consentgate")

# A URI naming the producing code and its version (consentgate has no web home to point at).
PRODUCER = f"urn:consentgate:{__version__}"
SCHEMA_BASE_ENV = "CONSENTGATE_FACET_SCHEMA_BASE"
SCHEMA_PACKAGE = "consentgate.evidence"
SCHEMA_FOLDER = "facet_schemas"


def schema_dir() -> Path:
    """The installed folder of the facet schemas."""
    return Path(str(files(SCHEMA_PACKAGE).joinpath(SCHEMA_FOLDER))).resolve()


def schema_base() -> str:
    """Base URL of the schema files: CONSENTGATE_FACET_SCHEMA_BASE, else the installed folder's file URL."""
    configured = os.environ.get(SCHEMA_BASE_ENV, "").strip()
    if configured and urlsplit(configured).scheme:
        return configured.rstrip("/")
    if configured:
        log.warning(
            "%s=%r is not an absolute URL (e.g. https://host/consentgate/%s/facet_schemas); "
            "facets point at the installed schemas instead",
            SCHEMA_BASE_ENV,
            configured,
            __version__,
        )
    return schema_dir().as_uri()


def schema_url(name: str) -> str:
    """`_schemaURL` of facet `name`: its schema file and the JSON Pointer to its definition."""
    return f"{schema_base()}/{name}.json#/$defs/{name}"


@attr.define
class ConsentGateRunFacet(RunFacet):
    """A run facet produced by consentgate: `_producer` is consentgate's, whatever the client's default."""

    def __attrs_post_init__(self) -> None:
        if not self._producer:
            self._producer = PRODUCER
        super().__attrs_post_init__()


@attr.define
class ConsentEnforcementRunFacet(ConsentGateRunFacet):
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
        return schema_url("ConsentEnforcementRunFacet")


@attr.define
class ConsentAuditRunFacet(ConsentGateRunFacet):
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
        return schema_url("ConsentAuditRunFacet")


# The run facets consentgate emits, by their key in `run.facets`.
RUN_FACETS: dict[str, type[ConsentGateRunFacet]] = {
    "consentEnforcement": ConsentEnforcementRunFacet,
    "consentAudit": ConsentAuditRunFacet,
}


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
