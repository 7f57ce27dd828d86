"""consentgate registers with Airflow through entry points: the provider and the plugin."""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest
from cg_airflow import AIRFLOW_ENV, REPO, VENV_BIN, airflow_cli


def plugin_entry_point() -> EntryPoint:
    """consentgate's entry in the `airflow.plugins` group (exactly one)."""
    (ep,) = [e for e in entry_points(group="airflow.plugins") if e.value.startswith("consentgate.")]
    return ep


def load_plugin_module():
    """A fresh import of the module the entry point names (a new LazyReportApp each time)."""
    return importlib.reload(importlib.import_module(plugin_entry_point().module))


def test_plugin_is_registered_through_the_airflow_plugins_entry_point() -> None:
    ep = plugin_entry_point()
    assert ep.name == "consentgate"
    plugin = ep.load()
    assert plugin.__name__ == "ConsentGatePlugin"
    assert plugin.name == "consentgate"
    assert not (REPO / "plugins" / "consentgate_plugin.py").exists(), "a second copy of the plugin"


def test_provider_info_is_a_plain_dict_listing_the_operators() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("consentgate.")]
    info = ep.load()()
    assert info["package-name"] == "consentgate"
    assert info["versions"] == [__import__("consentgate").__version__]
    assert info["operators"] == [
        {"integration-name": "consentgate", "python-modules": ["consentgate.airflow.operators"]}
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


_DISTRIBUTIONS_PROBE = """
import json, sys
from importlib.metadata import distributions
sys.path.extend(sys.argv[1:])  # as Airflow appends its plugins folder
print(json.dumps([str(d.locate_file("")) for d in distributions() if d.metadata["Name"] == "consentgate"]))
"""


@pytest.mark.parametrize("plugins_folder", [[], [str(REPO / "plugins")]], ids=["installed", "plugins-folder"])
def test_airflow_sees_one_consentgate_distribution(plugins_folder, tmp_path) -> None:
    # Airflow reads the entry points of every distribution on sys.path without de-duplicating them: a
    # second copy of the metadata (a build's plugins/consentgate.egg-info) registers the plugin twice.
    out = subprocess.run(
        [sys.executable, "-c", _DISTRIBUTIONS_PROBE, *plugins_folder],
        cwd=tmp_path,
        env=AIRFLOW_ENV | {"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(out.stdout)
    assert len(found) == 1, (
        f"consentgate's metadata found {len(found)} times ({found}); delete the copy in plugins/"
    )


def test_plugin_is_cheap_to_import() -> None:
    probe = (
        "import json, sys; from importlib.metadata import entry_points; "
        "[ep.load() for ep in entry_points(group='airflow.plugins') if ep.name == 'consentgate']; "
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in "
        "('duckdb', 'dbt', 'pandas', 'consentgate', 'fastapi', 'psycopg2'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env=AIRFLOW_ENV | {"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    # Airflow's provider discovery imports consentgate.airflow.provider (a plain dict); nothing else of ours, and
    # neither FastAPI nor a warehouse driver (Airflow itself loads SQLAlchemy).
    assert set(loaded) <= {
        "consentgate",
        "consentgate.airflow",
        "consentgate.airflow.provider",
        plugin_entry_point().module,
    }, loaded
    assert plugin_entry_point().module in loaded


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
    "views": {p["name"]: p["external_views"] for p in info},
    "stray": sorted(m for m in ("cli", "engine", "operators", "__init__", "db", "lineage") if m in sys.modules),
}))
"""


def _plugins_seen_by_airflow(plugins_folder: Path) -> tuple[list[dict], dict]:
    """(`airflow plugins -o json`, what plugins_manager reports) with that plugins folder."""
    env = AIRFLOW_ENV | {"AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder), "PATH": "/usr/bin:/bin"}
    run = {"env": env, "capture_output": True, "text": True, "check": True, "timeout": 180}
    listed = subprocess.run([str(VENV_BIN / "airflow"), "plugins", "-o", "json"], **run)
    probe = subprocess.run([sys.executable, "-c", _PLUGIN_PROBE], **run)
    return json.loads(listed.stdout), json.loads(probe.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["empty", "this repository's plugins/"])
def test_airflow_loads_the_plugin_once_from_its_entry_point(airflow_db, tmp_path, folder) -> None:
    plugins_folder = tmp_path / "plugins" if folder == "empty" else REPO / "plugins"
    plugins_folder.mkdir(exist_ok=True)
    listed, seen = _plugins_seen_by_airflow(plugins_folder)
    ours = [p for p in listed if p["name"] == "consentgate"]
    assert len(ours) == 1, ours
    (plugin,) = ours
    ep = plugin_entry_point()
    version = __import__("consentgate").__version__
    assert plugin["source"] == f"consentgate=={version}: {ep}"
    assert plugin["macros"] == [f"{ep.module}.consent_cutoff"]
    assert plugin["fastapi_apps"] == [
        {"app": f"{ep.module}.LazyReportApp", "url_prefix": "/consentgate", "name": "consentgate run report"}
    ]
    assert seen["errors"] == {}  # in particular no "Plugin 'consentgate' already registered, skipping"
    assert [v["href"] for v in seen["views"]["consentgate"]] == ["/consentgate/"]
    # plugins/.airflowignore keeps the package's modules from being imported as top-level modules
    assert seen["stray"] == []


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

    broken = types.ModuleType("consentgate.airflow.webapp")
    broken.__spec__ = importlib.machinery.ModuleSpec("consentgate.airflow.webapp", None)

    def create_app():
        raise RuntimeError("report dependencies missing")

    broken.create_app = create_app
    monkeypatch.setitem(sys.modules, "consentgate.airflow.webapp", broken)
    plugin = load_plugin_module()
    assert plugin.ConsentGatePlugin.macros == [plugin.consent_cutoff]
    app = plugin.ConsentGatePlugin.fastapi_apps[0]["app"]
    response = TestClient(app).get("/")
    assert response.status_code == 503
    assert response.text == "consentgate report unavailable (see the API server log)\n"
