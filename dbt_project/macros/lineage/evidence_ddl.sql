{#-
  The DDL of one evidence table (kind 'runs' or 'lineage'), with the same columns and types as
  plugins/consentgate/engine/ddl.sql. Columns added after the first release are also added to an
  existing table (evidence_added_columns, the engine's lineage.ADDED_COLUMNS).
-#}
{% macro evidence_ddl(relation, kind) %}
  {{ return(adapter.dispatch('evidence_ddl', 'consentgate')(relation, kind)) }}
{% endmacro %}

{% macro default__evidence_ddl(relation, kind) %}
{%- if kind == 'runs' -%}
create table if not exists {{ relation }} (
    run_id varchar not null,
    started_at timestamp,
    finished_at timestamp,
    status varchar not null,
    as_of timestamp,
    consent_table varchar,
    consent_fingerprint varchar,
    consent_events_counted bigint,
    trigger varchar,
    dag_id varchar,
    task_id varchar,
    airflow_run_id varchar,
    dbt_invocation_id varchar,
    package_version varchar,
    error varchar,
    owner varchar,
    attempt bigint,
    planned_datasets varchar,
    pid bigint,
    host varchar
)
{%- elif kind == 'lineage' -%}
create table if not exists {{ relation }} (
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
    attempt bigint
)
{%- else -%}
  {{ exceptions.raise_compiler_error("consentgate.evidence_ddl: argument 'kind' must be 'runs' or 'lineage'; got: " ~ kind) }}
{%- endif -%}
{% endmacro %}
