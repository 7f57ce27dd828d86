{#-
  One row per subject key with at least one event that counts at T (rules 1-4), with the deciding
  code cg_code = max(epoch_us(event_ts) * 8 + (4 - severity)): the latest event decides, and on a
  tie the most restrictive one. One aggregate, no window function, no unspecified tie order.
  keys_sql (optional): a query of cg_key values; only those keys are decided (the purge uses it).
-#}
{% macro consent_decisions(spec, keys_sql=none) %}
  {{ return(adapter.dispatch('consent_decisions', 'consentgate')(spec, keys_sql)) }}
{% endmacro %}

{% macro default__consent_decisions(spec, keys_sql=none) %}
  {%- set as_of = consentgate.timestamp_literal(spec.as_of) -%}
  {%- set sql -%}
select
    cg_events.cg_key,
    max({{ consentgate.epoch_us('cg_events.cg_event_ts') }} * 8 + (4 - cg_events.cg_severity)) as cg_code
from (
{{ consentgate.consent_events(spec) }}
) as cg_events
where cg_events.cg_event_ts <= {{ as_of }}
  and cg_events.cg_known_at <= {{ as_of }}
  {%- if keys_sql is not none %}
  and cg_events.cg_key in ({{ keys_sql }})
  {%- endif %}
group by cg_events.cg_key
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}
