"""The few things that differ between SQL engines. The decision rule itself lives in `semantics`."""

from __future__ import annotations

from dataclasses import dataclass

# Microseconds from 0001-01-01 to 1970-01-01: shifts every timestamp code to a non-negative number,
# so `code % 8` decodes the severity the same way in every engine.
EPOCH_OFFSET_US = 62_135_596_800_000_000

TIMESTAMP_TYPES = ("timestamp", "date")

# The earliest instant the rule can order (docs/semantics.md, "Timestamps"): an event that counts must
# not be older (a BC date or -infinity is rejected). Later instants cannot count: T is at most year 9999.
MIN_EVENT_TS = "0001-01-01 00:00:00"

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Key types compared by value, exactly (every value has one text form and equality is binary).
_EXACT_KEY_TYPES = frozenset(
    {"tinyint", "smallint", "integer", "int", "bigint", "hugeint", "utinyint", "usmallint", "uinteger"}
    | {"ubigint", "uhugeint", "int2", "int4", "int8", "uuid"}
)
# Number types whose text form is not unique (42 = 42.0 = 4.2e1): never a subject key.
_INEXACT_KEY_TYPES = ("decimal", "numeric", "double", "float", "real")


@dataclass(frozen=True)
class Dialect:
    """How one engine spells the handful of expressions the rule needs."""

    name: str
    text_type: str
    param: str
    default_schema_sql: str
    #: Statements run in transactions, and tables support UPDATE and DELETE. Spark has neither: its
    #: targets are switched by a view and its evidence is append-only (engine/spark.py).
    transactional: bool = True
    #: Columns are listed through information_schema (else through the connection's `columns()`).
    information_schema: bool = True

    def temp_table(self, name: str) -> str:
        """`name` qualified with the session's own temporary schema, so that creating, reading or
        dropping a scratch table can never resolve to a user's table of the same name."""
        if self.name == "spark":
            return f"session.{name}"  # Spark's namespace of the session's temporary views
        return f"temp.main.{name}" if self.name == "duckdb" else f"pg_temp.{name}"

    def drop_scratch(self, name: str) -> list[str]:
        """Statements that drop the scratch table `name` (temp_table) if it exists."""
        if self.name == "spark":
            return []  # create_scratch replaces the view (which uncaches the old one)
        return [f"DROP TABLE IF EXISTS {name}"]

    def create_scratch(self, name: str, select_sql: str, *, cache: bool = True) -> list[str]:
        """Statements that create the scratch table `name` (temp_table) as `select_sql`; the parameters
        of select_sql go to the first. Spark has no temporary tables: a temporary view, cached at once
        (an eager cache gives the planner the real size, so the target's join is broadcast; a lazy one
        made the dataset 1.5x slower), unless `cache` is false: then a plain view, computed where it is
        read (for rows read once, over tables no one writes). Spark recomputes a cache when a table
        behind it is written: for rows that must never change, use Session.scratch(durable=True)."""
        if self.name == "spark":
            view = f"CREATE OR REPLACE TEMPORARY VIEW {name} AS {select_sql}"
            return [view, f"CACHE TABLE {name}"] if cache else [view]
        return [f"CREATE TEMP TABLE {name} AS {select_sql}"]

    def binary_text(self, expr: str) -> str:
        """`expr` as text compared byte by byte, whatever the collation or type of its column
        (DuckDB NOCASE/ICU collations, PostgreSQL citext or a nondeterministic ICU collation)."""
        if self.name == "spark":
            return f"(CAST({expr} AS STRING) COLLATE UTF8_BINARY)"
        return f'(CAST({expr} AS {self.text_type}) COLLATE "C")'

    def ascii_lower(self, text_expr: str, *, once: bool = False) -> str:
        """`text_expr` with A-Z lowered to a-z and every other character unchanged (docs/semantics.md,
        rule 6): the same on every engine, locale and collation, unlike a bare lower().

        PostgreSQL's lower() under the "C" collation lowers A-Z only. DuckDB's lower() is Unicode
        whatever the collation, so it is used only on pure-ASCII text (as many bytes as characters);
        translate() is exact everywhere but several times slower, so it is kept for the rest. On
        Spark, text that lower() leaves unchanged, byte for byte, holds no A-Z (lower() changes every
        A-Z, in any JVM locale, and no character's lower case starts with that character and adds
        more, so one changed character changes the whole), so it is already lowered; translate()
        takes the rest (invalid UTF-8 included: lower() rewrites it). Most purposes and statuses are
        lower case already: the snapshot of 3M events took 6.9 s instead of 7.9 (docs/performance.md,
        Spark). The expression is repeated unless `once` (for a placeholder)."""
        t = text_expr
        if self.name == "postgres":
            return f'lower(({t}) COLLATE "C")'
        exact = f"translate({t}, '{_UPPER}', '{_UPPER.lower()}')"
        if self.name == "duckdb" and not once:
            return f"CASE WHEN strlen({t}) = length({t}) THEN lower({t}) ELSE {exact} END"
        if self.name == "spark" and not once:
            return f"CASE WHEN CAST(lower({t}) AS BINARY) = CAST({t} AS BINARY) THEN {t} ELSE {exact} END"
        return exact

    def epoch_us(self, expr: str) -> str:
        if self.name == "duckdb":
            return f"epoch_us({expr})"
        if self.name == "spark":
            return f"unix_micros({expr})"
        return f"(extract(epoch from {expr}) * 1000000)::bigint"

    def trim(self, text_expr: str) -> str:
        """`text_expr` without leading and trailing spaces: U+0020 only (docs/semantics.md, rule 3).

        The space is given explicitly because a bare trim() differs between engines: DuckDB's also
        strips U+00A0 and other Unicode spaces, PostgreSQL's does not. Spark's trim(x, ' ') means
        trim(trimStr, src): btrim, as on PostgreSQL.
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
        each made non-negative. Spark's xxhash64 is signed too and skips null arguments, so each value
        is preceded by whether it is null ((NULL, 'a') and ('a', NULL) hash differently), and it is
        summed once, shifted by 2^63 into [0, 2^64) as a DECIMAL (hashing twice, once per half, cost
        a third of the consent snapshot)."""
        if self.name == "duckdb":
            return [(f"sum(hash({', '.join(exprs)}))", 1)]
        if self.name == "spark":
            h = f"xxhash64({', '.join(f'{e} IS NULL, {e}' for e in exprs)})"
            return [(f"sum(CAST({h} AS DECIMAL(20,0)) + 9223372036854775808)", 1)]
        text = " || '|' || ".join(f"coalesce(CAST({e} AS {self.text_type}), '\\N')" for e in exprs)
        h = f"hashtextextended({text}, 0)"  # signed: h + 2^63 is the unsigned hash
        return [(f"sum(({h} >> 32) + 2147483648)", 2**32), (f"sum({h} & 4294967295)", 1)]

    def utc_timestamp(self, expr: str, data_type: str) -> str:
        """A naive-UTC timestamp expression for a column of the given (information_schema) type."""
        t = data_type.lower()
        if "with time zone" in t or t in ("timestamptz", "timestamp_tz"):
            return f"({expr} AT TIME ZONE 'UTC')"
        if t in ("date", "timestamp_ntz"):
            return f"CAST({expr} AS TIMESTAMP)"
        return expr

    def replace_table(self, target: str, select_sql: str) -> list[str]:
        """Statements that replace `target` by the result of `select_sql` inside the caller's transaction.

        What a concurrent reader sees (docs/runs.md): DuckDB's catalog is versioned, so CREATE OR
        REPLACE gives old-or-new. On PostgreSQL DROP + CREATE is not MVCC-safe (a REPEATABLE READ or
        SERIALIZABLE reader whose snapshot predates the commit sees the new table empty), so when the
        target is a table with exactly the columns (names, types, order) of the new rows, its rows are
        replaced in place (DELETE + INSERT: old-or-new at every isolation level); only a missing target,
        or one whose columns changed, is dropped and created.
        """
        if self.name == "duckdb":
            return [f"CREATE OR REPLACE TABLE {target} AS {select_sql}"]
        if self.name == "spark":  # `target` is this run's own new table; readers switch by a view
            return [f"CREATE TABLE {target} USING parquet AS {select_sql}"]
        swap = self.temp_table("_consentgate_swap")
        regclass = "'" + target.replace("'", "''") + "'"

        def columns(rel: str) -> str:
            return (
                "(SELECT array_agg(attname::text || ' ' || format_type(atttypid, atttypmod) ORDER BY attnum) "
                f"FROM pg_attribute WHERE attrelid = to_regclass({rel}) AND attnum > 0 AND NOT attisdropped)"
            )

        same = (
            f"coalesce((SELECT relkind IN ('r', 'p') FROM pg_class WHERE oid = to_regclass({regclass})), false) "
            f"AND {columns(regclass)} IS NOT DISTINCT FROM {columns(repr(swap))}"
        )
        return [
            f"DROP TABLE IF EXISTS {swap}",
            f"CREATE TEMP TABLE {swap.split('.')[-1]} AS {select_sql}",
            f"DO $consentgate$ BEGIN IF {same} THEN DELETE FROM {target}; INSERT INTO {target} SELECT * FROM {swap}; "
            f"ELSE DROP TABLE IF EXISTS {target}; CREATE TABLE {target} AS SELECT * FROM {swap}; END IF; END "
            "$consentgate$",
            f"DROP TABLE {swap}",
        ]

    def placeholders(self, n: int) -> str:
        return ", ".join([self.param] * n)


DUCKDB = Dialect(name="duckdb", text_type="VARCHAR", param="?", default_schema_sql="current_schema()")
POSTGRES = Dialect(name="postgres", text_type="TEXT", param="%s", default_schema_sql="current_schema()")

#: Spark SQL (4.x) through Spark Connect or a SparkSession: no transactions (engine/spark.py).
SPARK = Dialect(
    name="spark",
    text_type="STRING",
    param="?",
    default_schema_sql="current_schema()",
    transactional=False,
    information_schema=False,
)

_BY_NAME = {"duckdb": DUCKDB, "postgres": POSTGRES, "postgresql": POSTGRES, "spark": SPARK}


def for_name(name: str) -> Dialect:
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise ValueError(f"unsupported SQL dialect {name!r}; supported: duckdb, postgres, spark") from None


def is_timestamp_type(data_type: str) -> bool:
    t = data_type.lower()
    return t.startswith("timestamp") or t == "date"


def is_text_type(data_type: str) -> bool:
    """Text, as information_schema names it. PostgreSQL reports citext (and enums) as USER-DEFINED:
    text too, read through binary_text like every text column."""
    t = data_type.lower()
    return t in (
        "varchar",
        "text",
        "string",
        "character varying",
        "character",
        "char",
        "bpchar",
        "user-defined",
    ) or t.startswith(("varchar", "character", "string"))  # Spark: `string collate UTF8_LCASE`


def is_exact_key_type(data_type: str) -> bool:
    """An integer or uuid column: compared by value, which is as exact as comparing its text."""
    return data_type.lower() in _EXACT_KEY_TYPES


def is_inexact_number_type(data_type: str) -> bool:
    """A decimal or floating-point type: its values have no unique text form, so no key may use it."""
    return data_type.lower().startswith(_INEXACT_KEY_TYPES)
