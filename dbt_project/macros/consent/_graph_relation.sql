{#-
  The Relation of the seed, model or snapshot named [name] or [package, name], looked up in `graph`
  (for hooks and operations, where ref() only allows the nodes dbt saw while parsing them).
-#}
{% macro _graph_relation(names, macro_name, argument) %}
  {%- set name = names[-1] -%}
  {%- set package = names[0] if names | length == 2 else none -%}
  {%- set found = [] -%}
  {%- for node in graph.nodes.values() -%}
    {%- if node.resource_type in ['model', 'seed', 'snapshot'] and node.name == name
          and (package is none or node.package_name == package) -%}
      {%- do found.append(node) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if found | length != 1 -%}
    {%- do consentgate._fail(macro_name, argument, 'must name exactly one seed, model or snapshot ('
        ~ found | length ~ ' found)', {'ref': names}) -%}
  {%- endif -%}
  {%- set node = found[0] -%}
  {{ return(api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias or node.name)) }}
{% endmacro %}
