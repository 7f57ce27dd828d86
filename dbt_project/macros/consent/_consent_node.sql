{#-
  The consent log given as a graph node in var consentgate_consent_relation:
    {ref: name} | {ref: [package, name]} | {source: [source_name, table_name]}
  Returns the ref()/source() result; anything else fails naming the var and the value.
  Outside a node that dbt parsed with the call (an on-run-end hook, a run-operation), where ref()
  would fail dbt's dependency check, the ref'd node is looked up in `graph` instead.
-#}
{% macro _consent_node(value, macro_name, argument) %}
  {%- set keys = value.keys() | list -%}
  {%- set target_ = value.get(keys[0]) if keys | length == 1 else none -%}
  {%- set names = ([target_] if target_ is string else (target_ | list if target_ is iterable and target_ is not mapping else [])) -%}
  {%- set valid = names | length > 0 and names | select('string') | list | length == names | length -%}
  {%- if keys == ['ref'] and valid and names | length in (1, 2) -%}
    {%- if execute and (model is not defined or model is none or model.get('resource_type') not in ['model', 'seed', 'snapshot', 'test', 'analysis']) -%}
      {{ return(consentgate._graph_relation(names, macro_name, argument)) }}
    {%- endif -%}
    {{ return(ref(*names)) }}
  {%- elif keys == ['source'] and valid and names | length == 2 -%}
    {{ return(source(names[0], names[1])) }}
  {%- endif -%}
  {%- do consentgate._fail(macro_name, argument, 'as a mapping must be {ref: name}, {ref: [package, name]} or {source: [source_name, table_name]}', value) -%}
{% endmacro %}
