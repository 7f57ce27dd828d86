{#-
  The reason a row is excluded (docs/semantics.md, "Why a row is excluded"), or null when it is kept.
  key_sql: the row's subject key (see subject_key); code_sql: the deciding code of that key from
  consent_decisions(), null when no event counts. The code is
  epoch_us(event_ts) * 8 + (4 - severity), so (code mod 8) = 4 - severity of the deciding event:
  0 valid grant, 1 expired grant, 2 invalid, 3 denied, 4 withdrawn. The modulo is taken floored, so
  events before 1970 decode too.
-#}
{% macro exclusion_reason(key_sql, code_sql) %}
  {{ return(adapter.dispatch('exclusion_reason', 'consentgate')(key_sql, code_sql)) }}
{% endmacro %}

{% macro default__exclusion_reason(key_sql, code_sql) %}
  {%- set low_bits = "(((" ~ code_sql ~ ") % 8) + 8) % 8" -%}
  {%- set sql -%}
case
    when {{ key_sql }} is null then 'null_subject'
    when {{ code_sql }} is null then 'no_consent'
    when {{ low_bits }} = 4 then 'withdrawn'
    when {{ low_bits }} = 3 then 'denied'
    when {{ low_bits }} = 2 then 'invalid'
    when {{ low_bits }} = 1 then 'expired'
end
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}
