"""Table and column names: validated before any SQL runs, then always quoted."""

from __future__ import annotations

import re
from dataclasses import dataclass

from consentgate.errors import InvalidIdentifierError

_IDENT = r"[A-Za-z_][A-Za-z0-9_$]*"
_TABLE = re.compile(rf"^{_IDENT}(\.{_IDENT})?$")
_COLUMN = re.compile(rf"^{_IDENT}$")

#: Longest identifier each engine keeps, in UTF-8 bytes. PostgreSQL silently truncates longer ones to
#: 63 bytes (NAMEDATALEN - 1), so two different long names can be one table: refused instead.
MAX_IDENTIFIER_BYTES = {"postgres": 63}


def quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


@dataclass(frozen=True)
class TableName:
    """A validated `table` or `schema.table` name."""

    schema: str | None
    name: str

    @classmethod
    def parse(cls, text: object, what: str = "table") -> TableName:
        if not isinstance(text, str) or not _TABLE.match(text.strip()):
            raise InvalidIdentifierError(
                f"{what} name {text!r} is not a plain identifier path; use 'table' or 'schema.table' "
                "(letters, digits and underscores)"
            )
        parts = text.strip().split(".")
        return cls(parts[0], parts[1]) if len(parts) == 2 else cls(None, parts[0])

    def sql(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}" if self.schema else quote(self.name)

    def resolved(self, default_schema: str) -> TableName:
        return self if self.schema else TableName(default_schema, self.name)

    def key(self, default_schema: str) -> tuple[str, str]:
        """Case-insensitive identity, for comparing two names."""
        return ((self.schema or default_schema).lower(), self.name.lower())

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def check_length(self, dialect_name: str, what: str = "table") -> TableName:
        """Refuse a part longer than the engine keeps (it would silently name another table)."""
        for part in (self.schema, self.name):
            if part is not None:
                check_identifier_length(part, dialect_name, f"{what} name {str(self)!r}")
        return self


def check_identifier_length(ident: str, dialect_name: str, what: str) -> str:
    limit = MAX_IDENTIFIER_BYTES.get(dialect_name)
    size = len(ident.encode("utf-8"))
    if limit is not None and size > limit:
        raise InvalidIdentifierError(
            f"{what} has an identifier of {size} bytes ({ident[:20]}...); {dialect_name} keeps only "
            f"{limit} bytes and would silently use a shorter name: use at most {limit}"
        )
    return ident


def column(text: object, what: str = "column") -> str:
    if not isinstance(text, str) or not _COLUMN.match(text):
        raise InvalidIdentifierError(
            f"{what} {text!r} is not a plain column name (letters, digits and underscores)"
        )
    return text
