{#-
  The consent log as a Relation. consent_relation: a Relation (ref()/source() result), a string
  `table`, `schema.table` or `database.schema.table`, or none for var consentgate_consent_relation
  (default: consent_events in the target schema).
-#}
{% macro _consent_relation(consent_relation, macro_name) %}
  {%- set value = consent_relation -%}
  {%- set argument = 'consent_relation' -%}
  {%- if value is none -%}
    {%- set value = consentgate.get_config('consent_relation') -%}
    {%- set argument = 'consent_relation (var consentgate_consent_relation)' -%}
  {%- endif -%}
  {%- if consentgate._is_relation(value) -%}
    {{ return(value) }}
  {%- endif -%}
  {%- if value is not string or not modules.re.match('^[A-Za-z0-9_$-]+([.][A-Za-z0-9_$-]+){0,2}$', value | trim) -%}
    {%- do consentgate._fail(macro_name, argument, 'must be a Relation or a name like schema.table', value) -%}
  {%- endif -%}
  {%- set parts = (value | trim).split('.') -%}
  {%- if parts | length == 1 -%}
    {{ return(api.Relation.create(database=target.database, schema=target.schema, identifier=parts[0])) }}
  {%- elif parts | length == 2 -%}
    {{ return(api.Relation.create(database=target.database, schema=parts[0], identifier=parts[1])) }}
  {%- endif -%}
  {{ return(api.Relation.create(database=parts[0], schema=parts[1], identifier=parts[2])) }}
{% endmacro %}
