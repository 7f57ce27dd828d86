{#- A table name as the evidence tables hold it: `schema.table` (the form the Python engine writes and reads). -#}
{% macro _evidence_name(schema, identifier) %}
  {%- if identifier is none -%}
    {{ return(none) }}
  {%- endif -%}
  {{ return((schema ~ '.' ~ identifier) if schema else identifier) }}
{% endmacro %}
