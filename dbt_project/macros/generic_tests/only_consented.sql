{#-
  Generic test only_consented: fails with every row of the model whose subject is not consented for
  the purpose as of as_of, each with its reason (column consentgate_reason). Same rule as
  consented(); nothing is re-implemented here.

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
  {{ return(adapter.dispatch('test_only_consented', 'consentgate')(model, column_name, purpose, as_of, normalize, consent_relation)) }}
{% endtest %}

{% macro default__test_only_consented(model, column_name, purpose=none, as_of=none, normalize=none, consent_relation=none) %}
  {%- set spec = consentgate._call_spec('consentgate.only_consented', model, column_name, purpose, as_of, normalize, consent_relation, relation_kind='any') -%}
with validation_errors as (
    select cg_reasons.*
    from (
{{ consentgate._reasons_sql(spec) }}
    ) as cg_reasons
    where cg_reasons.consentgate_reason is not null
)

select * from validation_errors
{% endmacro %}
