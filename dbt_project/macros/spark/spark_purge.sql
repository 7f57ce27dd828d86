{#-
  purge_withdrawn on dbt-spark (docs/spark.md#dbt). Plain parquet tables have no DELETE, so the purge
  rewrites rows instead, and only where changed subjects live:

  - The model is partitioned by a subject bucket, a column `consentgate_bucket` computed with
    subject_bucket() (pmod(xxhash64(subject key), var consentgate_buckets)), and appends
    (incremental_strategy='append'; insert_overwrite would replace whole buckets with the new batch):

      {{ config(materialized='incremental', incremental_strategy='append', file_format='parquet',
                partition_by=['consentgate_bucket'],
                post_hook="{{ consentgate.purge_withdrawn('ad_targeting', 'customer_id') }}") }}
      select e.*, {{ consentgate.subject_bucket('customer_id') }} as consentgate_bucket
      from ({{ consentgate.consented(ref('stg_events'), 'customer_id', 'ad_targeting') }}) as e

  - On an incremental run the subjects to remove are decided as on every engine (only those whose
    consent can have changed since the watermark, one aggregate over the log); their buckets are
    computed from their keys, the kept rows of those buckets only are copied to a staging table, and
    `INSERT OVERWRITE ... PARTITION (consentgate_bucket)` (dynamic) replaces those buckets alone; a
    bucket left with no row is dropped. Cost: the changed subjects' buckets, not the table.
  - Without the bucket partition (or on the first purge, without a watermark) the whole table is
    rewritten the same way, and the log says so.
  - The watermark table is append-only (the latest row per model and purpose counts), written only
    after the rewrite, so a purge killed anywhere is redone by the next run.
-#}

{#- The bucket of a subject: pmod(xxhash64(subject key), var consentgate_buckets (default 64)). Changing
    the number of buckets needs a full refresh of the models that use it. -#}
{% macro subject_bucket(subject_column, normalize=none) %}
  {%- set key = consentgate.subject_key(adapter.quote(subject_column), normalize) -%}
  {{ return("cast(pmod(xxhash64(" ~ key ~ "), " ~ consentgate._bucket_count() ~ ") as int)") }}
{% endmacro %}

{% macro _bucket_count() %}
  {%- set n = var('consentgate_buckets', 64) | int -%}
  {%- if n < 1 -%}
    {%- do exceptions.raise_compiler_error("consentgate: var consentgate_buckets must be a positive integer, got " ~ var('consentgate_buckets')) -%}
  {%- endif -%}
  {{ return(n) }}
{% endmacro %}

{% macro spark__purge_withdrawn(purpose, subject_column, normalize=none, as_of=none, consent_relation=none) %}
  {%- if execute and model.config.materialized != 'incremental' -%}
    {%- do exceptions.raise_compiler_error(
        "consentgate.purge_withdrawn: is a post-hook for incremental models; model " ~ this.identifier
        ~ " is materialized as " ~ model.config.materialized
        ~ ", which consented() already filters on every build: remove the hook") -%}
  {%- endif -%}
  {%- set spec = consentgate._call_spec('consentgate.purge_withdrawn', this, subject_column, purpose, as_of, normalize, consent_relation) -%}
  {%- if not execute -%}
    {{ return('') }}
  {%- endif -%}
  {%- set partition_by = model.config.get('partition_by') or [] -%}
  {%- set partition_by = [partition_by] if partition_by is string else partition_by -%}
  {%- set bucketed = (partition_by | map('lower') | list) == ['consentgate_bucket'] -%}
  {%- if bucketed and (model.config.get('incremental_strategy') or 'append') != 'append' -%}
    {%- do exceptions.raise_compiler_error(
        "consentgate.purge_withdrawn: model " ~ this.identifier ~ " is partitioned by consentgate_bucket with incremental_strategy '"
        ~ model.config.get('incremental_strategy') ~ "', which replaces whole buckets with the new batch: use incremental_strategy='append'") -%}
  {%- endif -%}
  {%- set state = consentgate._purge_state_relation(this) -%}
  {%- set model_key = consentgate._sql_string(this.identifier) -%}
  {%- set purpose_key = consentgate._sql_string(spec.purpose) -%}
  {%- do run_query("create table if not exists " ~ state ~ " (model string, purpose string, last_as_of timestamp, "
                   ~ "updated_at timestamp) using parquet") -%}
  {%- if is_incremental() -%}
    {#- A Spark session can keep the file listing of a table it read before another session appended
        to it: read the consent log and the model as they are now. -#}
    {%- do run_query("refresh table " ~ spec.consent_relation) -%}
    {%- do run_query("refresh table " ~ this) -%}
    {%- set found = run_query(
        "select unix_micros(last_as_of) from " ~ state ~ " where model = " ~ model_key ~ " and purpose = "
        ~ purpose_key ~ " order by updated_at desc limit 1") -%}
    {%- set micros = found.columns[0].values()[0] if found.rows | length > 0 else none -%}
    {%- set row_key = consentgate.subject_key(spec.subject_sql, spec.normalize) -%}
    {%- set staging = api.Relation.create(schema=this.schema, identifier=this.identifier ~ '__cg_purge') -%}
    {%- if micros is none -%}
      {%- set mode = 'full' -%}
      {%- set keep = row_key ~ " in (\n" ~ consentgate._consented_keys_sql(spec) ~ "\n)" -%}
      {%- set buckets = none -%}
    {%- else -%}
      {%- set since = (modules.datetime.datetime(1970, 1, 1) + modules.datetime.timedelta(microseconds=micros | int)).strftime('%Y-%m-%d %H:%M:%S.%f') -%}
      {%- set mode = 'changed since ' ~ since -%}
      {%- set to_delete -%}
select cg_decisions.cg_key
from (
{{ consentgate.consent_decisions(spec, changed_since=since) }}
) as cg_decisions
where {{ consentgate.exclusion_reason('cg_decisions.cg_key', 'cg_decisions.cg_code') }} is not null
      {%- endset -%}
      {%- set keep = "not coalesce(" ~ row_key ~ " in (\n" ~ to_delete ~ "\n), false)" -%}
      {%- if bucketed -%}
        {%- set found_buckets = run_query(
            "select distinct cast(pmod(xxhash64(cg_delete.cg_key), " ~ consentgate._bucket_count() ~ ") as int) from (\n"
            ~ to_delete ~ "\n) as cg_delete") -%}
        {%- set buckets = found_buckets.columns[0].values() | map('int') | sort | list -%}
      {%- else -%}
        {%- set buckets = none -%}
      {%- endif -%}
    {%- endif -%}
    {%- if buckets is not none and buckets | length == 0 -%}
      {%- do log("consentgate.purge_withdrawn " ~ this ~ " (" ~ spec.purpose ~ ", " ~ mode ~ "): no subject to remove", info=true) -%}
    {%- else -%}
      {%- set in_buckets = (" and consentgate_bucket in (" ~ (buckets | join(', ')) ~ ")") if buckets is not none else "" -%}
      {%- do run_query("drop table if exists " ~ staging) -%}
      {%- do run_query("create table " ~ staging ~ " using parquet as select * from " ~ this
                       ~ " where " ~ keep ~ in_buckets) -%}
      {%- if buckets is not none -%}
        {#- Dynamic overwrite: only the buckets the staging rows fall in are replaced. -#}
        {%- do run_query("set spark.sql.sources.partitionOverwriteMode = DYNAMIC") -%}
        {%- do run_query("insert overwrite table " ~ this ~ " partition (consentgate_bucket) select * from " ~ staging) -%}
        {%- set kept_buckets = run_query("select distinct consentgate_bucket from " ~ staging).columns[0].values() | map('int') | list -%}
        {%- set emptied = buckets | reject('in', kept_buckets) | list -%}
        {%- if emptied -%}
          {%- set parts = [] -%}
          {%- for b in emptied -%}
            {%- do parts.append("partition (consentgate_bucket = " ~ b ~ ")") -%}
          {%- endfor -%}
          {%- do run_query("alter table " ~ this ~ " drop if exists " ~ (parts | join(', '))) -%}
        {%- endif -%}
        {%- set scope = (buckets | length) ~ " of " ~ consentgate._bucket_count() ~ " bucket(s) rewritten" -%}
      {%- else -%}
        {#- Static overwrite of the whole table (every partition). -#}
        {%- do run_query("set spark.sql.sources.partitionOverwriteMode = STATIC") -%}
        {%- do run_query("insert overwrite table " ~ this ~ " select * from " ~ staging) -%}
        {%- set scope = "whole table rewritten" ~ ("" if bucketed else " (not partitioned by consentgate_bucket)") -%}
      {%- endif -%}
      {%- do run_query("drop table if exists " ~ staging) -%}
      {%- do log("consentgate.purge_withdrawn " ~ this ~ " (" ~ spec.purpose ~ ", " ~ mode ~ "): " ~ scope, info=true) -%}
    {%- endif -%}
  {%- endif -%}
  {%- do run_query(
      "insert into " ~ state ~ " (model, purpose, last_as_of, updated_at) values (" ~ model_key ~ ", "
      ~ purpose_key ~ ", " ~ consentgate.timestamp_literal(spec.as_of) ~ ", "
      ~ consentgate.timestamp_literal(modules.datetime.datetime.now(modules.pytz.utc).strftime('%Y-%m-%d %H:%M:%S.%f')) ~ ")") -%}
  {{ return('') }}
{% endmacro %}
