{#-
  A column name as SQL: plain names are used as written (so the warehouse's case folding applies),
  already double-quoted names are kept, anything else is quoted by the adapter.
-#}
{% macro _identifier(name, macro_name, argument) %}
  {%- if name is not string or name | trim == '' -%}
    {%- do consentgate._fail(macro_name, argument, 'must be a non-blank column name', name) -%}
  {%- endif -%}
  {%- set name = name | trim -%}
  {%- if modules.re.match('^[A-Za-z_][A-Za-z0-9_]*$', name) -%}
    {{ return(name) }}
  {%- elif modules.re.match('^"([^"]|"")+"$', name) -%}
    {{ return(name) }}
  {%- endif -%}
  {{ return(adapter.quote(name)) }}
{% endmacro %}
