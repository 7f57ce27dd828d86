{#-
  The consent log as of as_of, for the evidence: {'events_counted': n, 'fingerprint': '0123456789abcdef'}.
  events_counted: the events that count at as_of (docs/semantics.md rules 1 and 2, all purposes).
  fingerprint: the order-independent hash of docs/semantics.md ("Consent fingerprint"): the sum
  modulo 2^64 of row_hash(subject_id, purpose, status, event_ts, recorded_at, expires_at) over those
  events, as 16 hex digits - the same value the Python engine records, so `consentgate verify`
  works for dbt runs. Both are none when the log does not exist; the fingerprint is none when the
  adapter has no row_hash.
-#}
{% macro consent_snapshot(consent_relation, as_of) %}
  {{ return(adapter.dispatch('consent_snapshot', 'consentgate')(consent_relation, as_of)) }}
{% endmacro %}

{% macro default__consent_snapshot(consent_relation, as_of) %}
  {%- set empty = {'events_counted': none, 'fingerprint': none} -%}
  {%- if not execute or not consentgate._relation_exists(consent_relation.database, consent_relation.schema, consent_relation.identifier) -%}
    {{ return(empty) }}
  {%- endif -%}
  {%- set c = consentgate._consent_columns(consent_relation, 'consentgate.log_lineage') -%}
  {%- set cutoff = consentgate.timestamp_literal(as_of) -%}
  {%- set hash = consentgate.row_hash(consentgate._fingerprint_inputs(consent_relation, c)) -%}
  {%- set sql -%}
select
    count(*) as events_counted,
    {% if hash is not none -%}
    cast(mod(coalesce(sum(cast({{ hash }} as decimal(38, 0))), 0), 18446744073709551616) as {{ dbt.type_string() }}) as fingerprint
    {%- else -%}
    cast(null as {{ dbt.type_string() }}) as fingerprint
    {%- endif %}
from {{ consent_relation }}
where {{ consentgate.subject_key(c.subject_id) }} is not null
  and {{ c.purpose }} is not null
  and {{ c.event_ts }} is not null
  and {{ c.event_ts }} <= {{ cutoff }}
  and coalesce({{ c.recorded_at }}, {{ c.event_ts }}) <= {{ cutoff }}
  {%- endset -%}
  {%- set row = run_query(sql).rows[0] -%}
  {%- set fingerprint = none if row[1] is none else ('%016x' | format(row[1] | string | int)) -%}
  {{ return({'events_counted': row[0] | int, 'fingerprint': fingerprint}) }}
{% endmacro %}

{#- The values the fingerprint hashes, in order (subject_id, purpose, status, event_ts, recorded_at,
    expires_at), as the Python engine hashes them (consentgate.rule.semantics._hash_input). -#}
{% macro _fingerprint_inputs(consent_relation, c) %}
  {{ return(adapter.dispatch('_fingerprint_inputs', 'consentgate')(consent_relation, c)) }}
{% endmacro %}

{% macro default___fingerprint_inputs(consent_relation, c) %}
  {{ return([c.subject_id, c.purpose, c.status, c.event_ts, c.recorded_at, c.expires_at]) }}
{% endmacro %}
