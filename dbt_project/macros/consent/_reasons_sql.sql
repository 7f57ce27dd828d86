{#-
  The rows of spec.relation with their exclusion reason (column consentgate_reason, null = kept).
  row_columns: what else to select from the rows (default all their columns; none for only the reason).
-#}
{% macro _reasons_sql(spec, row_columns='cg_rows.*') %}
  {%- set row_key = consentgate.subject_key('cg_rows.' ~ spec.subject_sql, spec.normalize) -%}
  {#- A generic test with a `where` config receives "(select ...) dbt_subquery" instead of a Relation. -#}
  {%- set rows = spec.relation if consentgate._is_relation(spec.relation) else '(select * from ' ~ spec.relation ~ ')' -%}
  {%- set sql -%}
select
    {% if row_columns %}{{ row_columns }},{% endif %}
    {{ consentgate.exclusion_reason(row_key, 'cg_decisions.cg_code') }} as consentgate_reason
from {{ rows }} as cg_rows
left join (
{{ consentgate.consent_decisions(spec) }}
) as cg_decisions
    on {{ row_key }} = cg_decisions.cg_key
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}
