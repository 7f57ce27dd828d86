{#-
  Generic test only_consented: fails when the model holds any row whose subject is not consented for
  the purpose as of as_of. Same rule as consented(); nothing is re-implemented here.

  Its failing rows are aggregates, one per exclusion reason: subject_column, purpose, as_of,
  consentgate_reason and failing_rows (how many rows have that reason). No subject key and no row data,
  so `dbt build --store-failures` stores what an auditor needs and no personal data. The test's
  failure count is the number of violating rows (fail_calc sums failing_rows).

    models:
      - name: ad_audience
        columns:
          - name: customer_id
            data_tests:
              - consentgate.only_consented:
                  arguments:
                    purpose: ad_targeting
                    # as_of: "2026-01-10T00:00:00"   (default: var consentgate_as_of, else run start)
                    # normalize: lower
-#}
{% test only_consented(model, column_name, purpose=none, as_of=none, normalize=none, consent_relation=none) %}
  {{ config(fail_calc='coalesce(sum(failing_rows), 0)') }}
  {{ return(adapter.dispatch('test_only_consented', 'consentgate')(model, column_name, purpose, as_of, normalize, consent_relation)) }}
{% endtest %}

{% macro default__test_only_consented(model, column_name, purpose=none, as_of=none, normalize=none, consent_relation=none) %}
  {%- set spec = consentgate._call_spec('consentgate.only_consented', model, column_name, purpose, as_of, normalize, consent_relation, relation_kind='any') -%}
with validation_errors as (
    select
        {{ consentgate._sql_string(spec.subject_column) }} as subject_column,
        {{ consentgate._sql_string(spec.purpose) }} as purpose,
        {{ consentgate._sql_string(spec.as_of) }} as as_of,
        cg_reasons.consentgate_reason,
        count(*) as failing_rows
    from (
{{ consentgate._reasons_sql(spec, row_columns=none) }}
    ) as cg_reasons
    where cg_reasons.consentgate_reason is not null
    group by cg_reasons.consentgate_reason
)

select * from validation_errors
{% endmacro %}
