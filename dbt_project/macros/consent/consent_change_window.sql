{#-
  True for a consent event (columns of consent_events) that can change a decision between the cut-offs
  since and as_of: it starts to count in between (the later of event_ts and recorded_at falls in the
  window), or it expires in between. The window is (min, max] of the two cut-offs, so a cut-off
  moved back is handled too. Nothing else changes a decision, because the log is append-only
  (docs/semantics.md).
-#}
{% macro consent_change_window(since, as_of) %}
  {{ return(adapter.dispatch('consent_change_window', 'consentgate')(since, as_of)) }}
{% endmacro %}

{% macro default__consent_change_window(since, as_of) %}
  {%- set low = consentgate.timestamp_literal([since, as_of] | min) -%}
  {%- set high = consentgate.timestamp_literal([since, as_of] | max) -%}
  {%- set effective = 'case when cg_events.cg_known_at > cg_events.cg_event_ts then cg_events.cg_known_at else cg_events.cg_event_ts end' -%}
  {{ return('((' ~ effective ~ ' > ' ~ low ~ ' and ' ~ effective ~ ' <= ' ~ high ~ ') or (cg_events.cg_expires_at > '
            ~ low ~ ' and cg_events.cg_expires_at <= ' ~ high ~ '))') }}
{% endmacro %}
