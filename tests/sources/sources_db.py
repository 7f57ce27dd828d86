"""The consent-source tests' database helper (a real DuckDB file or PostgreSQL database), shared by conftest and tests."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent / "signals"))  # tcbits: the independent bit writer

from consentgate.engine.enforcement import enforce  # noqa: E402
from consentgate.engine.session import Session, session_for  # noqa: E402
from consentgate.engine.source_config import Source, parse_sources  # noqa: E402
from consentgate.sources.ingest import ingest  # noqa: E402
from consentgate.sources.log import IngestRecord  # noqa: E402

PURPOSES = {"ad_targeting", "email_marketing"}


class Db:
    """One database (DuckDB file or PostgreSQL database) with the helpers the tests share."""

    def __init__(self, engine: str, connection: Any, path: Path) -> None:
        self.engine = engine
        self.connection = connection
        self.session: Session = session_for(connection, engine)
        self.path = path

    def run(self, sql: str, params: list[Any] | None = None) -> None:
        with self.session.transaction() as s:
            s.run(sql.replace("?", s.dialect.param), params or [])

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        result = self.session.all(sql.replace("?", self.session.dialect.param), params or [])
        self.session.rollback()
        return result

    def table(self, name: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
        schema = name.split(".")[0] if "." in name else None
        with self.session.transaction() as s:
            if schema:
                s.run(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            s.run(f"CREATE TABLE {name} ({columns})")
        self.insert(name, rows)

    def insert(self, name: str, rows: list[tuple[Any, ...]]) -> None:
        with self.session.transaction() as s:
            for r in rows:
                s.run(f"INSERT INTO {name} VALUES ({s.dialect.placeholders(len(r))})", list(r))

    def ingest(self, *sources: dict[str, Any], **kw: Any) -> list[IngestRecord]:
        return ingest(self.session, self.sources(*sources), **kw)

    def sources(self, *sources: dict[str, Any]) -> tuple[Source, ...]:
        return parse_sources(list(sources), PURPOSES, "test policy")

    def log(self) -> list[tuple[Any, ...]]:
        """(subject, purpose, status, event_ts, source) of every event, in a stable order."""
        return self.rows(
            "SELECT subject_id, purpose, status, event_ts, source FROM consent_events "
            "ORDER BY subject_id, purpose, event_ts, status, source"
        )

    def kept(
        self, subjects: list[str], purpose: str = "ad_targeting", as_of: datetime | None = None
    ) -> set[str]:
        """The subjects whose rows consentgate.enforce() lets through for `purpose` (as of now by default)."""
        self.run("DROP TABLE IF EXISTS people")
        self.run("DROP TABLE IF EXISTS kept_people")
        self.table("people", "customer_id varchar", [(s,) for s in subjects])
        enforce(
            connection=self.connection,
            dialect=self.engine,
            source="people",
            target="kept_people",
            subject_column="customer_id",
            purpose=purpose,
            as_of=as_of,
        )
        return {r[0] for r in self.rows("SELECT customer_id FROM kept_people")}
