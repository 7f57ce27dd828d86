"""find_violations and coverage_command (plugins/consentgate/dbt/coverage.py) on small hand-made manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from consentgate.dbt.coverage import Violation, coverage_command, find_violations, gate_purposes

CONSENTED = "macro.consentgate.consented"
AD = {"consentgate": {"ad_targeting": True, "purpose": "ad_targeting"}}
PERSONAL = {"consentgate": {"personal_data": True}}


def model(
    name: str,
    parents: tuple[str, ...] = (),
    *,
    meta: dict | None = None,
    tags: tuple[str, ...] = (),
    raw: str = "select 1",
    compiled: str | None = None,
    macros: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "unique_id": f"model.p.{name}",
        "resource_type": "model",
        "depends_on": {"nodes": list(parents), "macros": list(macros)},
        "config": {"meta": meta or {}, "tags": list(tags)},
        "meta": meta or {},
        "tags": list(tags),
        "raw_code": raw,
        "compiled_code": compiled,
    }


def seed(name: str, *, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "unique_id": f"seed.p.{name}",
        "resource_type": "seed",
        "depends_on": {"nodes": [], "macros": []},
        "config": {"meta": {}, "tags": list(tags)},
        "meta": {},
        "tags": list(tags),
    }


def source(name: str, *, personal: bool = True, source_level: bool = False) -> dict[str, Any]:
    meta = PERSONAL if personal and not source_level else {}
    return {
        "unique_id": f"source.p.raw.{name}",
        "resource_type": "source",
        "meta": meta,
        "source_meta": PERSONAL if personal and source_level else {},
        "config": {"meta": meta},
        "tags": [],
    }


def manifest(*nodes: dict[str, Any], macros: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"},
        "nodes": {n["unique_id"]: n for n in nodes if n["resource_type"] != "source"},
        "sources": {n["unique_id"]: n for n in nodes if n["resource_type"] == "source"},
        "macros": macros or {},
    }


def gate_raw(relation: str, purpose: str = "ad_targeting") -> str:
    return f"select * from ({{{{ consentgate.consented({relation}, 'customer_id', '{purpose}') }}}}) as c"


def comment(purpose: str) -> str:
    return f'/* consentgate:consented {{"purpose": "{purpose}", "relation": "x"}} */ select 1'


def messages(violations: list[Violation]) -> list[str]:
    return [v.message() for v in violations]


def test_ad_model_reading_personal_data_without_consented_is_reported_with_its_path() -> None:
    m = manifest(
        source("web_events"),
        model("stg_web_events", ("source.p.raw.web_events",)),
        model("ad_audience", ("model.p.stg_web_events",), meta=AD),
    )
    assert messages(find_violations(m)) == [
        "model.p.ad_audience <- model.p.stg_web_events <- source.p.raw.web_events "
        "(personal data, purpose ad_targeting): no consented() call"
    ]
    (violation,) = find_violations(m)
    assert violation.personal_data_node == "source.p.raw.web_events"
    assert violation.path == ("model.p.ad_audience", "model.p.stg_web_events", "source.p.raw.web_events")


def test_consented_in_a_staging_model_covers_everything_behind_it() -> None:
    m = manifest(
        source("web_events"),
        model(
            "stg_web_events_ads",
            ("source.p.raw.web_events",),
            raw=gate_raw("source('raw', 'web_events')"),
            macros=(CONSENTED,),
        ),
        model("ad_audience", ("model.p.stg_web_events_ads",), meta=AD),
    )
    assert find_violations(m) == []


def test_consented_in_the_ad_model_itself_covers_all_its_inputs() -> None:
    m = manifest(
        source("customers"),
        source("web_events"),
        model("stg_customers", ("source.p.raw.customers",)),
        model(
            "ad_audience",
            ("model.p.stg_customers", "source.p.raw.web_events"),
            meta=AD,
            raw=gate_raw("ref('stg_customers')"),
            macros=(CONSENTED,),
        ),
    )
    assert find_violations(m) == []


def test_consented_for_another_purpose_does_not_cover() -> None:
    m = manifest(
        source("web_events"),
        model(
            "stg",
            ("source.p.raw.web_events",),
            raw=gate_raw("source('raw', 'web_events')", "analytics"),
            macros=(CONSENTED,),
        ),
        model("ad_audience", ("model.p.stg",), meta=AD),
    )
    assert messages(find_violations(m)) == [
        "model.p.ad_audience <- model.p.stg <- source.p.raw.web_events (personal data, purpose ad_targeting): "
        "no consented() call for 'ad_targeting' (model.p.stg calls consented() for 'analytics')"
    ]


def test_purposes_match_trimmed_and_case_insensitively() -> None:
    m = manifest(
        source("web_events"),
        model(
            "stg",
            ("source.p.raw.web_events",),
            raw=gate_raw("source('raw', 'web_events')", " AD_Targeting "),
            macros=(CONSENTED,),
        ),
        model(
            "ad", ("model.p.stg",), meta={"consentgate": {"ad_targeting": True, "purpose": "Ad_targeting "}}
        ),
    )
    assert find_violations(m) == []


def test_a_purpose_known_only_after_compilation_is_read_from_the_compiled_comment() -> None:
    raw = "select * from ({{ consentgate.consented(ref('stg'), 'customer_id', var('purpose')) }}) as c"
    parsed = model("gate", ("source.p.raw.web_events",), raw=raw, macros=(CONSENTED,))
    compiled = {**parsed, "compiled_code": comment("ad_targeting")}
    ad = model("ad", ("model.p.gate",), meta=AD)
    assert (
        len(find_violations(manifest(source("web_events"), parsed, ad))) == 1
    )  # `dbt parse`: unknown purpose
    assert find_violations(manifest(source("web_events"), compiled, ad)) == []  # `dbt compile`: known


def test_a_comment_without_a_dependency_on_consented_does_not_count() -> None:
    fake = model(
        "gate", ("source.p.raw.web_events",), compiled=comment("ad_targeting"), raw=comment("ad_targeting")
    )
    m = manifest(source("web_events"), fake, model("ad", ("model.p.gate",), meta=AD))
    assert len(find_violations(m)) == 1


def test_a_wrapper_macro_around_consented_counts() -> None:
    wrapper = "macro.p.ads_only"
    macros = {
        wrapper: {"depends_on": {"macros": ["macro.consentgate.consented"]}},
        CONSENTED: {"depends_on": {"macros": ["macro.consentgate.default__consented"]}},
    }
    gate = model("gate", ("source.p.raw.web_events",), compiled=comment("ad_targeting"), macros=(wrapper,))
    m = manifest(source("web_events"), gate, model("ad", ("model.p.gate",), meta=AD), macros=macros)
    assert find_violations(m) == []


def test_tags_mark_ad_targeting_models_and_personal_seeds() -> None:
    m = manifest(
        seed("crm_contacts", tags=("personal_data",)),
        seed("country_codes"),
        model(
            "lookalike",
            ("seed.p.crm_contacts", "seed.p.country_codes"),
            tags=("consentgate_ad_targeting",),
            meta={"consentgate_purpose": "ad_targeting"},
        ),
    )
    assert messages(find_violations(m)) == [
        "model.p.lookalike <- seed.p.crm_contacts (personal data, purpose ad_targeting): no consented() call"
    ]


def test_source_level_meta_marks_every_table_personal() -> None:
    m = manifest(source("purchases", source_level=True), model("ad", ("source.p.raw.purchases",), meta=AD))
    assert len(find_violations(m)) == 1


def test_an_ad_targeting_model_without_a_purpose_is_a_violation() -> None:
    m = manifest(model("ad", tags=("consentgate_ad_targeting",)))
    assert messages(find_violations(m)) == [
        "model.p.ad: ad-targeting model has no purpose (set config meta consentgate.purpose)"
    ]


def test_each_personal_node_is_reported_once_with_a_shortest_path() -> None:
    m = manifest(
        source("events"),
        model("stg", ("source.p.raw.events",), meta=PERSONAL),
        model("wide", ("model.p.stg",)),
        model("ad", ("model.p.wide", "model.p.stg"), meta=AD),
    )
    assert messages(find_violations(m)) == [
        "model.p.ad <- model.p.stg (personal data, purpose ad_targeting): no consented() call",
        "model.p.ad <- model.p.stg <- source.p.raw.events (personal data, purpose ad_targeting): no consented() call",
    ]


def test_models_that_reach_no_personal_data_pass() -> None:
    m = manifest(source("calendar", personal=False), model("ad", ("source.p.raw.calendar",), meta=AD))
    assert find_violations(m) == []


def test_models_not_marked_ad_targeting_are_not_checked() -> None:
    m = manifest(source("web_events"), model("report", ("source.p.raw.web_events",)))
    assert find_violations(m) == []


@pytest.mark.parametrize(
    ("raw", "purposes"),
    [
        ("{{ consentgate.consented(ref('a'), 'id', 'ad_targeting') }}", {"ad_targeting"}),
        ('{{ consentgate.consented(ref("a"), "id", "ad_targeting") }}', {"ad_targeting"}),
        ("{{ consentgate.consented(source('raw', 'a'), 'email', purpose='email_marketing', normalize='lower') }}",
         {"email_marketing"}),
        ("{{ consentgate.consented(\n    ref('a'),\n    subject_column='id',\n    purpose = 'Ad_Targeting'\n) }}",
         {"ad_targeting"}),
        ("{{ consentgate.consented(ref('a'), 'id', var('p')) }}", set()),
        ("{{ not_consented(ref('a'), 'id', 'ad_targeting') }}", set()),
        ("{{ consentgate.consented(ref('a'), 'id', 'x') }} {{ consentgate.consented(ref('b'), 'id', 'y') }}",
         {"x", "y"}),
    ],
)  # fmt: skip
def test_purposes_are_read_from_raw_consented_calls(raw: str, purposes: set[str]) -> None:
    assert gate_purposes(model("m", raw=raw, macros=(CONSENTED,))) == purposes


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_coverage_command_exits_0_and_says_so_when_covered(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    m = manifest(source("web_events", personal=False), model("ad", ("source.p.raw.web_events",), meta=AD))
    assert coverage_command(_write(tmp_path, m), as_json=False) == 0
    assert (
        capsys.readouterr().out == "consentgate coverage: 1 ad-targeting model(s) checked, 0 violation(s)\n"
    )


def test_coverage_command_exits_1_and_prints_each_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    m = manifest(source("web_events"), model("ad", ("source.p.raw.web_events",), meta=AD))
    assert coverage_command(_write(tmp_path, m), as_json=False) == 1
    assert capsys.readouterr().out.splitlines() == [
        "model.p.ad <- source.p.raw.web_events (personal data, purpose ad_targeting): no consented() call",
        "consentgate coverage: 1 ad-targeting model(s) checked, 1 violation(s)",
    ]


def test_coverage_command_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    m = manifest(source("web_events"), model("ad", ("source.p.raw.web_events",), meta=AD))
    assert coverage_command(_write(tmp_path, m), as_json=True) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["models_checked"] == ["model.p.ad"]
    assert report["violations"] == [
        {
            "model": "model.p.ad",
            "purpose": "ad_targeting",
            "path": ["model.p.ad", "source.p.raw.web_events"],
            "personal_data_node": "source.p.raw.web_events",
            "reason": "no consented() call",
            "message": "model.p.ad <- source.p.raw.web_events (personal data, purpose ad_targeting): "
            "no consented() call",
        }
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "manifest not found: "),
        ("{not json", "is not valid JSON: "),
        ('["a list"]', "does not look like a dbt manifest (no 'nodes' mapping)"),
        ('{"nodes": []}', "does not look like a dbt manifest (no 'nodes' mapping)"),
    ],
)
def test_coverage_command_exits_2_with_one_line_for_a_bad_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: str | None, message: str
) -> None:
    path = tmp_path / "manifest.json" if content is None else _write(tmp_path, content)
    assert coverage_command(path, as_json=False) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("consentgate coverage: ")
    assert message in captured.err
    assert captured.err.count("\n") == 1


def test_coverage_module_imports_without_dbt() -> None:
    import subprocess
    import sys

    code = "import sys; import consentgate.dbt.coverage; assert not any(m.startswith('dbt') for m in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
