{#-
  The evidence tables consentgate_runs and consentgate_lineage (plugins/consentgate/engine/ddl.sql), in
  var consentgate_evidence_schema (default: the target schema), created with the same columns if
  missing (and with the columns added since, see evidence_added_columns).
  Returns {'runs': Relation, 'lineage': Relation}.
-#}
{% macro evidence_relations(create=true) %}
  {{ return(adapter.dispatch('evidence_relations', 'consentgate')(create)) }}
{% endmacro %}

{% macro default__evidence_relations(create=true) %}
  {%- set schema = consentgate.get_config('evidence_schema') or target.schema -%}
  {%- set runs = api.Relation.create(database=consentgate._target_database(), schema=schema, identifier='consentgate_runs') -%}
  {%- set lineage = api.Relation.create(database=consentgate._target_database(), schema=schema, identifier='consentgate_lineage') -%}
  {%- if create and execute -%}
    {%- do adapter.create_schema(runs) -%}
    {%- do consentgate._ensure_evidence_tables({'runs': runs, 'lineage': lineage}) -%}
  {%- endif -%}
  {{ return({'runs': runs, 'lineage': lineage}) }}
{% endmacro %}
