{#- Delete every row of spec.relation whose subject is not consented at T (used once, without a watermark). -#}
{% macro _purge_all_sql(spec) %}
  {%- set row_key = consentgate.subject_key(spec.subject_sql, spec.normalize) -%}
  {%- set sql -%}
delete from {{ spec.relation }}
where {{ row_key }} is null
   or {{ row_key }} not in (
{{ consentgate._consented_keys_sql(spec) }}
)
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}
