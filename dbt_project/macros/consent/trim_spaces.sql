{#-
  text_sql without leading and trailing spaces: U+0020 only (docs/semantics.md, rule 6), as the Python
  engine does. A bare trim() differs between engines (DuckDB's also strips U+00A0 and other Unicode
  spaces, PostgreSQL's does not), so the space is always given. On DuckDB the trim sits behind two
  prefix and suffix tests: the same value, much cheaper when there is nothing to trim.
-#}
{% macro trim_spaces(text_sql) %}
  {{ return(adapter.dispatch('trim_spaces', 'consentgate')(text_sql)) }}
{% endmacro %}

{% macro default__trim_spaces(text_sql) %}
  {{ return("trim(both ' ' from " ~ text_sql ~ ")") }}
{% endmacro %}

{% macro duckdb__trim_spaces(text_sql) %}
  {{ return("case when " ~ text_sql ~ " like ' %' or " ~ text_sql ~ " like '% ' then trim(" ~ text_sql
            ~ ", ' ') else " ~ text_sql ~ " end") }}
{% endmacro %}
