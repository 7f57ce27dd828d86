{#- The one-row counts query for a validated spec (see consent_counts). -#}
{% macro _counts_sql(spec) %}
  {%- set sql -%}
select
    count(*) as rows_in,
    count(case when cg_reasons.consentgate_reason is null then 1 end) as rows_out,
    {%- for reason in ['null_subject', 'no_consent', 'denied', 'withdrawn', 'expired', 'invalid'] %}
    count(case when cg_reasons.consentgate_reason = '{{ reason }}' then 1 end) as excluded_{{ reason }}{{ ',' if not loop.last }}
    {%- endfor %}
from (
{{ consentgate._reasons_sql(spec, row_columns=none) }}
) as cg_reasons
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}
