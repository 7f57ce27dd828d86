"""The decision rule of docs/semantics.md, as SQL. Its only home in Python.

Each counted event gets a severity (0 withdrawn, 1 denied, 2 invalid, 3 expired grant, 4 valid grant)
and an integer code `(epoch_us(event_ts) + offset) * 8 + (4 - severity)`. The deciding event of a key
is the one with the largest code: the latest event_ts, and on a tie the most restrictive severity.
So "who decides" is one aggregate, `max(code)`, with no window function and no unspecified tie order.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from consentgate.rule.dialects import EPOCH_OFFSET_US, MIN_EVENT_TS, Dialect, is_exact_key_type, is_text_type
from consentgate.rule.names import quote

REASONS = ("null_subject", "no_consent", "denied", "withdrawn", "expired", "invalid")
NORMALIZATIONS = ("lower",)
STATUSES = ("granted", "denied", "withdrawn")
VALID_GRANT = 4
# Severity of a deciding event -> exclusion reason (4, a valid grant, keeps the row).
SEVERITY_REASON = {0: "withdrawn", 1: "denied", 2: "invalid", 3: "expired"}

# Scratch tables of a run, session-private: always spelled scratch(d, NAME), never bare, so that no
# statement can resolve to a user's table of the same name (docs/semantics.md, "Scratch tables").
SNAPSHOT = "_consentgate_snapshot"
DECIDED = "_consentgate_decided"
KEYS = "_consentgate_keys"


def scratch(d: Dialect, name: str) -> str:
    """A scratch table's name qualified with the session's temporary schema."""
    return d.temp_table(name)


@dataclass(frozen=True)
class ConsentColumns:
    """Column names of the consent log. An optional column mapped to None is absent (always null).

    :param subject_id: who chose (text or integer; compared as trimmed text, byte by byte)
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


def fold_case(text: str) -> str:
    """A purpose, status or key lowered as the rule lowers it, in Python: A-Z to a-z, nothing else
    (rule 6). Use it, never str.lower(), wherever Python compares what SQL compares."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def text_key(d: Dialect, expr: str, normalize: str | None) -> str:
    """A subject key as compared by the rule: trimmed text compared byte by byte (whatever the
    column's collation), A-Z lowered with `normalize='lower'` (rule 6)."""
    key = d.trim_column(d.binary_text(expr))
    return d.ascii_lower(key) if normalize == "lower" else key


def purpose_key(d: Dialect, expr: str) -> str:
    """A purpose (or status) as the rule compares it: trimmed, A-Z lowered, byte by byte (rule 3)."""
    return d.ascii_lower(d.trim_column(d.binary_text(expr)))


def subject_value(d: Dialect, expr: str, data_type: str) -> str:
    """A dataset's subject value as the rows are matched to their key: an integer or uuid as it is
    (exact already, and cheap), anything else as binary text, so a case-insensitive collation or
    type cannot make two values one."""
    return expr if is_exact_key_type(data_type) else d.binary_text(expr)


def _hash_input(d: Dialect, expr: str, data_type: str) -> str:
    """A value as the fingerprint hashes it: text as binary text (the same hash as before for a column
    without collation), anything else as it is (PostgreSQL hashes the text form of every value)."""
    return d.binary_text(expr) if d.name == "postgres" or is_text_type(data_type) else expr


def _consent_exprs(d: Dialect, cols: ConsentColumns, types: dict[str, str]) -> dict[str, str]:
    """Each logical consent column as an expression over alias c (timestamps as naive UTC)."""

    def col(logical: str) -> str:
        name = getattr(cols, logical)
        if name is None:
            return "CAST(NULL AS TIMESTAMP)"
        ref = f"c.{quote(name)}"
        return d.utc_timestamp(ref, types[logical]) if logical in ConsentColumns.TIMESTAMPS else ref

    return {f.name: col(f.name) for f in fields(cols)}


def _counted(d: Dialect, e: dict[str, str]) -> str:
    """Rules 1 and 2: the events that count at p.t."""
    return (
        f"{e['subject_id']} IS NOT NULL AND {text_key(d, e['subject_id'], None)} <> '' "
        f"AND {e['purpose']} IS NOT NULL AND {e['event_ts']} IS NOT NULL "
        f"AND {e['event_ts']} <= p.t AND coalesce({e['recorded_at']}, {e['event_ts']}) <= p.t"
    )


def _params(d: Dialect, purposes: int, cutoffs: int = 0) -> str:
    """The CTE p: T, then the purposes asked for (trimmed, A-Z lowered). With `cutoffs` > 0, one row
    per cut-off instead, numbered by column g from 0: the parameters are then the cut-offs, then the
    purposes."""
    names = "".join(
        f", {d.ascii_lower(d.trim(d.binary_text(d.param)), once=True)} AS p{i}" for i in range(purposes)
    )
    if cutoffs <= 0:
        return f"WITH p AS (SELECT CAST({d.param} AS TIMESTAMP) AS t{names}) "
    rows = " UNION ALL ".join(f"SELECT {g} AS g, CAST({d.param} AS TIMESTAMP) AS t" for g in range(cutoffs))
    picked = "".join(f", q.p{i}" for i in range(purposes))
    return f"WITH p AS (SELECT v.g, v.t{picked} FROM ({rows}) AS v CROSS JOIN (SELECT 1 AS one{names}) AS q) "


def too_old_select(
    d: Dialect, consent_sql: str, cols: ConsentColumns, types: dict[str, str], purposes: int
) -> str:
    """Whether an event dated before year 1 counts for one of the purposes decided (same parameters
    as snapshot_select). Run only when the snapshot's ts_min says there may be one."""
    e = _consent_exprs(d, cols, types)
    wanted = " OR ".join(f"{purpose_key(d, e['purpose'])} = p.p{i}" for i in range(purposes)) or "false"
    return (
        f"{_params(d, purposes)}SELECT count(*) > 0 FROM {consent_sql} AS c CROSS JOIN p "
        f"WHERE {_counted(d, e)} AND {e['event_ts']} < {MIN_TS} AND ({wanted})"
    )


def snapshot_select(
    d: Dialect,
    consent_sql: str,
    cols: ConsentColumns,
    types: dict[str, str],
    purposes: int = 0,
    cutoffs: int = 0,
) -> str:
    """The consent log as of T, aggregated per subject key: one read of the log, one row per subject.

    Columns: subject_key (trimmed text); code_0 .. code_{purposes-1}, the code of the deciding event
    for each purpose the run decides (null when no counted event of the subject has that purpose;
    `max` is associative, so a coarser key such as lower(subject_key) can be decided from these rows);
    h_0, h_1, .. (the dialect's sums of the fingerprint hashes of the subject's counted events, every
    purpose), n (events counted, every purpose) and ts_min (the earliest event_ts counted). Rules 1-3 are applied here. Parameters: T (naive
    UTC timestamp), then one purpose name per code column. `types` maps each present logical column
    to its SQL type.

    With `cutoffs` > 0 the log is decided at that many cut-offs in one statement: the parameters are
    T_0 .. T_{cutoffs-1}, then the purposes, and each row also carries g, the number of its cut-off
    (one row per subject key and cut-off).
    """

    e = _consent_exprs(d, cols, types)
    hashes = "".join(f"{agg} AS h_{i}, " for i, (agg, _weight) in enumerate(_hash_sums(d, e, types)))
    by_cutoff = (", p.g AS g", ", p.g") if cutoffs > 0 else ("", "")
    return (
        f"{_params(d, purposes, cutoffs)}"
        f"SELECT {text_key(d, e['subject_id'], None)} AS subject_key, {_codes(d, e, purposes)}{hashes}count(*) AS n, "
        f"min({e['event_ts']}) AS ts_min{by_cutoff[0]} "
        f"FROM {consent_sql} AS c CROSS JOIN p WHERE {_counted(d, e)} GROUP BY 1{by_cutoff[1]}"
    )


def _codes(d: Dialect, e: dict[str, str], purposes: int) -> str:
    """The select items code_0 .. code_{purposes-1}: per purpose asked, the code of the deciding event
    (the latest event_ts, then the most restrictive status: rule 3)."""
    severity = (
        f"CASE {purpose_key(d, e['status'])} WHEN 'withdrawn' THEN 0 WHEN 'denied' THEN 1 "
        f"WHEN 'granted' THEN CASE WHEN {e['expires_at']} <= p.t THEN 3 ELSE 4 END ELSE 2 END"
    )
    # Clamped to year 1 so no engine errs on -infinity; if such an event counts for a purpose decided,
    # the run fails (ts_min, then too_old_select).
    clamped = f"greatest({e['event_ts']}, {MIN_TS})"
    code = f"({d.epoch_us(clamped)} + {EPOCH_OFFSET_US}) * 8 + (4 - {severity})"
    return "".join(
        f"max(CASE WHEN {purpose_key(d, e['purpose'])} = p.p{i} THEN {code} END) AS code_{i}, "
        for i in range(purposes)
    )


def _hash_sums(d: Dialect, e: dict[str, str], types: dict[str, str]) -> list[tuple[str, int]]:
    """The fingerprint's hash-sum aggregates over the counted events, with their weights
    (Dialect.row_hash_sums)."""
    # Text is hashed byte by byte too: a NOCASE or ICU column would hash 'A' and 'a' alike (so a rewrite
    # would go unseen) and DuckDB refuses to hash columns of two collations together.
    hashed = [
        _hash_input(d, e["subject_id"], types["subject_id"]),
        _hash_input(d, e["purpose"], "text"),
        _hash_input(d, e["status"], "text"),
        e["event_ts"],
        e["recorded_at"],
        e["expires_at"],
    ]
    return d.row_hash_sums(hashed)


MIN_TS = f"CAST('{MIN_EVENT_TS}' AS TIMESTAMP)"


def fingerprint_aggregates(d: Dialect) -> list[str]:
    """fingerprint_select's three values as aggregates over the snapshot's rows (snapshot_select's
    columns), to compute over the table or to observe while it is written (Spark)."""
    weights = [weight for _agg, weight in d.row_hash_sums(["NULL"])]
    total = " + ".join(
        f"coalesce(sum(CAST(h_{i} AS DECIMAL(38,0))), 0) * {weight}" for i, weight in enumerate(weights)
    )
    return [
        f"CAST(mod({total}, 18446744073709551616) AS {d.text_type})",
        "coalesce(sum(n), 0)",
        f"coalesce(min(ts_min) < {MIN_TS}, false)",
    ]


def fingerprint_select(d: Dialect) -> str:
    """(fingerprint as a number in [0, 2^64), events counted, whether a counted event of any purpose is
    older than year 1) over the snapshot."""
    return f"SELECT {', '.join(fingerprint_aggregates(d))} FROM {scratch(d, SNAPSHOT)}"


def totals_select(d: Dialect, consent_sql: str, cols: ConsentColumns, types: dict[str, str]) -> str:
    """fingerprint_select's three values computed straight from the log, in one ungrouped pass (no
    row per subject, so bounded memory at any size): the same events counted (rules 1 and 2, every
    purpose), the same hash sum, the same earliest event_ts. One parameter: T."""
    e = _consent_exprs(d, cols, types)
    total = " + ".join(
        f"coalesce(CAST({agg} AS DECIMAL(38,0)), 0) * {weight}" for agg, weight in _hash_sums(d, e, types)
    )
    return (
        f"{_params(d, 0)}SELECT CAST(mod({total}, 18446744073709551616) AS {d.text_type}), count(*), "
        f"coalesce(min({e['event_ts']}) < {MIN_TS}, false) FROM {consent_sql} AS c CROSS JOIN p WHERE {_counted(d, e)}"
    )


def purpose_counted_select(d: Dialect, consent_sql: str, cols: ConsentColumns, types: dict[str, str]) -> str:
    """One row if an event counts as of T for a purpose, none otherwise (parameters: T, the purpose):
    whether decided_select for that purpose has a row, without deciding anyone."""
    e = _consent_exprs(d, cols, types)
    return (
        f"{_params(d, 1)}SELECT 1 FROM {consent_sql} AS c CROSS JOIN p "
        f"WHERE {_counted(d, e)} AND {purpose_key(d, e['purpose'])} = p.p0 LIMIT 1"
    )


def decided_select(d: Dialect, index: int, normalize: str | None, snapshot: str = SNAPSHOT) -> str:
    """Per subject key: the severity of the deciding event for the snapshot's purpose number `index`.
    `snapshot` names the snapshot: scratch(d, SNAPSHOT), or a CTE named SNAPSHOT."""
    code = f"code_{int(index)}"
    where = f"FROM {snapshot} WHERE {code} IS NOT NULL"
    if normalize == "lower":
        key = d.ascii_lower("subject_key")
        return f"SELECT {key} AS subject_key, 4 - mod(max({code}), 8) AS severity {where} GROUP BY 1"
    return f"SELECT subject_key, 4 - mod({code}, 8) AS severity {where}"


def keys_select(
    d: Dialect, source_sql: str, subject_expr: str, normalize: str | None, decided: str | None = None
) -> str:
    """Each distinct subject value of a table, its row count and the severity deciding for it.

    `subject_expr` is the rows' subject value over alias `s` (subject_value). The rule is decided
    once per distinct value; rows follow their value. Null severity: a null or blank key, or no
    consent (counts_select tells them apart). `decided` names the decisions (decided_select):
    scratch(d, DECIDED) unless given (a CTE).
    """
    return (
        f"SELECT k.raw, k.n, dd.severity "
        f"FROM (SELECT {subject_expr} AS raw, count(*) AS n FROM {source_sql} AS s GROUP BY 1) AS k "
        f"LEFT JOIN {decided or scratch(d, DECIDED)} AS dd ON dd.subject_key = {text_key(d, 'k.raw', normalize)}"
    )


def consented_select(d: Dialect, source_sql: str, subject_expr: str, *, broadcast: bool = False) -> str:
    """The source's rows whose subject value (`subject_expr` over alias `s`, as given to keys_select)
    is consented (per KEYS), all columns unchanged.

    `broadcast` (Spark): the same rows through a semi-join that ships the consented values to every
    task (a BROADCAST hint) instead of shuffling the whole source to meet them (a sort-merge join,
    which Spark plans for any build side it cannot prove under 10 MB). Only for a set of values known
    to be small (counts_select's key_bytes)."""
    keys = scratch(d, KEYS)
    consented = f"SELECT raw FROM {keys} WHERE severity = {VALID_GRANT}"
    if broadcast:
        return (
            f"SELECT /*+ BROADCAST(k) */ s.* FROM {source_sql} AS s "
            f"LEFT SEMI JOIN ({consented}) AS k ON {subject_expr} = k.raw"
        )
    return f"SELECT s.* FROM {source_sql} AS s WHERE {subject_expr} IN ({consented})"


def decided_rows(d: Dialect, source_sql: str, subject_expr: str, normalize: str | None) -> str:
    """A relation like KEYS (raw, n, severity) with one row per row of the source (n = 1): each joined
    to the decision of its key, the decisions broadcast (Spark). For decisions known to be small
    (decided_size_select): counts_select over it counts in one pass, without grouping the source."""
    return (
        f"(SELECT /*+ BROADCAST(dd) */ {subject_expr} AS raw, 1 AS n, dd.severity FROM {source_sql} AS s "
        f"LEFT JOIN {scratch(d, DECIDED)} AS dd ON dd.subject_key = {text_key(d, subject_expr, normalize)}) AS r"
    )


def decided_consented_select(d: Dialect, source_sql: str, subject_expr: str, normalize: str | None) -> str:
    """consented_select's rows, matched to the consented decisions (DECIDED) row by row, broadcast,
    instead of through KEYS: the same rows, as a row follows its key's decision either way."""
    consented = f"SELECT subject_key FROM {scratch(d, DECIDED)} WHERE severity = {VALID_GRANT}"
    return (
        f"SELECT /*+ BROADCAST(k) */ s.* FROM {source_sql} AS s LEFT SEMI JOIN ({consented}) AS k "
        f"ON {text_key(d, subject_expr, normalize)} = k.subject_key"
    )


def decided_size_select(d: Dialect) -> str:
    """(decisions, bytes of their keys) of DECIDED: whether any event counts, and whether the
    decisions are small enough to broadcast."""
    return f"SELECT count(*), coalesce(sum(octet_length(subject_key)), 0) FROM {scratch(d, DECIDED)}"


def decided_size_aggregates(index: int) -> list[str]:
    """decided_size_select's two values for purpose number `index`, as aggregates over the snapshot's
    rows (observed while it is written, on Spark): exact for decided_select without normalize, whose
    rows are the snapshot's rows with that code; with normalize 'lower', whose rows group those by
    their A-Z-lowered key (of the same bytes), the same whether-any count and an upper bound of the
    bytes."""
    code = f"code_{int(index)}"
    return [
        f"count({code})",
        f"coalesce(sum(CASE WHEN {code} IS NOT NULL THEN octet_length(subject_key) END), 0)",
    ]


def _reason_conditions(d: Dialect, raw: str, severity: str) -> dict[str, str]:
    """Each exclusion reason as a condition over a row's subject value `raw` and the severity deciding
    for it (null: no decision)."""
    blank = f"({raw} IS NULL OR {text_key(d, raw, None)} = '')"
    return {
        "null_subject": f"{severity} IS NULL AND {blank}",
        "no_consent": f"{severity} IS NULL AND NOT {blank}",
        **{reason: f"{severity} = {code}" for code, reason in SEVERITY_REASON.items()},
    }


def counts_select(d: Dialect, *, key_bytes: bool = False, relation: str | None = None) -> str:
    """rows_in, rows_out and one count per exclusion reason (in REASONS order), from KEYS (or
    `relation`, of the same columns: decided_rows); with `key_bytes`, then the bytes of the consented
    values as text (what consented_select's broadcast would ship)."""
    conditions = _reason_conditions(d, "raw", "severity")
    parts = [
        "sum(n)",
        f"sum(n) FILTER (WHERE severity = {VALID_GRANT})",
        *(f"sum(n) FILTER (WHERE {conditions[reason]})" for reason in REASONS),
    ]
    if key_bytes:
        parts.append(f"sum(octet_length(CAST(raw AS {d.text_type}))) FILTER (WHERE severity = {VALID_GRANT})")
    return f"SELECT {', '.join(f'coalesce({p}, 0)' for p in parts)} FROM {relation or scratch(d, KEYS)}"


@dataclass(frozen=True)
class ObservedDecisions:
    """The source's rows joined to the decisions of their keys, as parts of a DataFrame plan (Spark):
    the rows written and their counts in one pass, the counts observed while the rows are written.

    :param decided: the decisions (DECIDED), to join as alias `dd` to the source as alias `s`
    :param on: the join condition (a row's key = dd.subject_key)
    :param counts: aggregates over the joined rows: rows_in, rows_out, one per reason in REASONS
        order (count_if: observed metrics take no FILTER); each null-free
    :param consented: the condition of the rows written
    """

    decided: str
    on: str
    counts: tuple[str, ...]
    consented: str


def observed_decisions(d: Dialect, subject_expr: str, normalize: str | None) -> ObservedDecisions:
    """What decided_rows, counts_select over it and decided_consented_select compute, as one plan
    (`subject_expr` over alias `s`, as given to decided_rows): the same rows, the same counts."""
    severity = "dd.severity"
    conditions = _reason_conditions(d, subject_expr, severity)
    consented = f"{severity} = {VALID_GRANT}"
    return ObservedDecisions(
        decided=scratch(d, DECIDED),
        on=f"dd.subject_key = {text_key(d, subject_expr, normalize)}",
        counts=(
            "count(*)",
            f"count_if({consented})",
            *(f"count_if({conditions[reason]})" for reason in REASONS),
        ),
        consented=consented,
    )
