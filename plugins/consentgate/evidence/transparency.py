"""Transparency: what consentgate decided for one person, and what each purpose means.

Everything here reads; nothing writes a table (session-private temp tables only, and the subject
index on request), so the reports run on a read-only connection. Decisions come from the rule's one
SQL home (`consentgate.rule.semantics`): the subject report runs the snapshot/decided generators over the
person's own events. Whether a recorded run holds up, and the opt-out latency, are in
`consentgate.evidence.verification`.

Subject identifiers appear only in `subject_report`, which is asked for one person by name. Every
other function returns counts, table names and timestamps.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from consentgate.dbt import coverage
from consentgate.engine import lineage
from consentgate.engine.enforcement import Enforcer, utcnow
from consentgate.engine.policy import Policy
from consentgate.engine.session import Session
from consentgate.errors import ConsentGateError
from consentgate.rule import semantics
from consentgate.rule.dialects import DUCKDB
from consentgate.rule.names import TableName, quote
from consentgate.rule.semantics import (
    SEVERITY_REASON,
    VALID_GRANT,
    ConsentColumns,
    fold_case,
    purpose_key,
    text_key,
)

log = logging.getLogger("consentgate")

SUBJECT_EVENTS = "_consentgate_subject_events"


def _subject_events(session: Session) -> str:
    """The subject report's scratch table, in the session's temporary schema (never a user table)."""
    return semantics.scratch(session.dialect, SUBJECT_EVENTS)


CONSENTED = "consented"

Mode = tuple[str, str | None]  # (purpose key, key normalisation): what one decision is keyed by


class SubjectError(ConsentGateError, ValueError):
    """The subject id asked for is blank (a blank key never matches any row)."""


# -- the consent log ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentSource:
    """The consent log as it is in the database: its table, actual column names and their types."""

    table: TableName
    columns: ConsentColumns
    types: dict[str, str]

    def expr(self, session: Session, logical: str, alias: str = "c") -> str:
        """A column as the rule reads it (timestamps as naive UTC); NULL for an absent optional column."""
        name = getattr(self.columns, logical)
        if name is None:
            return (
                "CAST(NULL AS TIMESTAMP)" if logical in ConsentColumns.TIMESTAMPS else "CAST(NULL AS VARCHAR)"
            )
        ref = f"{alias}.{quote(name)}"
        if logical in ConsentColumns.TIMESTAMPS:
            return session.dialect.utc_timestamp(ref, self.types[logical])
        return ref

    def known_at(self, session: Session, alias: str = "c") -> str:
        """When an event starts to count (rule 1): the later of event_ts and recorded_at."""
        ts, rec = self.expr(session, "event_ts", alias), self.expr(session, "recorded_at", alias)
        return f"greatest({ts}, coalesce({rec}, {ts}))"

    def well_formed(self, session: Session, alias: str = "c") -> str:
        """Rule 2: a non-blank subject, a purpose and an event_ts."""
        subject = self.expr(session, "subject_id", alias)
        return (
            f"{subject} IS NOT NULL AND {text_key(session.dialect, subject, None)} <> '' "
            f"AND {self.expr(session, 'purpose', alias)} IS NOT NULL "
            f"AND {self.expr(session, 'event_ts', alias)} IS NOT NULL"
        )


def consent_source(
    session: Session, policy: Policy | None = None, consent_table: str | None = None
) -> ConsentSource:
    """Resolve the consent log: an explicit table, else the policy's, else the latest run's, else the default.

    Columns are checked exactly as the engine checks them (a missing or mistyped column fails).
    """
    columns = policy.columns if policy else ConsentColumns()
    table = consent_table or (policy.consent_table if policy else None) or _latest_consent_table(session)
    enforcer = Enforcer(
        session,
        consent_table=table or "consent_events",
        columns=columns,
        as_of=utcnow(),
        run_id="transparency",
    )
    cols, types = enforcer._consent_types()  # noqa: SLF001 - the engine's own column checks, reused
    return ConsentSource(enforcer.consent, cols, types)


def _latest_consent_table(session: Session) -> str | None:
    if not lineage.has_tables(session):
        return None
    rows = session.all(
        f"SELECT consent_table FROM {lineage.RUNS} WHERE consent_table IS NOT NULL "
        "ORDER BY started_at DESC NULLS LAST, run_id DESC LIMIT 1"
    )
    return str(rows[0][0]) if rows else None


# -- the subject index ----------------------------------------------------------------------------


def subject_index_name(source: ConsentSource) -> str:
    return f"{source.table.name}_consentgate_subject"


def subject_lookup_expr(session: Session, source: ConsentSource, alias: str | None = None) -> str:
    """The expression the subject report filters on, and the subject index is built on.

    The rule's key, lower-cased: a superset of the person's events under either normalisation. The
    report narrows it down again (exact key unless the purpose's datasets normalise to lower case).
    Spelled with the plain trim, not text_key's prefix/suffix tests: DuckDB answers an equality on
    this expression from the index only when it is a plain function call.
    """
    d = session.dialect
    col = quote(source.columns.subject_id)
    ref = f"{alias}.{col}" if alias else col
    return f"lower({d.trim(f'CAST({ref} AS {d.text_type})')})"


def subject_index_exists(session: Session, source: ConsentSource) -> bool:
    t = source.table.resolved(session.default_schema)
    p = session.dialect.param
    if session.dialect is DUCKDB:
        sql = f"SELECT 1 FROM duckdb_indexes() WHERE schema_name = {p} AND table_name = {p} AND index_name = {p}"
    else:
        sql = f"SELECT 1 FROM pg_indexes WHERE schemaname = {p} AND tablename = {p} AND indexname = {p}"
    return bool(session.all(sql, [t.schema, t.name, subject_index_name(source)]))


def create_subject_index(session: Session, source: ConsentSource) -> bool:
    """Create the subject index on the consent log (idempotent). True if it was created now."""
    if subject_index_exists(session, source):
        return False
    with session.transaction() as s:
        s.run(
            f"CREATE INDEX {quote(subject_index_name(source))} ON {source.table.sql()} "
            f"(({subject_lookup_expr(s, source)}))"
        )
    return True


def drop_subject_index(session: Session, source: ConsentSource) -> bool:
    """Drop the subject index if it exists. True if it was dropped."""
    if not subject_index_exists(session, source):
        return False
    schema = source.table.resolved(session.default_schema).schema
    with session.transaction() as s:
        s.run(f"DROP INDEX {quote(str(schema))}.{quote(subject_index_name(source))}")
    return True


# -- decisions for one person ---------------------------------------------------------------------


def state_of(severity: int | None) -> str:
    """`consented`, or the exclusion reason a row of this person would get."""
    if severity is None:
        return "no_consent"
    return CONSENTED if severity == VALID_GRANT else SEVERITY_REASON[int(severity)]


def _decisions_sql(session: Session, source_sql: str, source: ConsentSource, asked: list[list[Mode]]) -> str:
    """One statement: the snapshot over `source_sql` at every cut-off asked (asked[g]: the modes wanted
    at cut-off g), then the deciding severity per cut-off and mode, as rows (g, i, severity) with i
    the mode's index in asked[g].

    Parameters: the cut-offs, then the purpose of each distinct mode (the snapshot's codes), then the
    key per (cut-off, mode). Built only from the rule's generators.
    """
    d = session.dialect
    modes = sorted(set().union(*asked), key=_mode_order)
    code = {mode: i for i, mode in enumerate(modes)}
    snapshot = semantics.snapshot_select(
        d, source_sql, source.columns, source.types, len(modes), cutoffs=len(asked)
    )
    parts = [
        f"SELECT {g} AS g, {i} AS i, (SELECT dd.severity FROM ("
        f"{semantics.decided_select(d, code[mode], mode[1], f'(SELECT * FROM {semantics.SNAPSHOT} WHERE g = {g}) AS sg')}"
        f") AS dd WHERE dd.subject_key = {d.param}) AS severity"
        for g, wanted in enumerate(asked)
        for i, mode in enumerate(wanted)
    ]
    return f"WITH {semantics.SNAPSHOT} AS ({snapshot}) " + " UNION ALL ".join(parts)


def _decide_subject(
    session: Session,
    source: ConsentSource,
    asked: list[tuple[datetime, list[Mode]]],
    keys: dict[str | None, str],
) -> list[dict[Mode, int | None]]:
    """The person's decision for each (cut-off, modes) asked, in one statement."""
    if not any(wanted for _t, wanted in asked):
        return [{} for _ in asked]
    modes = sorted(set().union(*(wanted for _t, wanted in asked)), key=_mode_order)
    params: list[Any] = [t for t, _wanted in asked] + [purpose for purpose, _normalize in modes]
    params += [keys[normalize] for _t, wanted in asked for _purpose, normalize in wanted]
    sql = _decisions_sql(session, _subject_events(session), source, [wanted for _t, wanted in asked])
    severity = {
        (int(g), int(i)): (None if sev is None else int(sev)) for g, i, sev in session.all(sql, params)
    }
    return [
        {mode: severity.get((g, i)) for i, mode in enumerate(wanted)} for g, (_t, wanted) in enumerate(asked)
    ]


def _purpose_key(name: str | None) -> str | None:
    return None if name is None else fold_case(name.strip(" "))


def _mode(purpose: str | None, normalize: str | None) -> Mode:
    """A (purpose, key normalisation) pair as decisions are keyed: the purpose trimmed and lower-cased."""
    return (_purpose_key(purpose) or "", normalize)


def _mode_order(mode: Mode) -> tuple[str, str]:
    return (mode[0], mode[1] or "")


def _lineage_rows(session: Session) -> list[dict[str, Any]]:
    if not lineage.has_tables(session):
        return []
    return lineage._dicts(  # noqa: SLF001 - the module's own row reader
        session,
        f"SELECT r.run_id, r.status, r.as_of, r.started_at, r.finished_at, r.trigger, "
        f"l.dataset, l.source, l.target, l.purpose, l.normalize "
        f"FROM {lineage.RUNS} AS r LEFT JOIN {lineage.LINEAGE} AS l ON l.run_id = r.run_id "
        "ORDER BY r.as_of NULLS FIRST, r.started_at NULLS FIRST, r.run_id, l.dataset",
        [],
    )


def subject_report(
    session: Session, subject_id: str, *, policy: Policy | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Everything consentgate knows and decided about one person (asked for explicitly, by id).

    - `history`: their consent events per purpose, in order, as stored;
    - `current`: their state per purpose (and key normalisation) by the rule as of now;
    - `runs`: for every recorded run, whether their rows were eligible for each dataset, recomputed
      from the consent log as of the run's cut-off (no subject id is ever stored per run).
    """
    d = session.dialect
    if not isinstance(subject_id, str) or not subject_id.strip(" "):
        raise SubjectError("subject id is blank; a blank key never matches, so there is nothing to report")
    now = now or utcnow()
    source = consent_source(session, policy)
    key_exact, key_lower = session.one(
        f"SELECT {text_key(d, 'v.id', None)}, {text_key(d, 'v.id', 'lower')} "
        f"FROM (SELECT CAST({d.param} AS {d.text_type}) AS id) AS v",
        [subject_id],
    )
    if not key_exact:
        raise SubjectError("subject id is blank after trimming; a blank key never matches")
    keys: dict[str | None, str] = {None: str(key_exact), "lower": str(key_lower)}

    # The person's events, read once through the subject index; everything below works on this copy,
    # which is dropped before returning (no copy of personal data outlives the call).
    session.run(f"DROP TABLE IF EXISTS {_subject_events(session)}")
    session.run(
        f"CREATE TEMP TABLE {_subject_events(session)} AS SELECT * FROM {source.table.sql()} AS c "
        f"WHERE {subject_lookup_expr(session, source, 'c')} = {d.param}",
        [keys["lower"]],
    )
    try:
        return {
            "subject_id": keys[None],
            "consent_table": str(source.table),
            "as_of": now.isoformat(),
            "subject_index": subject_index_exists(session, source),
            **_subject_sections(session, source, keys, policy, now),
        }
    finally:
        session.run(f"DROP TABLE IF EXISTS {_subject_events(session)}")


def _subject_sections(
    session: Session, source: ConsentSource, keys: dict[str | None, str], policy: Policy | None, now: datetime
) -> dict[str, Any]:
    run_rows = _lineage_rows(session)
    modes: set[Mode] = {_mode(r["purpose"], r["normalize"]) for r in run_rows if r["purpose"]}
    if policy:
        modes |= {_mode(ds.purpose, ds.normalize) for ds in policy.datasets}
    lower_purposes = {p for p, n in modes if n == "lower"}

    history = _history(session, source, keys, lower_purposes)
    purposes = {h["purpose"] for h in history if h["purpose"] is not None} | {p for p, _ in modes}
    if policy:
        purposes |= {_purpose_key(p.name) or "" for p in policy.purposes}
    current_modes = sorted(
        set(modes) | {(p, None) for p in purposes if not any(m[0] == p for m in modes)},
        key=_mode_order,
    )
    # Now is one more cut-off: usually in the latest run's class, so it costs no statement of its own.
    needed = _cutoffs_needed(run_rows)
    needed.setdefault(now, set()).update(current_modes)
    decided = _decide_at_cutoffs(session, source, needed, keys)
    decided_now = {mode: decided[now].get(mode) for mode in current_modes}
    descriptions = {(_purpose_key(p.name) or ""): p.description for p in policy.purposes} if policy else {}
    current = [
        {
            "purpose": purpose,
            "normalize": normalize,
            "state": state_of(decided_now[(purpose, normalize)]),
            "consented": decided_now[(purpose, normalize)] == VALID_GRANT,
            "description": descriptions.get(purpose),
        }
        for purpose, normalize in current_modes
    ]
    return {
        "history": history,
        "current": current,
        "runs": _runs_for_subject(run_rows, decided),
    }


def _history(
    session: Session, source: ConsentSource, keys: dict[str | None, str], lower_purposes: set[str]
) -> list[dict[str, Any]]:
    d = session.dialect
    e = {logical: source.expr(session, logical) for logical in source.columns.mapping()}
    rows = session.all(
        f"SELECT {e['subject_id']}, {e['purpose']}, {e['status']}, {e['event_ts']}, {e['recorded_at']}, "
        f"{e['expires_at']}, {e['source']}, {e['policy_version']}, "
        f"{text_key(d, e['subject_id'], None)} = {d.param} AS exact, {purpose_key(d, e['purpose'])} AS pk "
        f"FROM {_subject_events(session)} AS c "
        f"ORDER BY pk NULLS LAST, {e['event_ts']} NULLS LAST, {source.known_at(session)} NULLS LAST",
        [keys[None]],
    )
    by_purpose: dict[str | None, list[dict[str, Any]]] = {}
    for sid, purpose, status, event_ts, recorded_at, expires_at, src, version, exact, pk in rows:
        if not exact and pk not in lower_purposes:
            continue  # another key that differs only in case: a different subject for this purpose
        by_purpose.setdefault(pk, []).append(
            {
                "subject_id": None if sid is None else str(sid),
                "purpose": purpose,
                "status": status,
                "event_ts": iso(event_ts),
                "recorded_at": iso(recorded_at),
                "expires_at": iso(expires_at),
                "source": src,
                "policy_version": version,
            }
        )
    return [{"purpose": pk, "events": events} for pk, events in by_purpose.items()]


def _cutoffs_needed(run_rows: list[dict[str, Any]]) -> dict[datetime, set[Mode]]:
    """The modes each recorded cut-off must be decided for (a run without datasets or cut-off needs none)."""
    needed: dict[datetime, set[Mode]] = {}
    for r in run_rows:
        if r["dataset"] is not None and r["as_of"] is not None:
            needed.setdefault(r["as_of"], set()).add(_mode(r["purpose"], r["normalize"]))
    return needed


def _runs_for_subject(
    run_rows: list[dict[str, Any]], decided: dict[datetime, dict[Mode, int | None]]
) -> list[dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    for r in run_rows:
        run = runs.setdefault(
            r["run_id"],
            {
                "run_id": r["run_id"],
                "status": r["status"],
                "as_of": r["as_of"],
                "trigger": r["trigger"],
                "datasets": [],
            },
        )
        if r["dataset"] is None:
            continue
        ds = {k: r[k] for k in ("dataset", "source", "target", "purpose", "normalize")}
        if r["as_of"] is None:
            ds["eligible"], ds["state"] = None, None
        else:
            severity = decided[r["as_of"]][_mode(r["purpose"], r["normalize"])]
            ds["eligible"] = severity == VALID_GRANT
            ds["state"] = state_of(severity)
        run["datasets"].append(ds)
    return [{**run, "as_of": iso(run["as_of"])} for run in runs.values()]


def _decide_at_cutoffs(
    session: Session,
    source: ConsentSource,
    needed: dict[datetime, set[Mode]],
    keys: dict[str | None, str],
) -> dict[datetime, dict[Mode, int | None]]:
    """The person's decision at every run cut-off, evaluating the rule once per class of equal cut-offs.

    The rule reads T only through `x <= T` for x in the person's event_ts, recorded_at-or-event_ts
    and expires_at values. Two cut-offs with the same number of those values at or before them give
    every comparison the same outcome, hence the same decision. So the cut-offs are grouped by that
    number (computed in SQL, with the rule's own comparisons), and the rule runs once per group, at
    the group's earliest real cut-off, every group in one statement (_decide_subject): a year of nightly
    runs costs two statements.
    """
    if not needed:
        return {}
    ts, rec, exp = (source.expr(session, c) for c in ("event_ts", "recorded_at", "expires_at"))
    p = session.dialect.param
    cutoffs = sorted(needed)
    values = ", ".join(f"(CAST({p} AS TIMESTAMP))" for _ in cutoffs)
    rows = session.all(
        f"WITH b AS (SELECT DISTINCT x FROM (SELECT {ts} AS x FROM {_subject_events(session)} AS c "
        f"UNION ALL SELECT coalesce({rec}, {ts}) FROM {_subject_events(session)} AS c "
        f"UNION ALL SELECT {exp} FROM {_subject_events(session)} AS c) AS u WHERE x IS NOT NULL), "
        f"cut AS (SELECT * FROM (VALUES {values}) AS v(t)) "
        "SELECT cut.t, (SELECT count(*) FROM b WHERE b.x <= cut.t) FROM cut",
        cutoffs,
    )
    group_of = {t: int(n) for t, n in rows}
    groups: dict[int, list[datetime]] = {}
    for t in cutoffs:
        groups.setdefault(group_of[t], []).append(t)
    asked = [
        (members[0], sorted(set().union(*(needed[t] for t in members)), key=_mode_order))
        for members in groups.values()
    ]
    decided: dict[datetime, dict[Mode, int | None]] = {}
    for members, at_first in zip(groups.values(), _decide_subject(session, source, asked, keys), strict=True):
        for t in members:
            decided[t] = at_first
    return decided


def iso(value: Any) -> str | None:
    """A timestamp as ISO 8601 text (anything else as str); None stays None."""
    return None if value is None else value.isoformat() if isinstance(value, datetime) else str(value)


# -- purposes -------------------------------------------------------------------------------------


def load_manifest(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise ConsentGateError(f"dbt manifest {str(p)!r} cannot be read: {exc.strerror or exc}") from None
    except ValueError:
        raise ConsentGateError(
            f"dbt manifest {str(p)!r} is not valid JSON; run `dbt parse` to regenerate it"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict):
        raise ConsentGateError(f"dbt manifest {str(p)!r} has no 'nodes' mapping; is it a dbt manifest.json?")
    return data


def ad_targeting_models(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The models marked ad-targeting, with their purpose (lower-cased; None if undeclared), sorted by name.

    What counts as marked, and where the purpose is read from, is the coverage check's definition
    (config meta `consentgate: {ad_targeting: true, purpose: ...}`, or the `consentgate_ad_targeting`
    tag), so `purposes` and `coverage` always list the same models.
    """
    nodes = manifest.get("nodes") or {}
    models = []
    for uid in coverage.ad_targeting_models(manifest):
        node = nodes[uid]
        relation = str(node.get("relation_name") or "").replace('"', "").replace("`", "") or ".".join(
            str(x) for x in (node.get("schema"), node.get("alias") or node.get("name")) if x
        )
        models.append(
            {
                "name": node.get("name"),
                "unique_id": uid,
                "relation": relation,
                "purpose": coverage.purpose_of(node),
                "description": node.get("description") or "",
            }
        )
    return sorted(models, key=lambda m: str(m["name"]))


def purposes_overview(policy: Policy, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per purpose: its plain-language description, the datasets that feed it and what uses it.

    With a dbt manifest, `used_by` lists the ad-targeting models that declare the purpose; without
    one, the policy's consented target tables. Models naming an undeclared purpose are listed apart.
    """
    models = ad_targeting_models(manifest) if manifest is not None else None
    declared = {_purpose_key(p.name) for p in policy.purposes}
    out = []
    for p in policy.purposes:
        key = _purpose_key(p.name)
        datasets = [
            {"name": ds.name, "source": ds.source, "target": ds.target, "subject_column": ds.subject_column}
            for ds in policy.datasets
            if _purpose_key(ds.purpose) == key
        ]
        if models is None:
            used_by = [{"kind": "table", "name": ds["target"], "dataset": ds["name"]} for ds in datasets]
        else:
            used_by = [
                {
                    "kind": "dbt_model",
                    "name": m["name"],
                    "relation": m["relation"],
                    "description": m["description"],
                }
                for m in models
                if isinstance(m["purpose"], str) and _purpose_key(m["purpose"]) == key
            ]
        out.append({"name": p.name, "description": p.description, "datasets": datasets, "used_by": used_by})
    undeclared = [
        {"name": m["name"], "purpose": m["purpose"]}
        for m in (models or [])
        if not isinstance(m["purpose"], str) or _purpose_key(m["purpose"]) not in declared
    ]
    return {
        "policy": policy.path,
        "used_by_source": "policy" if models is None else "dbt_manifest",
        "purposes": out,
        "undeclared_models": undeclared,
    }
