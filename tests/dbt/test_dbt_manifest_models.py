"""consentgate.dbt.manifest on hand-made manifests: which models are ad-targeting, their subject column
(from the only_consented test or meta), their inputs with the consent log flagged, and what fails."""

from __future__ import annotations

from typing import Any

import pytest
from consentgate.dbt.manifest import PACKAGE_CONSENT_SOURCE, built, gated_models
from consentgate.errors import ManifestError


def _model(
    name: str, meta: dict[str, Any] | None = None, parents: tuple[str, ...] = (), **config: Any
) -> dict:
    return {
        "resource_type": "model", "name": name, "alias": name, "database": "db", "schema": "main",
        "config": {"meta": meta or {}, "materialized": config.get("materialized", "table"), "enabled": True},
        "depends_on": {"nodes": list(parents)}, "tags": config.get("tags", []),
    }  # fmt: skip


def _test(
    model: str, column: str, purpose: str, normalize: str | None = None, extra: tuple[str, ...] = ()
) -> dict:
    kwargs = {"column_name": column, "purpose": purpose, **({"normalize": normalize} if normalize else {})}
    return {
        "resource_type": "test", "attached_node": f"model.p.{model}",
        "test_metadata": {"name": "only_consented", "namespace": "consentgate", "kwargs": kwargs},
        "depends_on": {"nodes": [f"model.p.{model}", *extra]},
    }  # fmt: skip


SOURCES = {
    PACKAGE_CONSENT_SOURCE: {"resource_type": "source", "name": "consent_events", "identifier": "consent_log",
                             "database": "db", "schema": "compliance"},
}  # fmt: skip
AD = {"consentgate": {"ad_targeting": True, "purpose": " Ad_Targeting "}}


def test_ad_targeting_models_with_their_audit_column_and_inputs() -> None:
    manifest = {
        "sources": SOURCES,
        "nodes": {
            "model.p.stg": _model("stg"),
            "model.p.aud": _model("aud", AD, ("model.p.stg", PACKAGE_CONSENT_SOURCE)),
            "model.p.mail": _model("mail", {"consentgate_purpose": "email"}, ("model.p.stg",),
                                   tags=["consentgate_ad_targeting"]),
            "model.p.eph": _model("eph", AD, materialized="ephemeral"),
            "test.p.a": _test("aud", "customer_id", "AD_TARGETING", extra=(PACKAGE_CONSENT_SOURCE,)),
            "test.p.m": _test("mail", "email", "email", "lower"),
            "test.p.e": _test("eph", "customer_id", "ad_targeting"),
        },
    }  # fmt: skip
    models = {m.name: m for m in gated_models(manifest)}
    assert sorted(models) == ["aud", "eph", "mail"]
    assert models["aud"].audit() == {"table": "main.aud", "subject_column": "customer_id",
                                     "purpose": "ad_targeting", "normalize": None}  # fmt: skip
    assert models["mail"].audit()["normalize"] == "lower"
    inputs = {i.table: i.consent_log for i in models["aud"].inputs}
    assert inputs == {"main.stg": False, "compliance.consent_log": True}


def test_meta_subject_column_wins_over_the_test() -> None:
    meta = {"consentgate": {"ad_targeting": True, "purpose": "ad_targeting", "subject_column": "cust",
                            "normalize": "lower"}}  # fmt: skip
    manifest = {
        "nodes": {"model.p.aud": _model("aud", meta), "test.p.a": _test("aud", "customer_id", "ad_targeting")}
    }
    (model,) = gated_models(manifest)
    assert (model.subject_column, model.normalize) == ("cust", "lower")


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ({"model.p.aud": _model("aud", AD)}, "ad-targeting model model.p.aud names no subject column"),
        (
            {"model.p.aud": _model("aud", AD), "test.p.a": _test("aud", "customer_id", "email")},
            "add a consentgate.only_consented test on it for purpose 'ad_targeting'",
        ),
        (
            {"model.p.aud": _model("aud", {"consentgate": {"ad_targeting": True}})},
            "ad-targeting model model.p.aud declares no purpose",
        ),
    ],
    ids=["no_test", "test_for_another_purpose", "no_purpose"],
)
def test_a_model_that_cannot_be_audited_fails(nodes: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        gated_models({"nodes": nodes})


def test_built_means_success_in_run_results() -> None:
    results = {"results": [{"unique_id": "a", "status": "success"}, {"unique_id": "b", "status": "error"},
                           {"unique_id": "c", "status": "skipped"}]}  # fmt: skip
    assert built(results) == {"a"}
