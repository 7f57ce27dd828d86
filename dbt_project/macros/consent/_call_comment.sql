{#-
  A machine-readable comment naming a consented() call, embedded in the compiled SQL so that
  log_lineage and the coverage check can find the call in compiled_code:
    /* consentgate:consented {"relation": ..., "database": ..., "schema": ..., "identifier": ...,
       "subject_column": ..., "purpose": ..., "normalize": ..., "as_of": ..., "consent_relation": ...} */
-#}
{% macro _call_comment(spec) %}
  {%- set rel = spec.relation -%}
  {%- set consent = spec.consent_relation -%}
  {%- set payload = {
      'relation': rel | string,
      'database': rel.database,
      'schema': rel.schema,
      'identifier': rel.identifier,
      'subject_column': spec.subject_column,
      'purpose': spec.purpose,
      'normalize': spec.normalize,
      'as_of': spec.as_of,
      'consent_relation': consent | string,
      'consent_database': consent.database,
      'consent_schema': consent.schema,
      'consent_identifier': consent.identifier,
  } -%}
  {{ return('/* consentgate:consented ' ~ (tojson(payload, sort_keys=true) | replace('*/', '*\\/')) ~ ' */') }}
{% endmacro %}
