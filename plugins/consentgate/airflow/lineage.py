"""OpenLineage for the consentgate operators: custom run facets and the OperatorLineage they return
(DbtBuildOperator: the ad-targeting models it built and their inputs in the dbt graph).

Imported only from `get_openlineage_facets_on_complete`, so DAG parsing never loads the OpenLineage
client. Everything here is counts and table names; never a subject identifier.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.openlineage.facet import Dataset

from consentgate.evidence.facets import audit_facet, enforcement_facet

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from consentgate.airflow.hooks import Location


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
        run_facets={"consentEnforcement": enforcement_facet(summary)},
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
        run_facets={"consentAudit": audit_facet(summary)},
    )


def dbt_lineage(location: Location, default_schema: str, models: tuple[Any, ...]) -> OperatorLineage:
    """DbtBuildOperator: outputs the ad-targeting models built (`consentgate.dbt.manifest.GatedModel`),
    inputs their parents in the dbt graph, each once, the consent log among them."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    inputs: dict[str, Dataset] = {}
    for model in models:
        for parent in model.inputs:
            inputs.setdefault(parent.table, dataset(location, parent.table, default_schema))
    return OperatorLineage(
        inputs=[inputs[t] for t in sorted(inputs)],
        outputs=[dataset(location, m.relation.table, default_schema) for m in models],
    )
