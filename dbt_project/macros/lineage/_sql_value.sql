{#- A SQL literal for a value: null, a number as written, a string quoted. -#}
{% macro _sql_value(value) %}
  {%- if value is none -%}
    {{ return('null') }}
  {%- elif value is number and value is not boolean -%}
    {{ return(value | string) }}
  {%- endif -%}
  {{ return(consentgate._sql_string(value)) }}
{% endmacro %}
