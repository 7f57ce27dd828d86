{#-
  The number of rows in a model's relation right after this invocation built it (the lineage row's
  rows_out), or none when there is no relation to count (an ephemeral model).
-#}
{% macro _model_rows(node) %}
  {%- if node.config.materialized == 'ephemeral' -%}
    {{ return(none) }}
  {%- endif -%}
  {%- if not consentgate._relation_exists(node.database, node.schema, node.alias) -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set relation = adapter.get_relation(node.database, node.schema, node.alias)
      or api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias) -%}
  {{ return(run_query("select count(*) from " ~ relation).columns[0].values()[0] | int) }}
{% endmacro %}
