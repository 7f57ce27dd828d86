"""The run report: one self-contained HTML page (inline CSS and SVG, no script, no network) for a run.

It leads with people: per purpose of the run (with the policy's plain-language text), how many people
the consent log counts as consented, and how many as excluded, by reason, as of the run's cut-off
(`consentgate.evidence.people`). Below: the consent-source ingests the run took in, rows in and out per
dataset, how consent changed since the previous run, the opt-out latency, the trend over recent runs,
and a glossary of every term. Runs are labelled by their cut-off and their id. Counts, table names and
timestamps only: the page never holds a subject identifier. Every chart element carries its number
in `data-*` attributes, so the page can be checked by machine as well as read.

Reporting never fails the work it describes: a consent log that cannot be read leaves its sections
empty with a note; only a missing run or database is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from consentgate.engine import lineage
from consentgate.engine.enforcement import utcnow
from consentgate.engine.policy import Policy
from consentgate.engine.session import Session, open_database
from consentgate.errors import ConsentGateError, RunNotFoundError, one_line
from consentgate.evidence import people, transparency, verification
from consentgate.evidence.charts import LABELS, column_chart, esc, hbar_chart, legend, line_chart, num
from consentgate.rule.semantics import REASONS, purpose_key

log = logging.getLogger("consentgate")

TREND_RUNS = 30
CHANGE_CLASSES = ("granted", "withdrawn", "denied", "invalid")
RunHref = Callable[[str], str]

# -- data -----------------------------------------------------------------------------------------


def collect(
    session: Session, run_id: str | None = None, *, policy: Policy | None = None, trend_runs: int = TREND_RUNS
) -> dict[str, Any] | None:
    """Everything the page shows, as plain data. None when no run is recorded at all."""
    if not lineage.has_tables(session):
        if run_id:
            raise RunNotFoundError(f"no run with run_id {run_id!r}: no run is recorded in this database")
        return None
    runs = lineage._dicts(session, f"SELECT * FROM {lineage.RUNS}", [])  # noqa: SLF001
    run = _pick_run(runs, run_id)
    if run is None:
        return None
    trend, before, previous = _neighbours(runs, run, trend_runs)
    rows_by_run: dict[str, list[dict[str, Any]]] = {}
    for row in lineage._dicts(session, f"SELECT * FROM {lineage.LINEAGE} ORDER BY dataset", []):  # noqa: SLF001
        rows_by_run.setdefault(row["run_id"], []).append(row)
    data: dict[str, Any] = {
        "run": run,
        "datasets": rows_by_run.get(run["run_id"], []),
        "previous": previous,
        "trend": [{**r, "datasets": rows_by_run.get(r["run_id"], [])} for r in trend],
        "changes": None,
        "changes_by_run": None,
        "trend_has_lower": bool(before),
        "latency": None,
        "notes": [],
        "people": None,
        "ingests": None,
        "descriptions": {p.name.strip(" ").lower(): p.description for p in policy.purposes}
        if policy
        else None,
    }
    try:
        data["ingests"] = people.run_ingests(session, previous["as_of"] if previous else None, run["as_of"])
    except Exception as exc:  # noqa: BLE001 - reporting degrades, never fails
        log.warning("consent-source ingests could not be read: %s", one_line(exc))
        data["notes"].append(f"consent-source ingests could not be read: {one_line(exc)}")
    try:
        source = transparency.consent_source(session, policy, run["consent_table"])
    except ConsentGateError as exc:
        data["notes"].append(
            f"the consent log cannot be read, so consent changes are not shown: {one_line(exc)}"
        )
        return data
    try:
        lower = before[-1]["as_of"] if before else None
        by_run = consent_changes(session, source, lower, [r["as_of"] for r in trend])
        data["changes_by_run"] = by_run
        if run["as_of"] is not None:
            first = next(i for i, r in enumerate(trend) if r["as_of"] == run["as_of"])
            data["changes"] = by_run[first]
        data["latency"] = verification.opt_out_latency(session, source)
    except Exception as exc:  # noqa: BLE001 - reporting degrades, never fails
        log.warning("consent changes could not be computed: %s", one_line(exc))
        data["notes"].append(f"consent changes could not be computed: {one_line(exc)}")
    try:
        if run["as_of"] is not None and run["consent_table"]:
            data["people"] = people.people_by_purpose(
                session,
                consent_table=run["consent_table"],
                as_of=run["as_of"],
                purposes=people.run_purposes(data["datasets"]),
                columns=policy.columns if policy else None,
            )
    except Exception as exc:  # noqa: BLE001 - reporting degrades, never fails
        log.warning("people per purpose could not be counted: %s", one_line(exc))
        data["notes"].append(f"people per purpose could not be counted: {one_line(exc)}")
    return data


def _pick_run(runs: list[dict[str, Any]], run_id: str | None) -> dict[str, Any] | None:
    """The run asked for, else the latest started; None when there is no run and none was asked for."""
    if run_id:
        run = next((r for r in runs if r["run_id"] == run_id), None)
        if run is None:
            raise RunNotFoundError(f"no run with run_id {run_id!r}; list runs with `consentgate lineage`")
        return run
    return max(runs, key=lambda r: (r["started_at"] or datetime.min, r["run_id"])) if runs else None


def _neighbours(
    runs: list[dict[str, Any]], run: dict[str, Any], trend_runs: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None]:
    """(the trend window ending at `run`, runs before that window, the run with the previous cut-off)."""

    def order(r: dict[str, Any]) -> tuple[datetime, datetime]:
        return (r["as_of"], r["started_at"] or datetime.min)

    timed = sorted((r for r in runs if r["as_of"] is not None), key=order)
    upto = [r for r in timed if order(r) <= order(run)] if run["as_of"] is not None else timed
    trend = upto[-trend_runs:]
    before = [r for r in timed if trend and r["as_of"] < trend[0]["as_of"]]
    earlier = [r for r in timed if run["as_of"] is not None and r["as_of"] < run["as_of"]]
    return trend, before, (earlier[-1] if earlier else None)


def consent_changes(
    session: Session, source: transparency.ConsentSource, lower: datetime | None, cutoffs: list[datetime]
) -> list[dict[str, dict[str, int]]]:
    """Per cut-off: events that started to count after the previous cut-off and by this one,
    as {purpose: {granted|withdrawn|denied|invalid: n}}. The first window is open below unless `lower`."""
    if not cutoffs:
        return []
    p = session.dialect.param
    status = purpose_key(session.dialect, source.expr(session, "status"))
    known = source.known_at(session)
    bucket = " ".join(f"WHEN k <= CAST({p} AS TIMESTAMP) THEN {i}" for i in range(len(cutoffs)))
    low = f" AND {known} > CAST({p} AS TIMESTAMP)" if lower is not None else ""
    rows = session.all(
        f"SELECT CASE {bucket} END AS b, purpose, cls, count(*) FROM ("
        f"SELECT {known} AS k, {purpose_key(session.dialect, source.expr(session, 'purpose'))} AS purpose, "
        f"CASE WHEN {status} IN ('granted', 'withdrawn', 'denied') THEN {status} ELSE 'invalid' END AS cls "
        f"FROM {source.table.sql()} AS c WHERE {source.well_formed(session)}{low} "
        f"AND {known} <= CAST({p} AS TIMESTAMP)) AS e GROUP BY 1, 2, 3",
        [*cutoffs, *([lower] if lower is not None else []), max(cutoffs)],
    )
    out: list[dict[str, dict[str, int]]] = [{} for _ in cutoffs]
    for b, purpose, cls, n in rows:
        if b is not None:
            out[int(b)].setdefault(str(purpose), {c: 0 for c in CHANGE_CLASSES})[str(cls)] += int(n)
    return out


# -- HTML -----------------------------------------------------------------------------------------


def _ts(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") + " UTC"
    return "-" if value is None else str(value)


def _short(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%m-%d %H:%M")


def _excluded(row: dict[str, Any]) -> dict[str, int]:
    return {r: int(row.get(f"excluded_{r}") or 0) for r in REASONS}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for limit, div, unit in ((120, 1, "s"), (7200, 60, "min"), (172800, 3600, "h")):
        if seconds < limit:
            return f"{seconds / div:.1f} {unit}" if div > 1 else f"{seconds:.0f} s"
    return f"{seconds / 86400:.1f} days"


def _card(label: str, value: str, small: bool = False) -> str:
    return (
        f'<div class="card"><div class="label">{esc(label)}</div>'
        f'<div class="value{" small" if small else ""}">{esc(value)}</div></div>'
    )


def run_label(run: dict[str, Any]) -> str:
    """A run as the page names it: its cut-off first (what it decided by), then its id, whole."""
    return f"as of {_ts(run['as_of'])} · run {run['run_id']}"


def _people_section(data: dict[str, Any]) -> str:
    head = (
        "<section><h2>People per purpose</h2>"
        '<p class="note">Distinct people in the consent log, decided for each purpose of this run as of its '
        "cut-off: consented people's rows reach the purpose; everyone else's are excluded, for the reason "
        "shown. People with no consent event are not in the log (their rows count as <em>no consent</em> "
        "below), and rows with no subject belong to no one. Counted from the consent log and the recorded "
        "cut-off, so anyone can recount them.</p>"
    )
    rows = data["people"]
    if rows is None:
        return head + '<p class="empty">Not available.</p></section>'
    if not rows:
        return head + '<p class="empty">This run enforced no purpose.</p></section>'
    descriptions = data["descriptions"]
    label = {r["purpose"]: r["purpose"] + (" (keys lower-cased)" if r["normalize"] else "") for r in rows}
    if len({r["purpose"] for r in rows}) == len(rows):
        label = {r["purpose"]: r["purpose"] for r in rows}
    out = [head, legend(list(people.DECISIONS))]
    out.append(
        hbar_chart("people", [(label[r["purpose"]], [(k, r[k]) for k in people.DECISIONS]) for r in rows])
    )
    table = [
        '<div class="scroll"><table><tr><th class=l>purpose</th><th class=l>what it means (the policy\'s text)</th>'
        "<th>people</th>" + "".join(f"<th>{esc(LABELS.get(k, k))}</th>" for k in people.DECISIONS) + "</tr>"
    ]
    for r in rows:
        text = (descriptions or {}).get(r["purpose"])
        shown = (
            esc(text)
            if text
            else '<span class="empty">no description: report with the policy (--policy)</span>'
        )
        table.append(
            f'<tr data-purpose="{esc(r["purpose"])}" data-normalize="{esc(r["normalize"] or "")}" '
            f'data-people="{r["people"]}"><td class=l>{esc(label[r["purpose"]])}</td>'
            f'<td class="l desc">{shown}</td><td>{num(r["people"])}</td>'
            + "".join(f'<td data-decision="{k}">{num(r[k])}</td>' for k in people.DECISIONS)
            + "</tr>"
        )
    table.append("</table></div>")
    return "".join(out + table) + "</section>"


def _ingests_section(data: dict[str, Any]) -> str:
    ingests = data["ingests"]
    if ingests is None:
        return ""
    prev = data["previous"]
    window = (
        f"after the previous run's cut-off ({esc(_ts(prev['as_of']))}) and by this run's"
        if prev
        else "by this run's cut-off"
    )
    head = (
        "<section><h2>Consent-source ingests</h2>"
        f'<p class="note">Ingests of the policy\'s consent sources whose events were recorded {window}: '
        "the consent events this run could newly count.</p>"
    )
    if not ingests:
        return head + '<p class="empty">No ingest in this window.</p></section>'
    table = [
        '<div class="scroll"><table><tr><th class=l>source</th><th class=l>kind</th><th class=l>status</th>'
        "<th>observations read</th><th>events written</th><th class=l>rejected, by reason</th>"
        "<th class=l>watermark</th><th class=l>recorded</th></tr>"
    ]
    for i in ingests:
        rejected = ", ".join(f"{esc(k)} {num(v)}" for k, v in sorted(i["rejected"].items())) or "none"
        watermark = f"{esc(_ts(i['watermark_from']))} → {esc(_ts(i['watermark_to']))}"
        table.append(
            f'<tr data-ingest="{esc(i["source"])}" data-status="{esc(i["status"])}" '
            f'data-read="{i["observations_read"]}" data-written="{i["events_written"]}" '
            f'data-rejected="{sum(i["rejected"].values())}"><td class=l>{esc(i["source"])}</td>'
            f"<td class=l>{esc(i['kind'])}</td><td class=l>{esc(i['status'])}</td>"
            f"<td>{num(i['observations_read'])}</td><td>{num(i['events_written'])}</td>"
            f"<td class=l>{rejected}</td><td class=l>{watermark}</td><td class=l>{esc(_ts(i['recorded_at']))}</td></tr>"
        )
    table.append("</table></div>")
    return head + "".join(table) + "</section>"


#: Every term the page uses, in plain words (docs/semantics.md has the rule itself).
GLOSSARY = (
    ("cut-off (as of)", "The instant the run decided consent by. Only consent events that happened and were "
     "recorded by then count; later ones wait for the next run. Runs are named by their cut-off and their id."),
    ("run id", "The name of one enforcement run (for Airflow, the DAG run's id). Paste it into "
     "<code>consentgate verify --run-id</code> to recompute the run."),
    ("person", "A distinct subject key in the consent log (trimmed; lower-cased for e-mail keys). The page "
     "shows how many, never who."),
    ("consented", "The person's deciding consent event for the purpose is a grant that has not expired: their "
     "rows are kept."),
    ("kept", "Rows whose subject is consented for the dataset's purpose; they reach the target."),
    ("null subject", "A row whose subject column is empty or only spaces: it belongs to no one we could ask, "
     "so it is excluded."),
    ("no consent", "A row whose subject has no consent event for the purpose by the cut-off. Opt-in is the "
     "default: no event, no row."),
    ("denied", "The deciding event says the person refused this purpose."),
    ("withdrawn", "The deciding event says the person took their consent back (an opt-out)."),
    ("expired", "The deciding event is a grant whose expiry date is at or before the cut-off."),
    ("invalid", "The deciding event has a status that is not granted, denied or withdrawn (a malformed "
     "record): it counts as a refusal, never as consent."),
    ("deciding event", "The person's latest event for the purpose by the cut-off; on a tie, the most "
     "restrictive one wins."),
    ("rows in / rows out", "Rows read from the dataset's source, and rows written to its target (the kept rows)."),
    ("consent events counted", "The events of the consent log (every purpose) that count at the cut-off."),
    ("consent fingerprint", "A checksum over exactly those events. Recomputing it later proves the consent "
     "log the run decided on was not changed afterwards (the log is append-only)."),
    ("trigger", "What started the run: cli, airflow or dbt."),
    ("ingest", "One read of a consent source (a CMP export, TC strings, GPC signals ...) into the consent log."),
    ("observations read / events written", "Records read from the source, and consent events appended to the "
     "log from them (a repeated or unchanged observation writes nothing)."),
    ("rejected", "Records that could not be turned into a consent event, by reason; they give no consent."),
    ("watermark", "How far into the source an ingest has read; the next ingest starts there."),
    ("opt-out latency", "Time from when a withdrawal was recorded to the cut-off of the first run that applied it."),
)  # fmt: skip


def _glossary_section() -> str:
    items = "".join(f'<dt data-term="{esc(term)}">{esc(term)}</dt><dd>{text}</dd>' for term, text in GLOSSARY)
    return f'<section id="terms"><h2>What the terms mean</h2><dl class="terms">{items}</dl></section>'


def _run_section(data: dict[str, Any]) -> str:
    rows = data["datasets"]
    if not rows:
        return '<section><h2>Datasets</h2><p class="empty">This run recorded no dataset.</p></section>'
    bars = [
        (r["dataset"], [("kept", int(r["rows_out"] or 0))] + [(k, v) for k, v in _excluded(r).items()])
        for r in rows
    ]
    table = [
        '<div class="scroll"><table><tr><th>dataset</th><th class=l>source → target</th>'
        "<th class=l>purpose</th>"
        "<th>rows in</th><th>kept</th>" + "".join(f"<th>{esc(LABELS[r])}</th>" for r in REASONS) + "</tr>"
    ]
    for r in rows:
        ex = _excluded(r)
        table.append(
            f'<tr data-dataset="{esc(r["dataset"])}"><td>{esc(r["dataset"])}</td>'
            f"<td class=l>{esc(r['source'])}<br>→ {esc(r['target'])}</td><td class=l>{esc(r['purpose'])}</td>"
            f"<td>{num(r['rows_in'])}</td><td>{num(r['rows_out'])}</td>"
            + "".join(f"<td>{num(ex[k])}</td>" for k in REASONS)
            + "</tr>"
        )
    table.append("</table></div>")
    totals = {k: sum(_excluded(r)[k] for r in rows) for k in REASONS}
    return (
        "<section><h2>Rows in and out per dataset</h2>"
        '<p class="note">Each bar is one dataset\'s source rows: kept (consented) and excluded, by reason. '
        "Datasets can hold the same people's data (a dbt model reads what a raw table holds), so rows are not "
        "added up across datasets.</p>"
        + legend(["kept", *REASONS])
        + hbar_chart("datasets", bars)
        + "".join(table)
        + "</section>"
        "<section><h2>Excluded rows by reason</h2>"
        '<p class="note">The rows of all datasets of this run together: a person with rows in several datasets is '
        "counted once per row. For people, see the top of the page.</p>"
        + hbar_chart("reasons", [(LABELS[k], [(k, v)]) for k, v in totals.items()])
        + "</section>"
    )


def _changes_section(data: dict[str, Any]) -> str:
    prev = data["previous"]
    since = (
        f"since the previous run <code>{esc(prev['run_id'])}</code> (as of {esc(_ts(prev['as_of']))})"
        if prev
        else "up to this run (it is the first run: every event known by its cut-off)"
    )
    head = (
        f'<section><h2>Consent changes</h2><p class="note">Consent events that started to count {since}.</p>'
    )
    changes = data["changes"]
    if changes is None:
        return head + '<p class="empty">Not available.</p></section>'
    if not changes:
        return head + '<p class="empty">No consent event was recorded in this window.</p></section>'
    purposes = sorted(changes)
    table = ["<table><tr><th>purpose</th>" + "".join(f"<th>{c}</th>" for c in CHANGE_CLASSES) + "</tr>"]
    for p in purposes:
        table.append(
            f'<tr data-purpose="{esc(p)}"><td>{esc(p)}</td>'
            + "".join(f'<td data-status="{c}">{num(changes[p][c])}</td>' for c in CHANGE_CLASSES)
            + "</tr>"
        )
    table.append("</table>")
    chart = column_chart(
        "changes",
        [(p, p) for p in purposes],
        [(c, [changes[p][c] for p in purposes]) for c in CHANGE_CLASSES],
        stacked=False,
        width=520,
        height=200,
    )
    return head + legend(list(CHANGE_CLASSES)) + chart + "".join(table) + "</section>"


def _latency_section(data: dict[str, Any]) -> str:
    lat = data["latency"]
    body = '<p class="empty">Not available.</p>'
    if lat:
        body = (
            '<div class="cards" data-chart="latency" '
            f'data-measured="{lat["measured"]}" data-median-seconds="{lat["median_seconds"] or ""}" '
            f'data-max-seconds="{lat["max_seconds"] or ""}">'
            + _card("withdrawals enforced", num(lat["measured"]))
            + _card("median latency", _duration(lat["median_seconds"]))
            + _card("max latency", _duration(lat["max_seconds"]))
            + _card("pending", num(lat["pending"]))
            + "</div>"
            f'<p class="note">Not measured: {num(lat["before_first_run"])} recorded before the first run of '
            f"their purpose, {num(lat['untracked'])} for purposes no run enforces.</p>"
        )
    return (
        '<section><h2>Opt-out latency</h2><p class="note">For every withdrawal: time from when it was recorded '
        "to the cut-off of the first run that applied it (all recorded runs).</p>" + body + "</section>"
    )


def _trend_section(data: dict[str, Any], run_href: RunHref | None) -> str:
    trend = data["trend"]
    if not trend:
        return ""
    x = [(r["run_id"], _short(r["as_of"])) for r in trend]
    rows_in = [sum(int(d["rows_in"] or 0) for d in r["datasets"]) for r in trend]
    rows_out = [sum(int(d["rows_out"] or 0) for d in r["datasets"]) for r in trend]
    excl = {k: [sum(_excluded(d)[k] for d in r["datasets"]) for r in trend] for k in REASONS}
    parts = [
        f"<section><h2>Trend over the last {len(trend)} runs</h2>"
        '<p class="note">Rows summed over every dataset of each run, by consent cut-off (UTC): a measure of '
        "volume, not of people (a person's rows count once per dataset they are in).</p>",
        legend(["rows_in", "rows_out"]),
        line_chart("trend-rows", x, [("rows_in", rows_in), ("rows_out", rows_out)]),
        "<h2>Excluded rows by reason</h2>",
        legend(list(REASONS)),
        column_chart("trend-excluded", x, [(k, excl[k]) for k in REASONS]),
    ]
    if data["changes_by_run"] is not None:
        # A window needs a run before it: the first run of all has none, so it gets no column.
        shown = [i for i in range(len(trend)) if i > 0 or data["trend_has_lower"]]
        per = {
            c: [sum(p.get(c, 0) for p in data["changes_by_run"][i].values()) for i in shown]
            for c in CHANGE_CLASSES
        }
        parts += [
            "<h2>Consent changes between runs</h2>",
            '<p class="note">Events that started to count between a run\'s cut-off and the previous one.</p>',
            legend(list(CHANGE_CLASSES)),
            column_chart(
                "trend-changes", [x[i] for i in shown], [(c, per[c]) for c in CHANGE_CLASSES], stacked=False
            ),
        ]
    table = [
        "<table><tr><th class=l>cut-off (as of)</th><th class=l>run id</th><th class=l>status</th><th>datasets</th>"
        "<th>rows in</th><th>kept</th><th>excluded</th></tr>"
    ]
    for r, i_, o_ in reversed(list(zip(trend, rows_in, rows_out, strict=True))):
        rid = esc(r["run_id"])
        link = f'<a href="{esc(run_href(r["run_id"]))}">{rid}</a>' if run_href else rid
        table.append(
            f'<tr data-run="{rid}"><td class=l>{esc(_ts(r["as_of"]))}</td><td class=l>{link}</td>'
            f"<td class=l>{esc(r['status'])}</td><td>{len(r['datasets'])}</td>"
            f"<td>{num(i_)}</td><td>{num(o_)}</td><td>{num(i_ - o_)}</td></tr>"
        )
    table.append("</table>")
    return "".join(parts) + "<h2>Runs</h2>" + "".join(table) + "</section>"


def render_html(
    data: dict[str, Any] | None, *, run_href: RunHref | None = None, generated_at: datetime | None = None
) -> str:
    """The page for `collect()`'s data (None: a page saying no run is recorded yet)."""
    css = resources.files("consentgate.evidence").joinpath("templates/report.css").read_text()
    stamp = _ts(generated_at or utcnow())
    if data is None:
        title, header, body = (
            "consentgate report",
            "<h1>consentgate report</h1>",
            (
                '<section><p class="empty">No run is recorded in this database yet. Run <code>consentgate run</code> '
                "or the nightly DAG, then reload.</p></section>"
            ),
        )
    else:
        run = data["run"]
        rows = data["datasets"]
        rows_in = sum(int(r["rows_in"] or 0) for r in rows)
        rows_out = sum(int(r["rows_out"] or 0) for r in rows)
        status = str(run["status"])
        title = f"consentgate report: {run_label(run)}"
        header = (
            f'<h1>Consent enforcement as of <span data-cutoff="{esc(_ts(run["as_of"]))}">'
            f"{esc(_ts(run['as_of']))}</span>: run <code>{esc(run['run_id'])}</code> "
            f'<span class="badge {esc(status)}" data-status="{esc(status)}">{esc(status)}</span></h1>'
            f'<div class="sub">consent cut-off {esc(_ts(run["as_of"]))} · trigger {esc(run["trigger"])} · '
            f"started {esc(_ts(run['started_at']))} · finished {esc(_ts(run['finished_at']))} · "
            '<a href="#terms">what the terms mean</a></div>'
        )
        # Rows are not added up across datasets (the same people's data is read by several of them):
        # the cards count datasets and the consent log; people per purpose lead the page below.
        body = (
            f'<div class="cards" data-chart="summary" data-rows-in="{rows_in}" data-rows-out="{rows_out}">'
            + _card("datasets", num(len(rows)))
            + _card("purposes", num(len({r["purpose"] for r in rows if r.get("purpose")})))
            + _card("consent events counted", num(run["consent_events_counted"]))
            + _card("consent fingerprint", str(run["consent_fingerprint"] or "-"), small=True)
            + "</div>"
        )
        if run.get("error"):
            body += f'<section class="problem"><h2>Error</h2><p>{esc(run["error"])}</p></section>'
        for note in data["notes"]:
            body += f'<section><p class="note">{esc(note)}</p></section>'
        body += _people_section(data)
        body += _ingests_section(data)
        body += _run_section(data)
        body += f'<div class="grid2">{_changes_section(data)}{_latency_section(data)}</div><br>'
        body += _trend_section(data, run_href)
        body += _glossary_section()
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{css}</style></head>"
        f'<body><header>{header}</header><main id="report">{body}</main>'
        f"<footer>consentgate · generated {esc(stamp)} · counts only: this page never shows a subject "
        "identifier</footer></body></html>\n"
    )


def render_report(
    session: Session,
    run_id: str | None = None,
    *,
    policy: Policy | None = None,
    run_href: RunHref | None = None,
) -> str:
    return render_html(collect(session, run_id, policy=policy), run_href=run_href)


def write_report(
    database: str | Path, out: str | Path, run_id: str | None = None, *, policy: Policy | None = None
) -> dict[str, Any]:
    """Render the report of a run (default: the latest) of a DuckDB file to `out`; return what was written."""
    session = open_database(database, read_only=True)
    try:
        data = collect(session, run_id, policy=policy)
    finally:
        session.close()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
    return {
        "report": str(path),
        "run_id": data["run"]["run_id"] if data else None,
        "notes": data["notes"] if data else [],
    }
