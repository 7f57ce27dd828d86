{#-
  consented(relation, subject_column, purpose, as_of=none, normalize=none, consent_relation=none)

  A select of relation's rows (all its columns, unchanged) whose subject is consented for purpose as
  of as_of, exactly as docs/semantics.md decides. Use it wherever personal data feeds a purpose:

    select * from ({{ consentgate.consented(ref('stg_web_events'), 'customer_id', 'ad_targeting') }}) as e

  relation          a Relation: ref(...) or source(...)
  subject_column    the column holding the subject id
  purpose           the purpose asked for (matched trimmed, case-insensitively)
  as_of             the cut-off T; default var consentgate_as_of, else run_started_at
  normalize         none or 'lower' (e-mail keys)
  consent_relation  the consent log; default var consentgate_consent_relation
-#}
{% macro consented(relation, subject_column, purpose, as_of=none, normalize=none, consent_relation=none) %}
  {{ return(adapter.dispatch('consented', 'consentgate')(relation, subject_column, purpose, as_of, normalize, consent_relation)) }}
{% endmacro %}

{% macro default__consented(relation, subject_column, purpose, as_of=none, normalize=none, consent_relation=none) %}
  {%- set spec = consentgate._call_spec('consentgate.consented', relation, subject_column, purpose, as_of, normalize, consent_relation) -%}
  {%- set row_key = consentgate.subject_key('cg_rows.' ~ spec.subject_sql, spec.normalize) -%}
  {%- set sql -%}
{{ consentgate._call_comment(spec) }}
select cg_rows.*
from {{ spec.relation }} as cg_rows
where {{ row_key }} in (
{{ consentgate._consented_keys_sql(spec) }}
)
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}
