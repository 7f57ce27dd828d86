{#-
  A subject key as SQL (docs/semantics.md, rule 6): the value as text without leading and trailing
  spaces (trim_spaces), null when blank,
  lower-cased when normalize is 'lower'. An integer 42 becomes '42'.
-#}
{% macro subject_key(expression, normalize=none) %}
  {{ return(adapter.dispatch('subject_key', 'consentgate')(expression, normalize)) }}
{% endmacro %}

{% macro default__subject_key(expression, normalize=none) %}
  {%- set key = "nullif(" ~ consentgate.trim_spaces("cast(" ~ expression ~ " as " ~ dbt.type_string() ~ ")") ~ ", '')" -%}
  {%- if normalize == 'lower' -%}
    {%- set key = 'lower(' ~ key ~ ')' -%}
  {%- endif -%}
  {{ return(key) }}
{% endmacro %}
