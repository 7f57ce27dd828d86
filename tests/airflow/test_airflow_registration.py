"""consentgate registers with Airflow: the provider (entry point) and the plugin (plugins folder)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from cg_airflow import AIRFLOW_ENV, REPO, airflow_cli


def load_plugin_module():
    spec = importlib.util.spec_from_file_location(
        "consentgate_plugin", REPO / "plugins" / "consentgate_plugin.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_provider_info_is_a_plain_dict_listing_the_operators() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("consentgate.")]
    info = ep.load()()
    assert info["package-name"] == "consentgate"
    assert info["versions"] == [__import__("consentgate").__version__]
    assert info["operators"] == [
        {"integration-name": "consentgate", "python-modules": ["consentgate.operators"]}
    ]
    json.dumps(info)  # nothing but plain data


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 11, 29, 2, 0), "2026-11-29T02:00:00+00:00"),
        (datetime(2026, 11, 29, 3, 0, tzinfo=timezone(timedelta(hours=1))), "2026-11-29T02:00:00+00:00"),
        ("2026-11-29 02:00:00+00:00", "2026-11-29T02:00:00+00:00"),
        ("2026-11-29T04:00:00+02:00", "2026-11-29T02:00:00+00:00"),
    ],
)
def test_consent_cutoff_macro_normalises_to_utc(value, expected) -> None:
    assert load_plugin_module().consent_cutoff(value) == expected


@pytest.mark.parametrize("value", [None, "", "None"])
def test_consent_cutoff_macro_refuses_a_missing_cutoff(value) -> None:
    with pytest.raises(ValueError, match="no cut-off"):
        load_plugin_module().consent_cutoff(value)


def test_plugin_file_is_cheap_to_import() -> None:
    probe = (
        "import importlib.util, json, sys; "
        "spec = importlib.util.spec_from_file_location('consentgate_plugin', sys.argv[1]); "
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in "
        "('duckdb', 'dbt', 'pandas', 'consentgate', 'fastapi'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(REPO / "plugins" / "consentgate_plugin.py")],
        env=AIRFLOW_ENV | {"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    # Airflow's provider discovery imports consentgate.provider (a plain dict); nothing else of ours.
    assert set(loaded) <= {"consentgate", "consentgate.provider"}, loaded


@pytest.mark.slow
def test_airflow_providers_list_shows_consentgate(airflow_db) -> None:
    out = airflow_cli("providers", "list", "-o", "json")
    providers = {p["package_name"]: p for p in json.loads(out.stdout)}
    assert "consentgate" in providers
    assert providers["consentgate"]["version"] == __import__("consentgate").__version__


_PLUGIN_PROBE = """
import json, sys
from airflow import plugins_manager
info = plugins_manager.get_plugin_info()
print(json.dumps({
    "errors": plugins_manager.get_import_errors(),
    "plugins": {p["name"]: p["macros"] for p in info},
    "apps": {p["name"]: p["fastapi_apps"] for p in info},
    "views": {p["name"]: p["external_views"] for p in info},
    "stray": sorted(m for m in ("cli", "engine", "operators", "__init__", "db", "lineage") if m in sys.modules),
}))
"""


@pytest.mark.slow
def test_airflow_plugins_lists_consentgate_without_import_errors(airflow_db) -> None:
    out = airflow_cli("plugins", "-o", "json")
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert plugins["consentgate"]["source"] == "$PLUGINS_FOLDER/consentgate_plugin.py"
    probe = subprocess.run(
        [sys.executable, "-c", _PLUGIN_PROBE],
        env=AIRFLOW_ENV | {"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert result["plugins"]["consentgate"] == ["consentgate_plugin.consent_cutoff"]
    assert result["apps"]["consentgate"] == [
        {
            "app": "consentgate_plugin.LazyReportApp",
            "url_prefix": "/consentgate",
            "name": "consentgate run report",
        }
    ]
    assert [v["href"] for v in result["views"]["consentgate"]] == ["/consentgate/"]
    # plugins/.airflowignore kept the package's modules from being imported as top-level modules
    assert result["stray"] == []


def test_report_app_is_built_on_first_request_and_serves_the_run_report(tmp_path, monkeypatch) -> None:
    from starlette.testclient import TestClient

    plugin = load_plugin_module()
    app = plugin.ConsentGatePlugin.fastapi_apps[0]["app"]
    assert app._app is None  # nothing built at plugin load
    monkeypatch.delenv("CONSENTGATE_DATABASE", raising=False)
    response = TestClient(app).get("/")
    assert response.status_code == 503  # the report's own "not configured" page
    assert "CONSENTGATE_DATABASE" in response.text
    assert app._app is not None


def test_report_app_that_cannot_be_built_answers_503_and_the_plugin_still_loads(monkeypatch) -> None:
    import types

    from starlette.testclient import TestClient

    broken = types.ModuleType("consentgate.webapp")
    broken.__spec__ = importlib.machinery.ModuleSpec("consentgate.webapp", None)

    def create_app():
        raise RuntimeError("report dependencies missing")

    broken.create_app = create_app
    monkeypatch.setitem(sys.modules, "consentgate.webapp", broken)
    plugin = load_plugin_module()
    assert plugin.ConsentGatePlugin.macros == [plugin.consent_cutoff]
    app = plugin.ConsentGatePlugin.fastapi_apps[0]["app"]
    response = TestClient(app).get("/")
    assert response.status_code == 503
    assert response.text == "consentgate report unavailable (see the API server log)\n"
