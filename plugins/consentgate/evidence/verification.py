"""Verification: does a recorded run still hold up, and how long did withdrawals take to reach a run.

`verify_run` replays a run through the engine's own `Enforcer.take_snapshot` and `Enforcer.counts`
as of the run's cut-off; `opt_out_latency` measures withdrawals against the recorded runs. Both only
read, and return counts, table names and timestamps: never a subject identifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consentgate.engine import lineage
from consentgate.engine.enforcement import Enforcer, utcnow
from consentgate.engine.policy import Policy
from consentgate.engine.session import Session
from consentgate.errors import ConsentGateError, RunNotFoundError, one_line
from consentgate.evidence.transparency import ConsentSource, iso
from consentgate.rule.names import TableName
from consentgate.rule.semantics import REASONS, ConsentColumns, purpose_key

# -- verify ---------------------------------------------------------------------------------------


def _counts_dict(rows_in: int, rows_out: int | None, excluded: dict[str, int]) -> dict[str, Any]:
    """A lineage row's numbers (docs/runs.md, "What the numbers mean"): rows_in, rows_out, excluded by
    reason, and `consented` = rows_in minus the excluded rows (the source rows the rule let through).
    rows_out is left out when it cannot be recomputed from the source (a dbt model's rows)."""
    counts: dict[str, Any] = {"rows_in": rows_in}
    if rows_out is not None:
        counts["rows_out"] = rows_out
    counts["excluded"] = {k: int(excluded.get(k, 0)) for k in REASONS}
    counts["consented"] = rows_in - sum(counts["excluded"].values())
    return counts


def _recorded(row: dict[str, Any]) -> dict[str, Any]:
    return _counts_dict(
        int(row["rows_in"] or 0),
        int(row["rows_out"] or 0),
        {k: int(row[f"excluded_{k}"] or 0) for k in REASONS},
    )


def _is_dbt(row: dict[str, Any]) -> bool:
    """A row written by the dbt package: its target is a model built from the consented rows, so its
    rows_out (the model's rows) is checked against the target, not recomputed from the source."""
    return str(row.get("trigger") or "").lower() == "dbt"


def _latest_writers(session: Session) -> dict[tuple[str, str], str]:
    """target key -> run_id of the lineage row that last replaced it."""
    rows = session.all(
        f"SELECT run_id, target FROM {lineage.LINEAGE} WHERE target IS NOT NULL "
        "ORDER BY finished_at NULLS FIRST, started_at NULLS FIRST"
    )
    latest: dict[tuple[str, str], str] = {}
    for run_id, target in rows:
        try:
            latest[TableName.parse(target).key(session.default_schema)] = str(run_id)
        except ConsentGateError:
            continue
    return latest


def verify_run(session: Session, run_id: str, *, policy: Policy | None = None) -> dict[str, Any]:
    """Replay a recorded run from the consent log as of its cut-off and check its evidence still holds.

    Fails (ok=False) when the consent fingerprint differs (the log was rewritten after the run), when
    the recomputed decisions differ on an unchanged source, or when a target still holding the run's
    output has rows of people not consented as of the cut-off. A source that grew or shrank since the
    run is a warning: its decisions cannot be recomputed exactly. Counts only; no subject id.
    """
    if not lineage.has_tables(session):
        raise RunNotFoundError("no run recorded in this database (no consentgate_runs table)")
    found = lineage.read_runs(session, run_id, limit=1)
    if not found:
        raise RunNotFoundError(f"no run with run_id {run_id!r}; list runs with `consentgate lineage`")
    run = found[0]
    rows = lineage.read_lineage(session, run_id)
    problems: list[str] = []
    warnings: list[str] = []
    result: dict[str, Any] = {
        "run_id": run_id,
        "run_status": lineage.effective_status(run, utcnow()),
        "as_of": iso(run["as_of"]),
        "consent_table": run["consent_table"],
        "fingerprint": None,
        "datasets": [],
        "problems": problems,
        "warnings": warnings,
    }
    if run["as_of"] is None:
        problems.append("the run has no recorded as_of (it failed before reading consent): nothing to replay")
    if not rows:
        warnings.append("the run recorded no dataset (it enforced nothing)")
    _check_completion(result["run_status"], run, rows, problems, warnings)
    enforcer = None
    if run["as_of"] is not None:
        enforcer = Enforcer(
            session,
            consent_table=run["consent_table"] or (policy.consent_table if policy else "consent_events"),
            columns=policy.columns if policy else ConsentColumns(),
            as_of=run["as_of"],
            run_id=run_id,
        )
        try:
            snap = enforcer.take_snapshot([row["purpose"] for row in rows])
        except ConsentGateError as exc:
            problems.append(f"the consent log cannot be read as of the run's cut-off: {one_line(exc)}")
            enforcer = None
        else:
            match = snap.fingerprint == run["consent_fingerprint"]
            result["fingerprint"] = {
                "recorded": run["consent_fingerprint"],
                "recomputed": snap.fingerprint,
                "events_recorded": run["consent_events_counted"],
                "events_recomputed": snap.events_counted,
                "match": match,
            }
            if not match:
                problems.append(
                    f"consent fingerprint differs: recorded {run['consent_fingerprint']} over "
                    f"{run['consent_events_counted']} events, recomputed {snap.fingerprint} over "
                    f"{snap.events_counted}: events that counted at the cut-off were changed, deleted or "
                    "back-dated into the log after the run"
                )
    replay = _Replay(session, run_id, _latest_writers(session) if rows else {}, problems, warnings)
    result["datasets"] = [replay.dataset(enforcer, row) for row in rows]
    result["ok"] = not problems
    result["status"] = "failed" if problems else ("verified_with_warnings" if warnings else "verified")
    return result


def _check_completion(
    status: str, run: dict[str, Any], rows: list[dict[str, Any]], problems: list[str], warnings: list[str]
) -> None:
    """Only a run that finished successfully and enforced every dataset it planned can be verified."""
    if status == "stale":
        problems.append(
            "the run is stale: it was recorded as running but never finished (its process is gone or it "
            f"started more than {lineage.STALE_AFTER} ago: killed?); its targets may be partly replaced"
        )
    elif status != "success":
        problems.append(f"the run's status is {status}, not success: only a successful run can be verified")
    planned = lineage.RunRecord(run["run_id"], planned_datasets=run.get("planned_datasets")).planned()
    if planned is None:
        warnings.append(
            "the run did not record the datasets it planned (an older version or dbt wrote it): "
            "whether it enforced all of them is not checked"
        )
        return
    # dbt plans models; a model with several consented() inputs records one dataset per input (model/input).
    recorded = {str(r["dataset"]) for r in rows} | {
        str(r["dataset"]).split("/", 1)[0] for r in rows if _is_dbt(r)
    }
    missing = sorted(set(planned) - recorded)
    if missing:
        problems.append(
            f"{len(missing)} of {len(planned)} planned datasets have no lineage row (never enforced): "
            + ", ".join(missing)
        )


@dataclass(frozen=True)
class _Replay:
    """One run being verified: what every dataset's check reads, and the findings it appends to.

    :param session: the database the run wrote to.
    :param run_id: the run being verified.
    :param latest: target key -> run_id that last replaced that target (see `_latest_writers`).
    :param problems: findings that fail the verification (the list in the result, appended to).
    :param warnings: findings that do not (the list in the result, appended to).
    """

    session: Session
    run_id: str
    latest: dict[tuple[str, str], str]
    problems: list[str]
    warnings: list[str]

    def dataset(self, enforcer: Enforcer | None, row: dict[str, Any]) -> dict[str, Any]:
        """Recompute one lineage row's counts as of the cut-off (None enforcer: not replayable)."""
        name = row["dataset"]
        entry: dict[str, Any] = {
            "dataset": name,
            "source": row["source"],
            "target": row["target"],
            "purpose": row["purpose"],
            "recorded": _recorded(row),
            "recomputed": None,
            "status": "not_replayed",
            "target_check": None,
        }
        if enforcer is None:
            return entry
        snap = enforcer.snapshot
        if row["consent_fingerprint"] and snap and row["consent_fingerprint"] != snap.fingerprint:
            self.problems.append(
                f"{name}: its lineage row's consent fingerprint differs from the recomputed one"
            )
        try:
            rows_in, rows_out, excluded = enforcer.counts(
                TableName.parse(row["source"], "source table"),
                row["subject_column"],
                row["purpose"],
                row["normalize"],
            )
        except ConsentGateError as exc:
            entry["status"] = "source_missing"
            self.warnings.append(f"{name}: cannot recompute from the source: {one_line(exc)}")
        else:
            recorded = entry["recorded"]
            # An engine row's rows_out is the consented rows it copied; a dbt row's is the model's rows.
            now = _counts_dict(rows_in, None if _is_dbt(row) else rows_out, excluded)
            entry["recomputed"] = now
            same = (now["rows_in"], now["excluded"]) == (recorded["rows_in"], recorded["excluded"])
            adds_up = _is_dbt(row) or recorded["rows_out"] == recorded["consented"]
            if same and adds_up:
                entry["status"] = "reproduced"
            elif not adds_up:
                entry["status"] = "mismatch"
                self.problems.append(
                    f"{name}: its lineage row does not add up: rows_out {recorded['rows_out']}, but rows_in "
                    f"{recorded['rows_in']} minus {recorded['rows_in'] - recorded['consented']} excluded is "
                    f"{recorded['consented']}: the row was edited after the run"
                )
            elif rows_in != recorded["rows_in"]:
                entry["status"] = "source_changed"
                self.warnings.append(
                    f"{name}: source {row['source']} now has {rows_in} rows, the run read "
                    f"{recorded['rows_in']}: "
                    "it changed since the run, so its decisions are recomputed on today's rows"
                )
            else:
                entry["status"] = "mismatch"
                self.problems.append(
                    f"{name}: recomputed decisions differ from the recorded ones on a source of the same size "
                    f"(recorded {recorded['consented']} consented, recomputed {now['consented']})"
                )
        entry["target_check"] = self.target(enforcer, row)
        return entry

    def target(self, enforcer: Enforcer, row: dict[str, Any]) -> dict[str, Any]:
        """Check the row's target, if this run still holds it, for rows not consented at the cut-off."""
        name = row["dataset"]
        try:
            target = TableName.parse(row["target"], "target table")
        except ConsentGateError as exc:
            return {"status": "unreadable", "error": one_line(exc)}
        writer = self.latest.get(target.key(self.session.default_schema))
        if writer != self.run_id:
            return {"status": "replaced", "replaced_by": writer}
        try:
            rows, kept, violations = enforcer.counts(
                target, row["subject_column"], row["purpose"], row["normalize"]
            )
        except ConsentGateError as exc:
            self.warnings.append(f"{name}: target {row['target']} cannot be checked: {one_line(exc)}")
            return {"status": "missing", "error": one_line(exc)}
        bad = {k: v for k, v in violations.items() if v}
        check: dict[str, Any] = {"status": "clean", "rows": rows, "consented": kept, "violations": violations}
        if bad:
            check["status"] = "contaminated"
            self.problems.append(
                f"{name}: target {row['target']} holds {rows - kept} rows not consented as of the run's "
                "cut-off (" + ", ".join(f"{k} {v}" for k, v in bad.items()) + ")"
            )
        elif row["rows_out"] is not None and rows != int(row["rows_out"]):
            # Both kinds of row record the target's rows after the run in rows_out (docs/runs.md).
            check["status"] = "changed"
            self.warnings.append(
                f"{name}: target {row['target']} has {rows} rows, the run left {row['rows_out']}: "
                "it was changed after the run"
            )
        return check


# -- opt-out latency ------------------------------------------------------------------------------


def opt_out_latency(session: Session, source: ConsentSource) -> dict[str, Any]:
    """How long withdrawals took to reach a run, over every recorded run (aggregates only).

    For each withdrawal (a well-formed event whose status is `withdrawn`) of a purpose some run
    enforced: the first run (by as_of) with a dataset of that purpose whose cut-off includes it
    (as_of >= when the event became known: the later of event_ts and recorded_at). Latency is that
    run's as_of minus the known time. Withdrawals known before the purpose's first run predate
    enforcement and are counted apart; those no run has reached yet are `pending`.
    """
    empty = {
        "withdrawals": 0,
        "measured": 0,
        "pending": 0,
        "before_first_run": 0,
        "untracked": 0,
        "median_seconds": None,
        "max_seconds": None,
    }
    if not lineage.has_tables(session):
        return empty
    d = session.dialect
    status = source.expr(session, "status")
    purpose = source.expr(session, "purpose")
    lag = f"({d.epoch_us('r.enforced_at')} - {d.epoch_us('r.known')}) / 1000000.0"
    # The first run at or after each withdrawal: withdrawals and run cut-offs in one sequence per
    # purpose, latest first (a run before a withdrawal of the same instant), and a running minimum of
    # the cut-offs seen so far. One sort instead of a join of every withdrawal with every run.
    sql = (
        f"WITH w AS (SELECT {purpose_key(d, purpose)} AS purpose, {source.known_at(session)} AS t "
        f"FROM {source.table.sql()} AS c "
        f"WHERE {source.well_formed(session)} AND {purpose_key(d, status)} = 'withdrawn'), "
        f"runs AS (SELECT DISTINCT {purpose_key(d, 'l.purpose')} AS purpose, r.as_of AS t FROM {lineage.LINEAGE} AS l "
        f"JOIN {lineage.RUNS} AS r ON r.run_id = l.run_id WHERE r.as_of IS NOT NULL AND l.purpose IS NOT NULL), "
        "firsts AS (SELECT purpose, min(t) AS first_as_of FROM runs GROUP BY purpose), "
        "seq AS (SELECT purpose, t, 0 AS kind, CAST(NULL AS TIMESTAMP) AS as_of FROM w "
        "UNION ALL SELECT purpose, t, 1, t FROM runs), "
        "nxt AS (SELECT purpose, t, kind, min(as_of) OVER (PARTITION BY purpose ORDER BY t DESC, kind DESC "
        "ROWS UNBOUNDED PRECEDING) AS enforced_at FROM seq), "
        "r AS (SELECT nxt.t AS known, f.first_as_of, nxt.enforced_at FROM nxt "
        "LEFT JOIN firsts AS f ON f.purpose = nxt.purpose WHERE nxt.kind = 0) "
        "SELECT count(*), "
        "count(*) FILTER (WHERE r.first_as_of IS NULL), "
        "count(*) FILTER (WHERE r.first_as_of IS NOT NULL AND r.known <= r.first_as_of), "
        "count(*) FILTER (WHERE r.known > r.first_as_of AND r.enforced_at IS NULL), "
        "count(*) FILTER (WHERE r.known > r.first_as_of AND r.enforced_at IS NOT NULL), "
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {lag}) FILTER (WHERE r.known > r.first_as_of), "
        f"max({lag}) FILTER (WHERE r.known > r.first_as_of) "
        "FROM r"
    )
    total, untracked, before, pending, measured, median, worst = session.one(sql)
    return {
        "withdrawals": int(total),
        "measured": int(measured),
        "pending": int(pending),
        "before_first_run": int(before),
        "untracked": int(untracked),
        "median_seconds": None if median is None else float(median),
        "max_seconds": None if worst is None else float(worst),
    }
