"""The few things that differ between SQL engines. The decision rule itself lives in `semantics`."""

from __future__ import annotations

from dataclasses import dataclass

# Microseconds from 0001-01-01 to 1970-01-01: shifts every timestamp code to a non-negative number,
# so `code % 8` decodes the severity the same way in every engine.
EPOCH_OFFSET_US = 62_135_596_800_000_000

TIMESTAMP_TYPES = ("timestamp", "date")


@dataclass(frozen=True)
class Dialect:
    """How one engine spells the handful of expressions the rule needs."""

    name: str
    text_type: str
    param: str
    default_schema_sql: str

    def epoch_us(self, expr: str) -> str:
        if self.name == "duckdb":
            return f"epoch_us({expr})"
        return f"(extract(epoch from {expr}) * 1000000)::bigint"

    def row_hash_parts(self, exprs: list[str]) -> tuple[str, str]:
        """A 64-bit hash h of a tuple of values (nulls included), as two BIGINT expressions (hi, lo) with
        h = hi * 2^32 + lo, 0 <= hi, lo < 2^32. Summing the halves as BIGINT is much faster than summing
        h itself, and (sum(hi) * 2^32 + sum(lo)) mod 2^64 = sum(h) mod 2^64."""
        if self.name == "duckdb":
            h = f"hash({', '.join(exprs)})"
            return f"CAST({h} >> 32 AS BIGINT)", f"CAST({h} & 4294967295 AS BIGINT)"
        text = " || '|' || ".join(f"coalesce(CAST({e} AS {self.text_type}), '\\N')" for e in exprs)
        h = f"hashtextextended({text}, 0)"  # signed: h + 2^63 is the unsigned hash
        return f"(({h} >> 32) + 2147483648)", f"({h} & 4294967295)"

    def utc_timestamp(self, expr: str, data_type: str) -> str:
        """A naive-UTC timestamp expression for a column of the given (information_schema) type."""
        t = data_type.lower()
        if "with time zone" in t or t in ("timestamptz", "timestamp_tz"):
            return f"({expr} AT TIME ZONE 'UTC')"
        if t == "date":
            return f"CAST({expr} AS TIMESTAMP)"
        return expr

    def replace_table(self, target: str, select_sql: str) -> list[str]:
        """Statements that replace `target` by the result of `select_sql` inside the caller's transaction."""
        if self.name == "duckdb":
            return [f"CREATE OR REPLACE TABLE {target} AS {select_sql}"]
        return [f"DROP TABLE IF EXISTS {target}", f"CREATE TABLE {target} AS {select_sql}"]

    def placeholders(self, n: int) -> str:
        return ", ".join([self.param] * n)


DUCKDB = Dialect(name="duckdb", text_type="VARCHAR", param="?", default_schema_sql="current_schema()")
POSTGRES = Dialect(name="postgres", text_type="TEXT", param="%s", default_schema_sql="current_schema()")

_BY_NAME = {"duckdb": DUCKDB, "postgres": POSTGRES, "postgresql": POSTGRES}


def for_name(name: str) -> Dialect:
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise ValueError(f"unsupported SQL dialect {name!r}; supported: duckdb, postgres") from None


def is_timestamp_type(data_type: str) -> bool:
    t = data_type.lower()
    return t.startswith("timestamp") or t == "date"


def is_text_type(data_type: str) -> bool:
    t = data_type.lower()
    return t in ("varchar", "text", "string", "character varying", "character", "char", "bpchar") or t.startswith(
        ("varchar", "character")
    )
