{#-
  One row per subject key with at least one event that counts at T (rules 1-4), with the deciding
  code cg_code = max(epoch_us(event_ts) * 8 + (4 - severity)): the latest event decides, and on a
  tie the most restrictive one. One aggregate, no window function, no unspecified tie order.

  changed_since (optional, for the purge): instead, one row per key whose decision can differ between
  changed_since and T (see consent_change_window), with cg_code of the events that count at T (null
  when none does). Still one pass and one aggregate over the log.
-#}
{% macro consent_decisions(spec, changed_since=none) %}
  {{ return(adapter.dispatch('consent_decisions', 'consentgate')(spec, changed_since)) }}
{% endmacro %}

{% macro default__consent_decisions(spec, changed_since=none) %}
  {%- set as_of = consentgate.timestamp_literal(spec.as_of) -%}
  {%- set known = 'cg_events.cg_event_ts <= ' ~ as_of ~ ' and cg_events.cg_known_at <= ' ~ as_of -%}
  {#- An event before year 1 that counts fails the query (docs/semantics.md, "Timestamps"), as in the engine. -#}
  {%- set too_old = consentgate._raise_sql(
      "consentgate: consent column event_ts holds an event that counts but is dated before 0001-01-01 "
      ~ "(a BC date or -infinity), which the rule cannot order; correct or remove that event",
      'cg_events.cg_event_ts') -%}
  {%- set code = "case when cg_events.cg_event_ts < " ~ consentgate.timestamp_literal('0001-01-01 00:00:00') ~ " then " ~ too_old
      ~ " else " ~ consentgate.epoch_us('cg_events.cg_event_ts') ~ " * 8 + (4 - cg_events.cg_severity) end" -%}
  {%- set sql -%}
select
    cg_events.cg_key,
    {%- if changed_since is none %}
    max({{ code }}) as cg_code
    {%- else %}
    max(case when {{ known }} then {{ code }} end) as cg_code
    {%- endif %}
from (
{{ consentgate.consent_events(spec) }}
) as cg_events
{%- if changed_since is none %}
where {{ known }}
group by cg_events.cg_key
{%- else %}
group by cg_events.cg_key
having max(case when {{ consentgate.consent_change_window(changed_since, spec.as_of) }} then 1 else 0 end) = 1
{%- endif %}
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}
