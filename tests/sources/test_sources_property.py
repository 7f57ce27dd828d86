"""The property of docs/sources.md: whatever the order and batching in which the same observations
arrive, the log decides the same (checked through consentgate.enforce and against a reference), and
ingesting them again writes nothing."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import datetime, timedelta

import duckdb
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pgserver import fresh_database
from sources_db import Db

T0 = datetime(2026, 3, 1)
SUBJECTS = ["a", "b"]  # few subjects and instants: observations of one key meet often
BANNER = {"name": "banner", "kind": "events", "table": "raw.banner_events"}
GPC = {
    "name": "web_gpc", "kind": "gpc", "table": "raw.web_requests",
    "columns": {"subject": "customer_id", "signal": "sec_gpc", "event_ts": "requested_at", "recorded_at": "loaded_at"},
    "purposes": ["ad_targeting"],
}  # fmt: skip
SEVERITY = {"withdrawn": 0, "denied": 1, "granted": 4}
COUNTER = itertools.count()

# (source, subject, minute, value): banner values are statuses, gpc values header values.
observation = st.one_of(
    st.tuples(
        st.just("banner"), st.sampled_from(SUBJECTS), st.integers(0, 4), st.sampled_from(list(SEVERITY))
    ),
    st.tuples(st.just("gpc"), st.sampled_from(SUBJECTS), st.integers(0, 4), st.sampled_from(["1", "0"])),
)


def reference(observations: list[tuple[str, str, int, str]]) -> set[str]:
    """Kept subjects: the latest observation decides, ties restrictive (docs/semantics.md rule 4)."""
    latest: dict[str, tuple[int, int]] = {}
    for src, subject, minute, value in observations:
        status = value if src == "banner" else ("withdrawn" if value == "1" else None)
        if status is None:
            continue
        key = (minute, -SEVERITY[status])
        latest[subject] = max(latest.get(subject, key), key)
    return {s for s, (_, neg) in latest.items() if -neg == SEVERITY["granted"]}


def fresh_duckdb() -> Db:
    return prepared(Db("duckdb", duckdb.connect(), None))  # type: ignore[arg-type]


def prepared(db: Db) -> Db:
    db.table(
        "raw.banner_events",
        "subject_id varchar, purpose varchar, status varchar, event_ts timestamp, recorded_at timestamp",
        [],
    )
    db.table(
        "raw.web_requests",
        "customer_id varchar, sec_gpc varchar, requested_at timestamp, loaded_at timestamp",
        [],
    )
    return db


def deliver(db: Db, batch: list[tuple[str, str, int, str]], arrived: datetime) -> None:
    """Load a batch into the raw tables, as a loader would (arrival time in recorded_at / loaded_at), and ingest."""
    for src, subject, minute, value in batch:
        ts = T0 + timedelta(minutes=minute)
        if src == "banner":
            db.insert("raw.banner_events", [(subject, "ad_targeting", value, ts, arrived)])
        else:
            db.insert("raw.web_requests", [(subject, value, ts, arrived)])
    db.ingest(BANNER, GPC)


ARGS = {
    "observations": st.lists(observation, min_size=1, max_size=12),
    "order": st.randoms(use_true_random=False),
    "cuts": st.lists(st.integers(1, 11), min_size=1, max_size=6),
}


def check(fresh: Callable[[], Db], observations, order, cuts) -> None:
    at_once = fresh()
    deliver(at_once, observations, T0 + timedelta(days=1))

    shuffled = list(observations) + [o for o in observations if order.random() < 0.3]  # re-deliveries
    order.shuffle(shuffled)
    bounds = sorted({c for c in cuts if c < len(shuffled)})
    batches = [shuffled[i:j] for i, j in zip([0, *bounds], [*bounds, len(shuffled)], strict=True)]
    batched = fresh()
    for n, batch in enumerate(batches):
        deliver(batched, batch, T0 + timedelta(days=1, hours=n))

    expected = reference(observations)
    assert at_once.kept(SUBJECTS) == expected
    assert batched.kept(SUBJECTS) == expected

    log = batched.log()
    again = batched.ingest(BANNER, GPC)
    assert [r.events_written for r in again] == [0, 0] and batched.log() == log
    for db in (at_once, batched):
        db.connection.close()


class AsGiven(random.Random):
    """An `order` that keeps the observations as listed and re-delivers none (for explicit examples)."""

    def shuffle(self, x: list) -> None:  # type: ignore[override]
        pass

    def random(self) -> float:
        return 1.0


#: withdrawn at 0; GPC at 4 (nothing written: already withdrawn); a GPC batch that says nothing; then a
#: grant dated 2 arrives late: the GPC of 4, from another source and an earlier batch, must still decide.
LATE_GRANT = [
    ("banner", "a", 0, "withdrawn"),
    ("gpc", "a", 4, "1"),
    ("gpc", "a", 1, "0"),
    ("banner", "a", 2, "granted"),
]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**ARGS)
@example(observations=LATE_GRANT, order=AsGiven(), cuts=[1, 2, 3])
def test_order_and_batching_never_change_what_the_log_decides(observations, order, cuts) -> None:
    check(fresh_duckdb, observations, order, cuts)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**ARGS)
def test_order_and_batching_never_change_what_the_log_decides_on_postgresql(
    pg_server, observations, order, cuts
) -> None:
    def fresh() -> Db:
        server = fresh_database(pg_server, f"prop_{next(COUNTER)}")
        return prepared(Db("postgres", server.connect(), None))  # type: ignore[arg-type]

    check(fresh, observations, order, cuts)
