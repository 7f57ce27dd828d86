{#- The purge watermark table, next to the purged model: consentgate_purge_state(model, purpose, last_as_of, updated_at). -#}
{% macro _purge_state_relation(relation) %}
  {{ return(api.Relation.create(database=relation.database, schema=relation.schema, identifier='consentgate_purge_state')) }}
{% endmacro %}
