{#-
  Delete the rows of spec.relation whose subject changed since `since` and is not consented at T.
  Only the changed subjects are decided (consent_decisions with changed_since: one aggregate over the
  log, no join). subject_column: the dbt Column of the subject column in spec.relation (or none); for
  an integer column the delete probes the raw column (an index or the engine's join filter applies),
  otherwise it compares the trimmed text key row by row.
-#}
{% macro _purge_changed_sql(spec, since, subject_column=none) %}
  {%- set to_delete -%}
select cg_decisions.cg_key
from (
{{ consentgate.consent_decisions(spec, changed_since=since) }}
) as cg_decisions
where {{ consentgate.exclusion_reason('cg_decisions.cg_key', 'cg_decisions.cg_code') }} is not null
  {%- endset -%}
  {%- set sql -%}
delete from {{ spec.relation }}
{%- if subject_column is not none and subject_column.is_integer() %}
where {{ spec.subject_sql }} in (
    select {{ consentgate.integer_key('cg_delete.cg_key', subject_column.data_type) }}
    from (
{{ to_delete }}
    ) as cg_delete
)
{%- else %}
where {{ consentgate.subject_key(spec.subject_sql, spec.normalize) }} in (
{{ to_delete }}
)
{%- endif %}
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}
