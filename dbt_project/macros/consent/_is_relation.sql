{#- True for Relation objects, including the results of ref() and source(). -#}
{% macro _is_relation(obj) %}
  {{ return(obj is mapping and (obj.get('metadata', {}) or {}).get('type', '').endswith('Relation')) }}
{% endmacro %}
