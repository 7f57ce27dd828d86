{#- A SQL string literal (single quotes doubled), or null. -#}
{% macro _sql_string(value) %}
  {{ return(adapter.dispatch('_sql_string', 'consentgate')(value)) }}
{% endmacro %}

{% macro default___sql_string(value) %}
  {%- if value is none -%}
    {{ return('null') }}
  {%- endif -%}
  {{ return("'" ~ (value | string | replace("'", "''")) ~ "'") }}
{% endmacro %}
