{#-
  Whether two table names as the evidence holds them (`table`, `schema.table` or `db.schema.table`)
  name the same table: an unqualified name is in the target schema (as the engine resolves it there);
  the database is ignored; names compare case-insensitively.
-#}
{% macro _same_table(a, b) %}
  {%- set keys = [] -%}
  {%- for name in [a, b] -%}
    {%- set parts = (name | string | lower).split('.') -%}
    {%- do keys.append(((parts[-2] if parts | length > 1 else (target.schema | lower)), parts[-1])) -%}
  {%- endfor -%}
  {{ return(keys[0] == keys[1]) }}
{% endmacro %}
