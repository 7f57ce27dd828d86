"""The run report over HTTP: a small FastAPI app, for Airflow's plugin `fastapi_apps` or any ASGI server.

    CONSENTGATE_DATABASE=/path/warehouse.duckdb uvicorn --factory consentgate.airflow.webapp:create_app

Routes: `/` the latest run, `/runs/{run_id}` one run (HTML, the same page as `consentgate report`).
`create_app()` only builds the routes; the database (env CONSENTGATE_DATABASE, optional policy in
CONSENTGATE_POLICY) is opened read-only per request, so a missing file or a run holding the write
lock is a 503 page, never an import or start-up failure.

The app does no authentication of its own: Airflow does not authenticate plugin apps, so expose it
only where everyone who can reach it may see run counts (the page holds no subject identifier).
"""

# No `from __future__ import annotations` here: FastAPI reads the route functions' annotations at
# runtime, and `Request` is imported inside create_app() to keep importing this module cheap.
import logging
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from consentgate.engine.policy import load
from consentgate.engine.session import open_duckdb
from consentgate.errors import DatabaseLockedError, DatabaseNotFoundError, RunNotFoundError, one_line
from consentgate.evidence import report

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("consentgate")

DATABASE_ENV = "CONSENTGATE_DATABASE"
POLICY_ENV = "CONSENTGATE_POLICY"


def _page(title: str, message: str) -> str:
    import html

    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>consentgate: '
        f'{html.escape(title)}</title></head><body style="font-family:system-ui,sans-serif;margin:40px">'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>\n"
    )


def render(run_id: str | None, run_href: Any) -> tuple[int, str]:
    """(HTTP status, HTML) for a run of the configured database. Never raises."""
    database = os.environ.get(DATABASE_ENV, "").strip()
    if not database:
        return 503, _page(
            "not configured", f"Set {DATABASE_ENV} to the DuckDB file the runs are recorded in."
        )
    try:
        policy = None
        if os.environ.get(POLICY_ENV, "").strip():
            policy = load(os.environ[POLICY_ENV].strip())
        session = open_duckdb(database, read_only=True)
        try:
            return 200, report.render_report(session, run_id, policy=policy, run_href=run_href)
        finally:
            session.close()
    except RunNotFoundError as exc:
        return 404, _page("run not found", one_line(exc))
    except (DatabaseNotFoundError, DatabaseLockedError) as exc:
        return 503, _page("database unavailable", one_line(exc) + " (retry in a moment)")
    except Exception as exc:  # noqa: BLE001 - a report page never takes the server down
        log.warning("consentgate report failed: %s", one_line(exc))
        return 500, _page("report failed", one_line(exc))


def create_app() -> "FastAPI":
    """The report app. Cheap: imports FastAPI, declares two routes, touches no database."""
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse

    app = FastAPI(
        title="consentgate report",
        description="Consent enforcement runs: rows in and out, exclusions by reason, consent changes.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def respond(request: Request, run_id: str | None) -> HTMLResponse:
        # Links are built from the mount point (root_path), not with request.url_for: mounted in
        # Airflow's API server, url_for looks the route name up in Airflow's router, which does not
        # know this app's routes.
        prefix = request.scope.get("root_path", "").rstrip("/")

        def run_href(rid: str) -> str:
            return f"{prefix}/runs/{quote(rid, safe='')}"

        status, page = render(run_id, run_href)
        headers = {"Retry-After": "30"} if status == 503 else None
        return HTMLResponse(page, status_code=status, headers=headers)

    @app.get("/", response_class=HTMLResponse, name="latest_report")
    def latest_report(request: Request) -> HTMLResponse:
        return respond(request, None)

    @app.get("/runs/{run_id}", response_class=HTMLResponse, name="run_report")
    def run_report(request: Request, run_id: str) -> HTMLResponse:
        return respond(request, run_id)

    return app
