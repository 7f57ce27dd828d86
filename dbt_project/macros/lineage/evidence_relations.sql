{#-
  The evidence tables consentgate_runs and consentgate_lineage (plugins/consentgate/engine/ddl.sql), in
  var consentgate_evidence_schema (default: the target schema), created with the same columns if
  missing. Returns {'runs': Relation, 'lineage': Relation}.
-#}
{% macro evidence_relations(create=true) %}
  {{ return(adapter.dispatch('evidence_relations', 'consentgate')(create)) }}
{% endmacro %}

{% macro default__evidence_relations(create=true) %}
  {%- set schema = consentgate.get_config('evidence_schema') or target.schema -%}
  {%- set runs = api.Relation.create(database=target.database, schema=schema, identifier='consentgate_runs') -%}
  {%- set lineage = api.Relation.create(database=target.database, schema=schema, identifier='consentgate_lineage') -%}
  {%- if create and execute -%}
    {%- do adapter.create_schema(runs) -%}
    {%- do run_query(consentgate.evidence_ddl(runs, 'runs')) -%}
    {%- do run_query(consentgate.evidence_ddl(lineage, 'lineage')) -%}
  {%- endif -%}
  {{ return({'runs': runs, 'lineage': lineage}) }}
{% endmacro %}
