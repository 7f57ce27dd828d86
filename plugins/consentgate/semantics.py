"""The decision rule of docs/semantics.md, as SQL. Its only home in Python.

Each counted event gets a severity (0 withdrawn, 1 denied, 2 invalid, 3 expired grant, 4 valid grant)
and an integer code `(epoch_us(event_ts) + offset) * 8 + (4 - severity)`. The deciding event of a key
is the one with the largest code: the latest event_ts, and on a tie the most restrictive severity.
So "who decides" is one aggregate, `max(code)`, with no window function and no unspecified tie order.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from consentgate.dialects import EPOCH_OFFSET_US, Dialect
from consentgate.names import quote

REASONS = ("null_subject", "no_consent", "denied", "withdrawn", "expired", "invalid")
NORMALIZATIONS = ("lower",)
STATUSES = ("granted", "denied", "withdrawn")
VALID_GRANT = 4
# Severity of a deciding event -> exclusion reason (4, a valid grant, keeps the row).
SEVERITY_REASON = {0: "withdrawn", 1: "denied", 2: "invalid", 3: "expired"}

SNAPSHOT = "_consentgate_snapshot"
DECIDED = "_consentgate_decided"
KEYS = "_consentgate_keys"


@dataclass(frozen=True)
class ConsentColumns:
    """Column names of the consent log. An optional column mapped to None is absent (always null).

    :param subject_id: who chose (any type; compared as trimmed text)
    :param purpose: what for (text)
    :param status: granted | denied | withdrawn (text)
    :param event_ts: when the person chose (timestamp)
    :param recorded_at: when the system learned it (timestamp; null means event_ts)
    :param expires_at: a grant is not valid at or after it (timestamp)
    :param source: where the choice came from (optional, carried into evidence)
    :param policy_version: which notice the person saw (optional, carried into evidence)
    """

    subject_id: str = "subject_id"
    purpose: str = "purpose"
    status: str = "status"
    event_ts: str = "event_ts"
    recorded_at: str | None = "recorded_at"
    expires_at: str | None = "expires_at"
    source: str | None = "source"
    policy_version: str | None = "policy_version"

    REQUIRED = ("subject_id", "purpose", "status", "event_ts")
    TIMESTAMPS = ("event_ts", "recorded_at", "expires_at")
    TEXTS = ("purpose", "status")

    def mapping(self) -> dict[str, str | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def text_key(d: Dialect, expr: str, normalize: str | None) -> str:
    """A subject key as compared by the rule: trimmed text, lower-cased with `normalize='lower'`."""
    key = d.trim_column(f"CAST({expr} AS {d.text_type})")
    return f"lower({key})" if normalize == "lower" else key


def purpose_key(d: Dialect, expr: str) -> str:
    """A purpose (or status) as the rule compares it: trimmed and lower-cased (rule 3)."""
    return f"lower({d.trim_column(expr)})"


def snapshot_select(
    d: Dialect, consent_sql: str, cols: ConsentColumns, types: dict[str, str], purposes: int = 0
) -> str:
    """The consent log as of T, aggregated per subject key: one read of the log, one row per subject.

    Columns: subject_key (trimmed text); code_0 .. code_{purposes-1}, the code of the deciding event
    for each purpose the run decides (null when no counted event of the subject has that purpose;
    `max` is associative, so a coarser key such as lower(subject_key) can be decided from these rows);
    h_0, h_1, .. (the dialect's sums of the fingerprint hashes of the subject's counted events, every
    purpose) and n (events counted, every purpose). Rules 1-3 are applied here. Parameters: T (naive
    UTC timestamp), then one purpose name per code column. `types` maps each present logical column
    to its SQL type.
    """

    def col(logical: str) -> str:
        name = getattr(cols, logical)
        if name is None:
            return "CAST(NULL AS TIMESTAMP)"
        ref = f"c.{quote(name)}"
        return d.utc_timestamp(ref, types[logical]) if logical in ConsentColumns.TIMESTAMPS else ref

    subject, purpose, status = col("subject_id"), col("purpose"), col("status")
    event_ts, recorded_at, expires_at = col("event_ts"), col("recorded_at"), col("expires_at")
    severity = (
        f"CASE {purpose_key(d, status)} WHEN 'withdrawn' THEN 0 WHEN 'denied' THEN 1 "
        f"WHEN 'granted' THEN CASE WHEN {expires_at} <= p.t THEN 3 ELSE 4 END ELSE 2 END"
    )
    code = f"({d.epoch_us(event_ts)} + {EPOCH_OFFSET_US}) * 8 + (4 - {severity})"
    params = "".join(f", lower({d.trim(f'CAST({d.param} AS {d.text_type})')}) AS p{i}" for i in range(purposes))
    codes = "".join(
        f"max(CASE WHEN {purpose_key(d, purpose)} = p.p{i} THEN {code} END) AS code_{i}, " for i in range(purposes)
    )
    hashed = [subject, purpose, status, event_ts, recorded_at, expires_at]
    hashes = "".join(f"{agg} AS h_{i}, " for i, (agg, _weight) in enumerate(d.row_hash_sums(hashed)))
    key = text_key(d, subject, None)
    return (
        f"WITH p AS (SELECT CAST({d.param} AS TIMESTAMP) AS t{params}) "
        f"SELECT {key} AS subject_key, {codes}{hashes}count(*) AS n "
        f"FROM {consent_sql} AS c CROSS JOIN p "
        f"WHERE {subject} IS NOT NULL AND {key} <> '' "
        f"AND {purpose} IS NOT NULL AND {event_ts} IS NOT NULL "
        f"AND {event_ts} <= p.t AND coalesce({recorded_at}, {event_ts}) <= p.t "
        f"GROUP BY 1"
    )


def fingerprint_select(d: Dialect) -> str:
    """(fingerprint as a number in [0, 2^64), events counted) over the snapshot."""
    weights = [weight for _agg, weight in d.row_hash_sums(["NULL"])]
    total = " + ".join(
        f"coalesce(sum(CAST(h_{i} AS DECIMAL(38,0))), 0) * {weight}" for i, weight in enumerate(weights)
    )
    return f"SELECT CAST(mod({total}, 18446744073709551616) AS {d.text_type}), coalesce(sum(n), 0) FROM {SNAPSHOT}"


def decided_select(index: int, normalize: str | None) -> str:
    """Per subject key: the severity of the deciding event for the snapshot's purpose number `index`."""
    code = f"code_{int(index)}"
    where = f"FROM {SNAPSHOT} WHERE {code} IS NOT NULL"
    if normalize == "lower":
        return f"SELECT lower(subject_key) AS subject_key, 4 - mod(max({code}), 8) AS severity {where} GROUP BY 1"
    return f"SELECT subject_key, 4 - mod({code}, 8) AS severity {where}"


def keys_select(d: Dialect, source_sql: str, subject_column: str, normalize: str | None) -> str:
    """Each distinct subject value of a table, its row count and the severity deciding for it.

    The rule is decided once per distinct value; rows follow their value. Null severity: a null or
    blank key, or no consent (counts_select tells them apart).
    """
    col = quote(subject_column)
    return (
        f"SELECT k.raw, k.n, dd.severity "
        f"FROM (SELECT s.{col} AS raw, count(*) AS n FROM {source_sql} AS s GROUP BY s.{col}) AS k "
        f"LEFT JOIN {DECIDED} AS dd ON dd.subject_key = {text_key(d, 'k.raw', normalize)}"
    )


def consented_select(source_sql: str, subject_column: str) -> str:
    """The source's rows whose subject value is consented (per KEYS), all columns unchanged."""
    col = quote(subject_column)
    return f"SELECT s.* FROM {source_sql} AS s WHERE s.{col} IN (SELECT raw FROM {KEYS} WHERE severity = {VALID_GRANT})"


def counts_select(d: Dialect) -> str:
    """rows_in, rows_out and one count per exclusion reason (in REASONS order), from KEYS."""
    blank = f"(raw IS NULL OR {text_key(d, 'raw', None)} = '')"
    conditions = {
        "null_subject": f"severity IS NULL AND {blank}",
        "no_consent": f"severity IS NULL AND NOT {blank}",
        **{reason: f"severity = {severity}" for severity, reason in SEVERITY_REASON.items()},
    }
    parts = [
        "sum(n)",
        f"sum(n) FILTER (WHERE severity = {VALID_GRANT})",
        *(f"sum(n) FILTER (WHERE {conditions[reason]})" for reason in REASONS),
    ]
    return f"SELECT {', '.join(f'coalesce({p}, 0)' for p in parts)} FROM {KEYS}"
