{#-
  expression as text compared byte by byte (docs/semantics.md, "Binary comparison"), whatever the
  collation or type of its column: a DuckDB NOCASE or ICU collation, a PostgreSQL citext column or a
  nondeterministic ICU collation would otherwise make 'ANN@X.COM' equal 'ann@x.com'.
-#}
{% macro _binary_text(expression) %}
  {{ return(adapter.dispatch('_binary_text', 'consentgate')(expression)) }}
{% endmacro %}

{% macro default___binary_text(expression) %}
  {{ return("(cast(" ~ expression ~ " as " ~ dbt.type_string() ~ ") collate \"C\")") }}
{% endmacro %}
