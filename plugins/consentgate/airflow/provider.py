"""The Airflow provider entry point (`apache_airflow_provider` in pyproject.toml).

Airflow calls `get_provider_info()` whenever it discovers providers (every CLI command, every worker),
so this module imports nothing beyond the package version: it is a plain dict.
"""

from __future__ import annotations

from typing import Any

from consentgate import __version__


def get_provider_info() -> dict[str, Any]:
    """Describe consentgate to Airflow's providers manager (shown by `airflow providers list`)."""
    return {
        "package-name": "consentgate",
        "name": "consentgate",
        "description": (
            "Consent enforcement for Airflow and dbt: only rows of subjects who opted in for a purpose "
            "reach their targets, with evidence for every run (run and lineage tables, OpenLineage events)."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "consentgate",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "consentgate",
                "python-modules": ["consentgate.airflow.operators"],
            }
        ],
    }
