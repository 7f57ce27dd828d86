{#-
  Columns of the evidence tables added after the first release, per kind ('runs', 'lineage'): a list
  of (name, type), the same as the engine's consentgate.engine.lineage.ADDED_COLUMNS.
  evidence_relations adds those a table of an older version lacks.
-#}
{% macro evidence_added_columns(kind) %}
  {%- set added = {
      'runs': [('owner', 'varchar'), ('attempt', 'bigint'), ('planned_datasets', 'varchar'),
               ('pid', 'bigint'), ('host', 'varchar')],
      'lineage': [('attempt', 'bigint')],
  } -%}
  {{ return(added[kind]) }}
{% endmacro %}
