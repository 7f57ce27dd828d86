{#-
  log_lineage(results): evidence for a dbt invocation, for on-run-end:

    on-run-end:
      - "{{ consentgate.log_lineage(results) }}"

  One run (run_id = var consentgate_run_id, else invocation_id) may be built by many invocations:
  one `dbt build`, or one per model as astronomer-cosmos runs it, in any order, in parallel on
  PostgreSQL. Each invocation adds its part, and the evidence is the same as one `dbt build` writes
  (docs/dbt.md#log_lineage, docs/runs.md):

  - consentgate_lineage: one row per consented() call of every model this invocation built
    successfully (dataset = model name, or model/input when the model calls consented() on several
    inputs; source = the consented relation, target = the model). rows_in and excluded_* are the
    consented input's (consent_counts() as of the call's cut-off); rows_out is the number of rows in
    the model after the build. Only the rows of the models this invocation built are replaced
    (key: run id + model); other models' rows stay.
  - consentgate_runs: one row per run, trigger 'dbt'. Its status is the worst of its parts: failed
    once any invocation had a failing node (the ids are merged into `error`), and never back to
    success. planned_datasets: the datasets of every model with a consented() call any invocation
    selected (its lineage rows' names; a model that was not built: its name).
    All invocations of a run must use the same cut-off (consentgate_as_of) and consent log:
    one that does not is recorded as a failure of the run and fails.
  - An invocation that built no model with a consented() call, ran no only_consented test and had
    no failing node writes nothing (a staging-only step, a seed); so does every command other than
    build, run, test, seed, snapshot and retry (compile and docs generate build nothing).
  - When the run row belongs to someone else (trigger 'airflow' or 'cli': Airflow opened the run
    and passed its run id as consentgate_run_id), its status is left to its owner: only
    dbt_invocation_id and the planned datasets are added, with the lineage rows; a run its owner
    already finished successfully is never written to.

  The writers take a lock (PostgreSQL: a transaction-scoped advisory lock) and write in one
  transaction. consent_fingerprint is the Python engine's fingerprint of the consent log as of T
  (see consent_snapshot), so `consentgate verify` checks a dbt run like any other.
-#}
{% macro log_lineage(results=none) %}
  {#- Without `results` it would record a successful run with no rows: on-run-end must pass them. -#}
  {%- if results is none or results is string -%}
    {%- do consentgate._fail('consentgate.log_lineage', 'results', "is required: call it as on-run-end: \"{{ consentgate.log_lineage(results) }}\"", results) -%}
  {%- endif -%}
  {{ return(adapter.dispatch('log_lineage', 'consentgate')(results)) }}
{% endmacro %}

{#-
  What this invocation adds to its run's evidence, for the log_lineage implementations: a dict with
  run_id, run_key (its SQL literal), as_of, consent (Relation), consent_table, started_at, finished_at,
  failed (node ids), consent_tests, planned (dataset names), built ([{result, calls}]), lineage_rows
  (the rows to write, without run-level merging) and snapshot (the run's consent log as of T:
  fingerprint, events_counted); or none when there is nothing to record (see log_lineage).
-#}
{% macro _lineage_invocation(results) %}
  {%- if not execute -%}
    {{ return(none) }}
  {%- endif -%}
  {%- if (flags.WHICH | string) not in ['build', 'run', 'test', 'seed', 'snapshot', 'retry'] -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set run_id = (consentgate.get_config('run_id') or invocation_id) | string -%}
  {%- set run_key = consentgate._sql_string(run_id) -%}
  {%- set as_of = consentgate._resolve_as_of(none, 'consentgate.log_lineage') -%}
  {%- set consent = consentgate._consent_relation(none, 'consentgate.log_lineage') -%}
  {%- set consent_table = consentgate._evidence_name(consent.schema, consent.identifier) -%}
  {%- set finished_at = modules.datetime.datetime.now(modules.pytz.utc).strftime('%Y-%m-%d %H:%M:%S.%f') -%}
  {%- set started_at = run_started_at.astimezone(modules.pytz.utc).strftime('%Y-%m-%d %H:%M:%S.%f') -%}

  {#- What this invocation did: failing nodes (ids only, never data), consent tests, gated models. -#}
  {%- set failed = [] -%}
  {%- set consent_tests = [] -%}
  {%- set planned = [] -%}
  {%- set built = [] -%}
  {%- for result in results -%}
    {%- set node = result.node -%}
    {%- set status = result.status | string | lower -%}
    {%- if status in ['error', 'fail', 'runtime error', 'partial success'] -%}
      {%- do failed.append(node.unique_id) -%}
    {%- endif -%}
    {%- if node.resource_type == 'test' and node.test_metadata is defined and node.test_metadata
          and node.test_metadata.name == 'only_consented' -%}
      {%- do consent_tests.append(node.unique_id) -%}
    {%- endif -%}
    {%- if node.resource_type == 'model' -%}
      {%- set calls = consentgate.consented_calls(node.compiled_code) if status == 'success' else [] -%}
      {%- if calls -%}
        {%- do built.append({'result': result, 'calls': calls}) -%}
        {#- planned under the names of its lineage rows (model, or model/input for several inputs) -#}
        {%- for call in calls -%}
          {%- do planned.append((node.name ~ '/' ~ call.get('identifier')) if calls | length > 1 else node.name) -%}
        {%- endfor -%}
      {%- elif 'macro.consentgate.consented' in node.depends_on.macros -%}
        {%- do planned.append(node.name) -%}  {#- not built (failed, skipped): its model name -#}
      {%- endif -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if not (built or consent_tests or failed or planned) -%}
    {%- do log("consentgate.log_lineage: nothing to record for run " ~ run_id
               ~ " (no model with a consented() call, no only_consented test, no failure)", info=true) -%}
    {{ return(none) }}
  {%- endif -%}

  {#- The consent log as of T: its fingerprint and counted events, per (consent relation, as_of). -#}
  {%- set snapshots = {} -%}
  {%- do snapshots.update({(consent | string, as_of): consentgate.consent_snapshot(consent, as_of)}) -%}

  {#- One lineage row per consented() call of each model built. -#}
  {%- set lineage_rows = [] -%}
  {%- for item in built -%}
    {%- set node = item.result.node -%}
    {%- set model_rows = consentgate._model_rows(node) -%}
    {%- for call in item.calls -%}
      {%- set snapshot_key = (call.get('consent_relation'), call.get('as_of')) -%}
      {%- if snapshot_key not in snapshots -%}
        {%- set call_consent = api.Relation.create(database=call.get('consent_database'), schema=call.get('consent_schema'),
                                                   identifier=call.get('consent_identifier')) -%}
        {%- do snapshots.update({snapshot_key: consentgate.consent_snapshot(call_consent, call.get('as_of'))}) -%}
      {%- endif -%}
      {%- set row = consentgate._lineage_row(item.result, call) -%}
      {#- A model with several consented() calls gives one dataset per input: model/input. -#}
      {%- if item.calls | length > 1 -%}
        {%- do row.update({'dataset': node.name ~ '/' ~ call.get('identifier')}) -%}
      {%- endif -%}
      {%- do row.update({'run_id': run_id, 'rows_out': model_rows,
                         'consent_fingerprint': snapshots[snapshot_key].fingerprint}) -%}
      {%- do lineage_rows.append(row) -%}
    {%- endfor -%}
  {%- endfor -%}

  {{ return({'run_id': run_id, 'run_key': run_key, 'as_of': as_of, 'consent': consent, 'consent_table': consent_table,
              'started_at': started_at, 'finished_at': finished_at, 'failed': failed, 'consent_tests': consent_tests,
              'planned': planned, 'built': built, 'lineage_rows': lineage_rows,
              'snapshot': snapshots[(consent | string, as_of)]}) }}
{% endmacro %}

{% macro default__log_lineage(results) %}
  {%- set inv = consentgate._lineage_invocation(results) -%}
  {%- if inv is none -%}
    {{ return('') }}
  {%- endif -%}
  {%- set run_id, run_key, as_of, consent_table = inv.run_id, inv.run_key, inv.as_of, inv.consent_table -%}
  {%- set failed, planned, built, lineage_rows = inv.failed, inv.planned, inv.built, inv.lineage_rows -%}
  {%- set started_at, finished_at = inv.started_at, inv.finished_at -%}

  {#- From here on, one writer at a time: read the run's record, merge this invocation into it. -#}
  {%- set tables = consentgate.evidence_relations(create=false) -%}
  {%- do adapter.create_schema(tables.runs) -%}
  {%- call statement('consentgate_evidence_lock', auto_begin=true) -%}
    {{ consentgate._evidence_lock_sql() or 'select 1' }}
  {%- endcall -%}
  {%- do consentgate._ensure_evidence_tables(tables) -%}
  {%- call statement('consentgate_evidence_run', fetch_result=true, auto_begin=true) -%}
    select trigger, status, error, planned_datasets, consent_table,
           case when as_of = {{ consentgate.timestamp_literal(as_of) }} then 1 else 0 end as same_as_of
    from {{ tables.runs }} where run_id = {{ run_key }}
  {%- endcall -%}
  {%- set stored_rows = load_result('consentgate_evidence_run').table.rows -%}
  {%- set stored = stored_rows[0] if stored_rows | length > 0 else none -%}

  {%- set mismatch = [] -%}
  {%- if stored is not none -%}
    {%- if stored[5] != 1 -%}
      {%- do mismatch.append('invocation ' ~ invocation_id ~ ' used cut-off ' ~ as_of
          ~ ', not the run\'s: pass the same consentgate_as_of to every invocation of a run') -%}
    {%- endif -%}
    {%- if stored[4] is not none and not consentgate._same_table(stored[4], consent_table) -%}
      {%- do mismatch.append('invocation ' ~ invocation_id ~ ' read the consent log ' ~ consent_table
          ~ ', the run read ' ~ stored[4]) -%}
    {%- endif -%}
  {%- endif -%}
  {%- set earlier = fromjson(stored[3]) if (stored is not none and stored[3]) else [] -%}
  {%- set foreign = stored is not none and stored[0] is not none and (stored[0] | lower) != 'dbt' -%}
  {%- set planned_all = earlier + (planned | unique | sort | reject('in', earlier) | list) -%}
  {%- if not foreign -%}
    {%- set planned_all = planned_all | unique | sort -%}
  {%- endif -%}

  {%- set statements = [] -%}
  {%- if foreign and stored[1] == 'success' -%}
    {%- do adapter.commit() -%}
    {%- do exceptions.raise_compiler_error("consentgate.log_lineage: run id '" ~ run_id ~ "' already finished successfully ("
        ~ stored[0] ~ "); its evidence is never rewritten: use a new run id (docs/runs.md)") -%}
  {%- elif foreign and mismatch -%}
    {%- do adapter.commit() -%}
    {%- do exceptions.raise_compiler_error("consentgate.log_lineage: run '" ~ run_id ~ "': " ~ (mismatch | join('; '))) -%}
  {%- elif foreign -%}
    {%- do statements.append("update " ~ tables.runs ~ " set dbt_invocation_id = " ~ consentgate._sql_string(invocation_id)
        ~ ", planned_datasets = " ~ consentgate._sql_string(tojson(planned_all)) ~ " where run_id = " ~ run_key) -%}
  {%- elif stored is none -%}
    {%- set run_row = {
        'run_id': run_id,
        'started_at': started_at,
        'finished_at': finished_at,
        'status': 'failed' if failed else 'success',
        'as_of': as_of,
        'consent_table': consent_table,
        'consent_fingerprint': inv.snapshot.fingerprint,
        'consent_events_counted': inv.snapshot.events_counted,
        'trigger': 'dbt',
        'dag_id': none,
        'task_id': none,
        'airflow_run_id': none,
        'dbt_invocation_id': invocation_id,
        'package_version': '0.1.0',
        'error': consentgate._merge_error(none, failed),
        'planned_datasets': tojson(planned_all),
    } -%}
    {%- do statements.append(consentgate._insert_sql(tables.runs, run_row, ['started_at', 'finished_at', 'as_of'])) -%}
  {%- else -%}
    {%- set status = 'failed' if (failed or mismatch or stored[1] == 'failed') else 'success' -%}
    {%- set started = consentgate.timestamp_literal(started_at) -%}
    {%- set finished = consentgate.timestamp_literal(finished_at) -%}
    {%- do statements.append("update " ~ tables.runs ~ " set status = " ~ consentgate._sql_string(status)
        ~ ", error = " ~ consentgate._sql_string(consentgate._merge_error(stored[2], failed, mismatch))
        ~ ", started_at = case when started_at is null or started_at > " ~ started ~ " then " ~ started ~ " else started_at end"
        ~ ", finished_at = case when finished_at is null or finished_at < " ~ finished ~ " then " ~ finished ~ " else finished_at end"
        ~ ", dbt_invocation_id = " ~ consentgate._sql_string(invocation_id)
        ~ ", planned_datasets = " ~ consentgate._sql_string(tojson(planned_all))
        ~ " where run_id = " ~ run_key) -%}
  {%- endif -%}
  {%- if mismatch -%}
    {#- The run's failure is recorded (above); this invocation's rows describe another cut-off: none is written. -#}
    {%- do consentgate._execute_in_transaction(statements) -%}
    {%- do exceptions.raise_compiler_error("consentgate.log_lineage: run '" ~ run_id ~ "': " ~ (mismatch | join('; '))) -%}
  {%- endif -%}
  {%- for item in built -%}
    {%- set name = item.result.node.name -%}
    {%- do statements.append("delete from " ~ tables.lineage ~ " where run_id = " ~ run_key ~ " and trigger = 'dbt' and (dataset = "
        ~ consentgate._sql_string(name) ~ " or substr(dataset, 1, " ~ (name | length + 1) ~ ") = " ~ consentgate._sql_string(name ~ '/') ~ ")") -%}
  {%- endfor -%}
  {%- for row in lineage_rows -%}
    {%- do statements.append(consentgate._insert_sql(tables.lineage, row, ['started_at', 'finished_at'])) -%}
  {%- endfor -%}
  {%- do consentgate._execute_in_transaction(statements) -%}
  {%- do log("consentgate.log_lineage: run " ~ run_id ~ ": " ~ lineage_rows | length ~ " lineage row(s) of "
             ~ built | length ~ " model(s), " ~ failed | length ~ " failing node(s), in " ~ tables.lineage, info=true) -%}
  {{ return('') }}
{% endmacro %}
