-- Evidence tables, created by the engine (consentgate.lineage) and by the dbt package (log_lineage).
-- Types are portable across DuckDB and PostgreSQL.
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
    error varchar
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
    finished_at timestamp
);
