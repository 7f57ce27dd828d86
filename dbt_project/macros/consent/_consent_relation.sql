{#-
  The consent log as a Relation, resolved through the dbt graph so that dbt knows every caller
  depends on it (ordering, docs, cosmos, OpenLineage).

  consent_relation: a Relation (a ref()/source() result) is used as it is; a string `table`,
  `schema.table` or `database.schema.table` names a table outside the graph (a per-call override);
  none reads var consentgate_consent_relation:
    - unset or a string: source('consentgate', 'consent_events'), the package's source
      (models/consentgate_sources.yml), whose database/schema/identifier come from that string;
    - a mapping {ref: name}, {ref: [package, name]} or {source: [source_name, table_name]}: that
      ref() or source(), for a consent log your project builds (a seed, a model) or declares itself.
  source()/ref() are called while dbt parses the calling node, so they land in its depends_on.
-#}
{% macro _consent_relation(consent_relation, macro_name) %}
  {%- set value = consent_relation -%}
  {%- set argument = 'consent_relation' -%}
  {%- if value is none -%}
    {%- set value = consentgate.get_config('consent_relation') -%}
    {%- set argument = 'consent_relation (var consentgate_consent_relation)' -%}
    {%- if value is mapping -%}
      {{ return(consentgate._consent_node(value, macro_name, argument)) }}
    {%- endif -%}
  {%- endif -%}
  {%- if consentgate._is_relation(value) -%}
    {{ return(value) }}
  {%- endif -%}
  {%- if value is not string or not modules.re.match('^[A-Za-z0-9_$-]+([.][A-Za-z0-9_$-]+){0,2}$', value | trim) -%}
    {%- do consentgate._fail(macro_name, argument, 'must be a Relation, a name like schema.table, or a mapping {ref: name} or {source: [source_name, table_name]}', value) -%}
  {%- endif -%}
  {%- if consent_relation is none -%}
    {#- The package's source: the same table, as a node of the graph. -#}
    {{ return(source('consentgate', 'consent_events')) }}
  {%- endif -%}
  {%- set parts = (value | trim).split('.') -%}
  {%- if parts | length == 1 -%}
    {{ return(api.Relation.create(database=consentgate._target_database(), schema=target.schema, identifier=parts[0])) }}
  {%- elif parts | length == 2 -%}
    {{ return(api.Relation.create(database=consentgate._target_database(), schema=parts[0], identifier=parts[1])) }}
  {%- endif -%}
  {{ return(api.Relation.create(database=parts[0], schema=parts[1], identifier=parts[2])) }}
{% endmacro %}
