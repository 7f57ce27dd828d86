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
    key = f"trim(CAST({expr} AS {d.text_type}))"
    return f"lower({key})" if normalize == "lower" else key


def snapshot_select(d: Dialect, consent_sql: str, cols: ConsentColumns, types: dict[str, str]) -> str:
    """The consent log as of T, aggregated per (subject key, purpose): one read of the log.

    Columns: subject_key (trimmed text), purpose (lower-cased, trimmed), code (of the deciding event:
    `max` is associative, so a coarser key such as lower(subject_key) can be decided from these rows),
    h_hi and h_lo (sums of the halves of the events' fingerprint hashes) and n (events counted). Rules 1-3 are applied here.
    One parameter: T (naive UTC timestamp). `types` maps each present logical column to its SQL type.
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
        f"CASE lower(trim({status})) WHEN 'withdrawn' THEN 0 WHEN 'denied' THEN 1 "
        f"WHEN 'granted' THEN CASE WHEN {expires_at} <= p.t THEN 3 ELSE 4 END ELSE 2 END"
    )
    key = text_key(d, subject, None)
    hi, lo = d.row_hash_parts([subject, purpose, status, event_ts, recorded_at, expires_at])
    return (
        f"WITH p AS (SELECT CAST({d.param} AS TIMESTAMP) AS t) "
        f"SELECT {key} AS subject_key, lower(trim({purpose})) AS purpose, "
        f"max(({d.epoch_us(event_ts)} + {EPOCH_OFFSET_US}) * 8 + (4 - {severity})) AS code, "
        f"sum({hi}) AS h_hi, sum({lo}) AS h_lo, "
        f"count(*) AS n "
        f"FROM {consent_sql} AS c CROSS JOIN p "
        f"WHERE {subject} IS NOT NULL AND {key} <> '' "
        f"AND {purpose} IS NOT NULL AND {event_ts} IS NOT NULL "
        f"AND {event_ts} <= p.t AND coalesce({recorded_at}, {event_ts}) <= p.t "
        f"GROUP BY 1, 2"
    )


def fingerprint_select(d: Dialect) -> str:
    """(fingerprint as a number in [0, 2^64), events counted) over the snapshot."""
    total = (
        "coalesce(sum(CAST(h_hi AS DECIMAL(38,0))), 0) * 4294967296 + coalesce(sum(CAST(h_lo AS DECIMAL(38,0))), 0)"
    )
    return f"SELECT CAST(mod({total}, 18446744073709551616) AS {d.text_type}), coalesce(sum(n), 0) FROM {SNAPSHOT}"


def decided_select(d: Dialect, normalize: str | None) -> str:
    """Per subject key: the severity of the deciding event for one purpose (one parameter: the purpose)."""
    where = f"FROM {SNAPSHOT} WHERE purpose = lower(trim({d.param}))"
    if normalize == "lower":
        return f"SELECT lower(subject_key) AS subject_key, 4 - mod(max(code), 8) AS severity {where} GROUP BY 1"
    return f"SELECT subject_key, 4 - mod(code, 8) AS severity {where}"


def keys_select(d: Dialect, source_sql: str, subject_column: str, normalize: str | None) -> str:
    """Each distinct subject value of a table, its row count and the severity deciding for it.

    The rule is decided once per distinct value; rows follow their value. Null severity: no consent.
    """
    col = quote(subject_column)
    return (
        f"SELECT k.raw, k.n, {text_key(d, 'k.raw', normalize)} AS subject_key, dd.severity "
        f"FROM (SELECT s.{col} AS raw, count(*) AS n FROM {source_sql} AS s GROUP BY s.{col}) AS k "
        f"LEFT JOIN {DECIDED} AS dd ON dd.subject_key = {text_key(d, 'k.raw', normalize)}"
    )


def consented_select(source_sql: str, subject_column: str) -> str:
    """The source's rows whose subject value is consented (per KEYS), all columns unchanged."""
    col = quote(subject_column)
    return f"SELECT s.* FROM {source_sql} AS s WHERE s.{col} IN (SELECT raw FROM {KEYS} WHERE severity = {VALID_GRANT})"


def counts_select() -> str:
    """rows_in, rows_out and one count per exclusion reason (in REASONS order), from KEYS."""
    by_severity = {reason: sev for sev, reason in SEVERITY_REASON.items()}
    conditions = {
        "null_subject": "subject_key IS NULL OR subject_key = ''",
        "no_consent": "subject_key <> '' AND severity IS NULL",
    }
    parts = ["coalesce(sum(n), 0)", f"coalesce(sum(n) FILTER (WHERE severity = {VALID_GRANT}), 0)"]
    for reason in REASONS:
        cond = conditions.get(reason) or f"severity = {by_severity[reason]}"
        parts.append(f"coalesce(sum(n) FILTER (WHERE {cond}), 0)")
    return f"SELECT {', '.join(parts)} FROM {KEYS}"
