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

import html
import logging
import math
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
from consentgate.rule.semantics import REASONS, purpose_key

log = logging.getLogger("consentgate")

TREND_RUNS = 30
CHANGE_CLASSES = ("granted", "withdrawn", "denied", "invalid")
COLORS = {
    "kept": "#2f855a",
    "null_subject": "#a0aec0",
    "no_consent": "#718096",
    "denied": "#dd6b20",
    "withdrawn": "#c53030",
    "expired": "#d69e2e",
    "invalid": "#6b46c1",
    "granted": "#2f855a",
    "rows_in": "#2b6cb0",
    "rows_out": "#2f855a",
    "consented": "#2f855a",
}
LABELS = {
    "kept": "kept",
    "rows_in": "rows in",
    "rows_out": "rows out",
    **{r: r.replace("_", " ") for r in REASONS},
}

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


# -- SVG ------------------------------------------------------------------------------------------


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(n: float | int | None) -> str:
    if n is None:
        return "-"
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.1f}"


def _scale(v: float) -> tuple[float, int]:
    """(axis maximum, number of ticks): the smallest 1/2/2.5/5 x 10^k step reaching v in at most 5 ticks."""
    if v <= 0:
        return 1.0, 1
    k = max(len(str(int(v))) - 2, 0)
    while True:
        for m in (1, 2, 2.5, 5):
            step = m * 10**k
            n = math.ceil(v / step)
            if n <= 5:
                return float(step * n), n
        k += 1


def _legend(keys: list[str]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span style="--c:{COLORS[k]}">{_esc(LABELS.get(k, k))}</span>' for k in keys)
        + "</div>"
    )


def hbar_chart(chart: str, rows: list[tuple[str, list[tuple[str, int]]]], width: int = 1000) -> str:
    """Horizontal stacked bars, one per row label, segments (key, value) in order."""
    label_w, bar_h, gap, right = 190, 22, 12, 90
    height = len(rows) * (bar_h + gap) + 24
    total_max, ticks = _scale(max((sum(v for _, v in segs) for _, segs in rows), default=0))
    scale = (width - label_w - right) / total_max
    out = [
        f'<svg class="chart" data-chart="{_esc(chart)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_esc(chart)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i in range(ticks + 1):
        x = label_w + (width - label_w - right) * i / ticks
        out.append(f'<line class="grid" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 20}"/>')
        out.append(
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">{_num(total_max * i / ticks)}</text>'
        )
    for r, (label, segs) in enumerate(rows):
        y = r * (bar_h + gap) + 4
        total = sum(v for _, v in segs)
        out.append(f'<g data-row="{_esc(label)}" data-total="{total}">')
        out.append(
            f'<text x="{label_w - 8}" y="{y + bar_h * 0.7:.1f}" text-anchor="end">{_esc(label)}</text>'
        )
        x = float(label_w)
        for key, value in segs:
            w = value * scale
            out.append(
                f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{bar_h}" fill="{COLORS[key]}" '
                f'data-row="{_esc(label)}" data-segment="{_esc(key)}" data-value="{int(value)}">'
                f"<title>{_esc(label)}: {_esc(LABELS.get(key, key))} {_num(value)}</title></rect>"
            )
            x += w
        out.append(f'<text x="{x + 6:.1f}" y="{y + bar_h * 0.7:.1f}">{_num(total)}</text></g>')
    out.append("</svg>")
    return "".join(out)


def column_chart(
    chart: str,
    x: list[tuple[str, str]],
    series: list[tuple[str, list[int]]],
    *,
    stacked: bool = True,
    width: int = 1000,
    height: int = 240,
) -> str:
    """Columns per x (id, label): stacked or side by side series (key, values)."""
    left, bottom, top = 60, 46, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    if stacked:
        peak = max((sum(vals[i] for _, vals in series) for i in range(len(x))), default=0)
    else:
        peak = max((v for _, vals in series for v in vals), default=0)
    ymax, ticks = _scale(peak)
    slot = plot_w / max(len(x), 1)
    out = [
        f'<svg class="chart" data-chart="{_esc(chart)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_esc(chart)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    out += _y_axis(left, top, plot_w, plot_h, ymax, ticks)
    inner = slot * 0.7 if stacked else slot * 0.8 / max(len(series), 1)
    for i, (xid, xlabel) in enumerate(x):
        x0 = left + i * slot + (slot - (inner if stacked else inner * len(series))) / 2
        base = 0.0
        out.append(f'<g data-x="{_esc(xid)}">')
        for s, (key, vals) in enumerate(series):
            v = vals[i]
            h = v / ymax * plot_h
            bx = x0 if stacked else x0 + s * inner
            by = top + plot_h - h - (base if stacked else 0)
            out.append(
                f'<rect x="{bx:.2f}" y="{by:.2f}" width="{max(inner - 1, 1):.2f}" height="{h:.2f}" '
                f'fill="{COLORS[key]}" data-x="{_esc(xid)}" data-series="{_esc(key)}" data-value="{int(v)}">'
                f"<title>{_esc(xlabel)}: {_esc(LABELS.get(key, key))} {_num(v)}</title></rect>"
            )
            if stacked:
                base += h
        out.append("</g>")
        out += _x_label(left + i * slot + slot / 2, top + plot_h, xlabel, len(x))
    out.append("</svg>")
    return "".join(out)


def line_chart(
    chart: str,
    x: list[tuple[str, str]],
    series: list[tuple[str, list[int]]],
    *,
    width: int = 1000,
    height: int = 240,
) -> str:
    left, bottom, top = 60, 46, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    ymax, ticks = _scale(max((v for _, vals in series for v in vals), default=0))
    slot = plot_w / max(len(x), 1)
    out = [
        f'<svg class="chart" data-chart="{_esc(chart)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_esc(chart)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    out += _y_axis(left, top, plot_w, plot_h, ymax, ticks)
    for key, vals in series:
        pts = [(left + i * slot + slot / 2, top + plot_h - v / ymax * plot_h) for i, v in enumerate(vals)]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{COLORS[key]}" stroke-width="2.5" data-series="{_esc(key)}"/>'
        )
        for (px, py), (xid, xlabel), v in zip(pts, x, vals, strict=True):
            out.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{COLORS[key]}" data-x="{_esc(xid)}" '
                f'data-series="{_esc(key)}" data-value="{int(v)}"><title>{_esc(xlabel)}: '
                f"{_esc(LABELS.get(key, key))} {_num(v)}</title></circle>"
            )
    for i, (_xid, xlabel) in enumerate(x):
        out += _x_label(left + i * slot + slot / 2, top + plot_h, xlabel, len(x))
    out.append("</svg>")
    return "".join(out)


def _y_axis(left: int, top: int, plot_w: float, plot_h: float, ymax: float, ticks: int) -> list[str]:
    out = []
    for i in range(ticks + 1):
        y = top + plot_h - plot_h * i / ticks
        out.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_num(ymax * i / ticks)}</text>')
    out.append(
        f'<line class="axis" x1="{left}" y1="{top + plot_h:.1f}" x2="{left + plot_w:.1f}" y2="{top + plot_h:.1f}"/>'
    )
    return out


def _x_label(cx: float, y: float, label: str, n: int) -> list[str]:
    if n > 12:  # rotate when crowded
        return [
            f'<text x="{cx:.1f}" y="{y + 12:.1f}" text-anchor="end" transform="rotate(-40 {cx:.1f} {y + 12:.1f})">'
            f"{_esc(label)}</text>"
        ]
    return [f'<text x="{cx:.1f}" y="{y + 16:.1f}" text-anchor="middle">{_esc(label)}</text>']


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
        f'<div class="card"><div class="label">{_esc(label)}</div>'
        f'<div class="value{" small" if small else ""}">{_esc(value)}</div></div>'
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
    out = [head, _legend(list(people.DECISIONS))]
    out.append(
        hbar_chart("people", [(label[r["purpose"]], [(k, r[k]) for k in people.DECISIONS]) for r in rows])
    )
    table = [
        '<div class="scroll"><table><tr><th class=l>purpose</th><th class=l>what it means (the policy\'s text)</th>'
        "<th>people</th>" + "".join(f"<th>{_esc(LABELS.get(k, k))}</th>" for k in people.DECISIONS) + "</tr>"
    ]
    for r in rows:
        text = (descriptions or {}).get(r["purpose"])
        shown = (
            _esc(text)
            if text
            else '<span class="empty">no description: report with the policy (--policy)</span>'
        )
        table.append(
            f'<tr data-purpose="{_esc(r["purpose"])}" data-normalize="{_esc(r["normalize"] or "")}" '
            f'data-people="{r["people"]}"><td class=l>{_esc(label[r["purpose"]])}</td>'
            f'<td class="l desc">{shown}</td><td>{_num(r["people"])}</td>'
            + "".join(f'<td data-decision="{k}">{_num(r[k])}</td>' for k in people.DECISIONS)
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
        f"after the previous run's cut-off ({_esc(_ts(prev['as_of']))}) and by this run's"
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
        rejected = ", ".join(f"{_esc(k)} {_num(v)}" for k, v in sorted(i["rejected"].items())) or "none"
        watermark = f"{_esc(_ts(i['watermark_from']))} → {_esc(_ts(i['watermark_to']))}"
        table.append(
            f'<tr data-ingest="{_esc(i["source"])}" data-status="{_esc(i["status"])}" '
            f'data-read="{i["observations_read"]}" data-written="{i["events_written"]}" '
            f'data-rejected="{sum(i["rejected"].values())}"><td class=l>{_esc(i["source"])}</td>'
            f"<td class=l>{_esc(i['kind'])}</td><td class=l>{_esc(i['status'])}</td>"
            f"<td>{_num(i['observations_read'])}</td><td>{_num(i['events_written'])}</td>"
            f"<td class=l>{rejected}</td><td class=l>{watermark}</td><td class=l>{_esc(_ts(i['recorded_at']))}</td></tr>"
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
    items = "".join(
        f'<dt data-term="{_esc(term)}">{_esc(term)}</dt><dd>{text}</dd>' for term, text in GLOSSARY
    )
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
        "<th>rows in</th><th>kept</th>" + "".join(f"<th>{_esc(LABELS[r])}</th>" for r in REASONS) + "</tr>"
    ]
    for r in rows:
        ex = _excluded(r)
        table.append(
            f'<tr data-dataset="{_esc(r["dataset"])}"><td>{_esc(r["dataset"])}</td>'
            f"<td class=l>{_esc(r['source'])}<br>→ {_esc(r['target'])}</td><td class=l>{_esc(r['purpose'])}</td>"
            f"<td>{_num(r['rows_in'])}</td><td>{_num(r['rows_out'])}</td>"
            + "".join(f"<td>{_num(ex[k])}</td>" for k in REASONS)
            + "</tr>"
        )
    table.append("</table></div>")
    totals = {k: sum(_excluded(r)[k] for r in rows) for k in REASONS}
    return (
        "<section><h2>Rows in and out per dataset</h2>"
        '<p class="note">Each bar is one dataset\'s source rows: kept (consented) and excluded, by reason. '
        "Datasets can hold the same people's data (a dbt model reads what a raw table holds), so rows are not "
        "added up across datasets.</p>"
        + _legend(["kept", *REASONS])
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
        f"since the previous run <code>{_esc(prev['run_id'])}</code> (as of {_esc(_ts(prev['as_of']))})"
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
            f'<tr data-purpose="{_esc(p)}"><td>{_esc(p)}</td>'
            + "".join(f'<td data-status="{c}">{_num(changes[p][c])}</td>' for c in CHANGE_CLASSES)
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
    return head + _legend(list(CHANGE_CLASSES)) + chart + "".join(table) + "</section>"


def _latency_section(data: dict[str, Any]) -> str:
    lat = data["latency"]
    body = '<p class="empty">Not available.</p>'
    if lat:
        body = (
            '<div class="cards" data-chart="latency" '
            f'data-measured="{lat["measured"]}" data-median-seconds="{lat["median_seconds"] or ""}" '
            f'data-max-seconds="{lat["max_seconds"] or ""}">'
            + _card("withdrawals enforced", _num(lat["measured"]))
            + _card("median latency", _duration(lat["median_seconds"]))
            + _card("max latency", _duration(lat["max_seconds"]))
            + _card("pending", _num(lat["pending"]))
            + "</div>"
            f'<p class="note">Not measured: {_num(lat["before_first_run"])} recorded before the first run of '
            f"their purpose, {_num(lat['untracked'])} for purposes no run enforces.</p>"
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
        _legend(["rows_in", "rows_out"]),
        line_chart("trend-rows", x, [("rows_in", rows_in), ("rows_out", rows_out)]),
        "<h2>Excluded rows by reason</h2>",
        _legend(list(REASONS)),
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
            _legend(list(CHANGE_CLASSES)),
            column_chart(
                "trend-changes", [x[i] for i in shown], [(c, per[c]) for c in CHANGE_CLASSES], stacked=False
            ),
        ]
    table = [
        "<table><tr><th class=l>cut-off (as of)</th><th class=l>run id</th><th class=l>status</th><th>datasets</th>"
        "<th>rows in</th><th>kept</th><th>excluded</th></tr>"
    ]
    for r, i_, o_ in reversed(list(zip(trend, rows_in, rows_out, strict=True))):
        rid = _esc(r["run_id"])
        link = f'<a href="{_esc(run_href(r["run_id"]))}">{rid}</a>' if run_href else rid
        table.append(
            f'<tr data-run="{rid}"><td class=l>{_esc(_ts(r["as_of"]))}</td><td class=l>{link}</td>'
            f"<td class=l>{_esc(r['status'])}</td><td>{len(r['datasets'])}</td>"
            f"<td>{_num(i_)}</td><td>{_num(o_)}</td><td>{_num(i_ - o_)}</td></tr>"
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
            f'<h1>Consent enforcement as of <span data-cutoff="{_esc(_ts(run["as_of"]))}">'
            f"{_esc(_ts(run['as_of']))}</span>: run <code>{_esc(run['run_id'])}</code> "
            f'<span class="badge {_esc(status)}" data-status="{_esc(status)}">{_esc(status)}</span></h1>'
            f'<div class="sub">consent cut-off {_esc(_ts(run["as_of"]))} · trigger {_esc(run["trigger"])} · '
            f"started {_esc(_ts(run['started_at']))} · finished {_esc(_ts(run['finished_at']))} · "
            '<a href="#terms">what the terms mean</a></div>'
        )
        # Rows are not added up across datasets (the same people's data is read by several of them):
        # the cards count datasets and the consent log; people per purpose lead the page below.
        body = (
            f'<div class="cards" data-chart="summary" data-rows-in="{rows_in}" data-rows-out="{rows_out}">'
            + _card("datasets", _num(len(rows)))
            + _card("purposes", _num(len({r["purpose"] for r in rows if r.get("purpose")})))
            + _card("consent events counted", _num(run["consent_events_counted"]))
            + _card("consent fingerprint", str(run["consent_fingerprint"] or "-"), small=True)
            + "</div>"
        )
        if run.get("error"):
            body += f'<section class="problem"><h2>Error</h2><p>{_esc(run["error"])}</p></section>'
        for note in data["notes"]:
            body += f'<section><p class="note">{_esc(note)}</p></section>'
        body += _people_section(data)
        body += _ingests_section(data)
        body += _run_section(data)
        body += f'<div class="grid2">{_changes_section(data)}{_latency_section(data)}</div><br>'
        body += _trend_section(data, run_href)
        body += _glossary_section()
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{css}</style></head>"
        f'<body><header>{header}</header><main id="report">{body}</main>'
        f"<footer>consentgate · generated {_esc(stamp)} · counts only: this page never shows a subject "
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
