{#- The subject keys consented for spec.purpose at spec.as_of (consent_decisions + exclusion_reason). -#}
{% macro _consented_keys_sql(spec) %}
  {%- set sql -%}
select cg_decisions.cg_key
from (
{{ consentgate.consent_decisions(spec) }}
) as cg_decisions
where {{ consentgate.exclusion_reason('cg_decisions.cg_key', 'cg_decisions.cg_code') }} is null
  {%- endset -%}
  {{ return(sql) }}
{% endmacro %}
