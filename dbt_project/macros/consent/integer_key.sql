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
  {#- The canonical text of a bigint: no sign on 0, no leading zero, within range (checked as numeric
      in a nested case, so the bigint cast only ever sees a value that fits). -#}
  {{ return("case when " ~ key_sql ~ " ~ '^(0|-?[1-9][0-9]{0,18})$' then case when cast(" ~ key_sql
            ~ " as numeric) between -9223372036854775808 and 9223372036854775807 then cast(" ~ key_sql
            ~ " as bigint) end end") }}
{% endmacro %}

{% macro duckdb__integer_key(key_sql, data_type) %}
  {{ return("case when cast(try_cast(" ~ key_sql ~ " as " ~ data_type ~ ") as varchar) = " ~ key_sql
            ~ " then try_cast(" ~ key_sql ~ " as " ~ data_type ~ ") end") }}
{% endmacro %}
