"""log_lineage on dbt-spark over Spark Connect, on the real cluster (docs/spark.md#log_lineage-on-spark):
the evidence is the engine's append-only logs behind views. A `dbt build` writes a lineage row per
consented() call and a run row; per-model invocations compose into the evidence of one build; a model
whose consented() calls change within a run loses its old rows (tombstones); a failing node makes the
run failed for good; `consentgate verify` and `consentgate report` read the run over `sc://` like any
other. Rows and counts are checked against tests/reference.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dbt"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transparency"))

from dbt_harness import DBT, Backend, add_forget_cached_hook, link_package, run_dbt, vars_arg  # noqa: E402
from reference import Event, decide  # noqa: E402
from reference import enforce as reference_enforce  # noqa: E402
from sparkserver import fresh_schema  # noqa: E402
from test_spark_dbt_cases import spark_backend, spark_profile  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.slow]

#: The CLI reads the evidence in the Spark session's current schema: `default` for a new session.
EVIDENCE = "default"
AS_OF = datetime(2026, 3, 1)
SUBJECTS = [f"s{i:02d}" for i in range(12)]
# s01 withdrew, s02 denied, s03's grant expired before the cut-off, s04 never consented; the rest granted.
CONSENT = [
    *[(s, "ad_targeting", "granted", datetime(2026, 1, 1), None, None) for s in SUBJECTS if s != "s04"],
    ("s01", "ad_targeting", "withdrawn", datetime(2026, 2, 1), None, None),
    ("s02", "ad_targeting", "denied", datetime(2026, 2, 2), None, None),
    ("s03", "ad_targeting", "granted", datetime(2026, 1, 2), None, datetime(2026, 2, 15)),
]
EVENTS = [(i, SUBJECTS[i % len(SUBJECTS)]) for i in range(1, 37)] + [(37, None)]
VISITS = [(100 + i, SUBJECTS[(i * 5) % len(SUBJECTS)]) for i in range(20)]

AUDIENCE = """{{ config(materialized='table', file_format='parquet') }}
{% if var('break_audience', false) %}select * from table_that_does_not_exist
{% else %}select e.event_id, e.customer_id
from ({{ consentgate.consented(source('raw', 'events'), 'customer_id', 'ad_targeting') }}) as e
{% endif %}"""
AUDIENCE_TWO = """{{ config(materialized='table', file_format='parquet') }}
select e.customer_id, 'event' as kind
from ({{ consentgate.consented(source('raw', 'events'), 'customer_id', 'ad_targeting') }}) as e
{% if var('two_inputs', true) %}union all
select v.customer_id, 'visit' as kind
from ({{ consentgate.consented(source('raw', 'visits'), 'customer_id', 'ad_targeting') }}) as v
{% endif %}"""
STAGING = (
    "{{ config(materialized='view') }}\nselect event_id, customer_id from {{ source('raw', 'events') }}\n"
)
MODELS = ["audience", "audience_two"]
RUN_VARYING = {"run_id", "started_at", "finished_at", "dbt_invocation_id"}
LINEAGE_VARYING = {"run_id", "started_at", "finished_at"}


def _utc(value: Any) -> Any:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else value


def _write_project(project: Path, schema: str) -> None:
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: consentgate_lineage\nversion: '1.0'\nconfig-version: 2\nprofile: consentgate_lineage\n"
        'on-run-end:\n  - "{{ consentgate.log_lineage(results) }}"\n'
    )
    (project / "profiles.yml").write_text(yaml.safe_dump(spark_profile("consentgate_lineage", schema)))
    (project / "models" / "audience.sql").write_text(AUDIENCE)
    (project / "models" / "audience_two.sql").write_text(AUDIENCE_TWO)
    (project / "models" / "stg_events.sql").write_text(STAGING)
    test = {"consentgate.only_consented": {"arguments": {"purpose": "ad_targeting"}}}
    (project / "models" / "schema.yml").write_text(
        yaml.safe_dump(
            {
                "version": 2,
                "sources": [
                    {"name": "raw", "schema": schema, "tables": [{"name": "events"}, {"name": "visits"}]}
                ],
                "models": [{"name": "audience", "columns": [{"name": "customer_id", "data_tests": [test]}]}],
            }
        )
    )
    link_package(project)
    add_forget_cached_hook(project)


class Lineage:
    """The project, the cluster, and the evidence as the views show it."""

    def __init__(self, project: Path, backend: Backend, spark: Any, schema: str, url: str) -> None:
        self.project, self.backend, self.spark, self.schema, self.url = project, backend, spark, schema, url

    def dbt(self, run_id: str, *args: str, ok: bool = True, **extra: Any) -> subprocess.CompletedProcess[str]:
        values = {
            "consentgate_consent_relation": f"{self.schema}.consent_events",
            "consentgate_evidence_schema": EVIDENCE,
            "consentgate_as_of": AS_OF.isoformat(),
            "consentgate_run_id": run_id,
            **extra,
        }
        return run_dbt(self.project, [*args, *vars_arg(**values)], self.backend, ok=ok)

    def parallel(self, run_id: str, models: dict[str, dict[str, Any]]) -> dict[str, int]:
        """`dbt build --select <model>` for each model at the same time (no lock on Spark): exit codes."""
        procs = {}
        for model, extra in models.items():
            values = {
                "consentgate_consent_relation": f"{self.schema}.consent_events",
                "consentgate_evidence_schema": EVIDENCE,
                "consentgate_as_of": AS_OF.isoformat(),
                "consentgate_run_id": run_id,
                **extra,
            }
            cmd = [
                DBT, "build", "--select", model, "--project-dir", str(self.project), "--profiles-dir",
                str(self.project), "--target-path", str(self.project / f"target_{model}"),
                "--log-path", str(self.project / f"logs_{model}"), *vars_arg(**values),
            ]  # fmt: skip
            env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **self.backend.env}
            procs[model] = subprocess.Popen(
                cmd, cwd=self.project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        codes = {}
        for model, proc in procs.items():
            out = proc.communicate(timeout=600)[0]
            codes[model] = proc.returncode
            # A server-side exception's name and message come first; the Java stack after it can
            # fill any tail kept (CI once kept only frames): keep both.
            named = [
                ln for ln in out.splitlines() if ("Error" in ln or "Exception" in ln) and "\tat " not in ln
            ]
            assert "consentgate.log_lineage" in out, "\n".join(named[:12]) + "\n...\n" + out[-2000:]
        return codes

    def rows(self, sql: str) -> list[dict[str, Any]]:
        for log in ("consentgate_runs_log", "consentgate_lineage_log"):
            self.spark.sql(f"refresh table {EVIDENCE}.{log}")  # dbt's session appended to them
        return [r.asDict() for r in self.spark.sql(sql).collect()]

    def run(self, run_id: str) -> dict[str, Any]:
        (run,) = self.rows(f"select * from {EVIDENCE}.consentgate_runs where run_id = '{run_id}'")
        return run

    def lineage(self, run_id: str) -> dict[str, dict[str, Any]]:
        found = self.rows(f"select * from {EVIDENCE}.consentgate_lineage where run_id = '{run_id}'")
        return {r["dataset"]: r for r in found}

    def evidence(self, run_id: str) -> dict[str, Any]:
        return {
            "run": {k: v for k, v in self.run(run_id).items() if k not in RUN_VARYING},
            "lineage": {
                d: {k: v for k, v in r.items() if k not in LINEAGE_VARYING}
                for d, r in self.lineage(run_id).items()
            },
        }

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(Path(sys.executable).parent / "consentgate"), *args, "--database", self.url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=self.project)


@pytest.fixture(scope="module")
def cg(spark_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    spark, schema = fresh_schema(spark_server, "dbt_lineage")
    try:
        spark.sql(
            f"create table {schema}.consent_events (subject_id string, purpose string, status string, event_ts timestamp, "
            "recorded_at timestamp, expires_at timestamp, source string, policy_version string) using parquet"
        )
        marks = ", ".join(["(?, ?, ?, ?, ?, ?, 'test', 'v1')"] * len(CONSENT))
        spark.sql(
            f"insert into {schema}.consent_events values {marks}", args=[_utc(v) for e in CONSENT for v in e]
        )
        for table, rows, key in (("events", EVENTS, "event_id"), ("visits", VISITS, "visit_id")):
            spark.sql(f"create table {schema}.{table} ({key} bigint, customer_id string) using parquet")
            marks = ", ".join(["(?, ?)"] * len(rows))
            spark.sql(f"insert into {schema}.{table} values {marks}", args=[v for r in rows for v in r])
        project = tmp_path_factory.mktemp("spark_lineage") / "project"
        _write_project(project, schema)
        lineage = Lineage(project, spark_backend(spark_server, schema), spark, schema, spark_server.url)
        lineage.dbt("one", "build")
        yield lineage
    finally:
        spark.stop()


def _expected_counts(rows: list[tuple[Any, Any]]) -> dict[str, int]:
    kept, counts = reference_enforce(rows, [Event(*e) for e in CONSENT], "ad_targeting", AS_OF, None)
    return {"rows_in": len(rows), "kept": len(kept), **{f"excluded_{k}": v for k, v in counts.items()}}


def test_a_build_writes_a_lineage_row_per_call_and_a_run_row(cg: Any) -> None:
    run = cg.run("one")
    assert (run["status"], run["error"], run["trigger"]) == ("success", None, "dbt")
    assert run["consent_table"] == f"{cg.schema}.consent_events"
    assert run["consent_events_counted"] == len(CONSENT)
    lineage = cg.lineage("one")
    assert sorted(lineage) == ["audience", "audience_two/events", "audience_two/visits"]
    assert json.loads(run["planned_datasets"]) == sorted(lineage)
    events, visits = _expected_counts(EVENTS), _expected_counts(VISITS)
    for dataset, expected in (
        ("audience", events),
        ("audience_two/events", events),
        ("audience_two/visits", visits),
    ):
        row = lineage[dataset]
        assert {k: row[k] for k in expected if k != "kept"} == {
            k: v for k, v in expected.items() if k != "kept"
        }
        assert row["consent_fingerprint"] == run["consent_fingerprint"]
        assert (row["trigger"], row["target"]) == ("dbt", f"{cg.schema}.{dataset.split('/')[0]}")
    assert lineage["audience"]["rows_out"] == events["kept"]  # the model's rows
    assert lineage["audience_two/visits"]["rows_out"] == events["kept"] + visits["kept"]


def test_per_model_invocations_compose_into_the_evidence_of_one_build(cg: Any) -> None:
    cg.dbt("many", "build", "--select", "stg_events")  # nothing consent-related: no run row
    assert cg.rows(f"select * from {EVIDENCE}.consentgate_runs where run_id = 'many'") == []
    for _round in range(2):  # the second round replaces the first round's rows, never adds
        for model in reversed(MODELS):
            cg.dbt("many", "build", "--select", model)
        assert cg.evidence("many") == cg.evidence("one")
    versions = cg.rows(f"select count(*) as n from {EVIDENCE}.consentgate_lineage_log where run_id = 'many'")
    assert versions[0]["n"] == 2 * 3  # two versions of each row, the view shows one


def test_verify_passes_on_the_clean_run_and_fails_on_a_planted_violation(cg: Any) -> None:
    cg.dbt("checked", "build")  # the run that last wrote the models: verify checks their rows
    clean = cg.cli("verify", "--run-id", "checked", "--json")
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr[-3000:]
    result = json.loads(clean.stdout)
    assert (result["status"], result["problems"]) == ("verified", [])
    # the dbt run's consent fingerprint is the engine's, recomputed from the log
    assert (
        result["fingerprint"]["recorded"]
        == result["fingerprint"]["recomputed"]
        == cg.run("checked")["consent_fingerprint"]
    )
    assert {d["dataset"] for d in result["datasets"]} == {
        "audience",
        "audience_two/events",
        "audience_two/visits",
    }
    # s04 never consented: a row of theirs in the model is a violation.
    cg.spark.sql(f"insert into {cg.schema}.audience values (999, 's04')")
    planted = cg.cli("verify", "--run-id", "checked", "--json")
    assert planted.returncode == 1, planted.stdout[-3000:]
    problems = json.loads(planted.stdout)["problems"]
    assert problems and all("s04" not in p for p in problems)  # no subject id in the output
    cg.dbt("restore", "build", "--select", "audience")  # rebuilt: the planted row is gone


def test_report_shows_the_runs_rows_and_people(cg: Any, tmp_path: Path) -> None:
    from cg_transparency import elements
    from test_report_people import people_rows

    out = tmp_path / "report.html"
    proc = cg.cli("report", "--run-id", "one", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = out.read_text()
    datasets = {a["data-dataset"] for t, a in elements(page) if t == "tr" and "data-dataset" in a}
    assert datasets == {"audience", "audience_two/events", "audience_two/visits"}
    decided = decide([Event(*e) for e in CONSENT], "ad_targeting", AS_OF, None)
    kinds = Counter({"granted": "consented"}.get(k, k) for k in decided.values())
    people = people_rows(page)["ad_targeting"]
    assert people["people"] == len(decided)
    for decision in ("consented", "withdrawn", "denied", "expired"):
        assert people[decision] == kinds.get(decision, 0), decision


def test_a_model_whose_calls_change_within_a_run_loses_its_old_rows(cg: Any) -> None:
    cg.dbt("changing", "build", "--select", "audience_two")
    assert sorted(cg.lineage("changing")) == ["audience_two/events", "audience_two/visits"]
    cg.dbt("changing", "build", "--select", "audience_two", two_inputs=False)
    lineage = cg.lineage("changing")
    assert sorted(lineage) == ["audience_two"]  # the two-input rows are superseded by tombstones
    assert lineage["audience_two"]["rows_out"] == _expected_counts(EVENTS)["kept"]
    run = cg.run("changing")
    assert run["status"] == "success"


def test_a_failing_node_fails_the_run_for_good(cg: Any) -> None:
    cg.dbt("failing", "build", "--select", "audience_two")
    assert cg.run("failing")["status"] == "success"
    broken = cg.dbt("failing", "build", "--select", "audience", ok=False, break_audience=True)
    assert broken.returncode == 1
    run = cg.run("failing")
    assert run["status"] == "failed"
    assert run["error"].startswith("1 node(s) failed: model.consentgate_lineage.audience")
    cg.dbt("failing", "build", "--select", "audience_two")  # a later success does not undo it
    cg.dbt("failing", "build", "--select", "audience")
    run = cg.run("failing")
    assert run["status"] == "failed" and run["error"].startswith(
        "1 node(s) failed: model.consentgate_lineage.audience"
    )
    assert sorted(cg.lineage("failing")) == ["audience", "audience_two/events", "audience_two/visits"]


def test_parallel_invocations_settle_to_the_evidence_of_one_build_and_keep_a_failure(cg: Any) -> None:
    assert cg.parallel("parallel", {m: {} for m in MODELS}) == dict.fromkeys(MODELS, 0)
    assert cg.evidence("parallel") == cg.evidence("one")
    codes = cg.parallel("parallel-failing", {"audience": {"break_audience": True}, "audience_two": {}})
    assert codes == {"audience": 1, "audience_two": 0}
    run = cg.run("parallel-failing")
    assert (
        run["status"] == "failed" and run["error"] == "1 node(s) failed: model.consentgate_lineage.audience"
    )
    assert sorted(cg.lineage("parallel-failing")) == ["audience_two/events", "audience_two/visits"]


def test_the_evidence_holds_when_the_relation_cache_has_lost_the_relations(cg: Any) -> None:
    """dbt-spark caches a schema as empty when a concurrent invocation drops a relation while it lists
    the schema (how the parallel test above once recorded an input without counts): log_lineage asks
    Spark when the cache says a relation is absent."""
    out = cg.dbt("forgotten", "build", "--select", "audience_two", forget_cached=True).stdout
    (listed,) = re.findall(r"forget_cached: forgot ([\w,]*)", out)
    # what this build reads and writes (other tests of the module may have left `audience` dropped)
    assert {"audience_two", "consent_events", "events", "visits"} <= set(listed.split(",")), listed
    got, expected = cg.evidence("forgotten"), cg.evidence("one")
    assert sorted(got["lineage"]) == ["audience_two/events", "audience_two/visits"]
    assert got["lineage"] == {d: r for d, r in expected["lineage"].items() if d.startswith("audience_two")}
    assert (got["run"]["consent_fingerprint"], got["run"]["consent_events_counted"]) == (
        expected["run"]["consent_fingerprint"],
        expected["run"]["consent_events_counted"],
    )


def test_a_different_cut_off_fails_the_run(cg: Any) -> None:
    other = cg.dbt("one", "build", "--select", "audience", ok=False, consentgate_as_of="2026-03-02T00:00:00")
    assert other.returncode != 0 and "not the run's" in other.stdout
    run = cg.run("one")
    assert run["status"] == "failed" and "used cut-off" in run["error"]
