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

    def trim(self, text_expr: str) -> str:
        """`text_expr` without leading and trailing spaces: U+0020 only (docs/semantics.md, rule 3).

        The space is given explicitly because a bare trim() differs between engines: DuckDB's also
        strips U+00A0 and other Unicode spaces, PostgreSQL's does not.
        """
        return f"trim({text_expr}, ' ')" if self.name == "duckdb" else f"btrim({text_expr}, ' ')"

    def trim_column(self, text_expr: str) -> str:
        """trim() for a value per row. On DuckDB behind two prefix and suffix tests: the same value, at a
        fraction of the cost when, as usual, there is nothing to trim. The expression is repeated, so
        never pass a placeholder (use trim())."""
        if self.name == "duckdb":
            t = text_expr
            return f"CASE WHEN {t} LIKE ' %' OR {t} LIKE '% ' THEN {self.trim(t)} ELSE {t} END"
        return self.trim(text_expr)

    def row_hash_sums(self, exprs: list[str]) -> list[tuple[str, int]]:
        """Aggregates whose weighted total is the sum of a 64-bit hash h of a tuple of values (nulls
        included): sum(h) = the sum of weight * aggregate, taken mod 2^64. DuckDB sums its unsigned
        hash itself (a HUGEINT sum); PostgreSQL's hash is signed, so it sums the two 32-bit halves,
        each made non-negative."""
        if self.name == "duckdb":
            return [(f"sum(hash({', '.join(exprs)}))", 1)]
        text = " || '|' || ".join(f"coalesce(CAST({e} AS {self.text_type}), '\\N')" for e in exprs)
        h = f"hashtextextended({text}, 0)"  # signed: h + 2^63 is the unsigned hash
        return [(f"sum(({h} >> 32) + 2147483648)", 2**32), (f"sum({h} & 4294967295)", 1)]

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
