{#-
  text_sql with A-Z lowered to a-z and every other character unchanged (docs/semantics.md, rule 6):
  the same on every engine, locale and collation, unlike lower() (DuckDB and a C.UTF-8 PostgreSQL
  lower 'İ' to 'i', an ICU 'tr' collation lowers 'I' to 'ı').
-#}
{% macro _ascii_lower(text_sql) %}
  {{ return(adapter.dispatch('_ascii_lower', 'consentgate')(text_sql)) }}
{% endmacro %}

{% macro default___ascii_lower(text_sql) %}
  {{ return("translate(" ~ text_sql ~ ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')") }}
{% endmacro %}

{#- PostgreSQL's lower() under the "C" collation lowers A-Z only, and is much faster than translate(). -#}
{% macro postgres___ascii_lower(text_sql) %}
  {{ return("lower((" ~ text_sql ~ ") collate \"C\")") }}
{% endmacro %}

{#- DuckDB's lower() is Unicode whatever the collation: used only on pure-ASCII text (as many bytes as
    characters), translate() (several times slower) for the rest. -#}
{% macro duckdb___ascii_lower(text_sql) %}
  {{ return("case when strlen(" ~ text_sql ~ ") = length(" ~ text_sql ~ ") then lower(" ~ text_sql ~ ") else "
            ~ consentgate.default___ascii_lower(text_sql) ~ " end") }}
{% endmacro %}
