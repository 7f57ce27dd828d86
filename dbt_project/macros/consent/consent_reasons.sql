{#-
  consent_reasons(relation, subject_column, purpose, as_of=none, normalize=none, consent_relation=none)

  Every row of relation with one more column, consentgate_reason: null when the row is kept,
  else why it is excluded (null_subject, no_consent, withdrawn, denied, invalid, expired).
  Same decision as consented(); the only_consented test and consent_counts() are built on it.
-#}
{% macro consent_reasons(relation, subject_column, purpose, as_of=none, normalize=none, consent_relation=none) %}
  {{ return(adapter.dispatch('consent_reasons', 'consentgate')(relation, subject_column, purpose, as_of, normalize, consent_relation)) }}
{% endmacro %}

{% macro default__consent_reasons(relation, subject_column, purpose, as_of=none, normalize=none, consent_relation=none) %}
  {%- set spec = consentgate._call_spec('consentgate.consent_reasons', relation, subject_column, purpose, as_of, normalize, consent_relation) -%}
  {{ return(consentgate._reasons_sql(spec)) }}
{% endmacro %}
