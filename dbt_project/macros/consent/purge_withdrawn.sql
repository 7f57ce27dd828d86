{#-
  purge_withdrawn(purpose, subject_column, normalize=none, as_of=none, consent_relation=none)

  A post-hook for incremental models: deletes the rows of `this` whose subject is no longer consented
  for purpose as of T (a withdrawal, a denial, an expired grant recorded since the last run).
  consented() only filters the new batch; without this hook an opted-out subject's old rows stay.

    {{ config(materialized='incremental', unique_key='customer_id',
              post_hook="{{ consentgate.purge_withdrawn('ad_targeting', 'customer_id') }}") }}

  Cost: it keeps a watermark per (model, purpose) in consentgate_purge_state next to the model.
  On the first build or a full refresh it only records T (consented() already filtered every row).
  On an incremental run it decides only the subjects whose consent can have changed since the
  watermark W (an event that became known in (W, T], or a grant that expired in (W, T]) and deletes
  their rows; with no watermark yet it purges the whole table once. See docs/dbt.md.
-#}
{% macro purge_withdrawn(purpose, subject_column, normalize=none, as_of=none, consent_relation=none) %}
  {{ return(adapter.dispatch('purge_withdrawn', 'consentgate')(purpose, subject_column, normalize, as_of, consent_relation)) }}
{% endmacro %}

{% macro default__purge_withdrawn(purpose, subject_column, normalize=none, as_of=none, consent_relation=none) %}
  {#- At run time the model's config is final (at parse, config() in the model body is not applied yet). -#}
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
  {%- set state = consentgate._purge_state_relation(this) -%}
  {%- set model_key = consentgate._sql_string(this.identifier) -%}
  {%- set purpose_key = consentgate._sql_string(spec.purpose) -%}
  {%- do run_query(
      "create table if not exists " ~ state ~ " (model " ~ dbt.type_string() ~ " not null, purpose "
      ~ dbt.type_string() ~ " not null, last_as_of timestamp not null, updated_at timestamp)") -%}
  {%- set mode = 'record' -%}
  {%- if is_incremental() -%}
    {%- set found = run_query(
        "select max(" ~ consentgate.epoch_us('last_as_of') ~ ") from " ~ state
        ~ " where model = " ~ model_key ~ " and purpose = " ~ purpose_key) -%}
    {%- set micros = found.columns[0].values()[0] -%}
    {%- if micros is none -%}
      {%- set mode = 'full' -%}
      {%- set delete_sql = consentgate._purge_all_sql(spec) -%}
    {%- else -%}
      {%- set since = (modules.datetime.datetime(1970, 1, 1) + modules.datetime.timedelta(microseconds=micros | int)).strftime('%Y-%m-%d %H:%M:%S.%f') -%}
      {%- set mode = 'changed since ' ~ since -%}
      {%- set found_column = namespace(value=none) -%}
      {%- for column in adapter.get_columns_in_relation(this) -%}
        {%- if column.name | lower == (spec.subject_column | replace('"', '')) | lower -%}
          {%- set found_column.value = column -%}
        {%- endif -%}
      {%- endfor -%}
      {%- set delete_sql = consentgate._purge_changed_sql(spec, since, found_column.value) -%}
    {%- endif -%}
    {%- call statement('consentgate_purge', fetch_result=false) -%}
      {{ delete_sql }}
    {%- endcall -%}
    {%- set response = load_result('consentgate_purge')['response'] -%}
    {%- set deleted = response.rows_affected if response.rows_affected is defined else none -%}
    {%- do log("consentgate.purge_withdrawn " ~ this ~ " (" ~ spec.purpose ~ ", " ~ mode ~ ")"
               ~ (": " ~ deleted ~ " row(s) deleted" if deleted is not none else ''), info=true) -%}
  {%- endif -%}
  {%- do run_query("delete from " ~ state ~ " where model = " ~ model_key ~ " and purpose = " ~ purpose_key) -%}
  {%- do run_query(
      "insert into " ~ state ~ " (model, purpose, last_as_of, updated_at) values (" ~ model_key ~ ", "
      ~ purpose_key ~ ", " ~ consentgate.timestamp_literal(spec.as_of) ~ ", "
      ~ consentgate.timestamp_literal(modules.datetime.datetime.now(modules.pytz.utc).strftime('%Y-%m-%d %H:%M:%S.%f')) ~ ")") -%}
  {{ return('') }}
{% endmacro %}
