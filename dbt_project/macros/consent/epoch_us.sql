{#- Microseconds since 1970-01-01 of a naive (UTC) timestamp, as a bigint. -#}
{% macro epoch_us(expression) %}
  {{ return(adapter.dispatch('epoch_us', 'consentgate')(expression)) }}
{% endmacro %}

{% macro default__epoch_us(expression) %}
  {{ return("cast(extract(epoch from " ~ expression ~ ") * 1000000 as bigint)") }}
{% endmacro %}

{% macro duckdb__epoch_us(expression) %}
  {{ return("epoch_us(" ~ expression ~ ")") }}
{% endmacro %}
