{#-
  The well-formed consent events for the spec's purpose (docs/semantics.md, rules 2 and 3), one row
  per event, with:
    cg_key        the subject key (trimmed text, lower-cased with normalize 'lower')
    cg_event_ts   event_ts (naive UTC)
    cg_known_at   coalesce(recorded_at, event_ts)
    cg_expires_at expires_at
    cg_severity   0 withdrawn, 1 denied, 2 invalid, 3 grant expired at T, 4 grant valid at T
  Rule 1 (known by T) is applied by the callers, so the same rows also serve the purge's change window.
-#}
{% macro consent_events(spec) %}
  {{ return(adapter.dispatch('consent_events', 'consentgate')(spec)) }}
{% endmacro %}

{% macro default__consent_events(spec) %}
  {%- set c = spec.columns -%}
  {%- set as_of = consentgate.timestamp_literal(spec.as_of) -%}
  {%- set key = consentgate.subject_key(c.subject_id, spec.normalize) -%}
  {%- set sql -%}
select
    {{ key }} as cg_key,
    {{ c.event_ts }} as cg_event_ts,
    coalesce({{ c.recorded_at }}, {{ c.event_ts }}) as cg_known_at,
    {{ c.expires_at }} as cg_expires_at,
    case {{ consentgate._ascii_lower(consentgate.trim_spaces(consentgate._binary_text(c.status))) }}
        when 'withdrawn' then 0
        when 'denied' then 1
        when 'granted' then
            case when {{ c.expires_at }} is not null and {{ c.expires_at }} <= {{ as_of }} then 3 else 4 end
        else 2
    end as cg_severity
from {{ spec.consent_relation }}
where {{ c.event_ts }} is not null
  and {{ c.purpose }} is not null
  and {{ consentgate._ascii_lower(consentgate.trim_spaces(consentgate._binary_text(c.purpose))) }} = {{ consentgate._sql_string(spec.purpose) }}
  and {{ key }} is not null
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}
