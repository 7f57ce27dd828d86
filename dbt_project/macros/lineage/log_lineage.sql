{#-
  log_lineage(results): evidence for a dbt run, for on-run-end:

    on-run-end:
      - "{{ consentgate.log_lineage(results) }}"

  Writes one row into consentgate_runs (run_id = var consentgate_run_id, else invocation_id;
  trigger 'dbt'; status success/failed from results) and, into consentgate_lineage, one row per
  consented() call of every model built successfully (dataset = model name, or model/input when the
  model calls consented() on several inputs; source = the consented
  relation, target = the model's relation, counts by reason from consent_counts()). Table names are
  written `schema.table`, as the Python engine writes them, so `consentgate verify` can replay the run.
  Re-running with the same run_id replaces that run's dbt rows (delete, then insert). When the run
  row belongs to someone else (trigger 'airflow' or 'cli', e.g. Airflow opened it and passed its
  run id as consentgate_run_id), that row is kept: only dbt_invocation_id is set on it and the
  lineage rows are added. consent_fingerprint is the Python engine's fingerprint of the consent log
  as of T (see consent_snapshot), so `consentgate verify` can check a dbt run too.
-#}
{% macro log_lineage(results=none) %}
  {#- Without `results` it would record a successful run with no rows: on-run-end must pass them. -#}
  {%- if results is none or results is string -%}
    {%- do consentgate._fail('consentgate.log_lineage', 'results', "is required: call it as on-run-end: \"{{ consentgate.log_lineage(results) }}\"", results) -%}
  {%- endif -%}
  {{ return(adapter.dispatch('log_lineage', 'consentgate')(results)) }}
{% endmacro %}

{% macro default__log_lineage(results) %}
  {%- if not execute -%}
    {{ return('') }}
  {%- endif -%}
  {%- set tables = consentgate.evidence_relations() -%}
  {%- set run_id = consentgate.get_config('run_id') or invocation_id -%}
  {%- set run_key = consentgate._sql_string(run_id | string) -%}
  {%- set as_of = consentgate._resolve_as_of(none, 'consentgate.log_lineage') -%}
  {%- set consent = consentgate._consent_relation(none, 'consentgate.log_lineage') -%}
  {%- set finished_at = modules.datetime.datetime.now(modules.pytz.utc).strftime('%Y-%m-%d %H:%M:%S.%f') -%}
  {%- set started_at = run_started_at.astimezone(modules.pytz.utc).strftime('%Y-%m-%d %H:%M:%S.%f') -%}

  {#- The run's status, and the nodes that failed (ids only, never data). -#}
  {%- set failed = [] -%}
  {%- for result in results -%}
    {%- if (result.status | string | lower) in ['error', 'fail', 'runtime error', 'partial success'] -%}
      {%- do failed.append(result.node.unique_id) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- set status = 'failed' if failed else 'success' -%}
  {%- set error = (failed | length ~ ' node(s) failed: ' ~ (failed | join(', '))) if failed else none -%}

  {#- The consent log as of T: its fingerprint and counted events, per (consent relation, as_of). -#}
  {%- set snapshots = {} -%}
  {%- do snapshots.update({(consent | string, as_of): consentgate.consent_snapshot(consent, as_of)}) -%}

  {#- One lineage row per consented() call of each model built successfully. -#}
  {%- set lineage_rows = [] -%}
  {%- for result in results -%}
    {%- set node = result.node -%}
    {%- if node.resource_type == 'model' and (result.status | string | lower) == 'success' -%}
      {%- set calls = consentgate.consented_calls(node.compiled_code) -%}
      {%- for call in calls -%}
        {%- set snapshot_key = (call.get('consent_relation'), call.get('as_of')) -%}
        {%- if snapshot_key not in snapshots -%}
          {%- set call_consent = api.Relation.create(database=call.get('consent_database'), schema=call.get('consent_schema'),
                                                     identifier=call.get('consent_identifier')) -%}
          {%- do snapshots.update({snapshot_key: consentgate.consent_snapshot(call_consent, call.get('as_of'))}) -%}
        {%- endif -%}
        {%- set row = consentgate._lineage_row(result, call) -%}
        {#- A model with several consented() calls gives one dataset per input: model/input. -#}
        {%- if calls | length > 1 -%}
          {%- do row.update({'dataset': node.name ~ '/' ~ call.get('identifier')}) -%}
        {%- endif -%}
        {%- do row.update({'consent_fingerprint': snapshots[snapshot_key].fingerprint}) -%}
        {%- do lineage_rows.append(row) -%}
      {%- endfor -%}
    {%- endif -%}
  {%- endfor -%}

  {#- Who owns the run row? -#}
  {%- set owner = run_query("select trigger from " ~ tables.runs ~ " where run_id = " ~ run_key) -%}
  {%- set foreign = [] -%}
  {%- for row in owner.rows -%}
    {%- if row[0] is not none and (row[0] | lower) != 'dbt' -%}
      {%- do foreign.append(row[0]) -%}
    {%- endif -%}
  {%- endfor -%}

  {%- set statements = [] -%}
  {%- if foreign -%}
    {%- do statements.append("update " ~ tables.runs ~ " set dbt_invocation_id = "
        ~ consentgate._sql_string(invocation_id) ~ " where run_id = " ~ run_key) -%}
  {%- else -%}
    {%- set run_row = {
        'run_id': run_id | string,
        'started_at': started_at,
        'finished_at': finished_at,
        'status': status,
        'as_of': as_of,
        'consent_table': consentgate._evidence_name(consent.schema, consent.identifier),
        'consent_fingerprint': snapshots[(consent | string, as_of)].fingerprint,
        'consent_events_counted': snapshots[(consent | string, as_of)].events_counted,
        'trigger': 'dbt',
        'dag_id': none,
        'task_id': none,
        'airflow_run_id': none,
        'dbt_invocation_id': invocation_id,
        'package_version': '0.1.0',
        'error': error,
    } -%}
    {%- do statements.append("delete from " ~ tables.runs ~ " where run_id = " ~ run_key) -%}
    {%- do statements.append(consentgate._insert_sql(tables.runs, run_row, ['started_at', 'finished_at', 'as_of'])) -%}
  {%- endif -%}
  {%- do statements.append("delete from " ~ tables.lineage ~ " where run_id = " ~ run_key ~ " and trigger = 'dbt'") -%}
  {%- for row in lineage_rows -%}
    {%- do row.update({'run_id': run_id | string}) -%}
    {%- do statements.append(consentgate._insert_sql(tables.lineage, row, ['started_at', 'finished_at'])) -%}
  {%- endfor -%}
  {%- do consentgate._execute_in_transaction(statements) -%}
  {%- do log("consentgate.log_lineage: run " ~ run_id ~ " (" ~ status ~ "), " ~ lineage_rows | length
             ~ " lineage row(s) in " ~ tables.lineage, info=true) -%}
  {{ return('') }}
{% endmacro %}
