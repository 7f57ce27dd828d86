{#-
  The integer whose canonical text is the subject key key_sql, as data_type; null when the key is not
  the canonical text of an integer ('042', '+42', '4.0' and out-of-range values give null). It lets
  the purge probe an integer subject column directly (so an index or the engine's join filter can be
  used) with exactly the same matches as comparing trimmed text: cast(42 as text) = '42' only.
-#}
{% macro integer_key(key_sql, data_type) %}
  {{ return(adapter.dispatch('integer_key', 'consentgate')(key_sql, data_type)) }}
{% endmacro %}

{% macro default__integer_key(key_sql, data_type) %}
  {{ return("case when " ~ key_sql ~ " ~ '^-?(0|[1-9][0-9]{0,17})$' then cast(" ~ key_sql ~ " as bigint) end") }}
{% endmacro %}

{% macro duckdb__integer_key(key_sql, data_type) %}
  {{ return("case when cast(try_cast(" ~ key_sql ~ " as " ~ data_type ~ ") as varchar) = " ~ key_sql
            ~ " then try_cast(" ~ key_sql ~ " as " ~ data_type ~ ") end") }}
{% endmacro %}
