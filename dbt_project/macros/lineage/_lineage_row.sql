{#-
  The consentgate_lineage row (without run_id) for one consented() call of a model's run result.
  Counts are computed with consent_counts' SQL on the consented relation as of the call's as_of;
  they are null when that relation cannot be queried afterwards (an ephemeral model, a dropped table).
-#}
{% macro _lineage_row(result, call) %}
  {%- set node = result.node -%}
  {%- set row = {
      'dataset': node.name,
      'source': consentgate._evidence_name(call.get('schema'), call.get('identifier')),
      'target': consentgate._evidence_name(node.schema, node.alias),
      'purpose': call.get('purpose'),
      'subject_column': call.get('subject_column'),
      'normalize': call.get('normalize'),
      'consent_fingerprint': none,
      'trigger': 'dbt',
      'task_id': none,
      'started_at': none,
      'finished_at': none,
  } -%}
  {%- for timing in result.timing -%}
    {%- if timing.started_at and (row.started_at is none) -%}
      {%- do row.update({'started_at': timing.started_at.strftime('%Y-%m-%d %H:%M:%S.%f')}) -%}
    {%- endif -%}
    {%- if timing.completed_at -%}
      {%- do row.update({'finished_at': timing.completed_at.strftime('%Y-%m-%d %H:%M:%S.%f')}) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- set names = ['rows_in', 'rows_out', 'excluded_null_subject', 'excluded_no_consent', 'excluded_denied',
                   'excluded_withdrawn', 'excluded_expired', 'excluded_invalid'] -%}
  {%- for name in names -%}
    {%- do row.update({name: none}) -%}
  {%- endfor -%}
  {%- set identifier = call.get('identifier') -%}
  {%- set queryable = identifier and not identifier.startswith('__dbt__cte__')
      and consentgate._relation_exists(call.get('database'), call.get('schema'), identifier) -%}
  {%- if queryable -%}
    {%- set relation = api.Relation.create(database=call.get('database'), schema=call.get('schema'), identifier=identifier) -%}
    {%- set consent = api.Relation.create(database=call.get('consent_database'), schema=call.get('consent_schema'),
                                          identifier=call.get('consent_identifier')) -%}
    {%- set spec = consentgate._call_spec('consentgate.log_lineage', relation, call.get('subject_column'), call.get('purpose'),
                                          call.get('as_of'), call.get('normalize'), consent) -%}
    {%- set counts = run_query(consentgate._counts_sql(spec)) -%}
    {%- for name in names -%}
      {%- do row.update({name: counts.columns[name].values()[0] | int}) -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return(row) }}
{% endmacro %}
