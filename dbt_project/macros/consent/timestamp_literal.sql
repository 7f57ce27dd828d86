{#- A naive timestamp literal from a 'YYYY-MM-DD HH:MM:SS.ffffff' string. -#}
{% macro timestamp_literal(value) %}
  {{ return(adapter.dispatch('timestamp_literal', 'consentgate')(value)) }}
{% endmacro %}

{% macro default__timestamp_literal(value) %}
  {%- if value is none -%}
    {{ return('cast(null as timestamp)') }}
  {%- endif -%}
  {{ return("cast(" ~ consentgate._sql_string(value) ~ " as timestamp)") }}
{% endmacro %}
