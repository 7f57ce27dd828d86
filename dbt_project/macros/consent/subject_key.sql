{#-
  A subject key as SQL (docs/semantics.md, rule 6): the value as text without leading and trailing
  spaces (trim_spaces), null when blank, compared byte by byte whatever the column's collation or type
  (_binary_text), with A-Z lowered when normalize is 'lower' (_ascii_lower). An integer 42 becomes '42'.
-#}
{% macro subject_key(expression, normalize=none) %}
  {{ return(adapter.dispatch('subject_key', 'consentgate')(expression, normalize)) }}
{% endmacro %}

{% macro default__subject_key(expression, normalize=none) %}
  {%- set key = "nullif(" ~ consentgate.trim_spaces(consentgate._binary_text(expression)) ~ ", '')" -%}
  {%- if normalize == 'lower' -%}
    {%- set key = consentgate._ascii_lower(key) -%}
  {%- endif -%}
  {{ return(key) }}
{% endmacro %}
