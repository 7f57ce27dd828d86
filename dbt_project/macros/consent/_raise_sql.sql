{#-
  An SQL expression (a bigint) that fails the query with `message` when evaluated; `row_sql` is an
  expression of the row, so that no engine evaluates it while planning. The message never holds a
  value of the row.
-#}
{% macro _raise_sql(message, row_sql) %}
  {{ return(adapter.dispatch('_raise_sql', 'consentgate')(message, row_sql)) }}
{% endmacro %}

{% macro default___raise_sql(message, row_sql) %}
  {{ return("cast(" ~ consentgate._sql_string(message) ~ " || left(cast(" ~ row_sql ~ " as "
            ~ dbt.type_string() ~ "), 0) as bigint)") }}
{% endmacro %}

{% macro duckdb___raise_sql(message, row_sql) %}
  {{ return("cast(error(" ~ consentgate._sql_string(message) ~ " || left(cast(" ~ row_sql ~ " as varchar), 0)) as bigint)") }}
{% endmacro %}
