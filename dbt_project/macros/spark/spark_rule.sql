{#-
  The decision rule's SQL on dbt-spark (Spark 4 through Spark Connect or a Thrift server), only where
  Spark SQL differs from the default implementation (docs/spark.md#dbt). Each difference is one of the
  dialect traps of rule/dialects.py, and the SQL is right with ANSI mode on and off (dbt-spark turns
  it off).
-#}

{#- Spark string literals take backslash escapes: a backslash is doubled, a quote doubled. -#}
{% macro spark___sql_string(value) %}
  {%- if value is none -%}
    {{ return('null') }}
  {%- endif -%}
  {{ return("'" ~ (value | string | replace("\\", "\\\\") | replace("'", "''")) ~ "'") }}
{% endmacro %}

{#- Byte-by-byte comparison whatever the column's collation (a `string collate UTF8_LCASE` column). -#}
{% macro spark___binary_text(expression) %}
  {{ return("collate(cast(" ~ expression ~ " as string), 'UTF8_BINARY')") }}
{% endmacro %}

{#- Spark's trim(x, ' ') is trim(trimStr, src); btrim(src, trimStr) trims U+0020 only. -#}
{% macro spark__trim_spaces(text_sql) %}
  {{ return("btrim(" ~ text_sql ~ ", ' ')") }}
{% endmacro %}

{#- extract(epoch ...) does not exist; unix_micros() of an instant does not depend on the session zone. -#}
{% macro spark__epoch_us(expression) %}
  {{ return("unix_micros(" ~ expression ~ ")") }}
{% endmacro %}

{#- A literal read as UTC whatever spark.sql.session.timeZone (a bare literal is read in the session zone). -#}
{% macro spark__timestamp_literal(value) %}
  {%- if value is none -%}
    {{ return('cast(null as timestamp)') }}
  {%- endif -%}
  {#- Spark reads a four-digit year only: Python writes year 1 as '1-01-01'. -#}
  {%- set parts = (value | string).split('-', 1) -%}
  {%- set value = ('%04d' | format(parts[0] | int)) ~ '-' ~ parts[1] -%}
  {{ return("cast(" ~ consentgate._sql_string(value ~ 'Z') ~ " as timestamp)") }}
{% endmacro %}

{#- Spark's lower() is Unicode ('İ' -> 'i̇'). Text that lower() leaves unchanged byte for byte holds no A-Z,
    so it is kept as it is; translate() takes the rest. The same form as the engine's Dialect.ascii_lower. -#}
{% macro spark___ascii_lower(text_sql) %}
  {{ return("case when cast(lower(" ~ text_sql ~ ") as binary) = cast(" ~ text_sql ~ " as binary) then " ~ text_sql
            ~ " else " ~ consentgate.default___ascii_lower(text_sql) ~ " end") }}
{% endmacro %}

{#- With ANSI mode off a failing cast gives null: raise_error() fails in both modes. -#}
{% macro spark___raise_sql(message, row_sql) %}
  {{ return("cast(raise_error(" ~ consentgate._sql_string(message) ~ " || left(cast(" ~ row_sql
            ~ " as string), 0)) as bigint)") }}
{% endmacro %}

{#- No `~` operator and no `numeric` type: rlike and decimal(20, 0). -#}
{% macro spark__integer_key(key_sql, data_type) %}
  {{ return("case when " ~ key_sql ~ " rlike '^(0|-?[1-9][0-9]{0,18})$' then case when cast(" ~ key_sql
            ~ " as decimal(20, 0)) between -9223372036854775808 and 9223372036854775807 then cast(" ~ key_sql
            ~ " as bigint) end end") }}
{% endmacro %}
