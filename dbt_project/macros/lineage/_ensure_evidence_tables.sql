{#-
  Create the evidence tables `tables` ({'runs': Relation, 'lineage': Relation}) if missing, with the
  columns of evidence_ddl, and add the columns of evidence_added_columns a table of an older version
  lacks. Runs on the current connection without committing (log_lineage holds its lock meanwhile).
-#}
{% macro _ensure_evidence_tables(tables) %}
  {%- for kind in ['runs', 'lineage'] -%}
    {%- do run_query(consentgate.evidence_ddl(tables[kind], kind)) -%}
    {%- set have = adapter.get_columns_in_relation(tables[kind]) | map(attribute='name') | map('lower') | list -%}
    {%- for name, type in consentgate.evidence_added_columns(kind) if name not in have -%}
      {%- do run_query('alter table ' ~ tables[kind] ~ ' add column ' ~ name ~ ' ' ~ type) -%}
    {%- endfor -%}
  {%- endfor -%}
{% endmacro %}
