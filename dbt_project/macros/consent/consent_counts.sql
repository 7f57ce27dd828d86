{#-
  consent_counts(relation, subject_column, purpose, as_of=none, normalize=none, consent_relation=none)

  One row of counts for what consented() keeps and excludes, by reason:
    rows_in, rows_out, excluded_null_subject, excluded_no_consent, excluded_denied,
    excluded_withdrawn, excluded_expired, excluded_invalid
  (rows_in = rows_out + the excluded counts, always). log_lineage records these per model.
-#}
{% macro consent_counts(relation, subject_column, purpose, as_of=none, normalize=none, consent_relation=none) %}
  {{ return(adapter.dispatch('consent_counts', 'consentgate')(relation, subject_column, purpose, as_of, normalize, consent_relation)) }}
{% endmacro %}

{% macro default__consent_counts(relation, subject_column, purpose, as_of=none, normalize=none, consent_relation=none) %}
  {%- set spec = consentgate._call_spec('consentgate.consent_counts', relation, subject_column, purpose, as_of, normalize, consent_relation) -%}
  {{ return(consentgate._counts_sql(spec)) }}
{% endmacro %}
