-- Evidence tables, created by the engine (consentgate.lineage) and by the dbt package (log_lineage).
-- Types are portable across DuckDB and PostgreSQL. Columns added later (owner ... host, attempt) are
-- also added to existing tables by consentgate.lineage.ensure_tables (lineage.ADDED_COLUMNS).
create table if not exists consentgate_runs (
    run_id varchar not null,
    started_at timestamp,
    finished_at timestamp,
    status varchar not null,            -- running | success | failed
    as_of timestamp,
    consent_table varchar,
    consent_fingerprint varchar,
    consent_events_counted bigint,
    trigger varchar,                    -- cli | airflow | dbt
    dag_id varchar,
    task_id varchar,
    airflow_run_id varchar,
    dbt_invocation_id varchar,
    package_version varchar,
    error varchar,
    owner varchar,                      -- the invocation that owns the run (docs/runs.md)
    attempt bigint,                     -- 1, then 2, 3 ... for each retry by the same owner
    planned_datasets varchar,           -- JSON list of the dataset names the run set out to enforce
    pid bigint,                         -- the process running the whole run (CLI, API), for `stale`
    host varchar
);
create table if not exists consentgate_lineage (
    run_id varchar not null,
    dataset varchar not null,
    source varchar,
    target varchar,
    purpose varchar,
    subject_column varchar,
    normalize varchar,
    rows_in bigint,
    rows_out bigint,
    excluded_null_subject bigint,
    excluded_no_consent bigint,
    excluded_denied bigint,
    excluded_withdrawn bigint,
    excluded_expired bigint,
    excluded_invalid bigint,
    consent_fingerprint varchar,
    trigger varchar,
    task_id varchar,
    started_at timestamp,
    finished_at timestamp,
    attempt bigint                      -- the run's attempt that wrote this row
);
