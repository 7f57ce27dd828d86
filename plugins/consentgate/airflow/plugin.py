"""The consentgate Airflow plugin: a template macro and the run report web app.

Registered through the `airflow.plugins` entry point (pyproject.toml), so `pip install
consentgate[airflow]` is enough: no file to copy into the plugins folder. Importing this module is cheap
and has no side effects: no connection, no Variable, no FastAPI. The report app (`consentgate.airflow.webapp`) is
built on its first request, and a failure to import or build it answers 503 instead of breaking the
plugin.

In templates: ``{{ macros.consentgate.consent_cutoff(data_interval_end) }}``.
In the Airflow UI: "Consent runs" (the report of the latest run), served under /consentgate/.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

REPORT_PREFIX = "/consentgate"


def consent_cutoff(value: datetime | str | None) -> str:
    """The consent cut-off of a run as UTC ISO 8601 (e.g. ``2026-11-29T02:00:00+00:00``).

    Accepts a datetime (naive = UTC) or ISO text, as `data_interval_end` renders. Raises ValueError on
    None or text that is not a timestamp: a run must never enforce against an unknown cut-off.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        raise ValueError("consent_cutoff: no cut-off given (data_interval_end is None for this run)")
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.isoformat()


class LazyReportApp:
    """An ASGI app that builds `consentgate.airflow.webapp.create_app()` on its first request.

    Keeps FastAPI and the report code out of every plugin load (scheduler, workers, CLI); if the app
    cannot be built, each request gets a plain 503 and the reason is logged once.
    """

    def __init__(self) -> None:
        self._app: Any = None
        self._error: str | None = None

    def _build(self) -> Any:
        if self._app is None and self._error is None:
            try:
                from consentgate.airflow.webapp import create_app

                self._app = create_app()
            except Exception as exc:  # noqa: BLE001 - a broken report must not break Airflow's UI
                self._error = f"{type(exc).__name__}: {exc}"
                log.warning("consentgate report app unavailable: %s", self._error)
        return self._app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        app = self._build()
        if app is not None:
            await app(scope, receive, send)
            return
        if scope.get("type") != "http":
            return
        body = b"consentgate report unavailable (see the API server log)\n"
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"60")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class ConsentGatePlugin(AirflowPlugin):
    """Macros for consent-aware DAGs and the consent run report."""

    name = "consentgate"
    macros = [consent_cutoff]
    fastapi_apps = [{"app": LazyReportApp(), "url_prefix": REPORT_PREFIX, "name": "consentgate run report"}]
    external_views = [
        {
            "name": "Consent runs",
            "href": f"{REPORT_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "consentgate",
        }
    ]
