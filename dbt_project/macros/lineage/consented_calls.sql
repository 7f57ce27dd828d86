{#-
  The consented() calls embedded in compiled SQL, as a list of dicts (the JSON of each
  /* consentgate:consented {...} */ comment, see consent/_call_comment.sql).
-#}
{% macro consented_calls(compiled_code) %}
  {{ return(adapter.dispatch('consented_calls', 'consentgate')(compiled_code)) }}
{% endmacro %}

{% macro default__consented_calls(compiled_code) %}
  {%- set calls = [] -%}
  {%- if compiled_code -%}
    {%- for payload in modules.re.findall('/[*] consentgate:consented ([{].*?[}]) [*]/', compiled_code) -%}
      {%- do calls.append(fromjson(payload)) -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return(calls) }}
{% endmacro %}
