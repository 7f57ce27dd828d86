from __future__ import annotations

from pathlib import Path

import pytest
from consentgate.engine.policy import load, parse, parse_columns
from consentgate.errors import PolicyError

GOOD = {
    "consent": {"table": "crm.consents", "columns": {"subject_id": "customer_ref", "source": None}},
    "purposes": [{"name": "ads", "description": "Ads on other sites."}],
    "datasets": [
        {"name": "web", "source": "raw.web", "target": "ok.web", "subject_column": "cid", "purpose": "ADS"},
        {
            "name": "mail",
            "source": "raw.mail",
            "target": "ok.mail",
            "subject_column": "email",
            "purpose": "ads",
            "normalize": "lower",
        },
    ],
}


def test_valid_policy_with_column_mapping() -> None:
    p = parse(GOOD)
    assert p.consent_table == "crm.consents"
    assert (
        p.columns.subject_id == "customer_ref" and p.columns.source is None and p.columns.status == "status"
    )
    assert [d.name for d in p.datasets] == ["web", "mail"] and p.datasets[1].normalize == "lower"


def test_shipped_example_policy_is_valid() -> None:
    from consentgate.demo import demo_policy_path

    p = load(demo_policy_path())
    assert {d.purpose for d in p.datasets} <= {x.name for x in p.purposes}


def _with(path: str, value):
    import copy

    data = copy.deepcopy(GOOD)
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    last = keys[-1]
    if value is KeyError:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return data


@pytest.mark.parametrize(
    "data,match",
    [
        (_with("datasets.0.subject_column", KeyError), r"datasets\[0\]\.subject_column: required"),
        (_with("datasets.0.purpose", "email"), r"datasets\[0\]\.purpose: purpose 'email' is not declared"),
        (_with("datasets.1.normalize", "upper"), r"datasets\[1\]\.normalize: unknown normalisation 'upper'"),
        (_with("datasets.0.target", "ok.web; drop table x"), r"datasets\[0\]\.target: .*plain identifier"),
        (_with("datasets.1.target", "ok.web"), r"datasets: two datasets have the same target 'ok.web'"),
        (_with("datasets.0.colour", "red"), r"datasets\[0\]\.colour: unknown field"),
        (_with("purposes.0.description", ""), r"purposes\[0\]\.description: required"),
        (
            _with("consent.columns.status", None),
            r"consent.columns.status: required column cannot be mapped to null",
        ),
        (_with("consent.columns.shoe_size", "x"), r"consent.columns.shoe_size: unknown field"),
        (_with("consent.table", "a.b.c"), r"consent.table: .*plain identifier"),
        ([1, 2], r"policy: expected a mapping"),
    ],
)
def test_invalid_policy_names_the_field(data, match: str) -> None:
    with pytest.raises(PolicyError, match=match):
        parse(data)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot be read"):
        load(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("purposes: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML at line"):
        load(bad)


@pytest.mark.parametrize(
    ("mapping", "match"),
    [
        ({"subject_id": None}, r"columns\.subject_id: required column cannot be mapped to null"),
        ({"subjectid": "customer"}, r"columns\.subjectid: unknown field"),
        ({"status": "status; DROP TABLE x"}, r"columns\.status: "),
        (["subject_id"], r"columns: expected a mapping"),
    ],
)
def test_operator_column_mapping_is_validated_like_a_policy(mapping, match: str) -> None:
    # ConsentFilterOperator / ConsentAuditOperator(consent_columns=...) go through parse_columns.
    with pytest.raises(PolicyError, match=match):
        parse_columns(mapping)


def test_operator_column_mapping_keeps_optional_columns_absent() -> None:
    cols = parse_columns({"subject_id": "customer_ref", "source": None})
    assert (cols.subject_id, cols.source, cols.status) == ("customer_ref", None, "status")


def test_purpose_names_are_trimmed_of_spaces_only() -> None:
    # docs/semantics.md rule 3: the SQL trims U+0020 only, so the policy does the same.
    base = {"name": "d", "source": "s", "target": "t", "subject_column": "c"}
    policy = parse(
        {"purposes": [{"name": " ads ", "description": "Ads."}], "datasets": [{**base, "purpose": "ADS "}]}
    )
    assert (policy.purposes[0].name, policy.datasets[0].purpose) == ("ads", "ADS")
    with pytest.raises(PolicyError, match=r"datasets\[0\]\.purpose: purpose 'ads\\t' is not declared"):
        parse(
            {"purposes": [{"name": "ads", "description": "Ads."}], "datasets": [{**base, "purpose": "ads\t"}]}
        )
