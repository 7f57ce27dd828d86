{#-
  A 64-bit hash of a tuple of SQL expressions (nulls included) as a non-negative number, the same
  as the Python engine's (consentgate.rule.dialects.Dialect.row_hash), or none when the adapter has no
  such hash: the consent fingerprint is then left null instead of failing the run.
-#}
{% macro row_hash(expressions) %}
  {{ return(adapter.dispatch('row_hash', 'consentgate')(expressions)) }}
{% endmacro %}

{% macro default__row_hash(expressions) %}
  {{ return(none) }}
{% endmacro %}

{% macro duckdb__row_hash(expressions) %}
  {{ return('hash(' ~ (expressions | join(', ')) ~ ')') }}
{% endmacro %}

{% macro postgres__row_hash(expressions) %}
  {%- set null_marker -%}'\N'{%- endset -%}
  {%- set parts = [] -%}
  {%- for expression in expressions -%}
    {%- do parts.append('coalesce(cast(' ~ expression ~ ' as text), ' ~ null_marker ~ ')') -%}
  {%- endfor -%}
  {{ return('(hashtextextended(' ~ (parts | join(" || '|' || ")) ~ ', 0)::numeric + 9223372036854775808)') }}
{% endmacro %}
