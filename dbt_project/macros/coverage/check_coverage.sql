{#-
  dbt run-operation check_coverage [--args '{fail: false}']

  The coverage check, from `graph`: every model marked ad-targeting (config meta
  `consentgate: {ad_targeting: true, purpose: ...}`, or tag `consentgate_ad_targeting` with a purpose
  in meta) must reach every upstream node marked personal data (meta `consentgate: {personal_data: true}`
  or tag `personal_data`, on sources, seeds, snapshots or models) only through a model that calls
  consented() for the same purpose. Each offending path is logged; with fail (the default) the
  operation then fails. The Python form is `consentgate coverage --manifest target/manifest.json`.
-#}
{% macro check_coverage(fail=true) %}
  {{ return(adapter.dispatch('check_coverage', 'consentgate')(fail)) }}
{% endmacro %}

{% macro default__check_coverage(fail=true) %}
  {%- if not execute -%}
    {{ return([]) }}
  {%- endif -%}
  {%- set nodes = {} -%}
  {%- do nodes.update(graph.nodes) -%}
  {%- do nodes.update(graph.sources) -%}
  {%- set violations = [] -%}
  {%- set checked = [] -%}
  {%- for unique_id, node in graph.nodes.items() | sort -%}
    {%- set marks = consentgate._coverage_marks(node) -%}
    {%- if node.resource_type == 'model' and marks.ad_targeting -%}
      {%- do checked.append(unique_id) -%}
      {%- if not marks.purpose -%}
        {%- do violations.append(unique_id ~ ": ad-targeting model has no purpose (set meta consentgate.purpose)") -%}
      {%- else -%}
        {%- do violations.extend(consentgate._coverage_paths(nodes, unique_id, marks.purpose)) -%}
      {%- endif -%}
    {%- endif -%}
  {%- endfor -%}
  {%- for violation in violations -%}
    {%- do log(violation, info=true) -%}
  {%- endfor -%}
  {%- do log("consentgate coverage: " ~ checked | length ~ " ad-targeting model(s) checked, "
             ~ violations | length ~ " violation(s)", info=true) -%}
  {%- if violations and fail -%}
    {{ exceptions.raise_compiler_error("consentgate coverage: " ~ violations | length ~ " violation(s):\n" ~ (violations | join('\n'))) }}
  {%- endif -%}
  {{ return(violations) }}
{% endmacro %}
