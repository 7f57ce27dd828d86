{#- Raise a compile-time error that names the macro, the argument and the value received. -#}
{% macro _fail(macro_name, argument, problem, value) %}
  {%- if value is not defined -%}
    {%- set shown = 'nothing (the argument is missing)' -%}
  {%- elif value is none -%}
    {%- set shown = 'none' -%}
  {%- elif value is string -%}
    {%- set shown = "'" ~ value ~ "'" -%}
  {%- else -%}
    {%- set shown = value | string -%}
  {%- endif -%}
  {{ exceptions.raise_compiler_error(macro_name ~ ": argument '" ~ argument ~ "' " ~ problem ~ "; got " ~ shown) }}
{% endmacro %}
